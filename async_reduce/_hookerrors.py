"""Isolation of hook failures.

A hook that raises must never break the reducer or the pool for callers: the
caller-facing code catches the exception and hands it to
:func:`report_hook_error`, which logs it through the ``async_reduce`` logger
once per hook object and exception type, so a hook failing on every call does
not flood the log.
"""

from __future__ import annotations

import logging
import weakref

__all__ = ["logger", "report_hook_error"]

logger = logging.getLogger("async_reduce")

_MAX_REMEMBERED = 10_000
# Hooks that can be weakly referenced are remembered without keeping them
# alive (and without confusing a new hook with a dead one that had its id);
# the others by id, in a bounded set.
_reported: weakref.WeakKeyDictionary[object, set[type[BaseException]]] = (
    weakref.WeakKeyDictionary()
)
_reported_by_id: set[tuple[int, type[BaseException]]] = set()


def _first_report(hook: object, exc_type: type[BaseException]) -> bool:
    try:
        seen = _reported.get(hook)
        if seen is None:
            seen = _reported[hook] = set()
    except TypeError:  # not weakly referenceable
        key = (id(hook), exc_type)
        if key in _reported_by_id:
            return False
        if len(_reported_by_id) >= _MAX_REMEMBERED:
            _reported_by_id.clear()
        _reported_by_id.add(key)
        return True
    if exc_type in seen:
        return False
    seen.add(exc_type)
    return True


def report_hook_error(hook: object, method: str, exc: BaseException) -> None:
    """Log that ``hook.method`` raised ``exc``, once per hook and exception type."""
    if not _first_report(hook, type(exc)):
        return
    logger.error(
        "hook %s.%s raised %s; the call it observed was not affected "
        "(further %s from this hook are not logged)",
        type(hook).__qualname__,
        method,
        type(exc).__name__,
        type(exc).__name__,
        exc_info=exc,
    )
