"""Rule 8: statistics() snapshots; events reach the hooks and the exporters."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry
from workers_helpers import EventRecorder, Gate, until

from async_reduce.contrib.opentelemetry import OpenTelemetryHooks
from async_reduce.contrib.prometheus import PrometheusHooks
from async_reduce.hooks import BaseHooks, StatisticsOverallHooks
from async_reduce.workers import (
    WorkerCallFinished,
    WorkerCallRejected,
    WorkerPool,
    WorkerQueueFull,
    WorkerStarted,
    WorkerStopped,
)


async def test_statistics_is_a_frozen_snapshot(make_pool: Any, gate: Gate) -> None:
    """statistics() is frozen and counts busy, idle and queued per priority."""
    pool = make_pool(2)
    tasks = [asyncio.create_task(pool.run(gate, tag)) for tag in "ab"]
    await gate.wait_started(2)
    tasks += [
        asyncio.create_task(pool.run(gate, tag, priority=priority))
        for tag, priority in [("c", 1), ("d", 0), ("e", 0)]
    ]
    await until(lambda: pool.statistics().queued == 3)
    stats = pool.statistics()
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.busy = 0  # type: ignore[misc]
    assert (stats.workers, stats.busy, stats.idle, stats.queued) == (2, 2, 0, 3)
    assert dict(stats.queued_by_priority) == {0: 2, 1: 1}
    assert list(stats.queued_by_priority) == [0, 1]
    with pytest.raises(TypeError):
        stats.queued_by_priority[5] = 1  # type: ignore[index]
    gate.release_all()
    await asyncio.gather(*tasks)
    after = pool.statistics()
    assert stats.busy == 2  # the old snapshot did not change
    assert (after.busy, after.idle, after.queued, after.completed) == (0, 2, 0, 5)
    assert dict(after.queued_by_priority) == {}


async def run_scenario(pool: WorkerPool, gate: Gate, second: Gate) -> None:
    """One call of each outcome: result x2, error, cancelled, dropped, closed,
    plus a coalesced caller and a rejected submit_nowait()."""
    running = asyncio.create_task(pool.run(gate, "a"))  # will be dropped
    await gate.wait_started(1)
    queued = [asyncio.create_task(pool.run(gate, "b")) for _ in range(2)]
    await until(lambda: pool.statistics().coalesced == 1)
    with pytest.raises(WorkerQueueFull):
        pool.submit_nowait(gate, "c")
    for task in queued:  # both callers leave: "b" is cancelled unrun
        task.cancel()
    await asyncio.gather(*queued, return_exceptions=True)
    failing = asyncio.create_task(pool.run(gate, "d", fail=True))
    await until(lambda: pool.statistics().queued == 1)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    gate.release_all()
    with pytest.raises(ValueError, match="d"):
        await failing
    assert await pool.run(gate, "e") == "e"
    last = asyncio.create_task(pool.run(second, "f"))
    await second.wait_started(1)
    closed = asyncio.create_task(pool.run(second, "g"))
    await until(lambda: pool.statistics().queued == 1)
    shutting = asyncio.create_task(pool.shutdown(cancel_pending=True))
    await asyncio.gather(closed, return_exceptions=True)
    second.release_all()
    assert await last == "f"
    assert await shutting


@pytest.fixture
async def second() -> Any:
    g = Gate(asyncio.get_running_loop())
    yield g
    g.release_all()


async def test_events_and_counters_of_every_outcome(gate: Gate, second: Gate) -> None:
    """Every outcome is reported once to the hooks and counted in statistics()."""
    recorder = EventRecorder()
    pool = WorkerPool(1, max_queue=1, hooks=recorder, name="scenario")
    await run_scenario(pool, gate, second)
    stats = pool.statistics()
    assert stats.submitted == 6
    assert (stats.completed, stats.failed, stats.dropped) == (4, 1, 1)
    assert (stats.cancelled, stats.coalesced, stats.rejected) == (1, 1, 1)
    assert stats.closed
    events = recorder.events
    outcomes = sorted(e.outcome for e in events if isinstance(e, WorkerCallFinished))
    assert outcomes == ["cancelled", "closed", "dropped", "error", "result", "result"]
    assert [e.priority for e in events if isinstance(e, WorkerCallRejected)] == [0]
    assert [e.workers for e in events if isinstance(e, WorkerStarted)] == [1]
    assert [(e.reason, e.workers) for e in events if isinstance(e, WorkerStopped)] == [
        ("shutdown", 0)
    ]
    assert all(e.pool is pool for e in events)
    finished = [e for e in events if isinstance(e, WorkerCallFinished)]
    assert all(e.wait >= 0 and e.duration >= 0 for e in finished)
    assert all(
        e.duration == 0 for e in finished if e.outcome in ("cancelled", "closed")
    )


async def test_statistics_hooks_count_worker_events(gate: Gate, second: Gate) -> None:
    """StatisticsOverallHooks.snapshot().workers sums the pool's events."""
    hooks = StatisticsOverallHooks()
    await run_scenario(WorkerPool(1, max_queue=1, hooks=hooks), gate, second)
    workers = hooks.snapshot().workers
    assert workers.calls == 6
    assert dict(workers.calls_by_outcome) == {
        "result": 2,
        "error": 1,
        "cancelled": 1,
        "dropped": 1,
        "closed": 1,
    }
    assert workers.queue_wait.count == workers.run_time.count == 4
    assert workers.rejected == 1
    assert (workers.threads_started, workers.threads_stopped) == (1, 1)
    assert dict(workers.stopped_by_reason) == {"shutdown": 1}
    hooks.reset()
    assert hooks.snapshot().workers.calls == 0


