"""Rule 2: identical concurrent calls run once, through the reducer."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from workers_helpers import Gate

from async_reduce import AsyncReducer, async_reduceable
from async_reduce.hooks import StatisticsOverallHooks
from async_reduce.workers import WorkerPool


async def test_identical_concurrent_calls_run_once(make_pool: Any, gate: Gate) -> None:
    """Calls with the same fn and equal arguments share one execution."""
    pool = make_pool(4)
    tasks = [asyncio.create_task(pool.run(gate, "k", fail=False)) for _ in range(8)]
    await gate.wait_started(1)
    await asyncio.sleep(0)
    gate.release_all()
    assert await asyncio.gather(*tasks) == ["k"] * 8
    assert gate.started == ["k"]
    stats = pool.statistics()
    assert stats.submitted == 1
    assert stats.coalesced == 7


async def test_different_arguments_or_types_run_separately(
    make_pool: Any, gate: Gate
) -> None:
    """Unequal arguments, or equal ones of another type, do not coalesce."""
    pool = make_pool(4)
    gate.release_all()
    results = await asyncio.gather(
        pool.run(gate, 1), pool.run(gate, 2), pool.run(gate, 1.0), pool.run(gate, True)
    )
    assert results == [1, 2, 1.0, True]
    assert [type(t) for t in results] == [int, int, float, bool]
    assert len(gate.started) == 4


async def test_shared_exception_reaches_every_caller(
    make_pool: Any, gate: Gate
) -> None:
    """An exception of the shared call reaches each coalesced caller."""
    pool = make_pool(2)
    tasks = [asyncio.create_task(pool.run(gate, "bad", fail=True)) for _ in range(3)]
    await gate.wait_started(1)
    gate.release_all()
    for outcome in await asyncio.gather(*tasks, return_exceptions=True):
        assert isinstance(outcome, ValueError)
    assert len(gate.started) == 1


async def test_ident_names_the_call(make_pool: Any, gate: Gate) -> None:
    """Calls with the same ident= share, whatever their arguments."""
    pool = make_pool(2)
    first = asyncio.create_task(pool.run(gate, "a", ident="same"))
    await gate.wait_started(1)
    second = asyncio.create_task(pool.run(gate, "b", ident="same"))
    await asyncio.sleep(0)
    gate.release_all()
    assert await asyncio.gather(first, second) == ["a", "a"]
    assert gate.started == ["a"]


async def test_unhashable_arguments_run_uncoalesced(make_pool: Any, gate: Gate) -> None:
    """A call with an unhashable argument runs on its own (no TypeError)."""
    pool = make_pool(4)
    gate.release_all()
    assert await asyncio.gather(pool.run(gate, [1]), pool.run(gate, [1])) == [[1], [1]]
    assert len(gate.started) == 2


async def test_coalesce_false_runs_every_call(make_pool: Any, gate: Gate) -> None:
    """coalesce=False: identical calls each run."""
    pool = make_pool(4, coalesce=False)
    gate.release_all()
    await asyncio.gather(*(pool.run(gate, "x") for _ in range(3)))
    assert gate.started == ["x"] * 3
    assert pool.statistics().coalesced == 0


async def test_calls_after_the_end_start_afresh(make_pool: Any, gate: Gate) -> None:
    """Coalescing is for concurrent calls only: a later call runs again."""
    pool = make_pool(1)
    gate.release_all()
    await pool.run(gate, 1)
    await pool.run(gate, 1)
    assert gate.started == [1, 1]


async def test_reducer_hooks_see_worker_calls(gate: Gate) -> None:
    """The reducer's hooks count calls, joins and executions of the pool."""
    stats = StatisticsOverallHooks()
    pool = WorkerPool(2, hooks=stats)
    tasks = [asyncio.create_task(pool.run(gate, "h")) for _ in range(4)]
    await gate.wait_started(1)
    gate.release_all()
    await asyncio.gather(*tasks)
    assert (stats.total, stats.started, stats.reduced, stats.executed) == (4, 1, 3, 1)
    assert await pool.shutdown()


