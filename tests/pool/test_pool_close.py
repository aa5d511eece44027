"""close(), and binding to one event loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from pool_helpers import MemoryConnection, MemoryStrategy, check_invariants, settle

from async_reduce.pool import ConnectionPool, PoolClosed


async def test_close_fails_waiters(make_pool: Any) -> None:
    """Callers waiting for a connection get PoolClosed."""
    pool = make_pool(1)
    held = await pool.acquire()
    waiters = [asyncio.create_task(pool.acquire()) for _ in range(3)]
    await settle()
    await pool.close()
    for waiter in waiters:
        with pytest.raises(PoolClosed):
            await waiter
    await pool.release(held)
    assert held.closed


async def test_close_closes_idle_now_and_lent_on_return(
    make_pool: Any, strategy: MemoryStrategy
) -> None:
    """Idle connections close at once; lent ones when they come back."""
    pool = make_pool(3)
    conns = [await pool.acquire() for _ in range(3)]
    await pool.release(conns[0])
    await pool.close()
    assert conns[0].closed
    assert not conns[1].closed
    assert not conns[2].closed
    await pool.release(conns[1])
    await pool.release(conns[2])
    assert strategy.open == []
    stats = pool.statistics()
    assert (stats.size, stats.closed) == (0, 3)


async def test_acquire_after_close_raises(make_pool: Any) -> None:
    """Every way of getting a connection from a closed pool raises PoolClosed."""
    pool = make_pool(2)
    async with pool.get_connection():
        pass
    await pool.close()

    async def use(conn: MemoryConnection) -> None:
        raise AssertionError("must not run")

    with pytest.raises(PoolClosed):
        await pool.acquire()
    with pytest.raises(PoolClosed):
        async with pool.get_connection():
            pass
    with pytest.raises(PoolClosed):
        await pool.run(use)
    with pytest.raises(PoolClosed):
        await pool.start()
    with pytest.raises(PoolClosed):
        await pool.resize(max_size=3)


async def test_close_is_idempotent_and_concurrent(
    make_pool: Any, strategy: MemoryStrategy
) -> None:
    """close() may be called again, and concurrently; all calls return."""
    pool = make_pool(2)
    async with pool.get_connection():
        pass
    strategy.close_gate = asyncio.Event()
    closers = [asyncio.create_task(pool.close()) for _ in range(3)]
    await settle()
    assert not any(c.done() for c in closers)  # all wait for the close I/O
    strategy.close_gate.set()
    await asyncio.gather(*closers)
    await pool.close()
    assert strategy.open == []


async def test_close_cancels_connections_being_opened(
    make_pool: Any, strategy: MemoryStrategy
) -> None:
    """A connection still being opened at close() is abandoned, not leaked."""
    pool = make_pool(2)
    strategy.create_gate = asyncio.Event()
    waiter = asyncio.create_task(pool.acquire())
    await strategy.entered_create.wait()
    await pool.close()
    with pytest.raises(PoolClosed):
        await waiter
    stats = pool.statistics()
    assert (stats.size, stats.creating) == (0, 0)
    assert strategy.created == []


async def test_close_unused_pool(make_pool: Any) -> None:
    """A pool never used closes without a loop binding."""
    pool = make_pool(2)
    await pool.close()
    assert pool.closed
    check_invariants(pool)


def test_pool_is_bound_to_its_first_loop() -> None:
    """A pool used on one loop refuses another, with a clear RuntimeError."""
    strategy = MemoryStrategy()
    pool = ConnectionPool(strategy, 2)

    async def use() -> None:
        async with pool.get_connection():
            pass

    asyncio.run(use())
    with pytest.raises(RuntimeError, match=r"different event loop \(now closed\)"):
        asyncio.run(use())
    with pytest.raises(RuntimeError, match="different event loop"):
        asyncio.run(pool.acquire())
    asyncio.run(pool.close())  # the first loop is gone: close just marks it
    assert pool.closed


async def test_pool_refuses_a_loop_in_another_thread(make_pool: Any) -> None:
    """Used from another thread's loop, the pool raises instead of mixing loops."""
    pool = make_pool(1)
    held = await pool.acquire()  # a second caller must wait: the full check
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            asyncio.run(pool.acquire())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=other_thread)
    thread.start()
    await asyncio.to_thread(thread.join)
    [error] = errors
    assert isinstance(error, RuntimeError)
    assert "different event loop" in str(error)
    await pool.release(held)
    check_invariants(pool)
    await pool.close()
