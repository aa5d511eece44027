"""Isolation of hook failures.

A hook that raises must never break the reducer or the pool for callers: the
caller-facing code catches the exception and hands it to
:func:`report_hook_error`, which logs it through the ``async_reduce`` logger
once per hook object and exception type, so a hook failing on every call does
not flood the log.
"""

from __future__ import annotations

import logging

__all__ = ["logger", "report_hook_error"]

logger = logging.getLogger("async_reduce")

_MAX_REMEMBERED = 10_000
_reported: set[tuple[int, type[BaseException]]] = set()


def report_hook_error(hook: object, method: str, exc: BaseException) -> None:
    """Log that ``hook.method`` raised ``exc``, once per hook and exception type."""
    seen = (id(hook), type(exc))
    if seen in _reported:
        return
    if len(_reported) >= _MAX_REMEMBERED:
        _reported.clear()
    _reported.add(seen)
    logger.error(
        "hook %s.%s raised %s; the call it observed was not affected "
        "(further %s from this hook are not logged)",
        type(hook).__qualname__,
        method,
        type(exc).__name__,
        type(exc).__name__,
        exc_info=exc,
    )
