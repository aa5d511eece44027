"""Rule 3: higher priority first, FIFO within a priority, aging bounds starvation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from workers_helpers import Gate, until


async def queue_behind_a_blocker(
    pool: Any, gate: Gate, calls: list[tuple[Any, int]]
) -> list[asyncio.Task[Any]]:
    """Occupy the single worker, then queue ``(tag, priority)`` calls in order."""
    blocker = asyncio.create_task(pool.run(gate, "blocker"))
    await gate.wait_started(1)
    tasks = [blocker]
    for tag, priority in calls:
        tasks.append(asyncio.create_task(pool.run(gate, tag, priority=priority)))
    await until(lambda: pool.statistics().queued >= len(calls))
    return tasks


async def test_higher_priority_runs_first_fifo_within(
    make_pool: Any, gate: Gate
) -> None:
    """Queued calls run by descending priority, in arrival order within one."""
    pool = make_pool(1)
    calls = [("a", 0), ("b", 5), ("c", 0), ("d", -3), ("e", 5), ("f", 1), ("g", 0)]
    tasks = await queue_behind_a_blocker(pool, gate, calls)
    assert dict(pool.statistics().queued_by_priority) == {-3: 1, 0: 3, 1: 1, 5: 2}
    gate.release_all()
    await asyncio.gather(*tasks)
    assert gate.started == ["blocker", "b", "e", "f", "a", "c", "g", "d"]


async def test_aging_lets_an_old_low_priority_call_pass(
    make_pool: Any, gate: Gate
) -> None:
    """A call queued (q - p) * aging seconds before one of priority q runs first."""
    pool = make_pool(1, aging=0.01)
    blocker = asyncio.create_task(pool.run(gate, "blocker"))
    await gate.wait_started(1)
    old = asyncio.create_task(pool.run(gate, "old-low", priority=0))
    await until(lambda: pool.statistics().queued >= 1)
    # The rule is about elapsed time: let more than (2 - 0) * 0.01 s pass.
    await asyncio.sleep(0.05)
    new = asyncio.create_task(pool.run(gate, "new-high", priority=2))
    fresh = asyncio.create_task(pool.run(gate, "new-low", priority=0))
    await until(lambda: pool.statistics().queued >= 3)
    gate.release_all()
    await asyncio.gather(blocker, old, new, fresh)
    assert gate.started == ["blocker", "old-low", "new-high", "new-low"]


async def test_without_aging_priority_is_strict(make_pool: Any, gate: Gate) -> None:
    """aging=None: a higher priority always runs first, however late it came."""
    pool = make_pool(1, aging=None)
    blocker = asyncio.create_task(pool.run(gate, "blocker"))
    await gate.wait_started(1)
    old = asyncio.create_task(pool.run(gate, "old-low", priority=0))
    await until(lambda: pool.statistics().queued >= 1)
    await asyncio.sleep(0.05)  # the rule under test is about elapsed time
    new = asyncio.create_task(pool.run(gate, "new-high", priority=1))
    await until(lambda: pool.statistics().queued >= 2)
    gate.release_all()
    await asyncio.gather(blocker, old, new)
    assert gate.started == ["blocker", "new-high", "old-low"]


async def test_room_goes_to_the_highest_priority_waiter(
    make_pool: Any, gate: Gate
) -> None:
    """With a full queue, waiting submitters get room by priority, then arrival."""
    pool = make_pool(1, max_queue=1)
    tasks = await queue_behind_a_blocker(pool, gate, [("queued", 0)])
    for tag, priority in [("low", 0), ("high", 9), ("mid", 4)]:
        tasks.append(asyncio.create_task(pool.run(gate, tag, priority=priority)))
    await until(lambda: pool.statistics().waiting_for_room >= 3)
    gate.release_all()
    await asyncio.gather(*tasks)
    assert gate.started == ["blocker", "queued", "high", "mid", "low"]


@pytest.mark.parametrize("entry", ["run", "submit", "submit_nowait", "apply", "map"])
async def test_every_entry_point_honours_priority(
    make_pool: Any, gate: Gate, entry: str
) -> None:
    """Each way of queueing a call passes its priority on to the queue."""
    pool = make_pool(1)
    blocker = asyncio.create_task(pool.run(gate, "blocker"))
    await gate.wait_started(1)
    low = asyncio.create_task(pool.run(gate, "low", priority=1))
    await until(lambda: pool.statistics().queued >= 1)
    if entry == "run":
        high: Any = asyncio.create_task(pool.run(gate, "high", priority=2))
    elif entry == "submit":
        high = await pool.submit(gate, "high", priority=2)
    elif entry == "submit_nowait":
        high = pool.submit_nowait(gate, "high", priority=2)
    elif entry == "apply":
        high = asyncio.create_task(pool.apply(gate, ("high",), priority=2))
    else:
        high = asyncio.create_task(pool.map(gate, ["high"], priority=2))
    await until(lambda: pool.statistics().queued >= 2)
    gate.release_all()
    await asyncio.gather(blocker, low, high)
    assert gate.started == ["blocker", "high", "low"]


async def test_joining_with_a_higher_priority_raises_the_queued_call(
    make_pool: Any, gate: Gate
) -> None:
    """A caller joining a queued identical call lifts it to its own priority."""
    pool = make_pool(1)
    blocker = asyncio.create_task(pool.run(gate, "blocker"))
    await gate.wait_started(1)
    low = asyncio.create_task(pool.run(gate, "shared", priority=0))
    middle = asyncio.create_task(pool.run(gate, "middle", priority=5))
    await until(lambda: pool.statistics().queued == 2)
    urgent = asyncio.create_task(pool.run(gate, "shared", priority=9))
    await until(lambda: pool.statistics().coalesced == 1)
    assert dict(pool.statistics().queued_by_priority) == {5: 1, 9: 1}
    gate.release_all()
    assert await asyncio.gather(blocker, low, middle, urgent) == [
        "blocker",
        "shared",
        "middle",
        "shared",
    ]
    assert gate.started == ["blocker", "shared", "middle"]
