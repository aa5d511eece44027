"""A snapshot of a worker pool's state and counters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["WorkerPoolStatistics"]


@dataclass(frozen=True, slots=True)
class WorkerPoolStatistics:
    """A consistent snapshot of a :class:`~async_reduce.workers.WorkerPool`.

    Gauges (at the moment of the call): ``workers == busy + idle + starting``.

    Attributes:
        workers: worker threads alive (busy, idle or starting).
        busy: threads running a call.
        idle: threads waiting for work.
        starting: threads started that have not looked for work yet.
        min_workers, max_workers, max_queue: the limits in force.
        queued: calls waiting for a worker.
        queued_by_priority: ``{priority: calls waiting}`` (priorities with
            none waiting are left out); a read-only mapping.
        waiting_for_room: ``submit()``/``run()`` callers waiting for room in a
            full queue.
        submitted: calls queued since the pool was made (coalesced callers
            that joined one are not counted here).
        completed: calls that ran to their end, with a result or an error.
        failed: of ``completed``, those that raised.
        cancelled: queued calls removed because every caller left.
        dropped: of ``completed``, those whose callers had all left while
            they ran (their outcome was discarded).
        coalesced: calls that joined an identical call in flight instead of
            queueing their own.
        rejected: ``submit_nowait()`` calls refused because the queue was full.
        closed: whether ``shutdown()`` was called.

    .. versionadded:: 2.0
    """

    workers: int
    busy: int
    idle: int
    starting: int
    min_workers: int
    max_workers: int
    max_queue: int | None
    queued: int
    queued_by_priority: Mapping[int, int]
    waiting_for_room: int
    submitted: int
    completed: int
    failed: int
    cancelled: int
    dropped: int
    coalesced: int
    rejected: int
    closed: bool
