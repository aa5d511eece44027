"""Blocking calls on worker threads: coalesced, prioritized, bounded.

::

    from async_reduce.workers import WorkerPool

    async with WorkerPool(max_workers=8) as pool:
        text = await pool.run(read_file, "config.toml", priority=1)

See :class:`WorkerPool` for the full contract.
"""

from ._errors import WorkerPoolClosed, WorkerPoolError, WorkerQueueFull
from ._events import (
    WorkerCallFinished,
    WorkerCallRejected,
    WorkerEvent,
    WorkerStarted,
    WorkerStopped,
)
from ._pool import WorkerPool
from ._stats import WorkerPoolStatistics

__all__ = [
    "WorkerCallFinished",
    "WorkerCallRejected",
    "WorkerEvent",
    "WorkerPool",
    "WorkerPoolClosed",
    "WorkerPoolError",
    "WorkerPoolStatistics",
    "WorkerQueueFull",
    "WorkerStarted",
    "WorkerStopped",
]
