"""start() and resize() whose caller is cancelled: what they promise still happens."""

from __future__ import annotations

import asyncio

import pytest
from pool_helpers import MemoryStrategy, check_invariants, eventually

from async_reduce.pool import ConnectionPool


async def test_cancelled_start_still_opens_and_keeps_min_size(
    strategy: MemoryStrategy,
) -> None:
    """start() cancelled mid-way: the connections being opened are opened and kept."""
    strategy.create_gate = asyncio.Event()
    pool = ConnectionPool(strategy, 4, min_size=2)
    starting = asyncio.create_task(pool.start())
    await strategy.entered_create.wait()
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    assert pool.statistics().creating == 2
    strategy.create_gate.set()
    await eventually(lambda: pool.statistics().idle == 2)
    stats = pool.statistics()
    assert (stats.size, stats.created, stats.creating) == (2, 2, 0)
    assert [conn.closed for conn in strategy.created] == [False, False]
    check_invariants(pool)
    await pool.close()


async def test_cancelled_resize_applies_and_finishes_closing(
    strategy: MemoryStrategy,
) -> None:
    """resize() cancelled while closing: the limits apply, the closing completes."""
    pool = ConnectionPool(strategy, 3)
    conns = [await pool.acquire() for _ in range(3)]
    for conn in conns:
        await pool.release(conn)
    strategy.close_gate = asyncio.Event()  # closing hangs until set
    resizing = asyncio.create_task(pool.resize(max_size=1))
    await eventually(lambda: pool.statistics().max_size == 1)
    resizing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await resizing
    assert pool.statistics().max_size == 1  # applied at once, kept
    assert strategy.closed == []
    strategy.close_gate.set()
    await eventually(lambda: len(strategy.closed) == 2)
    stats = pool.statistics()
    assert (stats.size, stats.idle, stats.closed) == (1, 1, 2)
    async with pool.get_connection() as conn:  # the one kept is usable
        assert not conn.closed
    check_invariants(pool)
    await pool.close()
