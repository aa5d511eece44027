"""``reducer.hooks`` is assignable: checked as at construction, effective for
later calls, while executions in flight finish with the hooks they started with."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from async_reduce import AsyncReducer, async_reduce, async_reduceable
from async_reduce.hooks import BaseHooks, StatisticsOverallHooks


class Recorder(BaseHooks):
    """Records every hook call as (method, ident or event)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def on_apply_for(self, coro: Any, ident: Any) -> None:
        self.calls.append(("apply", ident))

    def on_executing_for(self, coro: Any, ident: Any) -> None:
        self.calls.append(("executing", ident))

    def on_reducing_for(self, coro: Any, ident: Any) -> None:
        self.calls.append(("reducing", ident))

    def on_result_for(self, coro: Any, ident: Any, result: Any) -> None:
        self.calls.append(("result", ident))

    def on_exception_for(self, coro: Any, ident: Any, exception: Any) -> None:
        self.calls.append(("exception", ident))

    def on_execution_finished(self, event: Any) -> None:
        self.calls.append(("finished", event.ident))

    def on_caller_left(self, event: Any) -> None:
        self.calls.append(("left", event.ident))

    def on_execution_abandoned(self, event: Any) -> None:
        self.calls.append(("abandoned", event.ident))


class OldStyle:
    """A 1.x-style hooks object: the five 1.x methods only, not a BaseHooks."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_apply_for(self, coro: Any, ident: Any) -> None:
        self.calls.append("apply")

    def on_executing_for(self, coro: Any, ident: Any) -> None:
        self.calls.append("executing")

    def on_reducing_for(self, coro: Any, ident: Any) -> None:
        self.calls.append("reducing")

    def on_result_for(self, coro: Any, ident: Any, result: Any) -> None:
        self.calls.append("result")

    def on_exception_for(self, coro: Any, ident: Any, exception: Any) -> None:
        self.calls.append("exception")


class AsyncHookMethod:
    async def method(self, coro: Any, ident: Any, result: Any) -> None:
        return None


async def settle() -> None:
    """Let every ready callback run (a few loop iterations, no wall clock)."""
    for _ in range(5):
        await asyncio.sleep(0)


@contextlib.contextmanager
def hooks_on(reducer: AsyncReducer, hooks: Any) -> Iterator[None]:
    """Attach ``hooks`` to a shared reducer for the block, then restore."""
    before = reducer.hooks
    reducer.hooks = hooks
    try:
        yield
    finally:
        reducer.hooks = before


async def value(x: int) -> int:
    await asyncio.sleep(0)
    return x


async def test_statistics_on_the_module_level_reducer() -> None:
    """``async_reduce.hooks = StatisticsOverallHooks()`` counts calls and decorators."""
    stats = StatisticsOverallHooks()

    @async_reduceable
    async def doubled(x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    with hooks_on(async_reduce, stats):
        assert async_reduce.hooks is stats
        assert (
            await asyncio.gather(*(async_reduce(value(1)) for _ in range(5))) == [1] * 5
        )
        assert await asyncio.gather(doubled(3), doubled(3)) == [6, 6]
    assert str(stats) == "Stats(total=7, executed=2, reduced=5, errors=0)"
    assert stats.in_flight == 0


@pytest.mark.parametrize(
    "bad",
    [
        object(),
        "hooks",
        3,
        type("Partial", (), {"on_apply_for": print})(),
        StatisticsOverallHooks,
        type("AsyncHook", (BaseHooks,), {"on_result_for": AsyncHookMethod.method})(),
    ],
    ids=["object", "str", "int", "partial", "class", "async-method"],
)
def test_assignment_is_checked_like_construction(bad: Any) -> None:
    """Assigning what the constructor refuses raises its TypeError, changing nothing."""
    with pytest.raises(TypeError) as at_construction:
        AsyncReducer(hooks=bad)
    kept = StatisticsOverallHooks()
    reducer = AsyncReducer(hooks=kept)
    with pytest.raises(TypeError) as at_assignment:
        reducer.hooks = bad
    assert str(at_assignment.value) == str(at_construction.value)
    assert reducer.hooks is kept


async def test_in_flight_execution_finishes_with_its_hooks() -> None:
    """After A is replaced by B, A's execution ends in A; newcomers report to B."""
    first, second = Recorder(), Recorder()
    reducer = AsyncReducer(hooks=first)
    gate = asyncio.Event()

    async def work() -> str:
        await gate.wait()
        return "done"

    leader = asyncio.ensure_future(reducer(work(), ident="k"))
    await settle()
    reducer.hooks = second
    assert reducer.hooks is second
    joiner = asyncio.ensure_future(reducer(work(), ident="k"))
    await settle()
    gate.set()
    assert await asyncio.gather(leader, joiner) == ["done", "done"]
    assert first.calls == [
        ("apply", "k"),
        ("executing", "k"),
        ("result", "k"),
        ("finished", "k"),
    ]
    assert second.calls == [("apply", "k"), ("reducing", "k")]
    # Later executions report to the new hooks only.
    assert await reducer(value(4), ident="k") == 4
    assert second.names()[2:] == ["apply", "executing", "result", "finished"]
    assert len(first.calls) == 4


