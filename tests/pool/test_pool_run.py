"""pool.run(): identical concurrent calls run once, on one connection."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pool_helpers import MemoryConnection, MemoryStrategy, RecordingHooks, settle

from async_reduce import AsyncReducer
from async_reduce.pool import ConnectionPool


class Backend:
    """Counts queries and holds them until released."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, tuple[Any, ...]]] = []
        self.gate = asyncio.Event()
        self.started = asyncio.Event()

    async def query(self, conn: MemoryConnection, *args: Any) -> str:
        self.calls.append((conn.number, args))
        self.started.set()
        await self.gate.wait()
        return f"result{args}"


async def test_identical_calls_run_once(make_pool: Any) -> None:
    """Concurrent calls with the same fn and arguments share one execution."""
    pool = make_pool(4)
    backend = Backend()
    tasks = [asyncio.create_task(pool.run(backend.query, "k", 1)) for _ in range(10)]
    await backend.started.wait()
    assert pool.statistics().in_use == 1
    backend.gate.set()
    assert await asyncio.gather(*tasks) == ["result('k', 1)"] * 10
    assert len(backend.calls) == 1
    assert pool.statistics().acquired == 1
    await pool.close()


async def test_different_arguments_run_separately(make_pool: Any) -> None:
    """Calls with different arguments (or argument types) do not coalesce."""
    pool = make_pool(4)
    backend = Backend()
    backend.gate.set()
    results = await asyncio.gather(
        pool.run(backend.query, 1),
        pool.run(backend.query, 2),
        pool.run(backend.query, 1.0),  # equal to 1, but a different type
        pool.run(backend.query, True),
    )
    assert results == ["result(1,)", "result(2,)", "result(1.0,)", "result(True,)"]
    assert len(backend.calls) == 4
    await pool.close()


async def test_ident_names_the_call(make_pool: Any) -> None:
    """Calls with the same ident coalesce whatever their arguments."""
    pool = make_pool(4)
    backend = Backend()
    first = asyncio.create_task(pool.run(backend.query, "a", ident="user:1"))
    await backend.started.wait()
    second = asyncio.create_task(pool.run(backend.query, "b", ident="user:1"))
    await settle()
    backend.gate.set()
    assert await first == await second == "result('a',)"
    assert len(backend.calls) == 1
    await pool.close()


async def test_exception_is_shared_and_connection_returned(make_pool: Any) -> None:
    """A failing call raises in every caller; its connection goes back."""
    pool = make_pool(2)

    async def fail(conn: MemoryConnection) -> None:
        await asyncio.sleep(0)
        raise LookupError("missing")

    results = await asyncio.gather(
        *(pool.run(fail) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, LookupError) for r in results)
    stats = pool.statistics()
    assert (stats.in_use, stats.idle, stats.acquired) == (0, 1, 1)
    await pool.close()


async def test_cancelled_caller_leaves_others_unaffected(make_pool: Any) -> None:
    """One caller cancelled: the others still get the result."""
    pool = make_pool(2)
    backend = Backend()
    tasks = [asyncio.create_task(pool.run(backend.query, 7)) for _ in range(3)]
    await backend.started.wait()
    tasks[0].cancel()
    backend.gate.set()
    with pytest.raises(asyncio.CancelledError):
        await tasks[0]
    assert await asyncio.gather(*tasks[1:]) == ["result(7,)"] * 2
    await pool.close()


async def test_all_callers_cancelled_returns_the_connection(make_pool: Any) -> None:
    """When every caller leaves, the call is cancelled and its connection kept."""
    pool = make_pool(1)
    backend = Backend()
    tasks = [asyncio.create_task(pool.run(backend.query, 7)) for _ in range(3)]
    await backend.started.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await settle()
    stats = pool.statistics()
    assert (stats.in_use, stats.idle) == (0, 1)
    await pool.close()


async def test_reducer_hooks_see_run_executions() -> None:
    """The pool's reducer reports each shared execution with its callers."""
    hooks = RecordingHooks()
    pool = ConnectionPool(MemoryStrategy(), 2, hooks=hooks)
    backend = Backend()
    tasks = [asyncio.create_task(pool.run(backend.query, "x")) for _ in range(4)]
    await backend.started.wait()
    backend.gate.set()
    await asyncio.gather(*tasks)
    [execution] = hooks.executions
    assert execution.callers == 4
    assert execution.outcome == "result"
    await pool.close()


async def test_pools_sharing_a_reducer_do_not_coalesce() -> None:
    """The same call on two pools (two backends) runs on each."""
    reducer = AsyncReducer()
    first = ConnectionPool(MemoryStrategy(), 1, reducer=reducer)
    second = ConnectionPool(MemoryStrategy(), 1, reducer=reducer)
    backend = Backend()
    tasks = [
        asyncio.create_task(first.run(backend.query, "q")),
        asyncio.create_task(second.run(backend.query, "q")),
    ]
    await settle()
    backend.gate.set()
    await asyncio.gather(*tasks)
    assert len(backend.calls) == 2
    await first.close()
    await second.close()
