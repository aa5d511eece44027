"""The pool's record of one connection, and where a borrower got it."""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
from typing import Generic, TypeVar

__all__ = ["IDLE", "LENT", "RETIRED", "UNKNOWN_SITE", "Entry", "acquisition_site"]

C = TypeVar("C")

IDLE = 0
LENT = 1
RETIRED = 2


class Entry(Generic[C]):
    """One connection and its timestamps (``time.monotonic`` seconds).

    ``last_used`` is when it was last returned (or opened); ``expires_at`` is
    its jittered end of life; ``borrowed_at`` and ``site`` say when and where
    its current borrower got it.
    """

    __slots__ = (
        "borrowed_at",
        "conn",
        "created_at",
        "expires_at",
        "last_used",
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
