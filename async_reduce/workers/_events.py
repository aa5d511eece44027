"""Events a worker pool reports to its reducer's hooks (``on_worker_event``).

Each event is a frozen, slotted dataclass, so fields added later never break
a hook.  Durations are seconds from ``time.perf_counter`` differences.
Events are delivered on an event loop using the pool, never on a worker
thread: the loop of the call concerned, or for a worker that retires on its
own, the loop that used the pool most recently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CallOutcome",
    "StopReason",
    "WorkerCallFinished",
    "WorkerCallRejected",
    "WorkerEvent",
    "WorkerStarted",
    "WorkerStopped",
]

CallOutcome = Literal["result", "error", "cancelled", "dropped", "closed"]
StopReason = Literal["idle", "resize", "shutdown"]


@dataclass(frozen=True, slots=True)
class WorkerStarted:
    """A worker thread was started; ``workers`` threads exist now."""

    pool: object
    workers: int


@dataclass(frozen=True, slots=True)
class WorkerStopped:
    """A worker thread ended; ``workers`` threads are left.

    ``reason`` is ``"idle"`` (idle for ``idle_timeout`` with more than
    ``min_workers`` threads), ``"resize"`` (above a lowered ``max_workers``)
    or ``"shutdown"``.
    """

    pool: object
    reason: StopReason
    workers: int


@dataclass(frozen=True, slots=True)
class WorkerCallFinished:
    """A call queued on the pool ended (once per execution, not per caller).

    Attributes:
        pool: the pool.
        priority: the priority the call was queued with.
        outcome: ``"result"`` or ``"error"`` (the function returned or
            raised), ``"cancelled"`` (every caller left while it was queued:
            it never ran), ``"dropped"`` (every caller left while it ran: its
            outcome was discarded), ``"closed"`` (removed by
            ``shutdown(cancel_pending=True)`` before it ran).
        wait: seconds between queueing and a worker taking it (or its removal).
        duration: seconds the function ran (``0.0`` if it never ran).
    """

    pool: object
    priority: int
    outcome: CallOutcome
    wait: float
    duration: float


@dataclass(frozen=True, slots=True)
class WorkerCallRejected:
    """``submit_nowait()`` raised ``WorkerQueueFull``: the queue was full."""

    pool: object
    priority: int


WorkerEvent = WorkerStarted | WorkerStopped | WorkerCallFinished | WorkerCallRejected
"""Every event of :mod:`async_reduce.workers`."""
