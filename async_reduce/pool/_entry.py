"""The pool's record of one connection, and where a borrower got it."""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
from collections import deque
from typing import Any, Generic, TypeVar

__all__ = [
    "IDLE",
    "LENT",
    "PAST_HOLDERS",
    "RECLAIMED",
    "RETIRED",
    "UNKNOWN_SITE",
    "Entry",
    "acquisition_site",
]

C = TypeVar("C")

IDLE = 0
LENT = 1
RETIRED = 2

# ``Entry.lease`` of a connection reclaimed after ``borrow_timeout``: the
# ``get_connection()`` block that held it then leaves without error.
RECLAIMED = object()

# How many past holders of a connection are remembered: a task that released
# a connection can be told apart from its new holders for this many lendings.
PAST_HOLDERS = 8


class Entry(Generic[C]):
    """One connection, its timestamps and who holds it.

    Timestamps are ``time.monotonic`` seconds: ``last_used`` is when it was
    last returned (or opened); ``expires_at`` is its jittered end of life;
    ``borrowed_at`` and ``site`` say when and where its current borrower got
    it.

    A lending is identified by who holds it, not by the connection object:
    ``holder`` is the task the connection is lent to (``None`` while it is
    on its way to a waiter; left as it was while idle, so that the same task
    borrowing it again records nothing: one finished task per idle
    connection may stay referenced until the next lending), ``lease`` the
    ``get_connection()`` context that holds it, if any.  ``past`` remembers
    the ``id()`` of the tasks of the last few lendings (the current one
    included), so that a task releasing a connection a second time, after it
    went to another caller, is recognised (see ``release``); ids, so that
    finished tasks, their results and their tracebacks are not kept alive.
    """

    __slots__ = (
        "borrowed_at",
        "conn",
        "created_at",
        "expires_at",
        "holder",
        "last_used",
        "lease",
        "past",
        "site",
        "state",
    )

    def __init__(self, conn: C, created_at: float, expires_at: float) -> None:
        self.conn = conn
        self.state = IDLE
        self.created_at = created_at
        self.expires_at = expires_at
        self.last_used = created_at
        self.borrowed_at = created_at
        self.site = ""
        self.holder: Any = None
        self.lease: object = None
        self.past: deque[int] = deque(maxlen=PAST_HOLDERS)


UNKNOWN_SITE = "<unknown>"
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_CONTEXTLIB = contextlib.__file__
_ASYNC_CODE = inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


def acquisition_site() -> str:
    """``file:line in function`` of the caller that asked for a connection.

    Walks the awaiting coroutines outward, past async_reduce and contextlib,
    to the first one of the caller's own.  Past the top coroutine of the
    task lies the event loop's machinery, not a caller: there the answer is
    ``UNKNOWN_SITE``.
    """
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        filename = code.co_filename
        if not (filename.startswith(_PACKAGE_DIR) or filename == _CONTEXTLIB):
            if not code.co_flags & _ASYNC_CODE:
                break
            return f"{filename}:{frame.f_lineno} in {code.co_name}"
        frame = frame.f_back  # type: ignore[assignment]
    return UNKNOWN_SITE
