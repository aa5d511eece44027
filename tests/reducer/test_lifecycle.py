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

from async_reduce import AsyncReducer

from .conftest import Entry, Gate, capture_loop_errors, settle


class Boom(Exception):
    pass


async def test_every_caller_gets_the_exception(entry: Entry, gate: Gate) -> None:
    """An exception of the shared work reaches every caller."""
    reducer = entry.reducer()
    fail = entry.bind(reducer, gate.fail)
    boom = Boom("down")
    callers = [asyncio.ensure_future(fail(boom)) for _ in range(5)]
    await gate.running.wait()
    gate.release.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert gate.started == 1
    # Each caller raises a copy of its own (see test_hardening).
    assert all(type(r) is Boom and r.args == ("down",) for r in results)
    assert len({id(r) for r in results}) == 5
    assert len(reducer) == 0


async def test_key_is_released_when_the_work_ends(entry: Entry, gate: Gate) -> None:
    """After an execution ends, the next call starts a new one."""
    reducer = entry.reducer()
    work = entry.bind(reducer, gate.work)
    gate.release.set()
    assert await work(1) == 1
    assert len(reducer) == 0
    assert await work(1) == 1
    assert gate.started == 2
    assert len(reducer) == 0


class Counter:
    """Work that returns how many times it has run."""

    def __init__(self) -> None:
        self.runs = 0

    async def work(self) -> int:
        self.runs += 1
        await asyncio.sleep(0)
        return self.runs


async def test_key_released_before_callers_resume(entry: Entry) -> None:
    """A caller that re-calls as soon as it resumes starts a fresh execution."""
    reducer = entry.reducer()
    work = entry.bind(reducer, Counter().work)

    async def twice() -> tuple[int, int]:
        first = await work()
        return first, await work()

    assert await asyncio.gather(twice(), twice()) == [(1, 2), (1, 2)]


async def test_cancelled_caller_leaves_others_unaffected(
    entry: Entry, gate: Gate
) -> None:
    """Cancelling one caller gives it CancelledError; the others get the result."""
    reducer = entry.reducer()
    work = entry.bind(reducer, gate.work)
    callers = [asyncio.ensure_future(work(7)) for _ in range(3)]
    await gate.running.wait()
    await _leave(callers[0])
    assert callers[0].cancelled()
    assert gate.cancelled == 0
    assert len(reducer) == 1
    gate.release.set()
    assert await asyncio.gather(*callers[1:]) == [7, 7]
    assert gate.started == 1
    assert len(reducer) == 0


async def test_last_caller_leaving_cancels_the_work(entry: Entry, gate: Gate) -> None:
    """When every caller has left, the shared work is cancelled (no orphan)."""
    reducer = entry.reducer()
    work = entry.bind(reducer, gate.work)
    callers = [asyncio.ensure_future(work(7)) for _ in range(3)]
    await gate.running.wait()
    for caller in callers[:2]:
        await _leave(caller)
    assert gate.cancelled == 0  # one caller still waits
    await _leave(callers[2])
    await settle()
    assert gate.cancelled == 1
    assert len(reducer) == 0


async def test_abandoned_key_starts_afresh_at_once(entry: Entry, gate: Gate) -> None:
    """When the last caller leaves, its key is free at once, before the work ends."""
    reducer = entry.reducer()
    work = entry.bind(reducer, gate.work)
    gate.cleanup = asyncio.Event()  # the cancelled work takes its time to end
    first = asyncio.ensure_future(work("x"))
    await gate.running.wait()
    await _leave(first)
    await settle()
    assert gate.cancelled == 1  # the old work is still in its cleanup
    assert len(reducer) == 0
    second = asyncio.ensure_future(work("x"))
    await settle()
    assert gate.started == 2  # did not join the cancelled execution
    gate.cleanup.set()  # the old execution ends: the new one keeps its key
    await settle()
    assert len(reducer) == 1
    gate.release.set()
    assert await second == "x"
    assert len(reducer) == 0


async def test_orphans_finish_lets_the_work_complete(entry: Entry, gate: Gate) -> None:
    """orphans="finish" keeps the work running after every caller left."""
    reducer = entry.reducer(orphans="finish")
    work = entry.bind(reducer, gate.work)
    caller = asyncio.ensure_future(work(1))
    await gate.running.wait()
    await _leave(caller)
    await settle()
    assert gate.cancelled == 0
    assert len(reducer) == 1
    late = asyncio.ensure_future(work(1))
    await settle()
    gate.release.set()
    assert await late == 1
    assert gate.started == 1  # joined the orphaned execution
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


async def test_unretrieved_exception_is_never_logged(entry: Entry, gate: Gate) -> None:
    """An exception nobody is left to receive is not logged as never retrieved."""
    errors = capture_loop_errors()
    # Hooks that keep no exception: its traceback would keep the task alive.
    reducer = entry.reducer(orphans="finish", light=True)
    fail = entry.bind(reducer, gate.fail)
    others = asyncio.all_tasks()
    caller = asyncio.ensure_future(fail(Boom("nobody listens")))
    await gate.running.wait()
    shared = _shared_task(others | {caller})
    await _leave(caller)
    del caller  # its traceback would keep the shared task alive
    gate.release.set()
    await _collected(shared)
    assert errors == []
    assert len(reducer) == 0


class Stubborn(Gate):
    """Work that turns its cancellation into an error."""

    async def work(self, value: Any = None) -> Any:
        try:
            return await super().work(value)
        except asyncio.CancelledError:
            raise Boom("cleanup failed") from None


