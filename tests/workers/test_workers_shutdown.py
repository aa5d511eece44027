"""Rule 6: shutdown, drain, async with; rule 7: several event loops."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
from typing import Any

import pytest
from workers_helpers import Gate, thread_names, until

from async_reduce.workers import WorkerPool, WorkerPoolClosed


async def test_async_with_shuts_down_and_leaves_no_thread(gate: Gate) -> None:
    """Leaving ``async with`` waits for the calls and ends every thread."""
    gate.release_all()
    async with WorkerPool(3, min_workers=2) as pool:
        assert await pool.map(gate, range(6)) == list(range(6))
    assert pool.closed
    assert thread_names(pool.name) == []
    assert pool.statistics().workers == 0


@pytest.mark.parametrize(
    "call",
    [
        lambda pool: pool.run(abs, 1),
        lambda pool: pool.apply(abs, (1,)),
        lambda pool: pool.submit(abs, 1),
        lambda pool: pool.map(abs, [1]),
        lambda pool: pool.__aenter__(),
    ],
)
async def test_calls_after_shutdown_raise(call: Any) -> None:
    """Every call after shutdown() raises WorkerPoolClosed."""
    pool = WorkerPool(2)
    assert await pool.shutdown()
    with pytest.raises(WorkerPoolClosed, match="shut down"):
        await call(pool)
    with pytest.raises(WorkerPoolClosed):
        pool.submit_nowait(abs, 1)
    with pytest.raises(WorkerPoolClosed):
        pool.resize(max_workers=3)


async def test_shutdown_finishes_queued_calls(gate: Gate) -> None:
    """shutdown() lets queued calls run, then ends the threads."""
    pool = WorkerPool(1)
    tasks = [asyncio.create_task(pool.run(gate, i)) for i in range(4)]
    await gate.wait_started(1)
    await until(lambda: pool.statistics().queued == 3)
    closing = asyncio.create_task(pool.shutdown())
    await asyncio.sleep(0)
    with pytest.raises(WorkerPoolClosed):
        await pool.run(gate, "late")
    gate.release_all()
    assert await closing is True
    assert await asyncio.gather(*tasks) == [0, 1, 2, 3]
    assert thread_names(pool.name) == []


async def test_shutdown_cancel_pending_drops_queued_calls(gate: Gate) -> None:
    """cancel_pending=True: queued calls never run and their callers get
    WorkerPoolClosed; the running call finishes."""
    pool = WorkerPool(1, max_queue=2)
    running = asyncio.create_task(pool.run(gate, "running"))
    await gate.wait_started(1)
    queued = [asyncio.create_task(pool.run(gate, i)) for i in range(2)]
    waiting = asyncio.create_task(pool.run(gate, "waiting for room"))
    await until(lambda: pool.statistics().waiting_for_room == 1)
    closing = asyncio.create_task(pool.shutdown(cancel_pending=True))
    for task in [*queued, waiting]:
        with pytest.raises(WorkerPoolClosed):
            await task
    gate.release_all()
    assert await closing is True
    assert await running == "running"
    assert gate.started == ["running"]


async def test_shutdown_timeout_with_a_stuck_worker(gate: Gate) -> None:
    """shutdown(timeout=) returns False while a call is stuck; True once it ends."""
    pool = WorkerPool(1)
    task = asyncio.create_task(pool.run(gate, "stuck"))
    await gate.wait_started(1)
    assert await pool.shutdown(timeout=0.05) is False
    assert pool.closed
    gate.release_all()
    assert await task == "stuck"
    assert await pool.shutdown() is True
    assert thread_names(pool.name) == []


async def test_cancelled_shutdown_keeps_the_pool_closed(gate: Gate) -> None:
    """Cancelling shutdown() stops the waiting; the pool stays shut down."""
    pool = WorkerPool(1)
    task = asyncio.create_task(pool.run(gate, "stuck"))
    await gate.wait_started(1)
    closing = asyncio.create_task(pool.shutdown())
    await asyncio.sleep(0)
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert pool.closed
    gate.release_all()
    await task
    assert await pool.shutdown()


async def test_drain_waits_for_every_call(make_pool: Any, gate: Gate) -> None:
    """drain() returns once no call is queued or running, even calls made
    just before it."""
    pool = make_pool(2)
    tasks = [asyncio.create_task(pool.run(gate, i)) for i in range(5)]
    draining = asyncio.create_task(pool.drain())
    await gate.wait_started(2)
    assert not draining.done()
    gate.release_all()
    await draining
    assert all(task.done() for task in tasks)
    stats = pool.statistics()
    assert (stats.queued, stats.busy, stats.completed) == (0, 0, 5)


def test_process_exits_with_a_worker_stuck() -> None:
    """A call stuck forever in a worker does not keep the process alive."""
    script = textwrap.dedent(
        """
        import asyncio, threading
        from async_reduce.workers import WorkerPool

        pool = WorkerPool(2)

        async def main():
            never = threading.Event()
            task = asyncio.create_task(pool.run(never.wait))
            while pool.statistics().busy < 1:
                await asyncio.sleep(0.001)
            print("stuck", flush=True)
            task.cancel()

        asyncio.run(main())
        print("main done", flush=True)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["stuck", "main", "done"]


def test_an_unused_pool_is_collected_and_its_threads_end() -> None:
    """A pool nobody references any more lets its idle threads end."""
    import gc

    pool = WorkerPool(2, min_workers=2, idle_timeout=None)
    name = pool.name
    threads = [t for t in threading.enumerate() if t.name.startswith(name + "-")]
    assert len(threads) == 2
    del pool
    gc.collect()
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive()


def test_one_pool_serves_two_loops_in_two_threads() -> None:
    """Callers on two loops in two threads each get their own results back,
    on their own loop."""
    pool = WorkerPool(2)
    results: dict[str, Any] = {}
    errors: list[BaseException] = []

    def square_with_thread(x: int) -> int:
        return x * x

    async def client(name: str) -> None:
        loop = asyncio.get_running_loop()
        outcome: list[int] = []
        for i in range(50):
            outcome.append(await pool.run(square_with_thread, i))
            assert asyncio.get_running_loop() is loop
        outcome.extend(await pool.map(square_with_thread, range(50, 60)))
        results[name] = outcome

    def thread_main(name: str) -> None:
        try:
            asyncio.run(client(name))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=thread_main, args=(n,)) for n in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    expected = [i * i for i in range(60)]
    assert results == {"a": expected, "b": expected}
    assert asyncio.run(pool.shutdown())
