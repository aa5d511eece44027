"""Acquire and release: the fast path, accounting, statistics, strategies."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import pytest
from pool_helpers import (
    MemoryConnection,
    MemoryStrategy,
    RecordingHooks,
    check_invariants,
    settle,
)

import async_reduce.pool
from async_reduce._events import ConnectionAcquired, ConnectionClosed, ConnectionCreated
from async_reduce.pool import ConnectionPool, PoolStatistics


def test_public_names() -> None:
    """async_reduce.pool exports exactly its documented names, all documented."""
    assert set(async_reduce.pool.__all__) == {
        "ConnectionPool",
        "ConnectionStrategy",
        "LegacyConnectionStrategy",
        "PoolClosed",
        "PoolError",
        "PoolStatistics",
        "PoolTimeout",
    }
    for name in async_reduce.pool.__all__:
        assert getattr(async_reduce.pool, name).__doc__, name


async def test_get_connection_lends_and_takes_back(make_pool: Any) -> None:
    """A connection is lent inside ``async with`` and idle again after it."""
    pool = make_pool(2)
    async with pool.get_connection() as conn:
        assert isinstance(conn, MemoryConnection)
        stats = pool.statistics()
        assert (stats.size, stats.in_use, stats.idle) == (1, 1, 0)
    stats = pool.statistics()
    assert (stats.size, stats.in_use, stats.idle) == (1, 0, 1)
    await pool.close()


async def test_fast_path_does_not_yield(make_pool: Any) -> None:
    """With an idle connection and nobody waiting, acquiring never yields."""
    pool = make_pool(1)
    async with pool.get_connection():
        pass
    ran = []
    asyncio.get_running_loop().call_soon(ran.append, True)
    async with pool.get_connection():
        pass
    conn = await pool.acquire()
    await pool.release(conn)
    assert ran == []  # the callback would have run had anything yielded
    await pool.close()


async def test_idle_connection_is_reused(
    make_pool: Any, strategy: MemoryStrategy
) -> None:
    """Sequential borrowers share one connection; nothing new is opened."""
    pool = make_pool(5)
    seen = set()
    for _ in range(10):
        async with pool.get_connection() as conn:
            seen.add(conn.number)
    assert seen == {1}
    assert len(strategy.created) == 1
    await pool.close()


async def test_most_recently_used_connection_comes_first(make_pool: Any) -> None:
    """Idle connections are taken last-in first-out (keeps the rest idle)."""
    pool = make_pool(3)
    a = await pool.acquire()
    b = await pool.acquire()
    await pool.release(a)
    await pool.release(b)
    assert await pool.acquire() is b
    await pool.release(b)
    await pool.close()


async def test_acquire_release(make_pool: Any) -> None:
    """acquire()/release() lend and take back like get_connection()."""
    pool = make_pool(2)
    first = await pool.acquire()
    second = await pool.acquire()
    assert first is not second
    assert pool.statistics().in_use == 2
    await pool.release(first)
    await pool.release(second)
    assert pool.statistics().idle == 2
    await pool.close()


async def test_release_twice_raises(make_pool: Any) -> None:
    """Releasing a connection that is not lent out is a ValueError."""
    pool = make_pool(1)
    conn = await pool.acquire()
    await pool.release(conn)
    with pytest.raises(ValueError, match="not lent out"):
        await pool.release(conn)
    with pytest.raises(ValueError, match="not lent out"):
        await pool.release(MemoryConnection(99))
    check_invariants(pool)
    await pool.close()


async def test_statistics_snapshot(make_pool: Any) -> None:
    """statistics() is a frozen snapshot with sizes and counters."""
    pool = make_pool(3, burst_limit=4, min_size=1)
    async with pool.get_connection():
        stats = pool.statistics()
    assert isinstance(stats, PoolStatistics)
    assert dataclasses.asdict(stats) == {
        "size": 1,
        "idle": 0,
        "in_use": 1,
        "creating": 0,
        "waiting": 0,
        "max_size": 3,
        "burst_limit": 4,
        "min_size": 1,
        "created": 1,
        "closed": 0,
        "acquired": 1,
        "timeouts": 0,
        "create_failures": 0,
        "reclaimed": 0,
        "outage": False,
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.size = 5  # type: ignore[misc]
    back = pool.statistics()  # taken after the connection came back
    assert (back.size, back.idle, back.in_use, back.acquired) == (1, 1, 0, 1)
    assert stats.idle == 0  # a snapshot: later changes do not reach it
    await pool.close()
    assert pool.statistics().closed == 1


async def test_repr_shows_state(make_pool: Any) -> None:
    """repr() names the state, size, limit and users."""
    pool = make_pool(3, burst_limit=5)
    async with pool.get_connection():
        assert repr(pool) == (
            "<ConnectionPool open size=1/3(burst 5) idle=0 in_use=1 waiting=0>"
        )
    await pool.close()
    assert repr(pool).startswith("<ConnectionPool closed size=0/3")


async def test_context_cannot_be_entered_twice(make_pool: Any) -> None:
    """One get_connection() context holds one connection at a time."""
    pool = make_pool(2)
    ctx = pool.get_connection()
    async with ctx:
        with pytest.raises(RuntimeError, match="already in use"):
            await ctx.__aenter__()
    check_invariants(pool)
    assert pool.statistics().in_use == 0
    await pool.close()


async def test_connection_returned_when_block_raises(make_pool: Any) -> None:
    """An exception in the ``async with`` body still returns the connection."""
    pool = make_pool(1)
    with pytest.raises(KeyError):
        async with pool.get_connection():
            raise KeyError("boom")
    stats = pool.statistics()
    assert (stats.in_use, stats.idle) == (0, 1)
    await pool.close()


async def test_pool_events_reach_hooks() -> None:
    """Opening, lending and closing are reported to hooks.on_pool_event."""
    hooks = RecordingHooks()
    pool = ConnectionPool(MemoryStrategy(), 1, hooks=hooks)
    async with pool.get_connection():
        pass
    async with pool.get_connection():
        pass
    await pool.close()
    kinds = [type(e) for e in hooks.events]
    assert kinds == [
        ConnectionCreated,
        ConnectionAcquired,
        ConnectionAcquired,
        ConnectionClosed,
    ]
    assert all(e.pool is pool for e in hooks.events)
    assert hooks.of(ConnectionAcquired)[1].wait == 0.0
    assert hooks.of(ConnectionClosed)[0].reason == "pool_closed"


async def test_failing_hook_does_not_break_the_pool(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A hook that raises is logged and the pool carries on."""

    class Broken(RecordingHooks):
        def on_pool_event(self, event: Any) -> None:
            raise RuntimeError("hook bug")

    pool = ConnectionPool(MemoryStrategy(), 1, hooks=Broken())
    with caplog.at_level(logging.ERROR, logger="async_reduce"):
        async with pool.get_connection() as conn:
            assert isinstance(conn, MemoryConnection)
    await pool.close()
    reports = [r for r in caplog.records if "on_pool_event" in r.getMessage()]
    assert len(reports) == 1  # once per hook and exception type, not per event