async def test_prometheus_exports_worker_metrics(gate: Gate, second: Gate) -> None:
    """PrometheusHooks exports the worker metrics, labelled by pool name."""
    registry = CollectorRegistry()
    hooks = PrometheusHooks(registry)
    await run_scenario(WorkerPool(1, max_queue=1, hooks=hooks, name="p1"), gate, second)

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"pool": "p1", **labels})

    for outcome, count in [("result", 2), ("error", 1), ("cancelled", 1)]:
        assert sample("async_reduce_worker_calls_total", outcome=outcome) == count
    assert sample("async_reduce_worker_calls_total", outcome="dropped") == 1
    assert sample("async_reduce_worker_calls_total", outcome="closed") == 1
    assert sample("async_reduce_worker_queue_wait_seconds_count") == 4
    assert sample("async_reduce_worker_run_seconds_count") == 4
    assert sample("async_reduce_worker_rejected_total") == 1
    assert sample("async_reduce_worker_threads") == 0
    assert sample("async_reduce_worker_threads_stopped_total", reason="shutdown") == 1


async def test_opentelemetry_exports_worker_metrics(gate: Gate, second: Gate) -> None:
    """OpenTelemetryHooks records the worker instruments, with the pool name."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    hooks = OpenTelemetryHooks(provider.get_meter("test"))
    await run_scenario(WorkerPool(1, max_queue=1, hooks=hooks, name="o1"), gate, second)
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    attributes = tuple(sorted((point.attributes or {}).items()))
                    found[metric.name, attributes] = point
    provider.shutdown()
    pool = ("pool", "o1")
    calls = "async_reduce.worker.calls"
    assert found[calls, (("outcome", "result"), pool)].value == 2
    assert found[calls, (("outcome", "closed"), pool)].value == 1
    assert found["async_reduce.worker.queue_wait", (pool,)].count == 4
    assert found["async_reduce.worker.rejected", (pool,)].value == 1
    assert found["async_reduce.worker.threads", (pool,)].value == 0
    stopped = found[
        "async_reduce.worker.threads_stopped", (pool, ("reason", "shutdown"))
    ]
    assert stopped.value == 1


async def test_a_failing_hook_never_breaks_the_pool(
    make_pool: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A hook raising in on_worker_event is logged; calls go on unaffected."""

    class Broken(BaseHooks):
        def on_worker_event(self, event: Any) -> None:
            raise RuntimeError("hook bug")

    pool = make_pool(1, hooks=Broken())
    with caplog.at_level(logging.ERROR, logger="async_reduce"):
        assert await pool.run(abs, -3) == 3
        assert await pool.run(abs, -4) == 4
    assert "on_worker_event" in caplog.text


async def test_hooks_assigned_later_get_events(make_pool: Any) -> None:
    """Hooks assigned to the pool's reducer after construction get events."""
    pool = make_pool(1)
    await pool.run(abs, 1)
    recorder = EventRecorder()
    pool.reducer.hooks = recorder
    await pool.run(abs, 2)
    assert [
        e.outcome for e in recorder.events if isinstance(e, WorkerCallFinished)
    ] == ["result"]
