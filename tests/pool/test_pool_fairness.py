"""Waiters are served first come, first served, by direct hand-off."""

from __future__ import annotations

import asyncio
from typing import Any

from pool_helpers import check_invariants, settle


async def test_waiters_served_in_arrival_order(make_pool: Any) -> None:
    """Each returned connection goes to the longest-waiting caller."""
    pool = make_pool(1)
    held = await pool.acquire()
    order: list[int] = []

    async def waiter(number: int) -> None:
        async with pool.get_connection():
            order.append(number)

    tasks = []
    for number in range(5):
        tasks.append(asyncio.create_task(waiter(number)))
        await settle(1)  # each one reaches the line before the next starts
    assert pool.statistics().waiting == 5
    await pool.release(held)
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]
    await pool.close()


async def test_released_connection_is_handed_over_directly(make_pool: Any) -> None:
    """A release with a waiter keeps the connection lent: nobody can take it."""
    pool = make_pool(1)
    held = await pool.acquire()
    waiter = asyncio.create_task(pool.acquire())
    await settle()
    await pool.release(held)
    stats = pool.statistics()
    assert (stats.in_use, stats.idle, stats.waiting) == (1, 0, 0)
    # A newcomer does not overtake the waiter that was handed the connection.
    newcomer = asyncio.create_task(pool.acquire())
    assert await waiter is held
    await settle()
    assert not newcomer.done()
    await pool.release(held)
    assert await newcomer is held
    await pool.release(held)
    await pool.close()


async def test_reacquiring_task_queues_behind_waiters(make_pool: Any) -> None:
    """A task that releases and re-acquires at once waits its turn."""
    pool = make_pool(1)
    served: list[str] = []
    release_first = asyncio.Event()

    async def greedy() -> None:
        async with pool.get_connection():
            served.append("greedy")
            await release_first.wait()
        async with pool.get_connection():
            served.append("greedy again")

    async def patient() -> None:
        async with pool.get_connection():
            served.append("patient")

    g = asyncio.create_task(greedy())
    await settle()
    p = asyncio.create_task(patient())
    await settle()
    release_first.set()
    await asyncio.gather(g, p)
    assert served == ["greedy", "patient", "greedy again"]
    await pool.close()


async def test_tight_loops_share_fairly(make_pool: Any) -> None:
    """Ten tasks looping acquire/release on one connection get equal turns."""
    pool = make_pool(1)
    counts = [0] * 10
    stop = asyncio.Event()

    async def loop(index: int) -> None:
        while not stop.is_set():
            async with pool.get_connection():
                counts[index] += 1
                if sum(counts) >= 1000:
                    stop.set()
                await asyncio.sleep(0)

    await asyncio.gather(*(loop(i) for i in range(10)))
    assert max(counts) - min(counts) <= 1, counts
    check_invariants(pool)
    await pool.close()