async def test_execution_started_without_hooks_can_be_joined_with_hooks() -> None:
    """Joining a hook-less execution after hooks were set works and reports it."""
    reducer = AsyncReducer()
    gate = asyncio.Event()

    async def work(x: int) -> int:
        await gate.wait()
        return x

    leader = asyncio.ensure_future(reducer(work(1)))
    await settle()
    recorder = Recorder()
    reducer.hooks = recorder
    joiner = asyncio.ensure_future(reducer(work(1)))
    await settle()
    gate.set()
    assert await asyncio.gather(leader, joiner) == [1, 1]
    assert recorder.names() == ["apply", "reducing"]


async def test_hooks_detached_while_in_flight() -> None:
    """After ``hooks = None``, an execution in flight still reports to its hooks."""
    recorder = Recorder()
    reducer = AsyncReducer(hooks=recorder)
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    caller = asyncio.ensure_future(reducer(forever(), ident="k"))
    await started.wait()
    reducer.hooks = None
    assert reducer.hooks is None
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await settle()
    assert recorder.names() == [
        "apply",
        "executing",
        "left",
        "abandoned",
        "exception",
        "finished",
    ]
    assert await reducer(value(2), ident="k") == 2
    assert len(recorder.calls) == 6


async def test_replaced_by_hooks_without_events_still_finishes_old_ones() -> None:
    """Replaced by 1.x-style hooks, old statistics still see their execution end."""
    stats = StatisticsOverallHooks()
    reducer = AsyncReducer(hooks=stats)
    gate = asyncio.Event()

    async def work() -> int:
        await gate.wait()
        return 1

    caller = asyncio.ensure_future(reducer(work(), ident="k"))
    await settle()
    assert stats.in_flight == 1
    old_style = OldStyle()
    reducer.hooks = old_style
    assert reducer.hooks is old_style
    gate.set()
    assert await caller == 1
    assert stats.in_flight == 0
    assert stats.executed == 1
    assert await reducer(value(1), ident="j") == 1
    assert old_style.calls == ["apply", "executing", "result"]


operations = st.lists(
    st.one_of(
        st.tuples(st.just("call"), st.sampled_from(["a", "b"])),
        st.tuples(st.just("assign"), st.sampled_from([0, 1, None])),
        st.tuples(st.just("finish"), st.sampled_from(["a", "b"])),
        st.tuples(st.just("cancel"), st.integers(0, 20)),
        st.tuples(st.just("step")),
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(operations)
def test_each_hooks_object_sees_whole_executions(ops: list[tuple[Any, ...]]) -> None:
    """Under any interleaving with assignments, hooks see whole executions."""
    asyncio.run(_assignment_scenario(ops))


async def _assignment_scenario(ops: list[tuple[Any, ...]]) -> None:
    hooks = [StatisticsOverallHooks(), StatisticsOverallHooks()]
    recorders = [Recorder(), Recorder()]
    reducer = AsyncReducer()
    gates: dict[str, asyncio.Event] = {"a": asyncio.Event(), "b": asyncio.Event()}

    async def work(key: str) -> str:
        gate = gates[key]
        await gate.wait()
        return key

    callers: list[asyncio.Task[str]] = []
    for op in ops:
        if op[0] == "call":
            callers.append(asyncio.ensure_future(reducer(work(op[1]), ident=op[1])))
        elif op[0] == "assign":
            index = op[1]
            reducer.hooks = None if index is None else hooks[index] & recorders[index]
        elif op[0] == "finish":
            gates[op[1]].set()
            gates[op[1]] = asyncio.Event()
        elif op[0] == "cancel" and callers:
            callers[op[1] % len(callers)].cancel()
        await asyncio.sleep(0)
    for key in gates:
        gates[key].set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    for result in results:
        assert result in ("a", "b") or isinstance(result, asyncio.CancelledError)
    await settle()
    assert len(reducer) == 0
    for stats, recorder in zip(hooks, recorders, strict=True):
        assert stats.in_flight == 0, recorder.calls
        assert stats.total == stats.started + stats.reduced
        names = recorder.names()
        assert names.count("executing") == names.count("finished"), names
        assert names.count("executing") == (
            names.count("result") + names.count("exception")
        ), names