def test_hooks_and_reducer_are_exclusive() -> None:
    """Passing both hooks= and reducer= is a TypeError."""
    from async_reduce import AsyncReducer

    with pytest.raises(TypeError, match="hooks= or reducer="):
        ConnectionPool(MemoryStrategy(), hooks=RecordingHooks(), reducer=AsyncReducer())


async def test_pool_events_go_to_the_reducer_hooks() -> None:
    """With reducer=, pool events go to that reducer's hooks."""
    from async_reduce import AsyncReducer

    hooks = RecordingHooks()
    pool = ConnectionPool(MemoryStrategy(), 1, reducer=AsyncReducer(hooks=hooks))
    assert pool.reducer.hooks is hooks
    async with pool.get_connection():
        pass
    await pool.close()
    assert hooks.of(ConnectionCreated)


async def test_legacy_strategy_is_accepted() -> None:
    """A strategy written for asyncio-connection-pool 1.x works unchanged."""
    from asyncio_connection_pool import ConnectionStrategy as LegacyBase

    closed = []

    class Legacy(LegacyBase[list[int]]):
        async def make_connection(self) -> list[int]:
            return [1]

        def connection_is_closed(self, conn: list[int]) -> bool:
            return False

        def close_connection(self, conn: list[int]) -> None:  # type: ignore[override]
            closed.append(conn)  # a plain function: accepted too

    pool = ConnectionPool(Legacy(), 2)
    async with pool.get_connection() as conn:
        assert conn == [1]
    await pool.close()
    assert closed == [[1]]


def test_strategy_must_have_the_methods() -> None:
    """A strategy without the required methods is a TypeError naming them."""

    class Incomplete:
        async def create_connection(self) -> object:
            return object()

    with pytest.raises(TypeError, match="connection_is_closed"):
        ConnectionPool(Incomplete())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="create_connection or make_connection"):
        ConnectionPool(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="instance"):
        ConnectionPool(MemoryStrategy)  # type: ignore[arg-type]


async def test_start_warms_min_size(strategy: MemoryStrategy) -> None:
    """``async with pool`` opens min_size connections before the block runs."""
    async with ConnectionPool(strategy, 5, min_size=3) as pool:
        stats = pool.statistics()
        assert (stats.size, stats.idle) == (3, 3)
    assert pool.closed
    assert len(strategy.closed) == 3


async def test_failed_warm_up_closes_the_pool(strategy: MemoryStrategy) -> None:
    """If warming up fails, ``async with pool`` raises and leaves nothing open."""
    strategy.failures = [OSError("refused")]
    pool = ConnectionPool(strategy, 5, min_size=2)
    with pytest.raises(OSError, match="refused"):
        async with pool:
            pass
    assert pool.closed
    assert strategy.open == []


async def test_many_concurrent_borrowers(
    make_pool: Any, strategy: MemoryStrategy
) -> None:
    """Many tasks share few connections; none is lent to two at once."""
    pool = make_pool(3)
    holders: set[int] = set()

    async def borrow() -> None:
        for _ in range(20):
            async with pool.get_connection() as conn:
                assert conn.number not in holders
                holders.add(conn.number)
                await asyncio.sleep(0)
                holders.discard(conn.number)

    await asyncio.gather(*(borrow() for _ in range(10)))
    check_invariants(pool)
    assert len(strategy.created) == 3
    assert pool.statistics().acquired == 200
    await pool.close()
    await settle()


async def test_statistics_hooks_count_pool_events() -> None:
    """StatisticsOverallHooks on the pool's reducer reports the pool's events."""
    from async_reduce.hooks import StatisticsOverallHooks

    hooks = StatisticsOverallHooks()
    pool = ConnectionPool(MemoryStrategy(), 1, burst_limit=2, hooks=hooks)
    a = await pool.acquire()
    b = await pool.acquire()
    await pool.release(b)  # above max_size with nobody waiting: closed
    await pool.release(a)
    await pool.close()
    figures = hooks.snapshot().pool
    assert (figures.acquired, figures.created, figures.closed) == (2, 2, 2)
    assert dict(figures.closed_by_reason) == {"burst": 1, "pool_closed": 1}
