"""Hooks that describe every event in one line, to a stream or to logging."""

from __future__ import annotations

import logging
import sys
from collections.abc import Coroutine, Iterable
from dataclasses import fields
from typing import IO, Any

from async_reduce._events import (
    AcquireTimedOut,
    CallerLeft,
    ConnectionAcquired,
    ConnectionClosed,
    ConnectionCreated,
    ConnectionCreateFailed,
    ConnectionReclaimed,
    ExecutionAbandoned,
    ExecutionFinished,
    PoolEvent,
)
from async_reduce._location import coroutine_location

from .base import BaseHooks

__all__ = ["DebugHooks"]

#: The kinds of lines DebugHooks can print; ``events=`` picks among them.
EVENT_KINDS = (
    "apply",
    "executing",
    "reducing",
    "result",
    "exception",
    "finished",
    "caller_left",
    "abandoned",
    "pool",
)
#: The five kinds of lines async-reduce 1.x printed, the default.
EVENTS_1X = frozenset(EVENT_KINDS[:5])

# Log record attributes set from ``extra=`` carry this prefix, which no
# attribute of logging.LogRecord has.
EXTRA_PREFIX = "async_reduce_"

_POOL_LINES: dict[type[Any], tuple[str, tuple[str, ...]]] = {
    ConnectionAcquired: ("connection acquired: wait=%.6fs", ("wait",)),
    ConnectionCreated: ("connection created: duration=%.6fs", ("duration",)),
    ConnectionCreateFailed: ("connection create failed: %r", ("exception",)),
    ConnectionClosed: ("connection closed: reason=%s", ("reason",)),
    AcquireTimedOut: ("acquire timed out: waited=%.6fs", ("waited",)),
    ConnectionReclaimed: (
        "connection reclaimed: held=%.6fs acquired_at=%s",
        ("held", "acquired_at"),
    ),
}


def _event_extra(kind: str, event: Any) -> dict[str, Any]:
    extra = {EXTRA_PREFIX + "event": kind}
    for field in fields(event):
        extra[EXTRA_PREFIX + field.name] = getattr(event, field.name)
    return extra


