"""StatisticsOverallHooks, StatisticsDetailHooks and their latency histogram."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from typing import Any

import pytest
from hooks_scenario import FETCH_LOCATION, OTHER_LOCATION, run_scenario
from hypothesis import given
from hypothesis import strategies as st

from async_reduce import AsyncReducer
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
from async_reduce.hooks import (
    BaseHooks,
    StatisticsDetailHooks,
    StatisticsOverallHooks,
)
from async_reduce.hooks._histogram import LogHistogram
from async_reduce.hooks._snapshots import LatencySummary, LocationStatistics


async def alpha() -> None:
    """A coroutine function at one location."""


async def beta() -> None:
    """A coroutine function at another location."""


def _closed(fn: Any) -> Any:
    coro = fn()
    coro.close()
    return coro


def _finished(
    location: str = "m:f",
    outcome: str = "result",
    duration: float = 0.1,
    callers: int = 1,
) -> ExecutionFinished:
    return ExecutionFinished(
        key="k",
        ident="k",
        location=location,
        outcome=outcome,  # type: ignore[arg-type]
        duration=duration,
        callers=callers,
    )


def test_overall_str_is_1x_format() -> None:
    """str() of StatisticsOverallHooks is exactly 1.x's Stats(...) line."""
    stats = StatisticsOverallHooks()
    coro = _closed(alpha)
    for _ in range(5):
        stats.on_apply_for(coro, "i")
    for _ in range(3):
        stats.on_result_for(coro, "i", None)
    for _ in range(2):
        stats.on_reducing_for(coro, "i")
    assert str(stats) == "Stats(total=5, executed=3, reduced=2, errors=0)"


def test_overall_executed_counts_results_only() -> None:
    """Overall ``executed`` counts on_result_for; a started or failed one is not."""
    stats = StatisticsOverallHooks()
    coro = _closed(alpha)
    stats.on_executing_for(coro, "i")
    stats.on_exception_for(coro, "i", ValueError())
    assert (stats.executed, stats.started, stats.errors) == (0, 1, 1)


def test_detail_executed_counts_every_start() -> None:
    """Detail ``executed`` counts on_executing_for, failed executions included."""
    stats = StatisticsDetailHooks()
    coro = _closed(alpha)
    stats.on_executing_for(coro, "i")
    stats.on_exception_for(coro, "i", ValueError())
    location = f"{__name__}:alpha"
    assert stats.executed == {location: 1}
    assert stats.errors == {location: 1}
    assert stats.succeeded == {}


def test_detail_str_is_1x_format() -> None:
    """str() of StatisticsDetailHooks lists each counter, most common first."""
    stats = StatisticsDetailHooks()
    a, b = _closed(alpha), _closed(beta)
    for coro, calls in ((a, 1), (b, 3)):
        for _ in range(calls):
            stats.on_apply_for(coro, "i")
    stats.on_executing_for(a, "i")
    stats.on_executing_for(b, "i")
    stats.on_reducing_for(b, "i")
    stats.on_reducing_for(b, "i")
    loc_a, loc_b = f"{__name__}:alpha", f"{__name__}:beta"
    assert str(stats) == (
        "Top total:\n"
        f"\t{loc_b}: 3\n"
        f"\t{loc_a}: 1\n"
        "Top executed:\n"
        f"\t{loc_a}: 1\n"
        f"\t{loc_b}: 1\n"
        "Top reduced:\n"
        f"\t{loc_b}: 2\n"
        "Top errors:\n"
    )


