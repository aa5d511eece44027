"""Values carried by events and statistics, checked against waits measured here.

Each figure must lie between the part of the wait the test saw for certain
(inner bound) and the whole span around the call (outer bound).  The few
sleeps only make the waits long enough to tell a right figure from a wrong
one; nothing is asserted about speed.
"""

from __future__ import annotations

import asyncio
from time import perf_counter
from typing import Any

import pytest

from async_reduce import AsyncReducer
from async_reduce._events import AcquireTimedOut, ConnectionAcquired
from async_reduce.hooks import BaseHooks, StatisticsDetailHooks, StatisticsOverallHooks
from async_reduce.pool import ConnectionPool, ConnectionStrategy, PoolTimeout

GAP = 0.02  # a wait long enough to measure
EARLY = 0.002  # how early a timer may fire against perf_counter (clock steps)


class Events(BaseHooks):
    """Keeps the event objects the reducer and pools hand to hooks."""

    def __init__(self) -> None:
        self.left: list[Any] = []
        self.finished: list[Any] = []
        self.abandoned: list[Any] = []
        self.pool: list[Any] = []

    def on_caller_left(self, event: Any) -> None:
        self.left.append(event)

    def on_execution_finished(self, event: Any) -> None:
        self.finished.append(event)

    def on_execution_abandoned(self, event: Any) -> None:
        self.abandoned.append(event)

    def on_pool_event(self, event: Any) -> None:
        self.pool.append(event)


class Held:
    """Shared work that runs until released."""

    def __init__(self) -> None:
        self.running = asyncio.Event()
        self.release = asyncio.Event()

    async def work(self) -> int:
        self.running.set()
        await self.release.wait()
        return 1


async def test_caller_left_and_finished_carry_the_measured_waits() -> None:
    """CallerLeft.waited and ExecutionFinished.duration are the real waits."""
    events, detail = Events(), StatisticsDetailHooks()
    reducer = AsyncReducer(hooks=events & detail)
    held = Held()
    t0 = perf_counter()
    staying = asyncio.create_task(reducer(held.work(), ident="k"))
    leaving = asyncio.create_task(reducer(held.work(), ident="k"))
    await held.running.wait()
    t_in = perf_counter()  # both callers are waiting by now
    await asyncio.sleep(GAP)
    t_cancel = perf_counter()
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    [left] = events.left
    assert (left.reason, left.remaining) == ("cancelled", 1)
    assert t_cancel - t_in <= left.waited <= perf_counter() - t0

    t2 = perf_counter()
    with pytest.raises(TimeoutError):
        await reducer(held.work(), ident="k", timeout=GAP)
    timed = events.left[1]
    assert (timed.reason, timed.remaining) == ("timeout", 1)
    assert GAP - EARLY <= timed.waited <= perf_counter() - t2

    held.release.set()
    assert await staying == 1
    t_end = perf_counter()
    [finished] = events.finished
    assert (finished.outcome, finished.callers) == ("result", 3)
    assert t_cancel - t_in + GAP - EARLY <= finished.duration <= t_end - t0
    [location] = detail.snapshot().locations.values()
    assert location.latency.count == 1
    assert location.latency.max == finished.duration  # the maximum is exact
    assert location.latency.mean == finished.duration
    assert (location.cancelled, location.timeouts, location.fan_in_max) == (1, 1, 3)


async def test_abandoned_duration_is_the_measured_run_time() -> None:
    """ExecutionAbandoned.duration is how long the work ran before all left."""
    events = Events()
    reducer = AsyncReducer(hooks=events)
    held = Held()
    t0 = perf_counter()
    caller = asyncio.create_task(reducer(held.work()))
    await held.running.wait()
    t_in = perf_counter()
    await asyncio.sleep(GAP)
    t_cancel = perf_counter()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    [abandoned] = events.abandoned
    assert abandoned.cancelled is True
    assert t_cancel - t_in <= abandoned.duration <= perf_counter() - t0


class Numbers(ConnectionStrategy[int]):
    """Connections that are plain numbers."""

    def __init__(self) -> None:
        self.count = 0

    async def create_connection(self) -> int:
        self.count += 1
        return self.count

    def connection_is_closed(self, conn: int) -> bool:
        return False

    async def close_connection(self, conn: int) -> None:
        pass


async def test_pool_waits_in_events_and_percentiles_are_measured() -> None:
    """ConnectionAcquired.wait, AcquireTimedOut.waited and their statistics."""
    events, stats = Events(), StatisticsOverallHooks()
    pool = ConnectionPool(Numbers(), 1, hooks=events & stats)
    conn = await pool.acquire()
    t0 = perf_counter()
    waiter = asyncio.create_task(pool.acquire())
    while pool.statistics().waiting == 0:  # noqa: ASYNC110 - no time involved
        await asyncio.sleep(0)
    t_in = perf_counter()  # the waiter is in line
    await asyncio.sleep(GAP)
    t_release = perf_counter()
    await pool.release(conn)
    assert await waiter == conn
    t1 = perf_counter()
    first, second = [e.wait for e in events.pool if isinstance(e, ConnectionAcquired)]
    assert 0.0 <= first < t_in - t0 + GAP  # the first acquire did not wait
    assert t_release - t_in <= second <= t1 - t0

    t2 = perf_counter()
    with pytest.raises(PoolTimeout):
        await pool.acquire(timeout=GAP)
    [timed_out] = [e for e in events.pool if isinstance(e, AcquireTimedOut)]
    assert GAP - EARLY <= timed_out.waited <= perf_counter() - t2

    wait = stats.snapshot().pool.acquire_wait
    assert wait.count == 2
    assert wait.max == max(first, second)  # exact
    assert wait.mean == pytest.approx((first + second) / 2)
    assert abs(wait.p99 - second) <= 0.0625 * second  # percentiles within 6.25%
    assert stats.snapshot().pool.timeouts == 1
    await pool.release(conn)
    await pool.close()
