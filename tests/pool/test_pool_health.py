"""Health: broken connections, checks, lifetimes, idle timeouts, maintenance."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pool_helpers import (
    CheckingStrategy,
    Clock,
    MemoryStrategy,
    RecordingHooks,
    check_invariants,
    eventually,
)

from async_reduce._events import ConnectionClosed
from async_reduce.pool import ConnectionPool, PoolTimeout


async def test_closed_connection_is_never_handed_out(
    make_pool: Any, strategy: MemoryStrategy
) -> None:
    """A closed idle connection is replaced and reported to hooks as "broken".

    With hooks the pool takes its hooked fast path; test_pool_paths checks
    the rule on every path.
    """
    hooks = RecordingHooks()
    pool = make_pool(2, hooks=hooks)
    async with pool.get_connection() as first:
        pass
    first.broken = True
    async with pool.get_connection() as second:
        assert second is not first
    await strategy.connection_closed.wait()
    assert first.closed
    assert [e.reason for e in hooks.of(ConnectionClosed)] == ["broken"]
    check_invariants(pool)
    await pool.close()


async def test_raising_is_closed_counts_as_closed(make_pool: Any) -> None:
    """connection_is_closed raising means the connection is not used."""

    class Flaky(MemoryStrategy):
        def connection_is_closed(self, conn: Any) -> bool:
            if conn.number == 1:
                raise RuntimeError("cannot tell")
            return False

    strategy = Flaky()
    pool = make_pool(2, strategy=strategy)
    async with pool.get_connection() as conn:
        assert conn.number == 2  # #1 was tested fresh, and closed
    assert strategy.closed == [strategy.created[0]]
    await pool.close()


async def test_broken_connection_returned_to_a_waiter_is_replaced(
    make_pool: Any, strategy: MemoryStrategy
) -> None:
    """A broken connection is not handed to a waiter; a new one is opened."""
    pool = make_pool(1)
    held = await pool.acquire()
    waiter = asyncio.create_task(pool.acquire())
    await eventually(lambda: pool.statistics().waiting == 1)
    held.broken = True
    await pool.release(held)
    replacement = await waiter
    assert replacement is not held
    assert held.closed
    await pool.release(replacement)
    await pool.close()


async def test_check_runs_only_after_check_after_idle(clock: Clock) -> None:
    """check_connection runs on checkout only after check_after seconds idle."""
    strategy = CheckingStrategy()
    pool = ConnectionPool(strategy, 1, check_after=0.3)
    for _ in range(5):
        async with pool.get_connection():
            pass
        clock.advance(0.25)  # idle, but not long enough
    assert strategy.checks == 0  # recently used: no check
    clock.advance(0.1)
    async with pool.get_connection():
        pass
    assert strategy.checks == 1
    async with pool.get_connection():
        pass
    assert strategy.checks == 1
    await pool.close()


@pytest.mark.parametrize(("check_after", "checks"), [(0, 3), (None, 0)])
async def test_check_after_zero_and_none(
    check_after: float | None, checks: int
) -> None:
    """check_after=0 checks every checkout; None never checks."""
    strategy = CheckingStrategy()
    pool = ConnectionPool(strategy, 1, check_after=check_after)
    for _ in range(4):
        async with pool.get_connection():
            pass
    assert strategy.checks == checks
    await pool.close()


async def test_failed_check_closes_and_tries_another() -> None:
    """A connection failing its check is closed; checkout moves on."""
    strategy = CheckingStrategy()
    pool = ConnectionPool(strategy, 2, check_after=0)
    a = await pool.acquire()
    b = await pool.acquire()
    await pool.release(a)
    await pool.release(b)
    b.healthy = False
    async with pool.get_connection() as conn:
        assert conn is a
    await strategy.connection_closed.wait()
    assert b.closed
    assert pool.statistics().size == 1
    await pool.close()


async def test_raising_check_counts_as_failed() -> None:
    """check_connection raising is a failed check, not the caller's error."""

    class Raising(CheckingStrategy):
        async def check_connection(self, conn: Any) -> bool:
            if conn.number == 1:
                raise ConnectionResetError("reset")
            return True

    strategy = Raising()
    pool = ConnectionPool(strategy, 1, check_after=0)
    async with pool.get_connection():
        pass
    async with pool.get_connection() as conn:
        assert conn.number == 2
    await strategy.connection_closed.wait()
    assert strategy.created[0].closed
    await pool.close()


async def test_check_past_the_deadline_times_out() -> None:
    """A check still running at the acquire deadline: PoolTimeout, closed."""
    strategy = CheckingStrategy()
    pool = ConnectionPool(strategy, 1, check_after=0)
    async with pool.get_connection():
        pass
    strategy.check_gate = asyncio.Event()  # the check hangs
    with pytest.raises(PoolTimeout):
        await pool.acquire(timeout=0.02)
    await strategy.connection_closed.wait()
    assert strategy.created[0].closed
    assert pool.statistics().size == 0
    strategy.check_gate.set()
    async with pool.get_connection() as conn:
        assert conn.number == 2
    await pool.close()


