"""Rule 1: blocking calls run on worker threads, with the caller's context."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

import pytest
from workers_helpers import Gate

from async_reduce.workers import WorkerPool

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")


def whoami(x: Any = None) -> tuple[Any, str]:
    return x, threading.current_thread().name


async def test_run_returns_the_result_from_a_worker_thread(make_pool: Any) -> None:
    """run() returns fn's result, computed on one of the pool's threads."""
    pool = make_pool(2)
    value, thread = await pool.run(whoami, 41)
    assert value == 41
    assert thread.startswith(pool.name + "-worker-")
    assert thread != threading.current_thread().name


async def test_run_passes_keyword_arguments(make_pool: Any) -> None:
    """Keyword arguments other than priority/ident reach fn."""
    pool = make_pool(2)
    assert await pool.run(dict, a=1, b=2) == {"a": 1, "b": 2}
    assert await pool.apply(dict, (), {"priority": 3, "ident": 4}) == {
        "priority": 3,
        "ident": 4,
    }


async def test_run_raises_the_functions_exception(make_pool: Any) -> None:
    """The exception fn raised reaches the caller (a copy: same type and args)."""
    pool = make_pool(2)
    error = KeyError("missing")

    def fail() -> None:
        raise error

    with pytest.raises(KeyError) as caught:
        await pool.run(fail)
    # The reducer hands each caller a copy of its own: same type and args.
    assert type(caught.value) is KeyError
    assert caught.value.args == error.args
    assert pool.statistics().failed == 1


async def test_stop_iteration_becomes_runtime_error(make_pool: Any) -> None:
    """StopIteration (which a future cannot carry) arrives as RuntimeError."""
    pool = make_pool(1)
    with pytest.raises(RuntimeError) as caught:
        await pool.run(next, iter(()))
    assert isinstance(caught.value.__cause__, StopIteration)


async def test_context_is_copied_into_the_call(make_pool: Any) -> None:
    """fn sees the caller's contextvars; its changes do not leak back."""
    pool = make_pool(2)

    def read_and_change() -> str:
        seen = request_id.get()
        request_id.set("changed in worker")
        return seen

    request_id.set("req-1")
    assert await pool.run(read_and_change) == "req-1"
    assert request_id.get() == "req-1"
    request_id.set("req-2")
    assert await pool.run(read_and_change) == "req-2"


async def test_submit_and_submit_nowait_give_futures(make_pool: Any) -> None:
    """submit() and submit_nowait() return futures of the outcome."""
    pool = make_pool(2)
    first = await pool.submit(whoami, 1)
    second = pool.submit_nowait(whoami, 2)
    assert isinstance(first, asyncio.Future)
    assert isinstance(second, asyncio.Future)
    assert (await first)[0] == 1
    assert (await second)[0] == 2


async def test_map_and_starmap_keep_input_order(make_pool: Any) -> None:
    """map()/starmap() return results in input order, however calls finish."""
    pool = make_pool(4)
    assert await pool.map(pow, range(20), [2] * 20) == [i**2 for i in range(20)]
    pairs = [(i, i + 1) for i in range(15)]
    assert await pool.starmap(divmod, pairs, limit=3) == [divmod(*p) for p in pairs]
    assert await pool.map(abs, []) == []


async def test_map_bounds_calls_in_flight(make_pool: Any, gate: Gate) -> None:
    """map(limit=n) never has more than n calls queued or running at once."""
    pool = make_pool(8)
    task = asyncio.create_task(pool.map(gate, range(50), limit=3))
    await gate.wait_started(3)
    stats = pool.statistics()
    assert stats.busy + stats.queued == 3
    gate.release_all()
    assert await task == list(range(50))
    assert gate.max_running <= 3


async def test_map_consumes_an_endless_iterable_lazily(make_pool: Any) -> None:
    """map() pulls items as calls finish; an error stops it and is raised."""
    pool = make_pool(2)
    pulled = 0

    def endless() -> Any:
        nonlocal pulled
        while True:
            pulled += 1
            yield pulled

    def until_ten(i: int) -> int:
        if i == 10:
            raise OverflowError(i)
        return i

    with pytest.raises(OverflowError):
        await pool.map(until_ten, endless(), limit=2)
    assert pulled <= 12


async def test_map_error_cancels_the_calls_in_flight(
    make_pool: Any, gate: Gate
) -> None:
    """When one call of map() fails, the calls still queued never run."""
    pool = make_pool(1)

    def first_fails(i: int) -> int:
        if i == 0:
            raise ValueError(i)
        return gate(i)

    with pytest.raises(ValueError, match="0"):
        await pool.map(first_fails, range(5), limit=5)
    # The one worker may have taken call 1 before map() cancelled the rest.
    gate.release_all()
    await pool.drain()
    assert len(gate.started) <= 1
    assert pool.statistics().cancelled + len(gate.started) == 4


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda pool: pool.run(42), TypeError, "fn must be callable"),
        (lambda pool: pool.run(asyncio.sleep, 0), TypeError, "coroutine function"),
        (lambda pool: pool.run(abs, 1, priority="high"), TypeError, "priority"),
        (lambda pool: pool.run(abs, 1, priority=True), TypeError, "priority"),
        (lambda pool: pool.run(abs, 1, ident=[1]), TypeError, "ident"),
        (lambda pool: pool.map(abs, [1], limit=0), ValueError, "limit"),
        (lambda pool: pool.apply(abs, (1,), timeout=-1), ValueError, "timeout"),
    ],
)
async def test_bad_call_arguments_raise_at_the_call(
    make_pool: Any, call: Any, error: type[Exception], match: str
) -> None:
    """A wrong argument raises a TypeError/ValueError naming it; nothing queued."""
    pool = make_pool(1)
    with pytest.raises(error, match=match):
        await call(pool)
    stats = pool.statistics()
    assert stats.submitted == 0
    await asyncio.wait_for(pool.drain(), 5)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_workers": 0}, ValueError, "max_workers"),
        ({"max_workers": 2.5}, TypeError, "max_workers"),
        ({"max_workers": 2, "min_workers": 3}, ValueError, "min_workers"),
        ({"min_workers": -1}, ValueError, "min_workers"),
        ({"max_queue": 0}, ValueError, "max_queue"),
        ({"idle_timeout": 0}, ValueError, "idle_timeout"),
        ({"aging": -1}, ValueError, "aging"),
        ({"coalesce": 1}, TypeError, "coalesce"),
        ({"reducer": object()}, TypeError, "reducer"),
        ({"name": 3}, TypeError, "name"),
    ],
)
def test_bad_constructor_arguments(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    """The constructor rejects wrong limits with an error naming the argument."""
    with pytest.raises(error, match=match):
        WorkerPool(**kwargs)


def test_default_max_workers_follows_thread_pool_executor() -> None:
    """Without max_workers the pool allows min(32, cpus + 4) threads, none started."""
    import os

    pool = WorkerPool()
    stats = pool.statistics()
    assert stats.max_workers == min(32, (os.cpu_count() or 1) + 4)
    assert stats.workers == 0


async def test_map_strict_checks_lengths(make_pool: Any) -> None:
    """map(strict=True) raises ValueError for iterables of different lengths."""
    pool = make_pool(2)
    assert await pool.map(pow, [1, 2, 3], [2, 2]) == [1, 4]
    with pytest.raises(ValueError, match=r"shorter|longer"):
        await pool.map(pow, [1, 2, 3], [2, 2], strict=True)
    await pool.drain()
