"""Size limits: max_size, burst_limit, and resizing."""

from __future__ import annotations

import asyncio
from typing import Any

from pool_helpers import MemoryStrategy, check_invariants, eventually, settle


async def _hold(
    pool: Any, count: int, release: asyncio.Event
) -> list[asyncio.Task[Any]]:
    async def holder() -> None:
        async with pool.get_connection():
            await release.wait()

    tasks = [asyncio.create_task(holder()) for _ in range(count)]
    await settle()
    return tasks


async def test_size_never_exceeds_max_size(
    make_pool: Any, strategy: MemoryStrategy
) -> None:
    """Without burst_limit, callers beyond max_size wait."""
    pool = make_pool(3)
    release = asyncio.Event()
    tasks = await _hold(pool, 7, release)
    stats = pool.statistics()
    assert (stats.size, stats.in_use, stats.waiting) == (3, 3, 4)
    release.set()
    await asyncio.gather(*tasks)
    assert len(strategy.created) == 3
    await pool.close()


async def test_burst_opens_extra_connections_up_to_the_limit(
    make_pool: Any, strategy: MemoryStrategy
) -> None:
    """Under load the pool grows past max_size, never past burst_limit."""
    pool = make_pool(2, burst_limit=4)
    release = asyncio.Event()
    tasks = await _hold(pool, 6, release)
    stats = pool.statistics()
    assert (stats.size, stats.in_use, stats.waiting) == (4, 4, 2)
    release.set()
    await asyncio.gather(*tasks)
    check_invariants(pool)
    stats = pool.statistics()
    assert (stats.size, stats.idle) == (2, 2)  # the burst closed again
    assert len(strategy.created) == 4
    assert len(strategy.closed) == 2
    await pool.close()


async def test_burst_connection_closes_on_release_with_nobody_waiting(
    make_pool: Any, strategy: MemoryStrategy
) -> None:
    """A connection returned above max_size with no waiter is closed."""
    pool = make_pool(1, burst_limit=2)
    a = await pool.acquire()
    b = await pool.acquire()
    assert pool.statistics().size == 2
    await pool.release(b)  # awaits the close
    assert b.closed
    assert pool.statistics().size == 1
    await pool.release(a)
    assert not a.closed
    assert pool.statistics().idle == 1
    await pool.close()


async def test_burst_connection_goes_to_a_waiter(make_pool: Any) -> None:
    """Above max_size, a returned connection still serves a waiter first."""
    pool = make_pool(1, burst_limit=2)
    a = await pool.acquire()
    b = await pool.acquire()
    waiter = asyncio.create_task(pool.acquire())
    await settle()
    await pool.release(b)
    assert await waiter is b
    await pool.release(b)
    await pool.release(a)
    await pool.close()


async def test_growing_serves_waiters(make_pool: Any) -> None:
    """resize() to a larger max_size opens connections for waiters at once."""
    pool = make_pool(1)
    held = await pool.acquire()
    waiters = [asyncio.create_task(pool.acquire()) for _ in range(2)]
    await settle()
    await pool.resize(max_size=3)
    got = await asyncio.gather(*waiters)
    assert len({id(c) for c in [held, *got]}) == 3
    for conn in [held, *got]:
        await pool.release(conn)
    assert pool.statistics().max_size == 3
    await pool.close()


async def test_shrinking_closes_idle_now_and_lent_on_return(
    make_pool: Any, strategy: MemoryStrategy
) -> None:
    """resize() to a smaller size closes idle extras now, lent extras later."""
    pool = make_pool(4)
    conns = [await pool.acquire() for _ in range(4)]
    for conn in conns[:2]:
        await pool.release(conn)
    await pool.resize(max_size=1)
    assert pool.statistics().size == 2  # the two idle ones are gone
    assert len(strategy.closed) == 2
    await pool.release(conns[2])
    assert conns[2].closed
    await pool.release(conns[3])
    stats = pool.statistics()
    assert (stats.size, stats.idle, stats.max_size) == (1, 1, 1)
    await pool.close()


async def test_resize_min_size_opens_connections(
    make_pool: Any, strategy: MemoryStrategy
) -> None:
    """Raising min_size makes the pool open connections in the background."""
    pool = make_pool(5)
    async with pool.get_connection():
        pass
    await pool.resize(min_size=3)
    await eventually(lambda: pool.statistics().idle == 3)
    assert pool.statistics().size == 3
    assert len(strategy.created) == 3
    await pool.close()


async def test_resize_before_first_use(make_pool: Any) -> None:
    """A pool never used can be resized; the limits apply from the start."""
    pool = make_pool(2)
    await pool.resize(max_size=1, burst_limit=1)
    a = await pool.acquire()
    waiter = asyncio.create_task(pool.acquire())
    await settle()
    assert not waiter.done()
    await pool.release(a)
    await pool.release(await waiter)
    await pool.close()
