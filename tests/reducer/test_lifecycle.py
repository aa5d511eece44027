"""The lifecycle contract: one execution per key, cancellation, timeouts, errors."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import threading
import weakref
from typing import Any

import pytest

from async_reduce import AsyncReducer, async_reduceable

from .conftest import Gate, capture_loop_errors, settle


class Boom(Exception):
    pass


async def test_every_caller_gets_the_exception() -> None:
    """An exception of the shared work reaches every caller."""
    reducer = AsyncReducer()
    started = 0

    async def fail() -> None:
        nonlocal started
        started += 1
        await asyncio.sleep(0)
        raise Boom("down")

    results = await asyncio.gather(
        *(reducer(fail()) for _ in range(5)), return_exceptions=True
    )
    assert started == 1
    assert all(isinstance(r, Boom) for r in results)
    assert len(reducer) == 0


async def test_key_is_released_when_the_work_ends() -> None:
    """After an execution ends, the next call starts a new one."""
    reducer = AsyncReducer()
    gate = Gate()
    gate.release.set()
    await reducer(gate.work(1))
    await reducer(gate.work(1))
    assert gate.started == 2
    assert len(reducer) == 0


async def test_key_released_before_callers_resume() -> None:
    """A caller that re-calls as soon as it resumes starts a fresh execution."""
    reducer = AsyncReducer()
    runs = 0

    async def work() -> int:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0)
        return runs

    async def twice() -> tuple[int, int]:
        first = await reducer(work(), ident="k")
        return first, await reducer(work(), ident="k")

    assert await asyncio.gather(twice(), twice()) == [(1, 2), (1, 2)]


async def test_cancelled_caller_leaves_others_unaffected(gate: Gate) -> None:
    """Cancelling one caller gives it CancelledError; the others get the result."""
    reducer = AsyncReducer()
    callers = [asyncio.ensure_future(reducer(gate.work(7))) for _ in range(3)]
    await gate.running.wait()
    callers[0].cancel()
    await settle()
    assert callers[0].cancelled()
    assert gate.cancelled == 0
    gate.release.set()
    assert await asyncio.gather(*callers[1:]) == [7, 7]
    assert len(reducer) == 0


async def test_last_caller_leaving_cancels_the_work(gate: Gate) -> None:
    """When every caller has left, the shared work is cancelled (no orphan)."""
    reducer = AsyncReducer()
    callers = [asyncio.ensure_future(reducer(gate.work(7))) for _ in range(3)]
    await gate.running.wait()
    for caller in callers:
        caller.cancel()
    await settle()
    assert gate.cancelled == 1
    assert len(reducer) == 0


async def test_abandoned_key_starts_afresh_at_once(gate: Gate) -> None:
    """A call after the last caller left does not join the cancelled work."""
    reducer = AsyncReducer()
    first = asyncio.ensure_future(reducer(gate.work(1), ident="k"))
    await gate.running.wait()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    # The old work may not even have seen its cancellation yet.
    second = asyncio.ensure_future(reducer(gate.work(2), ident="k"))
    await settle()
    gate.release.set()
    assert await second == 2
    assert gate.started == 2


async def test_orphans_finish_lets_the_work_complete(gate: Gate) -> None:
    """orphans="finish" keeps the work running after every caller left."""
    reducer = AsyncReducer(orphans="finish")
    caller = asyncio.ensure_future(reducer(gate.work(1), ident="k"))
    await gate.running.wait()
    caller.cancel()
    await settle()
    assert gate.cancelled == 0
    assert "k" in reducer
    late = asyncio.ensure_future(reducer(gate.work(2), ident="k"))
    await settle()
    gate.release.set()
    assert await late == 1  # joined the orphaned execution
    assert gate.started == 1
    assert len(reducer) == 0


async def _leave(caller: asyncio.Future[Any]) -> None:
    """Cancel ``caller`` and wait until it has left, keeping no traceback."""
    caller.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await caller


async def _collected(task: weakref.ref[asyncio.Task[Any]]) -> None:
    """Let ``task`` end, then collect it: its finaliser logs what it never gave."""
    for _ in range(50):
        if task() is None:
            break
        await asyncio.sleep(0)
        gc.collect()
    assert task() is None, "the shared task was never finalised"
    await settle()


def _shared_task(others: set[asyncio.Task[Any]]) -> weakref.ref[asyncio.Task[Any]]:
    """A weak reference to the one task started since ``others`` was taken."""
    (task,) = asyncio.all_tasks() - others - {asyncio.current_task()}
    return weakref.ref(task)


async def test_unretrieved_exception_is_never_logged() -> None:
    """An exception nobody is left to receive is not logged as never retrieved."""
    errors = capture_loop_errors()
    reducer = AsyncReducer(orphans="finish")
    release = asyncio.Event()
    running = asyncio.Event()

    async def fail() -> None:
        running.set()
        await release.wait()
        raise Boom("nobody listens")

    others = asyncio.all_tasks()
    caller = asyncio.ensure_future(reducer(fail()))
    await running.wait()
    shared = _shared_task(others | {caller})
    await _leave(caller)
    del caller  # its traceback would keep the shared task alive
    release.set()
    await _collected(shared)
    assert errors == []
    assert len(reducer) == 0


async def test_exception_raised_while_cancelling_is_not_logged() -> None:
    """Work that turns its cancellation into an error logs nothing."""
    errors = capture_loop_errors()
    reducer = AsyncReducer()
    running = asyncio.Event()

    async def stubborn() -> None:
        running.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise Boom("cleanup failed") from None

    others = asyncio.all_tasks()
    caller = asyncio.ensure_future(reducer(stubborn()))
    await running.wait()
    shared = _shared_task(others | {caller})
    await _leave(caller)
    del caller
    await _collected(shared)
    assert errors == []
    assert len(reducer) == 0


async def test_shared_task_survives_garbage_collection() -> None:
    """Work awaiting a future only it references survives gc.collect()."""
    reducer = AsyncReducer()
    loop = asyncio.get_running_loop()
    holder: list[asyncio.Future[int]] = []

    async def work() -> int:
        fut: asyncio.Future[int] = loop.create_future()
        holder.append(fut)
        loop.call_soon(_collect_then_resolve, holder)
        return await fut

    def _collect_then_resolve(box: list[asyncio.Future[int]]) -> None:
        fut = box.pop()
        # Only the suspended work references ``fut`` now.
        import weakref

        ref = weakref.ref(fut)
        del fut
        gc.collect()
        alive = ref()
        assert alive is not None, "the shared work was garbage-collected"
        alive.set_result(42)

    results = await asyncio.wait_for(
        asyncio.gather(*(reducer(work(), ident="gc") for _ in range(3))), 5
    )
    assert results == [42, 42, 42]


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_base_exceptions_reach_callers_and_free_the_key(
    exc_type: type[BaseException],
) -> None:
    """KeyboardInterrupt/SystemExit in the work reach callers; no key stays stuck."""
    reducer = AsyncReducer()
    loop = asyncio.new_event_loop()
    try:

        async def work() -> None:
            await asyncio.sleep(0)
            raise exc_type()

        callers = [loop.create_task(reducer(work())) for _ in range(3)]
        # asyncio lets these two out of the event loop each time a task
        # raises them, so drive the loop until every caller has finished.
        stops = 0
        while not all(caller.done() for caller in callers) and stops < 10:
            try:
                loop.run_until_complete(asyncio.wait(callers))
            except exc_type:
                stops += 1
        assert stops >= 1
        assert len(reducer) == 0
        assert all(isinstance(c.exception(), exc_type) for c in callers)
    finally:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()


# -- timeouts ----------------------------------------------------------------


async def test_call_timeout_raises_builtin_timeout_error(gate: Gate) -> None:
    """A caller waits at most timeout seconds, then gets the builtin TimeoutError."""
    reducer = AsyncReducer()
    with pytest.raises(TimeoutError):
        await reducer(gate.work(1), timeout=0.01)
    await settle()
    assert gate.cancelled == 1  # it was the only caller
    assert len(reducer) == 0


async def test_timed_out_caller_does_not_cancel_others(gate: Gate) -> None:
    """A timeout makes only that caller leave; the work goes on for the rest."""
    reducer = AsyncReducer()
    patient = asyncio.ensure_future(reducer(gate.work(1), ident="k"))
    await gate.running.wait()
    with pytest.raises(TimeoutError):
        await reducer(gate.work(2), ident="k", timeout=0.01)
    assert gate.cancelled == 0
    gate.release.set()
    assert await patient == 1


async def test_reducer_default_timeout(gate: Gate) -> None:
    """AsyncReducer(timeout=...) applies to every call; None in a call disables it."""
    reducer = AsyncReducer(timeout=0.01)
    with pytest.raises(TimeoutError):
        await reducer(gate.work(1))
    call = asyncio.ensure_future(reducer(gate.work(2), timeout=None))
    await gate.running.wait()
    await asyncio.sleep(0.03)  # longer than the default timeout, on purpose
    assert not call.done()
    gate.release.set()
    assert await call == 2


async def test_decorator_timeout(gate: Gate) -> None:
    """@async_reduceable(timeout=...) bounds each caller's wait."""

    @async_reduceable(AsyncReducer(), timeout=0.01)
    async def slow() -> Any:
        return await gate.work(1)

    with pytest.raises(TimeoutError):
        await slow()


