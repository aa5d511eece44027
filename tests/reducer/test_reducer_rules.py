"""Reducer rules that the lifecycle tests leave out: failures to start, loops,
forget(), the coroutine protocol of a call, and the errors for wrong arguments."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from async_reduce import AsyncReducer

from .conftest import Entry, Gate, settle


class NoTasks(RuntimeError):
    """What the task factory raises while creating tasks is refused."""


async def test_a_task_that_cannot_be_created_leaves_no_key(entry: Entry) -> None:
    """If the shared task cannot be created, the caller gets the error, no key stays."""
    loop = asyncio.get_running_loop()
    refuse = True

    def factory(loop: Any, coro: Any, **kwargs: Any) -> Any:
        if refuse:
            coro.close()
            raise NoTasks("refused")
        return asyncio.Task(coro, loop=loop, **kwargs)

    reducer = entry.reducer()
    gate = Gate()
    gate.release.set()
    work = entry.bind(reducer, gate.work)
    loop.set_task_factory(factory)
    try:
        with pytest.raises(NoTasks):
            await work(1)  # awaited here: the only task made is the shared one
        assert len(reducer) == 0
        refuse = False
        assert await work(1) == 1  # the key was free: a fresh start works
    finally:
        loop.set_task_factory(None)
    assert len(reducer) == 0


def test_successive_event_loops_keep_apart(entry: Entry) -> None:
    """A reducer used by successive asyncio.run() calls works in each."""
    reducer = entry.reducer()

    async def work(x: int) -> int:
        await asyncio.sleep(0)
        return x

    call = entry.bind(reducer, work)

    async def main(x: int) -> list[int]:
        return list(await asyncio.gather(call(x), call(x)))

    assert asyncio.run(main(1)) == [1, 1]
    assert asyncio.run(main(2)) == [2, 2]
    assert len(reducer) == 0


def test_loops_in_threads_never_share_futures(entry: Entry) -> None:
    """Two loops in two threads running the same key each run their own work."""
    reducer = entry.reducer()
    both_running = threading.Barrier(2, timeout=10)
    results: dict[str, Any] = {}

    async def work(name: str) -> str:
        await asyncio.get_running_loop().run_in_executor(None, both_running.wait)
        return threading.current_thread().name

    call = entry.bind(reducer, work)

    def run() -> None:
        async def main() -> Any:
            return await asyncio.gather(call("same"), call("same"))

        name = threading.current_thread().name
        try:
            results[name] = asyncio.run(main())
        except BaseException as exc:  # reported below
            results[name] = exc

    threads = [threading.Thread(target=run, name=n) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert results == {"a": ["a", "a"], "b": ["b", "b"]}
    assert len(reducer) == 0


async def test_a_loop_finds_its_executions_after_another_loop_used_the_reducer(
    entry: Entry,
) -> None:
    """Another loop using the reducer meanwhile never hides this loop's keys."""
    reducer = entry.reducer()
    gate = Gate()
    work = entry.bind(reducer, gate.work)
    first = asyncio.ensure_future(work(1))
    await gate.running.wait()

    async def quick(x: int) -> int:
        return x

    async def elsewhere() -> int:
        return await entry.bind(reducer, quick)(5)  # type: ignore[no-any-return]

    done = threading.Thread(target=lambda: asyncio.run(elsewhere()))
    done.start()
    done.join(10)
    second = asyncio.ensure_future(work(1))  # must join the first
    await settle()
    assert gate.started == 1
    gate.release.set()
    assert await asyncio.gather(first, second) == [1, 1]


def test_forget_rules() -> None:
    """forget(): False when nothing is in flight, anywhere; TypeError if unhashable."""
    reducer = AsyncReducer()
    assert reducer.forget("k") is False  # outside any loop, no loop ever used

    async def inside() -> bool:
        return reducer.forget("k")

    assert asyncio.run(inside()) is False  # a loop with no executions
    with pytest.raises(TypeError):
        reducer.forget(["unhashable"])  # type: ignore[arg-type]


# -- the call is a coroutine ---------------------------------------------------


async def _value() -> int:
    await asyncio.sleep(0)
    return 1


@pytest.mark.parametrize("form", ["type", "instance", "type and value"])
def test_throw_before_the_call_ran_raises_it_and_closes_coro(form: str) -> None:
    """throw() on a call that never ran raises what was thrown and closes coro."""
    coro = _value()
    call = AsyncReducer()(coro)
    exc = LookupError("thrown")
    args = {
        "type": (LookupError,),
        "instance": (exc,),
        "type and value": (LookupError, exc),
    }
    with pytest.raises(LookupError) as raised:
        call.throw(*args[form])
    if form != "type":
        assert raised.value is exc
    assert coro.cr_frame is None  # closed
    with pytest.raises(RuntimeError):
        call.send(None)  # done: cannot run any more


