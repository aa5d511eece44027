"""Per-caller copies of the exception an execution raised.

Raising an exception writes into it: ``__traceback__`` grows by the frames it
passes, ``__context__`` becomes the exception the raising frame was handling,
and ``except`` blocks may ``add_note()``.  Callers of one execution serve
different users, so each caller raises a copy of its own, and what one
caller's raise writes never shows in another caller's exception.

A copy has the original's type, ``args``, attributes (``__dict__`` and
``__slots__``), ``__notes__`` (as a new list), ``__cause__``,
``__suppress_context__``, and the original's ``__context__`` and
``__traceback__`` (the work's own), so ``except TheType``, ``str(exc)`` and
the work's part of the traceback are the same for every caller.

Some exceptions cannot be rebuilt faithfully: neither creating the class
with its ``args`` (without running ``__init__``) nor calling it with them
gives an exception of the same type, ``args`` and ``str()`` (or ``str()``
raises).  Every caller then receives the original object, as with a task
awaited by several coroutines.
"""

from __future__ import annotations

import copy
import types
from collections.abc import Callable, Iterator

__all__ = ["copier"]


def _slot_names(cls: type) -> Iterator[str]:
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        if isinstance(slots, str):
            slots = (slots,)
        for name in slots:
            if name not in ("__dict__", "__weakref__"):
                yield name


def _by_new(exc: BaseException) -> BaseException:
    """``exc``'s class, args and ``__dict__``, without running ``__init__``."""
    cls = type(exc)
    new = cls.__new__(cls, *exc.args)
    state = getattr(exc, "__dict__", None)
    if state:
        new.__dict__.update(state)
    return new


def _by_reduce(exc: BaseException) -> BaseException:
    """What ``copy.copy`` builds: ``cls(*args)`` plus the state it reports
    (the way for builtin exceptions, whose fields ``__init__`` sets)."""
    return copy.copy(exc)


def _same(new: BaseException, exc: BaseException) -> bool:
    try:
        return type(new) is type(exc) and new.args == exc.args and str(new) == str(exc)
    except Exception:
        return False


def _rebuild(
    exc: BaseException, build: Callable[[BaseException], BaseException]
) -> BaseException:
    """A new exception with ``exc``'s type, args and attributes."""
    new = build(exc)
    for name in _slot_names(type(exc)):
        try:
            value = getattr(exc, name)
        except AttributeError:
            continue
        setattr(new, name, value)
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list):
        new.__notes__ = list(notes)  # type: ignore[attr-defined]
    new.__cause__ = exc.__cause__
    new.__context__ = exc.__context__
    new.__suppress_context__ = exc.__suppress_context__
    new.__traceback__ = exc.__traceback__
    return new


def copier(exc: BaseException) -> Callable[[], BaseException]:
    """A function returning a fresh copy of ``exc`` for each caller.

    A class with an ``__init__`` written in Python is rebuilt without running
    it (its ``__init__`` may format ``args`` again); a builtin one through
    its ``__reduce__``, as ``copy.copy`` does.  The first copy is checked
    (same type, ``args`` and ``str()``); when neither way gives a faithful
    copy, the function returns ``exc`` itself.
    """
    python_init = isinstance(type(exc).__init__, types.FunctionType)
    ways = (_by_new, _by_reduce) if python_init else (_by_reduce, _by_new)
    for build in ways:
        try:
            first = _rebuild(exc, build)
        except Exception:
            continue
        if _same(first, exc):
            break
    else:
        return lambda: exc
    copies = [first]

    def next_copy() -> BaseException:
        if copies:
            return copies.pop()
        try:
            return _rebuild(exc, build)
        except Exception:
            return exc

    return next_copy