@pytest.mark.skipif(sys.version_info >= (3, 11), reason="3.10 only")
async def test_timeout_error_is_asyncio_timeout_error_on_310(gate: Gate) -> None:
    """On 3.10 the TimeoutError is also an asyncio.TimeoutError."""
    reducer = AsyncReducer()
    with pytest.raises(asyncio.TimeoutError):
        await reducer(gate.work(1), timeout=0.01)


# -- event loops and threads ---------------------------------------------------


def test_successive_event_loops_keep_apart() -> None:
    """A reducer used by successive asyncio.run() calls works in each."""
    reducer = AsyncReducer()

    async def work(x: int) -> int:
        await asyncio.sleep(0)
        return x

    async def main(x: int) -> list[int]:
        return await asyncio.gather(reducer(work(x)), reducer(work(x)))

    assert asyncio.run(main(1)) == [1, 1]
    assert asyncio.run(main(2)) == [2, 2]
    assert len(reducer) == 0


def test_loops_in_threads_never_share_futures() -> None:
    """Two loops in two threads running the same key each run their own work."""
    reducer = AsyncReducer()
    both_running = threading.Barrier(2, timeout=10)
    results: dict[str, Any] = {}

    async def work(name: str) -> str:
        await asyncio.get_running_loop().run_in_executor(None, both_running.wait)
        return name

    def run(name: str) -> None:
        async def main() -> Any:
            return await asyncio.gather(
                reducer(work(name), ident="same"), reducer(work(name), ident="same")
            )

        try:
            results[name] = asyncio.run(main())
        except BaseException as exc:  # reported below
            results[name] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert results == {"a": ["a", "a"], "b": ["b", "b"]}
    assert len(reducer) == 0