async def test_exception_raised_while_cancelling_is_not_logged(entry: Entry) -> None:
    """Work that turns its cancellation into an error logs nothing."""
    errors = capture_loop_errors()
    reducer = entry.reducer(light=True)
    stubborn = Stubborn()
    others = asyncio.all_tasks()
    caller = asyncio.ensure_future(entry.bind(reducer, stubborn.work)())
    await stubborn.running.wait()
    shared = _shared_task(others | {caller})
    await _leave(caller)
    del caller
    await _collected(shared)
    assert stubborn.cancelled == 1
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
    entry: Entry, exc_type: type[BaseException]
) -> None:
    """KeyboardInterrupt/SystemExit in the work reach callers; no key stays stuck."""
    reducer = entry.reducer()
    outcome: list[Any] = []

    def drive() -> None:
        """Run the callers on a loop of their own until each has finished."""
        loop = asyncio.new_event_loop()
        try:

            async def work() -> None:
                await asyncio.sleep(0)
                raise exc_type()

            call = entry.bind(reducer, work)
            callers = [loop.create_task(call()) for _ in range(3)]
            # asyncio lets these two out of the event loop each time a task
            # raises them, so drive the loop until every caller has finished.
            stops = 0
            while not all(caller.done() for caller in callers) and stops < 10:
                try:
                    loop.run_until_complete(asyncio.wait(callers))
                except exc_type:
                    stops += 1
            outcome.extend([stops, len(reducer), [c.exception() for c in callers]])
        finally:
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    drive()
    stops, in_flight, errors = outcome
    del outcome[:]
    # Finalise what the stopped loop left now: on CPython 3.11 a finaliser
    # running later, inside pytest's report of another test, can upset it.
    gc.collect()
    assert stops >= 1
    assert in_flight == 0
    assert all(isinstance(error, exc_type) for error in errors)


# -- timeouts ----------------------------------------------------------------


async def test_call_timeout_raises_builtin_timeout_error(
    entry: Entry, gate: Gate
) -> None:
    """A caller waits at most timeout seconds, then gets the builtin TimeoutError."""
    reducer = entry.reducer()
    work = entry.bind(reducer, gate.work, timeout=0.01)
    with pytest.raises(TimeoutError):
        await work(1)
    await settle()
    assert gate.cancelled == 1  # it was the only caller
    assert len(reducer) == 0
    if entry.hooks:
        [left] = [event for name, event in reducer.hooks.calls if name == "left"]
        assert (left.reason, left.remaining) == ("timeout", 0)


async def test_timed_out_caller_does_not_cancel_others(
    entry: Entry, gate: Gate
) -> None:
    """A timeout makes only that caller leave; the work goes on for the rest."""
    reducer = entry.reducer()
    patient = asyncio.ensure_future(entry.bind(reducer, gate.work)(1))
    await gate.running.wait()
    with pytest.raises(TimeoutError):
        await entry.bind(reducer, gate.work, timeout=0.01)(1)
    assert gate.cancelled == 0
    assert not patient.done()
    gate.release.set()
    assert await patient == 1
    assert gate.started == 1


async def test_reducer_default_timeout(entry: Entry, gate: Gate) -> None:
    """AsyncReducer(timeout=...) applies to every call; timeout=None disables it."""
    reducer = entry.reducer(timeout=0.01)
    patient = asyncio.ensure_future(entry.bind(reducer, gate.work, timeout=None)(2))
    await gate.running.wait()
    with pytest.raises(TimeoutError):
        # Joins the same execution: when it gives up, the default has elapsed.
        await entry.bind(reducer, gate.work)(2)
    assert not patient.done()
    assert gate.cancelled == 0
    gate.release.set()
    assert await patient == 2
    with pytest.raises(TimeoutError):
        await entry.bind(reducer, Gate().work)(3)  # alone: the default applies


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


class Runs:
    """Work whose every run waits on an event of its own; returns its number."""

    def __init__(self) -> None:
        self.ends: list[asyncio.Event] = []

    async def work(self, value: Any) -> int:
        number = len(self.ends)
        end = asyncio.Event()
        self.ends.append(end)
        await end.wait()
        return number


async def test_forgotten_execution_is_not_released_by_the_new_one(
    entry: Entry,
) -> None:
    """The old execution ending never removes the new execution's key."""
    reducer = entry.reducer()
    runs = Runs()
    work = entry.bind(reducer, runs.work)
    first = asyncio.ensure_future(work("v"))
    await settle()
    ((key,),) = (list(flights) for flights in reducer._all_flights())
    assert reducer.forget(key) is True
    second = asyncio.ensure_future(work("v"))
    await settle()
    assert len(runs.ends) == 2
    runs.ends[0].set()
    assert await first == 0
    assert key in reducer  # still the new execution's
    third = asyncio.ensure_future(work("v"))
    await settle()
    runs.ends[1].set()
    assert await asyncio.gather(second, third) == [1, 1]
    assert len(runs.ends) == 2
    assert len(reducer) == 0


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks are 3.12+")
async def test_eager_task_factory_finishing_at_once_leaves_no_key(
    entry: Entry,
) -> None:
    """With an eager task factory, work that finishes at once frees its key."""
    loop = asyncio.get_running_loop()
    loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
    try:
        reducer = entry.reducer()

        async def instant(x: int) -> int:
            return x

        async def failing() -> None:
            raise Boom()

        assert await entry.bind(reducer, instant)(1) == 1
        with pytest.raises(Boom):
            await entry.bind(reducer, failing)()
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
