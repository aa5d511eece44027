"""Rule 4: max_workers, min_workers, max_queue, scaling, idle retirement, resize."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from workers_helpers import EventRecorder, Gate, thread_names, until

from async_reduce.workers import WorkerPool, WorkerQueueFull, WorkerStopped


async def test_threads_scale_up_to_max_workers_only(make_pool: Any, gate: Gate) -> None:
    """A thread starts per waiting call, never more than max_workers."""
    pool = make_pool(3)
    assert pool.statistics().workers == 0
    tasks = [asyncio.create_task(pool.run(gate, i)) for i in range(10)]
    await gate.wait_started(3)
    await until(lambda: pool.statistics().queued == 7)
    stats = pool.statistics()
    assert stats.workers == 3
    assert stats.busy == 3
    assert len(thread_names(pool.name)) == 3
    gate.release_all()
    assert await asyncio.gather(*tasks) == list(range(10))
    assert gate.max_running == 3


async def test_an_idle_thread_serves_the_next_call(make_pool: Any, gate: Gate) -> None:
    """No thread starts while one is idle."""
    pool = make_pool(4)
    gate.release_all()
    for i in range(5):
        await pool.run(gate, i)
    assert pool.statistics().workers == 1


async def test_min_workers_start_at_once_and_stay(gate: Gate) -> None:
    """min_workers threads exist from the start and survive idle_timeout."""
    events = EventRecorder()
    pool = WorkerPool(4, min_workers=2, idle_timeout=0.01, hooks=events)
    assert pool.statistics().workers == 2
    tasks = [asyncio.create_task(pool.run(gate, i)) for i in range(4)]
    await gate.wait_started(4)
    gate.release_all()
    await asyncio.gather(*tasks)
    await events.wait(lambda evs: sum(isinstance(e, WorkerStopped) for e in evs) == 2)
    assert all(
        e.reason == "idle" for e in events.events if isinstance(e, WorkerStopped)
    )
    assert pool.statistics().workers == 2
    assert await pool.shutdown()


async def test_idle_threads_retire_after_idle_timeout(gate: Gate) -> None:
    """A thread idle for idle_timeout ends (down to min_workers)."""
    events = EventRecorder()
    pool = WorkerPool(3, idle_timeout=0.01, hooks=events)
    tasks = [asyncio.create_task(pool.run(gate, i)) for i in range(3)]
    await gate.wait_started(3)
    gate.release_all()
    await asyncio.gather(*tasks)
    await events.wait(lambda evs: sum(isinstance(e, WorkerStopped) for e in evs) == 3)
    await until(lambda: not thread_names(pool.name))
    assert pool.statistics().workers == 0
    assert await pool.run(abs, -1) == 1  # a new thread starts on demand
    assert await pool.shutdown()


async def test_submit_nowait_raises_when_the_queue_is_full(
    make_pool: Any, gate: Gate
) -> None:
    """submit_nowait raises WorkerQueueFull (an asyncio.QueueFull) at max_queue."""
    pool = make_pool(1, max_queue=2)
    running = pool.submit_nowait(gate, "running")
    await gate.wait_started(1)
    queued = [pool.submit_nowait(gate, i) for i in range(2)]
    with pytest.raises(WorkerQueueFull, match="full") as caught:
        pool.submit_nowait(gate, "one too many")
    assert isinstance(caught.value, asyncio.QueueFull)
    assert pool.statistics().rejected == 1
    # An identical call in flight needs no room: it joins.
    joined = pool.submit_nowait(gate, 0)
    gate.release_all()
    assert await asyncio.gather(running, *queued, joined) == ["running", 0, 1, 0]
    assert "one too many" not in gate.started


async def test_submit_waits_for_room(make_pool: Any, gate: Gate) -> None:
    """submit() and run() wait while the queue is full, then queue the call."""
    pool = make_pool(1, max_queue=1)
    first = asyncio.create_task(pool.run(gate, "first"))
    await gate.wait_started(1)
    second = await pool.submit(gate, "second")
    waiting = asyncio.create_task(pool.submit(gate, "third"))
    await until(lambda: pool.statistics().waiting_for_room == 1)
    assert not waiting.done()
    assert pool.statistics().queued == 1
    gate.release_all()
    third = await waiting
    assert await asyncio.gather(first, second, third) == ["first", "second", "third"]


async def test_cancelled_room_waiter_leaves_no_reservation(
    make_pool: Any, gate: Gate
) -> None:
    """Cancelling a caller waiting for room queues nothing and frees nothing twice."""
    pool = make_pool(1, max_queue=1)
    first = asyncio.create_task(pool.run(gate, "first"))
    await gate.wait_started(1)
    second = asyncio.create_task(pool.run(gate, "second"))
    await until(lambda: pool.statistics().queued == 1)
    waiter = asyncio.create_task(pool.run(gate, "never"))
    await until(lambda: pool.statistics().waiting_for_room == 1)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert pool.statistics().waiting_for_room == 0
    gate.release_all()
    await asyncio.gather(first, second)
    await pool.drain()
    assert "never" not in gate.started
    # The queue holds max_queue again, no more, no less.
    blocker = asyncio.create_task(pool.run(gate, "again"))
    await pool.drain()
    assert await blocker == "again"


async def test_resize_up_starts_threads_for_waiting_calls(
    make_pool: Any, gate: Gate
) -> None:
    """resize(max_workers=n) above the old limit serves queued calls at once."""
    pool = make_pool(1)
    tasks = [asyncio.create_task(pool.run(gate, i)) for i in range(4)]
    await gate.wait_started(1)
    await until(lambda: pool.statistics().queued == 3)
    await pool.resize(max_workers=4)
    await gate.wait_started(4)
    assert pool.statistics().workers == 4
    gate.release_all()
    await asyncio.gather(*tasks)


async def test_resize_down_waits_for_busy_threads(make_pool: Any, gate: Gate) -> None:
    """resize(max_workers=n) below the thread count returns once only n remain;
    no new call starts beyond n meanwhile."""
    pool = make_pool(3)
    tasks = [asyncio.create_task(pool.run(gate, i)) for i in range(6)]
    await gate.wait_started(3)
    resizing = asyncio.create_task(pool.resize(max_workers=1))
    await asyncio.sleep(0)
    assert not resizing.done()
    gate.release_all()
    await resizing
    assert pool.statistics().workers <= 1
    await asyncio.gather(*tasks)
    assert pool.statistics().max_workers == 1
    assert len(thread_names(pool.name)) <= 1


async def test_resize_min_workers_starts_threads(make_pool: Any) -> None:
    """resize(min_workers=n) starts threads up to n at once, awaited or not."""
    pool = make_pool(4)
    pool.resize(min_workers=3)
    stats = pool.statistics()
    assert (stats.workers, stats.min_workers, stats.max_workers) == (3, 3, 4)
    with pytest.raises(ValueError, match="min_workers"):
        pool.resize(min_workers=5, max_workers=4)
    with pytest.raises(ValueError, match="max_workers"):
        pool.resize(max_workers=0)
    await pool.resize(min_workers=1)  # nothing to wait for
    assert pool.statistics().workers == 3