# -- introspection -----------------------------------------------------------


async def test_len_contains_and_forget(gate: Gate) -> None:
    """len() counts keys in flight; forget() makes the next call start anew."""
    reducer = AsyncReducer()
    first = asyncio.ensure_future(reducer(gate.work(1), ident="k"))
    await gate.running.wait()
    assert len(reducer) == 1
    assert "k" in reducer
    assert "other" not in reducer
    assert [] not in reducer  # unhashable: simply absent
    assert reducer.forget("k") is True
    assert "k" not in reducer
    assert reducer.forget("k") is False
    second = asyncio.ensure_future(reducer(gate.work(2), ident="k"))
    await settle()
    assert gate.started == 2
    gate.release.set()
    assert await asyncio.gather(first, second) == [1, 2]
    assert len(reducer) == 0


async def test_forgotten_execution_is_not_released_by_the_new_one(gate: Gate) -> None:
    """The old execution ending never removes the new execution's key."""
    reducer = AsyncReducer()
    old_release = asyncio.Event()

    async def old() -> str:
        await old_release.wait()
        return "old"

    first = asyncio.ensure_future(reducer(old(), ident="k"))
    await settle()
    reducer.forget("k")
    second = asyncio.ensure_future(reducer(gate.work("new"), ident="k"))
    await gate.running.wait()
    old_release.set()
    assert await first == "old"
    assert "k" in reducer
    third = asyncio.ensure_future(reducer(gate.work("x"), ident="k"))
    await settle()
    gate.release.set()
    assert await asyncio.gather(second, third) == ["new", "new"]


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks are 3.12+")
async def test_eager_task_factory_finishing_at_once_leaves_no_key() -> None:
    """With an eager task factory, work that finishes at once frees its key."""
    loop = asyncio.get_running_loop()
    loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
    try:
        reducer = AsyncReducer()

        async def instant(x: int) -> int:
            return x

        async def failing() -> None:
            raise Boom()

        assert await reducer(instant(1)) == 1
        with pytest.raises(Boom):
            await reducer(failing())
        assert len(reducer) == 0
    finally:
        loop.set_task_factory(None)


async def test_work_runs_in_the_starting_callers_context() -> None:
    """The shared work sees the context variables of the caller that started it."""
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="-")
    reducer = AsyncReducer()

    async def read() -> str:
        await asyncio.sleep(0)
        return var.get()

    var.set("leader")
    assert await reducer(read()) == "leader"


async def test_cancel_before_start_closes_the_coroutine() -> None:
    """A call cancelled before it ran closes coro: no "never awaited" warning."""
    reducer = AsyncReducer()

    async def work() -> int:
        await asyncio.sleep(0)
        return 1

    coro = work()
    task = asyncio.ensure_future(reducer(coro))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert coro.cr_frame is None  # closed
    gc.collect()
    assert len(reducer) == 0


def test_closing_an_unawaited_call_closes_the_coroutine() -> None:
    """reducer(coro).close() before awaiting closes coro too."""

    async def work() -> int:
        return 1

    coro = work()
    AsyncReducer()(coro).close()
    assert coro.cr_frame is None


async def test_a_call_can_be_awaited_only_once() -> None:
    """Awaiting the same call twice raises RuntimeError, like a coroutine."""

    async def work() -> int:
        await asyncio.sleep(0)
        return 1

    call = AsyncReducer()(work())
    assert await call == 1
    with pytest.raises(RuntimeError, match="already awaited"):
        await call