async def test_overall_counters_after_scenario() -> None:
    """Every overall counter matches the scripted scenario run through the reducer."""
    stats = StatisticsOverallHooks()
    outcomes = await run_scenario(AsyncReducer(hooks=stats))
    assert outcomes["a"] == ["A", "A", "A"]
    assert outcomes["c"] == "C"
    assert str(stats) == "Stats(total=12, executed=4, reduced=5, errors=3)"
    snap = stats.snapshot()
    assert snap.total == 12  # 3 + 2 + 2 + 1 + 2 + 2
    assert snap.started == 7  # a, bad, c, d, e, other twice
    assert snap.succeeded == 4  # a, c, other twice
    assert snap.errors == 3  # bad; d and e cancelled
    assert snap.reduced == 5  # 2 (a) + 1 (bad) + 1 (c) + 1 (e)
    assert snap.finished == 7
    assert snap.in_flight == stats.in_flight == 0
    assert snap.cancelled == 3  # one of c, both of e
    assert snap.timeouts == 1  # d
    assert snap.orphaned == 2  # d, e
    assert snap.fan_in_max == 3
    assert snap.fan_in_mean == pytest.approx(12 / 7)
    assert snap.coalescing_ratio == pytest.approx(5 / 12)
    # Cancelled executions (d, e) are left out of the latency figures.
    assert snap.latency.count == 5
    assert 0 < snap.latency.p50 <= snap.latency.p90 <= snap.latency.p99
    assert snap.latency.p99 <= snap.latency.max
    assert snap.total == snap.started + snap.reduced
    assert snap.started == snap.succeeded + snap.errors + snap.in_flight


async def test_detail_counters_after_scenario() -> None:
    """Every per-location counter matches the scripted scenario."""
    stats = StatisticsDetailHooks()
    await run_scenario(AsyncReducer(hooks=stats))
    assert stats.total == {FETCH_LOCATION: 10, OTHER_LOCATION: 2}
    assert stats.executed == {FETCH_LOCATION: 5, OTHER_LOCATION: 2}
    assert stats.reduced == {FETCH_LOCATION: 5}
    assert stats.errors == {FETCH_LOCATION: 3}
    assert stats.succeeded == {FETCH_LOCATION: 2, OTHER_LOCATION: 2}
    assert stats.cancelled == {FETCH_LOCATION: 3}
    assert stats.timeouts == {FETCH_LOCATION: 1}
    assert stats.orphaned == {FETCH_LOCATION: 2}
    snap = stats.snapshot()
    assert list(snap.locations) == [FETCH_LOCATION, OTHER_LOCATION]
    fetch = snap.locations[FETCH_LOCATION]
    assert (fetch.finished, fetch.in_flight, fetch.fan_in_max) == (5, 0, 3)
    assert fetch.fan_in_mean == pytest.approx(10 / 5)
    assert fetch.coalescing_ratio == pytest.approx(5 / 10)
    assert fetch.latency.count == 3
    other = snap.locations[OTHER_LOCATION]
    assert (other.total, other.started, other.fan_in_mean) == (2, 2, 1.0)
    assert other.coalescing_ratio == 0.0


def test_snapshots_are_frozen() -> None:
    """snapshot() values cannot be changed."""
    overall = StatisticsOverallHooks().snapshot()
    with pytest.raises(dataclasses.FrozenInstanceError):
        overall.total = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        overall.pool.closed_by_reason["idle"] = 1  # type: ignore[index]
    detail = StatisticsDetailHooks().snapshot()
    with pytest.raises(TypeError):
        detail.locations["x"] = None  # type: ignore[index]


def test_empty_snapshot_is_zero() -> None:
    """Before any call every figure is zero, with no division error."""
    snap = StatisticsOverallHooks().snapshot()
    assert snap.fan_in_mean == snap.coalescing_ratio == 0.0
    assert snap.latency.count == 0
    assert snap.latency.p99 == snap.latency.max == 0.0


def test_overall_reset_keeps_in_flight() -> None:
    """reset() zeroes counts but keeps the level of executions in flight."""
    stats = StatisticsOverallHooks()
    coro = _closed(alpha)
    stats.on_apply_for(coro, "i")
    stats.on_executing_for(coro, "i")
    stats.on_pool_event(ConnectionAcquired(pool=None, wait=0.01))
    stats.reset()
    assert str(stats) == "Stats(total=0, executed=0, reduced=0, errors=0)"
    assert stats.in_flight == 1
    assert stats.snapshot().pool.acquired == 0
    stats.on_result_for(coro, "i", None)
    stats.on_execution_finished(_finished())
    snap = stats.snapshot()
    assert (snap.in_flight, snap.finished, snap.succeeded) == (0, 1, 1)


