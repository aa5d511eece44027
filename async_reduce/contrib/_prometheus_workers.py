"""Prometheus metrics of worker pools, for :class:`PrometheusHooks`.

Worker pool events come once per call that reached a thread (tens of
microseconds each already), so the library's own metric objects are cheap
enough here and work the same in multiprocess mode.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from async_reduce.hooks._workercounts import PoolLabels, worker_event_kind

__all__ = ["WorkerMetrics"]


class WorkerMetrics:
    """The worker pool metrics of one namespace, labelled by pool name."""

    def __init__(
        self, namespace: str, seconds_bounds: tuple[float, ...], max_pools: int
    ) -> None:
        common: dict[str, Any] = {"namespace": namespace, "registry": None}
        pool = ("pool",)
        self.calls = Counter(
            "worker_calls",
            "Calls queued on a worker pool that ended, by outcome.",
            labelnames=("pool", "outcome"),
            **common,
        )
        self.queue_wait = Histogram(
            "worker_queue_wait_seconds",
            "Time calls waited in a worker pool's queue for a thread.",
            labelnames=pool,
            buckets=seconds_bounds,
            **common,
        )
        self.run_time = Histogram(
            "worker_run_seconds",
            "Time calls ran on a worker thread.",
            labelnames=pool,
            buckets=seconds_bounds,
            **common,
        )
        self.rejected = Counter(
            "worker_rejected",
            "submit_nowait() calls refused because the queue was full.",
            labelnames=pool,
            **common,
        )
        self.threads = Gauge(
            "worker_threads",
            "Worker threads alive.",
            labelnames=pool,
            multiprocess_mode="livesum",
            **common,
        )
        self.threads_stopped = Counter(
            "worker_threads_stopped",
            "Worker threads that ended, by reason.",
            labelnames=("pool", "reason"),
            **common,
        )
        self._label = PoolLabels(max_pools)

    def all(self) -> list[Any]:
        return [
            self.calls,
            self.queue_wait,
            self.run_time,
            self.rejected,
            self.threads,
            self.threads_stopped,
        ]

    def count(self, event: Any) -> None:
        kind = worker_event_kind(event)
        if not kind:
            return
        pool = self._label(event)
        if kind == "finished":
            self.calls.labels(pool, event.outcome).inc()
            if event.outcome in ("result", "error", "dropped"):
                self.queue_wait.labels(pool).observe(event.wait)
                self.run_time.labels(pool).observe(event.duration)
        elif kind == "rejected":
            self.rejected.labels(pool).inc()
        else:
            self.threads.labels(pool).set(event.workers)
            if kind == "stopped":
                self.threads_stopped.labels(pool, event.reason).inc()
