"""Counting worker pool events (``on_worker_event``) for the statistics hooks
and the exporters.

The event classes live in :mod:`async_reduce.workers`, which imports the
reducer and so these hooks: they are imported here on first use, not at
import time.
"""

from __future__ import annotations

from collections import Counter
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ._histogram import LogHistogram
from ._locations import OTHER_LOCATION
from ._snapshots import WorkerEventStatistics, summarize

if TYPE_CHECKING:
    from async_reduce.workers._events import WorkerEvent

__all__ = ["PoolLabels", "WorkerCounts", "pool_name", "worker_event_kind"]


def worker_event_kind(event: Any) -> str:
    """``"started"``, ``"stopped"``, ``"finished"``, ``"rejected"`` or ``""``."""
    from async_reduce.workers import _events

    if isinstance(event, _events.WorkerCallFinished):
        return "finished"
    if isinstance(event, _events.WorkerStarted):
        return "started"
    if isinstance(event, _events.WorkerStopped):
        return "stopped"
    if isinstance(event, _events.WorkerCallRejected):
        return "rejected"
    return ""


def pool_name(event: Any) -> str:
    """The name of the pool that reported ``event`` (a metric label value)."""
    name = getattr(event.pool, "name", None)
    return name if isinstance(name, str) else type(event.pool).__name__


class PoolLabels:
    """Pool names as label values: the first ``limit`` names, then
    ``<other>``, so pools made on the fly cannot grow the series unbounded."""

    __slots__ = ("_limit", "_names")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._names: set[str] = set()

    def __call__(self, event: Any) -> str:
        name = pool_name(event)
        names = self._names
        if name in names:
            return name
        if len(names) < self._limit:
            names.add(name)
            return name
        return OTHER_LOCATION


class WorkerCounts:
    """Totals over every worker pool reporting to one hooks object."""

    __slots__ = (
        "_outcomes",
        "_rejected",
        "_run_time",
        "_started",
        "_stopped",
        "_wait",
    )

    def __init__(self) -> None:
        self._outcomes: Counter[str] = Counter()
        self._wait = LogHistogram()
        self._run_time = LogHistogram()
        self._rejected = 0
        self._started = 0
        self._stopped: Counter[str] = Counter()

    def count(self, event: WorkerEvent) -> None:
        kind = worker_event_kind(event)
        if kind == "finished":
            outcome = event.outcome  # type: ignore[union-attr]
            self._outcomes[outcome] += 1
            if outcome in ("result", "error", "dropped"):
                self._wait.record(event.wait)  # type: ignore[union-attr]
                self._run_time.record(event.duration)  # type: ignore[union-attr]
        elif kind == "started":
            self._started += 1
        elif kind == "stopped":
            self._stopped[event.reason] += 1  # type: ignore[union-attr]
        elif kind == "rejected":
            self._rejected += 1

    def snapshot(self) -> WorkerEventStatistics:
        return WorkerEventStatistics(
            calls=sum(self._outcomes.values()),
            calls_by_outcome=MappingProxyType(dict(self._outcomes)),
            queue_wait=summarize(self._wait),
            run_time=summarize(self._run_time),
            rejected=self._rejected,
            threads_started=self._started,
            threads_stopped=sum(self._stopped.values()),
            stopped_by_reason=MappingProxyType(dict(self._stopped)),
        )