class DebugHooks(BaseHooks):
    """Describe hook calls in one line each.

    By default it prints exactly the five kinds of lines async-reduce 1.x
    printed, so parsers of 1.x's output keep working::

        [IDENT] apply async_reduce() for <coroutine ...>
        [IDENT] executing for <coroutine ...>
        [IDENT] reducing for <coroutine ...>
        [IDENT] result for <coroutine ...>: RESULT
        [IDENT] get exception for <coroutine ...>: EXCEPTION

    With ``events="all"`` it also prints the events added in 2.0::

        [IDENT] execution finished for LOC: outcome=result duration=0.001200s callers=3
        [IDENT] caller left for LOC: reason=timeout waited=0.500000s remaining=2
        [IDENT] execution abandoned for LOC: cancelled=True duration=0.500000s
        [POOL] connection acquired: wait=0.000010s

    (LOC is the function location, POOL the pool's ``repr()``.)

    Args:
        stream: where lines are printed; the *current* ``sys.stderr`` when
            omitted (1.x bound the ``sys.stderr`` of import time).
        logger: send the lines to this logger at ``DEBUG`` level instead of
            printing them, with the event's fields as record attributes
            (``extra=``) named ``async_reduce_<field>``:
            ``async_reduce_event`` (``"apply"``, ``"executing"``,
            ``"reducing"``, ``"result"``, ``"exception"``, ``"finished"``,
            ``"caller_left"``, ``"abandoned"`` or ``"pool"``),
            ``async_reduce_ident``, ``async_reduce_location``,
            ``async_reduce_coro``, ``async_reduce_result``,
            ``async_reduce_exception``, and for the 2.0 events every field
            of the event object (``async_reduce_duration``,
            ``async_reduce_callers``, ...).  Nothing is formatted when the
            logger is not enabled for ``DEBUG``.
        events: which lines to print: ``"1.x"`` (default) for the five
            above, ``"all"`` for every kind, or a collection of kind names
            from ``"apply"``, ``"executing"``, ``"reducing"``, ``"result"``,
            ``"exception"``, ``"finished"``, ``"caller_left"``,
            ``"abandoned"`` and ``"pool"`` (the ``async_reduce_event``
            values above).  It applies to the logger too.

    Raises:
        TypeError: both ``stream`` and ``logger`` given, ``logger`` is not
            a ``logging.Logger``/``logging.LoggerAdapter``, or ``events`` is
            neither a string nor a collection of strings.
        ValueError: ``events`` names an unknown kind.

    .. versionchanged:: 2.0
       ``logger`` and ``events`` added; lines for the new events (printed
       only when ``events`` asks for them).
    """

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
        events: str | Iterable[str] = "1.x",
    ) -> None:
        if logger is not None:
            if stream is not None:
                raise TypeError("DebugHooks() takes either stream or logger, not both")
            if not isinstance(logger, (logging.Logger, logging.LoggerAdapter)):
                raise TypeError(
                    "logger must be a logging.Logger or logging.LoggerAdapter, "
                    f"got {type(logger).__name__}"
                )
        self._stream = stream
        self._logger = logger
        self._events = _checked_events(events)

    def __repr__(self) -> str:
        target = (
            f"logger={self._logger!r}" if self._logger else f"stream={self._stream!r}"
        )
        if self._events != EVENTS_1X:
            shown = "all" if len(self._events) == len(EVENT_KINDS) else self._events
            target += f", events={shown!r}"
        return f"DebugHooks({target})"

    @property
    def events(self) -> frozenset[str]:
        """The kinds of lines printed (see ``events=``)."""
        return self._events

    def _enabled(self) -> bool:
        logger = self._logger
        return logger is None or logger.isEnabledFor(logging.DEBUG)

    def _write(self, extra: dict[str, Any], message: str, *args: Any) -> None:
        logger = self._logger
        if logger is None:
            print(message % args, file=self._stream or sys.stderr)
        else:
            logger.debug(message, *args, extra=extra)

    def _event_extra(self, kind: str, event: Any) -> dict[str, Any]:
        return {} if self._logger is None else _event_extra(kind, event)

    def _coro_extra(
        self, kind: str, coro: Coroutine[Any, Any, Any], ident: Any
    ) -> dict[str, Any]:
        if self._logger is None:
            return {}
        return {
            EXTRA_PREFIX + "event": kind,
            EXTRA_PREFIX + "ident": ident,
            EXTRA_PREFIX + "location": coroutine_location(coro),
            EXTRA_PREFIX + "coro": coro,
        }

    def on_apply_for(self, coro: Coroutine[Any, Any, Any], ident: Any) -> None:
        """``[IDENT] apply async_reduce() for CORO``."""
        if "apply" in self._events and self._enabled():
            extra = self._coro_extra("apply", coro, ident)
            self._write(extra, "[%s] apply async_reduce() for %s", ident, coro)

    def on_executing_for(self, coro: Coroutine[Any, Any, Any], ident: Any) -> None:
        """``[IDENT] executing for CORO``."""
        if "executing" in self._events and self._enabled():
            extra = self._coro_extra("executing", coro, ident)
            self._write(extra, "[%s] executing for %s", ident, coro)

    def on_reducing_for(self, coro: Coroutine[Any, Any, Any], ident: Any) -> None:
        """``[IDENT] reducing for CORO``."""
        if "reducing" in self._events and self._enabled():
            extra = self._coro_extra("reducing", coro, ident)
            self._write(extra, "[%s] reducing for %s", ident, coro)

    def on_result_for(
        self, coro: Coroutine[Any, Any, Any], ident: Any, result: Any
    ) -> None:
        """``[IDENT] result for CORO: RESULT``."""
        if "result" in self._events and self._enabled():
            extra = self._coro_extra("result", coro, ident)
            if extra:
                extra[EXTRA_PREFIX + "result"] = result
            self._write(extra, "[%s] result for %s: %s", ident, coro, result)

    def on_exception_for(
        self, coro: Coroutine[Any, Any, Any], ident: Any, exception: BaseException
    ) -> None:
        """``[IDENT] get exception for CORO: EXCEPTION``."""
        if "exception" in self._events and self._enabled():
            extra = self._coro_extra("exception", coro, ident)
            if extra:
                extra[EXTRA_PREFIX + "exception"] = exception
            self._write(extra, "[%s] get exception for %s: %s", ident, coro, exception)

    def on_execution_finished(self, event: ExecutionFinished) -> None:
        """``[IDENT] execution finished for LOCATION: outcome=... duration=...s
        callers=N``."""
        if "finished" in self._events and self._enabled():
            self._write(
                self._event_extra("finished", event),
                "[%s] execution finished for %s: outcome=%s duration=%.6fs callers=%d",
                event.ident,
                event.location,
                event.outcome,
                event.duration,
                event.callers,
            )

    def on_caller_left(self, event: CallerLeft) -> None:
        """``[IDENT] caller left for LOCATION: reason=... waited=...s
        remaining=N``."""
        if "caller_left" in self._events and self._enabled():
            self._write(
                self._event_extra("caller_left", event),
                "[%s] caller left for %s: reason=%s waited=%.6fs remaining=%d",
                event.ident,
                event.location,
                event.reason,
                event.waited,
                event.remaining,
            )

    def on_execution_abandoned(self, event: ExecutionAbandoned) -> None:
        """``[IDENT] execution abandoned for LOCATION: cancelled=...
        duration=...s``."""
        if "abandoned" in self._events and self._enabled():
            self._write(
                self._event_extra("abandoned", event),
                "[%s] execution abandoned for %s: cancelled=%s duration=%.6fs",
                event.ident,
                event.location,
                event.cancelled,
                event.duration,
            )

    def on_pool_event(self, event: PoolEvent) -> None:
        """``[POOL] connection acquired: wait=...s`` and similar."""
        if "pool" in self._events and self._enabled():
            line = _POOL_LINES.get(type(event))
            if line is None:  # an event type newer than this hook
                message, values = "%r", (event,)
            else:
                message = line[0]
                values = tuple(getattr(event, name) for name in line[1])
            self._write(
                self._event_extra("pool", event), "[%r] " + message, event.pool, *values
            )


def _checked_events(events: Any) -> frozenset[str]:
    """``events=`` as the set of kinds to print."""
    if isinstance(events, str):
        if events == "1.x":
            return EVENTS_1X
        if events == "all":
            return frozenset(EVENT_KINDS)
        raise ValueError(
            "events must be '1.x', 'all' or a collection of event kinds, "
            f"got {events!r}"
        )
    try:
        kinds = frozenset(events)
    except TypeError:
        raise TypeError(
            "events must be '1.x', 'all' or a collection of event kinds, "
            f"got {type(events).__name__}"
        ) from None
    unknown = sorted(repr(kind) for kind in kinds if kind not in EVENT_KINDS)
    if unknown:
        raise ValueError(
            f"events: unknown kind(s) {', '.join(unknown)}; "
            f"known: {', '.join(EVENT_KINDS)}"
        )
    return kinds