def _raise_elsewhere() -> None:
    raise LookupError("elsewhere")


def test_throw_keeps_the_traceback_given() -> None:
    """throw(type, value, tb) raises value with the traceback it was given."""
    try:
        _raise_elsewhere()
    except LookupError as caught:
        tb = caught.__traceback__
    exc = LookupError("thrown")  # raised nowhere yet: no traceback of its own
    call = AsyncReducer()(_value())
    with pytest.raises(LookupError) as raised:
        call.throw(LookupError, exc, tb)
    assert raised.value is exc
    frames = []
    walk = raised.value.__traceback__
    while walk is not None:
        frames.append(walk.tb_frame.f_code.co_name)
        walk = walk.tb_next
    assert "_raise_elsewhere" in frames


async def test_throw_into_a_started_call_raises_the_value_given() -> None:
    """throw(type, value) into a started call raises that very value."""
    reducer = AsyncReducer()
    gate = Gate()
    call = reducer(gate.work(1))
    call.send(None)  # started: waits on the execution
    await gate.running.wait()
    exc = LookupError("into a waiting call")
    with pytest.raises(LookupError) as raised:
        call.throw(LookupError, exc)
    assert raised.value is exc
    await settle()
    assert len(reducer) == 0  # it left; it was the only caller


async def test_close_after_the_call_started_leaves_it() -> None:
    """close() on a call that started makes it leave, like closing a coroutine."""
    reducer = AsyncReducer()
    gate = Gate()
    call = reducer(gate.work(1))
    call.send(None)  # started: joined the execution, now waits
    await gate.running.wait()
    call.close()
    await asyncio.sleep(0)
    assert gate.cancelled == 1  # it was the only caller: the work is cancelled
    assert len(reducer) == 0


async def test_ident_accepts_any_coroutine_object() -> None:
    """With ident=, coroutine-compatible objects work; other objects are refused."""
    reducer = AsyncReducer()
    inner = AsyncReducer()(_value())  # not a native coroutine, but a Coroutine
    assert await reducer(inner, ident="k") == 1
    with pytest.raises(TypeError, match="coro must be a coroutine, got int"):
        reducer(42, ident="k")  # type: ignore[arg-type]


def _gen() -> Any:
    """A coroutine that is not a native one (a generator-based awaitable)."""

    class Awaitable:
        def send(self, value: Any) -> Any:
            raise StopIteration(1)

        def throw(self, *args: Any) -> Any:
            raise StopIteration(1)

        def close(self) -> None:
            pass

        def __await__(self) -> Any:
            return self

        def __iter__(self) -> Any:
            return self

        def __next__(self) -> Any:
            raise StopIteration(1)

    import collections.abc

    collections.abc.Coroutine.register(Awaitable)
    return Awaitable()


@pytest.mark.parametrize(
    ("coro", "ident", "message"),
    [
        (42, None, "coro must be a coroutine, got int"),
        (_value, [1], "ident must be hashable, got list"),
        (_gen, None, "coro: cannot compute an automatic key for Awaitable objects"),
    ],
)
def test_wrong_calls_raise_errors_naming_what_is_wrong(
    coro: Any, ident: Any, message: str
) -> None:
    """Each wrong call raises TypeError at the call, naming the argument and type."""
    made = coro() if callable(coro) else coro
    try:
        with pytest.raises(TypeError, match=message):
            AsyncReducer()(made, ident=ident)
    finally:
        if hasattr(made, "close"):
            made.close()


def test_hooks_error_lists_the_methods() -> None:
    """hooks= without the hook methods: the TypeError names each method needed."""
    with pytest.raises(TypeError) as raised:
        AsyncReducer(hooks=object())
    message = str(raised.value)
    for name in (
        "on_apply_for",
        "on_executing_for",
        "on_reducing_for",
        "on_result_for",
        "on_exception_for",
    ):
        assert name in message
    assert "async_reduce.hooks.BaseHooks" in message


async def test_legacy_hooks_object_gets_the_event_methods_it_defines() -> None:
    """A 1.x-style hooks object (no BaseHooks) gets the newer events it defines."""
    seen: list[str] = []

    class Legacy:
        def on_apply_for(self, coro: Any, ident: Any) -> None:
            pass

        def on_executing_for(self, coro: Any, ident: Any) -> None:
            pass

        def on_reducing_for(self, coro: Any, ident: Any) -> None:
            pass

        def on_result_for(self, coro: Any, ident: Any, result: Any) -> None:
            pass

        def on_exception_for(self, coro: Any, ident: Any, exc: Any) -> None:
            pass

        def on_execution_finished(self, event: Any) -> None:
            seen.append(event.outcome)

    reducer = AsyncReducer(hooks=Legacy())
    assert await reducer(_value()) == 1
    assert seen == ["result"]