async def test_connection_reclaimed_during_its_check_is_not_lent() -> None:
    """If borrow_timeout reclaims a connection mid-check, another is used."""
    strategy = CheckingStrategy()
    pool = ConnectionPool(strategy, 2, check_after=0, borrow_timeout=0.03)
    first = await pool.acquire()
    second = await pool.acquire()
    await pool.release(first)
    strategy.check_gate = asyncio.Event()  # checking ``first`` hangs
    task = asyncio.create_task(pool.acquire())
    await strategy.entered_check.wait()
    # ``second`` is held on: its reclaim wakes the maintenance, which then
    # also reclaims ``first`` from its hung check.
    while not first.closed:
        strategy.connection_closed.clear()
        await asyncio.wait_for(strategy.connection_closed.wait(), 5)
    strategy.check_gate.set()
    conn = await asyncio.wait_for(task, 5)
    assert conn.number == 3
    assert not conn.closed
    assert pool.statistics().reclaimed == 2
    await pool.release(conn)
    await pool.release(second)  # late: a no-op
    await pool.close()


async def test_lifetimes_are_jittered_down_by_up_to_five_percent() -> None:
    """Each connection expires within 5% before max_lifetime, not together."""
    pool = ConnectionPool(MemoryStrategy(), 20, max_lifetime=100.0)
    conns = [await pool.acquire() for _ in range(20)]
    entries = [pool._entries[id(c)] for c in conns]
    lifetimes = [e.expires_at - e.created_at for e in entries]
    assert all(95.0 <= life <= 100.0 for life in lifetimes)
    assert len(set(lifetimes)) > 1
    for conn in conns:
        await pool.release(conn)
    await pool.close()


async def test_expired_idle_connection_is_retired_and_min_size_kept() -> None:
    """Past max_lifetime an idle connection is closed and replaced to min_size."""
    strategy = MemoryStrategy()
    hooks = RecordingHooks()
    async with ConnectionPool(
        strategy, 2, min_size=1, max_lifetime=0.05, hooks=hooks
    ) as pool:
        first = strategy.created[0]
        await strategy.connection_closed.wait()
        assert first.closed
        await eventually(lambda: pool.statistics().idle == 1, rounds=1000)
        assert hooks.of(ConnectionClosed)[0].reason == "lifetime"
        assert len(strategy.created) >= 2


async def test_expired_connection_is_retired_on_release(
    make_pool: Any, strategy: MemoryStrategy, clock: Clock
) -> None:
    """A connection past its lifetime when returned is closed, not reused."""
    pool = make_pool(1, max_lifetime=10.0)
    conn = await pool.acquire()
    await pool.release(conn)
    conn = await pool.acquire()
    assert not conn.closed  # within its lifetime: reused
    clock.advance(10.0)
    await pool.release(conn)
    assert conn.closed
    assert pool.statistics().size == 0
    await pool.close()


async def test_idle_timeout_shrinks_to_min_size(strategy: MemoryStrategy) -> None:
    """Idle connections above min_size close after idle_timeout."""
    hooks = RecordingHooks()
    pool = ConnectionPool(strategy, 4, min_size=1, idle_timeout=0.2, hooks=hooks)
    conns = [await pool.acquire() for _ in range(4)]
    for conn in conns:
        await pool.release(conn)
    assert pool.statistics().idle == 4
    while len(strategy.closed) < 3:
        strategy.connection_closed.clear()
        await strategy.connection_closed.wait()
    stats = pool.statistics()
    assert (stats.size, stats.idle) == (1, 1)
    assert {e.reason for e in hooks.of(ConnectionClosed)} == {"idle"}
    await pool.close()


async def test_maintenance_replaces_broken_idle_connections(
    strategy: MemoryStrategy,
) -> None:
    """An idle connection found closed by maintenance is replaced (min_size)."""
    async with ConnectionPool(strategy, 2, min_size=1) as pool:
        first = strategy.created[0]
        first.broken = True  # e.g. the server closed it while idle
        await strategy.connection_closed.wait()
        await eventually(lambda: len(strategy.created) == 2, rounds=1000)
        await eventually(lambda: pool.statistics().idle == 1)
        assert not strategy.created[1].closed


async def test_one_maintenance_task_started_lazily_and_stopped_by_close() -> None:
    """The maintenance task starts on first use, once, and ends with close()."""
    pool = ConnectionPool(MemoryStrategy(), 2, idle_timeout=60)
    assert pool._maintenance is None
    before = len(asyncio.all_tasks())
    async with pool.get_connection():
        pass
    task = pool._maintenance
    assert task is not None
    assert task in pool._tasks  # held by the pool: never garbage-collected
    async with pool.get_connection():
        pass
    assert pool._maintenance is task
    assert len(asyncio.all_tasks()) == before + 1
    await pool.close()
    assert task.done()


async def test_no_maintenance_task_without_timed_features(make_pool: Any) -> None:
    """A pool with no lifetimes, timeouts or min_size runs no background task."""
    pool = make_pool(2)
    async with pool.get_connection():
        pass
    assert pool._maintenance is None
    await pool.close()
