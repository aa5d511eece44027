"""OpenTelemetry instruments of worker pools, for :class:`OpenTelemetryHooks`.

Worker pool events come once per call that reached a thread (tens of
microseconds each already), so synchronous instruments are cheap enough.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.metrics import Histogram, Meter

from async_reduce.hooks._workercounts import PoolLabels, worker_event_kind

__all__ = ["WorkerInstruments"]


class WorkerInstruments:
    """The worker pool instruments of one meter, with attribute ``pool``."""

    def __init__(
        self,
        meter: Meter,
        histogram: Callable[[Meter, str, str, str, Sequence[float]], Histogram],
        seconds_bounds: Sequence[float],
        max_pools: int,
    ) -> None:
        self._calls = meter.create_counter(
            "async_reduce.worker.calls",
            unit="{call}",
            description="Calls queued on a worker pool that ended, by outcome.",
        )
        self._queue_wait = histogram(
            meter,
            "async_reduce.worker.queue_wait",
            "s",
            "Time calls waited in a worker pool's queue for a thread.",
            seconds_bounds,
        )
        self._run_time = histogram(
            meter,
            "async_reduce.worker.run_time",
            "s",
            "Time calls ran on a worker thread.",
            seconds_bounds,
        )
        self._rejected = meter.create_counter(
            "async_reduce.worker.rejected",
            unit="{call}",
            description="submit_nowait() calls refused because the queue was full.",
        )
        self._threads = meter.create_up_down_counter(
            "async_reduce.worker.threads",
            unit="{thread}",
            description="Worker threads alive.",
        )
        self._stopped = meter.create_counter(
            "async_reduce.worker.threads_stopped",
            unit="{thread}",
            description="Worker threads that ended, by reason.",
        )
        self._label = PoolLabels(max_pools)

    def count(self, event: Any) -> None:
        kind = worker_event_kind(event)
        if not kind:
            return
        pool = {"pool": self._label(event)}
        if kind == "finished":
            self._calls.add(1, {**pool, "outcome": event.outcome})
            if event.outcome in ("result", "error", "dropped"):
                self._queue_wait.record(event.wait, pool)
                self._run_time.record(event.duration, pool)
        elif kind == "rejected":
            self._rejected.add(1, pool)
        elif kind == "started":
            self._threads.add(1, pool)
        else:
            self._threads.add(-1, pool)
            self._stopped.add(1, {**pool, "reason": event.reason})
