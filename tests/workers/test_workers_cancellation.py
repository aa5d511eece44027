"""Rule 5: a queued call every caller left never runs; a running one is dropped."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from workers_helpers import Gate, until

from async_reduce.workers import WorkerPool


@pytest.mark.parametrize("coalesce", [True, False])
async def test_queued_call_whose_caller_left_never_runs(
    make_pool: Any, gate: Gate, coalesce: bool
) -> None:
    """Cancelling the only caller of a queued call removes it from the queue."""
    pool = make_pool(1, coalesce=coalesce)
    blocker = asyncio.create_task(pool.run(gate, "blocker"))
    await gate.wait_started(1)
    victim = asyncio.create_task(pool.run(gate, "victim"))
    await until(lambda: pool.statistics().queued == 1)
    victim.cancel()
    with pytest.raises(asyncio.CancelledError):
        await victim
    assert pool.statistics().queued == 0
    gate.release_all()
    await blocker
    await pool.drain()
    assert gate.started == ["blocker"]
    assert pool.statistics().cancelled == 1


async def test_call_runs_while_one_caller_remains(make_pool: Any, gate: Gate) -> None:
    """Coalesced callers: one leaving does not remove the call for the others."""
    pool = make_pool(1)
    blocker = asyncio.create_task(pool.run(gate, "blocker"))
    await gate.wait_started(1)
    leaving = asyncio.create_task(pool.run(gate, "shared"))
    staying = asyncio.create_task(pool.run(gate, "shared"))
    await until(lambda: pool.statistics().coalesced == 1)
    leaving.cancel()
    gate.release_all()
    assert await staying == "shared"
    assert await blocker == "blocker"
    assert leaving.cancelled()
    assert gate.started == ["blocker", "shared"]


async def test_cancelled_submit_future_removes_the_call(
    make_pool: Any, gate: Gate
) -> None:
    """Cancelling the future from submit() leaves the call like cancelling run()."""
    pool = make_pool(1)
    blocker = pool.submit_nowait(gate, "blocker")
    await gate.wait_started(1)
    future = pool.submit_nowait(gate, "victim")
    await until(lambda: pool.statistics().queued == 1)
    future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await future
    gate.release_all()
    await blocker
    await pool.drain()
    assert gate.started == ["blocker"]


async def test_cancelled_before_queued_never_runs(make_pool: Any, gate: Gate) -> None:
    """A submitted call cancelled before its task ran is never queued."""
    pool = make_pool(1, max_queue=1)
    gate.release_all()
    future = pool.submit_nowait(gate, "never")
    future.cancel()
    await asyncio.sleep(0)
    await pool.drain()
    assert gate.started == []
    stats = pool.statistics()
    assert (stats.submitted, stats.queued) == (0, 0)
    # The room it reserved is free again.
    assert await pool.submit_nowait(gate, "after") == "after"


async def test_running_call_is_dropped_not_interrupted(
    make_pool: Any, gate: Gate
) -> None:
    """A caller leaving a running call gets CancelledError; the call finishes
    on its thread and its result is dropped."""
    pool = make_pool(1)
    task = asyncio.create_task(pool.run(gate, "running"))
    await gate.wait_started(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pool.statistics().busy == 1
    gate.release_all()
    await pool.drain()
    assert gate.finished == ["running"]
    stats = pool.statistics()
    assert (stats.completed, stats.dropped) == (1, 1)


async def test_timeout_leaves_like_cancellation(make_pool: Any, gate: Gate) -> None:
    """apply(timeout=) gives TimeoutError and removes the queued call."""
    pool = make_pool(1)
    blocker = asyncio.create_task(pool.run(gate, "blocker"))
    await gate.wait_started(1)
    with pytest.raises(TimeoutError):
        await pool.apply(gate, ("late",), timeout=0.01)
    gate.release_all()
    await blocker
    await pool.drain()
    assert gate.started == ["blocker"]


async def test_no_slot_stays_taken_after_cancellations(
    make_pool: Any, gate: Gate
) -> None:
    """After many cancelled calls, the queue and the threads are all free."""
    pool = make_pool(2, max_queue=3)
    tasks = [asyncio.create_task(pool.run(gate, i, priority=i % 3)) for i in range(20)]
    await gate.wait_started(2)
    for task in tasks[::2]:
        task.cancel()
    gate.release_all()
    await asyncio.gather(*tasks, return_exceptions=True)
    await pool.drain()
    stats = pool.statistics()
    assert (stats.queued, stats.busy, stats.waiting_for_room) == (0, 0, 0)
    assert await pool.run(abs, -5) == 5


async def test_timeout_without_coalescing_is_the_builtin_timeout_error(
    make_pool: Any, gate: Gate
) -> None:
    """coalesce=False: apply(timeout=) raises the builtin TimeoutError too."""
    pool = make_pool(1, coalesce=False)
    blocker = asyncio.create_task(pool.run(gate, "blocker"))
    await gate.wait_started(1)
    with pytest.raises(TimeoutError):
        await pool.apply(gate, ("late",), timeout=0.01)
    gate.release_all()
    await blocker
    await pool.drain()
    assert gate.started == ["blocker"]


async def test_orphans_finish_keeps_the_queued_call(gate: Gate) -> None:
    """With a reducer keeping orphans, a queued call every caller left still runs."""
    from async_reduce import AsyncReducer

    pool = WorkerPool(1, reducer=AsyncReducer(orphans="finish"))
    blocker = asyncio.create_task(pool.run(gate, "blocker"))
    await gate.wait_started(1)
    orphan = asyncio.create_task(pool.run(gate, "orphan"))
    await until(lambda: pool.statistics().queued == 1)
    orphan.cancel()
    with pytest.raises(asyncio.CancelledError):
        await orphan
    gate.release_all()
    await blocker
    await pool.drain()
    assert gate.started == ["blocker", "orphan"]
    assert await pool.shutdown()
