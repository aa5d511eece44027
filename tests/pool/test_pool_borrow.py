"""borrow_timeout: connections held too long are reclaimed safely."""

from __future__ import annotations

import asyncio
import logging

import pytest
from pool_helpers import (
    Clock,
    MemoryConnection,
    MemoryStrategy,
    RecordingHooks,
    check_invariants,
)

from async_reduce._events import ConnectionClosed, ConnectionReclaimed
from async_reduce.pool import ConnectionPool


async def _reclaimed(strategy: MemoryStrategy) -> None:
    await asyncio.wait_for(strategy.connection_closed.wait(), 5)


async def test_overdue_connection_is_reclaimed(
    strategy: MemoryStrategy, caplog: pytest.LogCaptureFixture
) -> None:
    """Past borrow_timeout: warning with the acquire site, closed, slot freed."""
    hooks = RecordingHooks()
    pool = ConnectionPool(strategy, 1, borrow_timeout=0.02, hooks=hooks)
    with caplog.at_level(logging.WARNING, logger="async_reduce.pool"):
        leaked = await pool.acquire()  # the line the warning must name
        await _reclaimed(strategy)
    assert leaked.closed
    [record] = [r for r in caplog.records if "borrow_timeout" in r.getMessage()]
    assert "test_pool_borrow.py:" in record.getMessage()
    assert "in test_overdue_connection_is_reclaimed" in record.getMessage()
    [event] = hooks.of(ConnectionReclaimed)
    assert event.held >= 0.02
    assert "test_pool_borrow.py:" in event.acquired_at
    assert [e.reason for e in hooks.of(ConnectionClosed)] == ["reclaimed"]
    stats = pool.statistics()
    assert (stats.size, stats.in_use, stats.reclaimed) == (0, 0, 1)
    await pool.close()


async def test_reclaimed_connection_is_never_lent_again(
    strategy: MemoryStrategy,
) -> None:
    """After a reclaim the next borrower gets a new connection."""
    pool = ConnectionPool(strategy, 1, borrow_timeout=0.02)
    leaked = await pool.acquire()
    waiter = asyncio.create_task(pool.acquire())  # served once the slot frees
    fresh = await asyncio.wait_for(waiter, 5)
    assert fresh is not leaked
    assert leaked.closed
    await pool.release(fresh)
    await pool.close()


async def test_late_release_is_a_no_op(strategy: MemoryStrategy) -> None:
    """Releasing a reclaimed connection, by either API, changes nothing."""
    pool = ConnectionPool(strategy, 2, borrow_timeout=0.02)
    leaked = await pool.acquire()
    async with pool.get_connection() as also_leaked:
        while len(strategy.closed) < 2:
            strategy.connection_closed.clear()
            await _reclaimed(strategy)
        assert also_leaked.closed
    await pool.release(leaked)
    assert len(strategy.closed) == 2  # not closed twice
    check_invariants(pool)
    assert pool.statistics().size == 0
    with pytest.raises(ValueError, match="not lent out"):
        await pool.release(leaked)  # only the first late release is forgiven
    await pool.close()


async def test_returned_in_time_is_not_reclaimed(
    strategy: MemoryStrategy, clock: Clock
) -> None:
    """A connection given back before borrow_timeout stays in the pool."""
    pool = ConnectionPool(strategy, 2, borrow_timeout=0.3)
    held = await pool.acquire()
    for _ in range(3):
        async with pool.get_connection() as returned:
            clock.advance(0.05)  # held, but not too long
    assert returned is not held
    clock.advance(0.3)  # past the timeout for the one still held
    await strategy.connection_closed.wait()  # the maintenance ran since
    assert held.closed
    assert not returned.closed
    assert pool.statistics().reclaimed == 1
    await pool.close()


async def test_run_reports_its_caller_as_the_site(strategy: MemoryStrategy) -> None:
    """A reclaim inside pool.run() names the line that called run()."""
    hooks = RecordingHooks()
    pool = ConnectionPool(strategy, 1, borrow_timeout=0.02, hooks=hooks)
    gate = asyncio.Event()

    async def stuck(conn: MemoryConnection) -> None:
        await gate.wait()

    async def caller() -> None:
        await pool.run(stuck)

    task = asyncio.create_task(caller())
    await _reclaimed(strategy)
    [event] = hooks.of(ConnectionReclaimed)
    assert "in caller" in event.acquired_at
    gate.set()
    await task
    strategy.connection_closed.clear()
    gate.clear()
    task = asyncio.create_task(pool.run(stuck))  # run() at the top of a task
    await _reclaimed(strategy)
    site = hooks.of(ConnectionReclaimed)[1].acquired_at
    assert site.startswith("run(")
    assert "stuck" in site
    gate.set()
    await task
    await pool.close()