async def test_detail_reset_keeps_locations_and_in_flight() -> None:
    """Detail reset() zeroes every figure; in-flight levels and known locations stay."""
    stats = StatisticsDetailHooks()
    reducer = AsyncReducer(hooks=stats)
    await run_scenario(reducer)  # moves every figure of FETCH_LOCATION
    running, release = asyncio.Event(), asyncio.Event()

    async def held() -> int:
        running.set()
        await release.wait()
        return 1

    pending = asyncio.ensure_future(reducer(held()))
    await running.wait()
    before = stats.snapshot().locations
    assert before[FETCH_LOCATION].orphaned > 0  # the scenario moved the figures
    stats.reset()
    after = stats.snapshot().locations
    assert set(after) == set(before)
    zero_latency = LatencySummary(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    for name, figures in after.items():
        expected = {
            field.name: 0 for field in dataclasses.fields(LocationStatistics)
        } | {
            "location": name,
            "in_flight": before[name].in_flight,
            "latency": zero_latency,
        }
        assert dataclasses.asdict(figures) == dataclasses.asdict(
            LocationStatistics(**expected)
        ), name
    assert after[f"{__name__}:{held.__qualname__}"].in_flight == 1
    release.set()
    assert await pending == 1
    # Counted afresh: only what happened after reset().
    figures = stats.snapshot().locations[f"{__name__}:{held.__qualname__}"]
    assert (figures.in_flight, figures.finished, figures.total) == (0, 1, 0)
    assert figures.latency.count == 1


def test_detail_bounded_locations() -> None:
    """Locations beyond max_locations are all counted under ``<other>``."""
    stats = StatisticsDetailHooks(max_locations=2)
    functions = []
    for index in range(6):
        namespace: dict[str, Any] = {}
        exec(f"async def fn{index}():\n    pass", namespace)
        functions.append(namespace[f"fn{index}"])
    for fn in functions:
        coro = _closed(fn)
        stats.on_apply_for(coro, "i")
        stats.on_executing_for(coro, "i")
    stats.on_execution_finished(_finished("m:never_seen"))
    assert len(stats.total) == 3
    assert stats.total["<other>"] == 4
    assert list(stats.snapshot().locations)[-1] == "<other>"
    assert stats.snapshot().locations["<other>"].in_flight == 3


def test_max_locations_zero_counts_everything_as_other() -> None:
    """max_locations=0 aggregates every location under ``<other>``."""
    stats = StatisticsDetailHooks(max_locations=0)
    stats.on_apply_for(_closed(alpha), "i")
    assert stats.total == {"<other>": 1}


@pytest.mark.parametrize(
    ("value", "error"), [(-1, ValueError), (1.5, TypeError), (True, TypeError)]
)
def test_max_locations_validated(value: Any, error: type[Exception]) -> None:
    """A bad max_locations raises at construction, naming the argument."""
    with pytest.raises(error, match="max_locations"):
        StatisticsDetailHooks(max_locations=value)


def test_new_events_counted_directly() -> None:
    """Caller-left and abandoned events feed cancelled, timeouts and orphaned."""
    stats = StatisticsOverallHooks()
    for reason in ("cancelled", "timeout", "timeout"):
        stats.on_caller_left(
            CallerLeft(
                key="k",
                ident="k",
                location="m:f",
                reason=reason,
                waited=0.1,
                remaining=0,
            )
        )
    stats.on_execution_abandoned(
        ExecutionAbandoned(
            key="k", ident="k", location="m:f", cancelled=True, duration=1
        )
    )
    assert (stats.cancelled, stats.timeouts, stats.orphaned) == (1, 2, 1)


def test_fan_in_and_latency_from_finished_events() -> None:
    """Fan-in uses every finished execution; latency skips cancelled ones."""
    stats = StatisticsOverallHooks()
    stats.on_execution_finished(_finished(duration=0.010, callers=1))
    stats.on_execution_finished(_finished(outcome="error", duration=0.020, callers=4))
    stats.on_execution_finished(_finished(outcome="cancelled", duration=9.0, callers=7))
    snap = stats.snapshot()
    assert snap.fan_in_mean == 4.0
    assert snap.fan_in_max == 7
    assert snap.latency.count == 2
    assert snap.latency.max == 0.020
    assert snap.latency.mean == pytest.approx(0.015)


def test_pool_events_counted() -> None:
    """Each pool event type feeds its own counter."""
    stats = StatisticsOverallHooks()
    events: list[PoolEvent] = [
        ConnectionAcquired(pool=None, wait=0.001),
        ConnectionAcquired(pool=None, wait=0.003),
        ConnectionCreated(pool=None, duration=0.01),
        ConnectionCreateFailed(pool=None, exception=OSError()),
        ConnectionClosed(pool=None, reason="idle"),
        ConnectionClosed(pool=None, reason="broken"),
        ConnectionClosed(pool=None, reason="idle"),
        AcquireTimedOut(pool=None, waited=1.0),
        ConnectionReclaimed(pool=None, held=5.0, acquired_at="x.py:1"),
    ]
    for event in events:
        stats.on_pool_event(event)
    pool = stats.snapshot().pool
    assert (pool.acquired, pool.created, pool.create_failures) == (2, 1, 1)
    assert (pool.closed, pool.timeouts, pool.reclaimed) == (3, 1, 1)
    assert dict(pool.closed_by_reason) == {"idle": 2, "broken": 1}
    assert pool.acquire_wait.count == 2
    assert pool.acquire_wait.max == 0.003


@given(
    st.lists(st.floats(min_value=1e-6, max_value=1e4), min_size=1, max_size=200),
    st.sampled_from([0.5, 0.9, 0.99, 1.0]),
)
def test_histogram_quantile_within_bucket_error(values: list[float], q: float) -> None:
    """A percentile is within 6.25% of the exact one; max and mean are exact."""
    histogram = LogHistogram()
    for value in values:
        histogram.record(value)
    ordered = sorted(values)
    exact = ordered[max(1, math.ceil(q * len(values) - 1e-9)) - 1]
    assert histogram.quantile(q) == pytest.approx(exact, rel=0.0625)
    assert histogram.max == ordered[-1]
    assert histogram.mean == pytest.approx(sum(values) / len(values))


@pytest.mark.parametrize("edge", [2.0**-20, 2.0**-19, 0.75, 2.0**14 * 0.999])
def test_histogram_bucket_edges(edge: float) -> None:
    """Values on bucket edges of the regular range are placed within 6.25%."""
    histogram = LogHistogram()
    histogram.record(edge)
    histogram.record(edge * 100)  # keep the maximum away from the edge
    assert histogram.quantile(0.5) == pytest.approx(edge, rel=0.0625)


def test_histogram_out_of_range_values() -> None:
    """Values below a microsecond or above hours never exceed the true maximum."""
    histogram = LogHistogram()
    histogram.record(0.0)
    assert histogram.quantile(0.5) == 0.0
    histogram.record(1e-9)
    assert histogram.quantile(1.0) <= 1e-9
    histogram.record(1e6)
    assert histogram.quantile(1.0) == 1e6
    histogram.clear()
    assert histogram.count == 0
    assert histogram.quantile(0.5) == 0.0


async def test_overall_counters_many_loops() -> None:
    """One stats object shared by reducers keeps consistent totals."""
    stats = StatisticsOverallHooks()
    first, second = AsyncReducer(hooks=stats), AsyncReducer(hooks=stats)

    async def value(x: int) -> int:
        await asyncio.sleep(0)
        return x

    await asyncio.gather(*(r(value(i % 3)) for r in (first, second) for i in range(9)))
    snap = stats.snapshot()
    assert snap.total == 18
    assert (snap.started, snap.reduced) == (6, 12)
    assert (snap.in_flight, snap.fan_in_mean) == (0, 3.0)


async def test_cancel_before_work_starts_still_finishes() -> None:
    """An execution abandoned before its task first ran still reports its end."""
    stats = StatisticsOverallHooks()
    ended = asyncio.Event()

    class EndWatcher(BaseHooks):
        def on_execution_finished(self, event: ExecutionFinished) -> None:
            ended.set()

    reducer = AsyncReducer(hooks=stats & EndWatcher())

    async def never_runs() -> None:
        await asyncio.sleep(0)

    task = asyncio.create_task(reducer(never_runs()))
    # One loop iteration: the caller starts the execution and waits; the
    # execution's task has not run yet when the caller is cancelled.
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await ended.wait()
    snap = stats.snapshot()
    assert (snap.started, snap.finished, snap.in_flight) == (1, 1, 0)
    assert (snap.cancelled, snap.orphaned) == (1, 1)