async def test_reducer_timeout_applies(gate: Gate) -> None:
    """The reducer's timeout: callers get TimeoutError and the queued call is
    removed once all have left."""
    pool = WorkerPool(1, reducer=AsyncReducer(timeout=0.05))
    blocker = asyncio.create_task(pool.apply(gate, ("busy",), timeout=None))
    await gate.wait_started(1)
    with pytest.raises(TimeoutError):
        await pool.run(gate, "queued")
    gate.release_all()
    assert await blocker == "busy"
    await pool.drain()
    assert gate.started == ["busy"]
    assert pool.statistics().cancelled == 1
    assert await pool.shutdown()


async def test_pools_never_share_executions(gate: Gate) -> None:
    """Two pools sharing a reducer keep their calls apart."""
    reducer = AsyncReducer()
    one, two = WorkerPool(1, reducer=reducer), WorkerPool(1, reducer=reducer)
    gate.release_all()
    await asyncio.gather(one.run(gate, 5), two.run(gate, 5))
    assert gate.started == [5, 5]
    assert await one.shutdown()
    assert await two.shutdown()


# -- @async_reduceable(workers=pool) -------------------------------------------


async def test_decorated_plain_function_is_awaitable_and_coalesced(
    make_pool: Any,
) -> None:
    """@async_reduceable(workers=pool) on a def: awaitable, coalesced, threaded."""
    pool = make_pool(2)
    loop = asyncio.get_running_loop()
    release = threading.Event()
    started = asyncio.Event()
    calls: list[tuple[int, int]] = []

    @async_reduceable(workers=pool)
    def load(user_id: int, scale: int = 1) -> tuple[int, str]:
        calls.append((user_id, scale))
        loop.call_soon_threadsafe(started.set)
        release.wait(30)
        return user_id * scale, threading.current_thread().name

    tasks = [
        asyncio.create_task(load(3)),
        asyncio.create_task(load(3, 1)),
        asyncio.create_task(load(user_id=3, scale=1)),
    ]
    await asyncio.wait_for(started.wait(), 30)
    release.set()
    results = await asyncio.gather(*tasks)
    assert {r[0] for r in results} == {3}
    assert results[0][1].startswith(pool.name)
    assert calls == [(3, 1)]
    assert load.reducer is pool.reducer
    assert load.__name__ == "load"


async def test_decorated_function_takes_reducer_and_timeout(make_pool: Any) -> None:
    """The decorator's reducer= and timeout= apply to the decorated def."""
    stats = StatisticsOverallHooks()
    reducer = AsyncReducer(hooks=stats)
    pool = make_pool(1)
    release = threading.Event()

    @async_reduceable(reducer, workers=pool, timeout=0.05)
    def slow() -> int:
        release.wait(30)
        return 1

    with pytest.raises(TimeoutError):
        await slow()
    release.set()
    assert stats.total == 1
    assert stats.timeouts == 1


def test_plain_def_without_workers_is_still_a_type_error() -> None:
    """Without workers=, decorating a plain def raises TypeError, as before."""

    def plain() -> int:
        return 1

    with pytest.raises(TypeError):
        async_reduceable(plain)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="coroutine function"):
        async_reduceable()(plain)  # type: ignore[arg-type]


def test_workers_argument_is_checked() -> None:
    """workers= must be a WorkerPool; a coroutine function is refused with it."""
    with pytest.raises(TypeError, match="workers must be a WorkerPool"):
        async_reduceable(workers=object())  # type: ignore[call-overload]
    pool = WorkerPool(1)

    async def coro_fn() -> int:
        return 1

    with pytest.raises(TypeError, match="plain"):
        async_reduceable(workers=pool)(coro_fn)


async def test_hooks_never_see_argument_values_in_keys() -> None:
    """Keys shown to hooks name the pool and function, not arguments or idents."""
    import io

    from async_reduce.hooks import DebugHooks

    stream = io.StringIO()
    pool = WorkerPool(1, hooks=DebugHooks(stream=stream), name="keys")

    def constant(*args: Any, **kwargs: Any) -> str:
        return "fine"

    @async_reduceable(workers=pool)
    def decorated(password: str) -> str:
        return "fine"

    await pool.run(constant, "s3cret-arg", token="s3cret-kw")
    await pool.run(constant, ident="s3cret-ident")
    await decorated("s3cret-decorated")
    assert await pool.shutdown()
    logged = stream.getvalue()
    assert "keys:" in logged
    assert "constant" in logged
    assert "s3cret" not in logged
