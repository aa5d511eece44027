"""Event objects handed to hooks.

Every event is a frozen, slotted dataclass: hooks receive one object per
event, so fields can be added in later versions without breaking a hook that
reads only the fields it knows.  Times are seconds from ``time.perf_counter``
differences (durations), never wall-clock timestamps.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, fields
from typing import Any, Literal

__all__ = [
    "AcquireTimedOut",
    "CallerLeft",
    "ConnectionAcquired",
    "ConnectionClosed",
    "ConnectionCreateFailed",
    "ConnectionCreated",
    "ConnectionReclaimed",
    "ExecutionAbandoned",
    "ExecutionFinished",
    "PoolEvent",
]

Outcome = Literal["result", "error", "cancelled"]


@dataclass(frozen=True, slots=True)
class ExecutionFinished:
    """A shared execution ended (delivered once per execution).

    Attributes:
        key: the reducer key of the execution (the explicit ``ident`` or the
            automatic key).
        ident: the ident as shown to 1.x hooks (``module:qualname(<state_hash:N>)``
            for automatic keys, the explicit ident as given otherwise).
        location: ``package.module:qualname`` of the coroutine function.
        outcome: ``"result"``, ``"error"`` or ``"cancelled"``.
        duration: seconds from the start of the execution to its end.
        callers: how many callers joined this execution, the one that started
            it included (callers that left early are counted too).
        exception: the exception for ``"error"``/``"cancelled"``, else ``None``.
    """

    key: Hashable
    ident: Hashable
    location: str
    outcome: Outcome
    duration: float
    callers: int
    exception: BaseException | None = None


@dataclass(frozen=True, slots=True)
class CallerLeft:
    """A caller stopped waiting before the execution it joined ended.

    Attributes:
        key, ident, location: as in :class:`ExecutionFinished`.
        reason: ``"cancelled"`` (the caller's task was cancelled) or
            ``"timeout"`` (its ``timeout`` elapsed; it got ``TimeoutError``).
        waited: seconds the caller waited.
        remaining: callers still waiting on the execution after this one left.
    """

    key: Hashable
    ident: Hashable
    location: str
    reason: Literal["cancelled", "timeout"]
    waited: float
    remaining: int


@dataclass(frozen=True, slots=True)
class ExecutionAbandoned:
    """Every caller left an execution before it ended.

    Attributes:
        key, ident, location: as in :class:`ExecutionFinished`.
        cancelled: ``True`` when the reducer cancelled the work (the default
            ``orphans="cancel"``), ``False`` when it lets the work finish
            (``orphans="finish"``).
        duration: seconds the execution had been running.
    """

    key: Hashable
    ident: Hashable
    location: str
    cancelled: bool
    duration: float


# --- connection pool events (delivered through ``on_pool_event``) ----------


@dataclass(frozen=True, slots=True)
class ConnectionAcquired:
    """A connection was handed to a caller after ``wait`` seconds."""

    pool: object
    wait: float


@dataclass(frozen=True, slots=True)
class ConnectionCreated:
    """The strategy opened a new connection in ``duration`` seconds."""

    pool: object
    duration: float


@dataclass(frozen=True, slots=True)
class ConnectionCreateFailed:
    """The strategy failed to open a connection."""

    pool: object
    exception: BaseException


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The pool closed a connection, and why.

    ``reason`` is one of ``"broken"`` (``connection_is_closed`` or a failed
    check), ``"lifetime"``, ``"idle"``, ``"burst"`` (released above
    ``max_size`` with nobody waiting), ``"reclaimed"`` (borrow timeout),
    ``"resize"`` or ``"pool_closed"``.
    """

    pool: object
    reason: str


@dataclass(frozen=True, slots=True)
class AcquireTimedOut:
    """An acquire gave up after ``waited`` seconds (``PoolTimeout`` raised)."""

    pool: object
    waited: float


@dataclass(frozen=True, slots=True)
class ConnectionReclaimed:
    """A connection held longer than ``borrow_timeout`` was taken back.

    ``acquired_at`` is a short description (file:line) of where it was
    acquired.
    """

    pool: object
    held: float
    acquired_at: str


def _fast_constructor(cls: type[Any]) -> Callable[..., Any]:
    """A positional constructor for a frozen, slotted event class.

    A frozen dataclass's ``__init__`` goes through ``object.__setattr__`` for
    every field; the reducer builds an event per execution on its hot path,
    so it fills the slots directly instead (about three times cheaper).  The
    result is an ordinary, equal instance.
    """
    names = [field.name for field in fields(cls)]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    lines = [f"def make({', '.join(names)}):", "    obj = _new(_cls)"]
    for name in names:
        namespace[f"_set_{name}"] = getattr(cls, name).__set__
        lines.append(f"    _set_{name}(obj, {name})")
    lines.append("    return obj")
    exec("\n".join(lines), namespace)
    maker: Callable[..., Any] = namespace["make"]
    return maker


new_execution_finished = _fast_constructor(ExecutionFinished)
"""Positional ``ExecutionFinished(...)``, in field order."""


PoolEvent = (
    ConnectionAcquired
    | ConnectionCreated
    | ConnectionCreateFailed
    | ConnectionClosed
    | AcquireTimedOut
    | ConnectionReclaimed
)
