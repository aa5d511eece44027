"""BaseHooks, composition with ``&``, isolation and the order of hook calls."""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

import pytest
from hooks_scenario import Recorder, run_scenario
from hypothesis import given
from hypothesis import strategies as st

import async_reduce.hooks
import async_reduce.hooks.base
from async_reduce import AsyncReducer
from async_reduce._events import ExecutionFinished
from async_reduce.hooks import BaseHooks, MultipleHooks


class Named(BaseHooks):
    """Records its name into a shared list on every call."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def __repr__(self) -> str:
        return f"Named({self.name!r})"

    def on_apply_for(self, coro: Any, ident: Any) -> None:
        self.log.append(self.name)

    def on_execution_finished(self, event: ExecutionFinished) -> None:
        self.log.append(self.name)


class Legacy:
    """A 1.x-style hooks object: the five methods, no BaseHooks, no new methods."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def on_apply_for(self, coro: Any, ident: Any) -> None:
        self.log.append("legacy")

    def on_executing_for(self, coro: Any, ident: Any) -> None:
        pass

    def on_reducing_for(self, coro: Any, ident: Any) -> None:
        pass

    def on_result_for(self, coro: Any, ident: Any, result: Any) -> None:
        pass

    def on_exception_for(self, coro: Any, ident: Any, exception: BaseException) -> None:
        pass


class Raising(BaseHooks):
    """Raises ``exc_type`` from every hook method."""

    def __init__(self, exc_type: type[Exception] = RuntimeError) -> None:
        self.exc_type = exc_type
        self.calls = 0

    def _raise(self, *args: Any) -> None:
        self.calls += 1
        raise self.exc_type("hook failure")


# One raising body for every hook method BaseHooks has.
for _name in dir(BaseHooks):
    if _name.startswith("on_"):
        setattr(Raising, _name, Raising._raise)


async def work(x: int) -> int:
    """Shared work that suspends once, as real I/O does."""
    await asyncio.sleep(0)
    return x


def _coro() -> Any:
    coro = work(1)
    coro.close()
    return coro


def _finished_event() -> ExecutionFinished:
    return ExecutionFinished(
        key="k", ident="k", location="m:f", outcome="result", duration=0.1, callers=1
    )


def test_public_names() -> None:
    """The 1.x import paths exist and every __all__ name is importable."""
    assert async_reduce.hooks.base.BaseHooks is BaseHooks
    assert async_reduce.hooks.base.MultipleHooks is MultipleHooks
    for module in (
        async_reduce.hooks,
        async_reduce.hooks.base,
        async_reduce.hooks.debug,
        async_reduce.hooks.statistics,
    ):
        for name in module.__all__:
            assert getattr(module, name).__doc__, f"{module.__name__}.{name}"
    from async_reduce.hooks import (  # noqa: F401
        DebugHooks,
        StatisticsDetailHooks,
        StatisticsOverallHooks,
    )


def test_base_hooks_do_nothing() -> None:
    """Every BaseHooks method accepts its arguments, returns None, changes nothing."""
    hooks = BaseHooks()
    coro = work(1)  # not started: a hook that ran or closed it would show
    event = object()  # event methods must not even look at their event
    per_call = {
        "on_apply_for": (coro, "i"),
        "on_executing_for": (coro, "i"),
        "on_reducing_for": (coro, "i"),
        "on_result_for": (coro, "i", 1),
        "on_exception_for": (coro, "i", ValueError()),
    }
    names = [name for name in dir(BaseHooks) if name.startswith("on_")]
    assert set(per_call) < set(names)
    try:
        for name in names:
            assert getattr(hooks, name)(*per_call.get(name, (event,))) is None, name
        assert inspect.getcoroutinestate(coro) == inspect.CORO_CREATED
        assert vars(hooks) == {}
    finally:
        coro.close()


def test_and_calls_in_written_order() -> None:
    """``a & b & c`` and ``a & (b & c)`` both call a, b, c in that order."""
    log: list[str] = []
    a, b, c = (Named(n, log) for n in "abc")
    for combined in (a & b & c, a & (b & c), (a & b) & c, MultipleHooks(a, b & c)):
        log.clear()
        combined.on_apply_for(_coro(), "i")
        assert log == ["a", "b", "c"]
        assert len(combined) == 3
        assert combined.hooks_list == [a, b, c]


def test_and_never_mutates_operands() -> None:
    """``&`` returns a new object; combining a pair twice leaks nothing into either."""
    log: list[str] = []
    a, b, c, d = (Named(n, log) for n in "abcd")
    pair = a & b
    first = pair & c
    second = pair & d
    assert len(pair) == 2
    assert pair.hooks_list == [a, b]
    assert first.hooks_list == [a, b, c]
    assert second.hooks_list == [a, b, d]
    right = b & c
    combined = a & right
    assert right.hooks_list == [b, c]
    assert combined is not right
    assert combined is not a  # type: ignore[comparison-overlap]


def test_hooks_list_is_a_copy() -> None:
    """Changing ``hooks_list`` does not change what MultipleHooks calls."""
    log: list[str] = []
    a, b = Named("a", log), Named("b", log)
    combined = a & b
    combined.hooks_list.append(Named("x", log))
    combined.on_apply_for(_coro(), "i")
    assert log == ["a", "b"]


@given(st.recursive(st.integers(0, 9), lambda inner: st.tuples(inner, inner)))
def test_any_nesting_calls_leaves_left_to_right(tree: Any) -> None:
    """However ``&`` is parenthesised, hooks run in the order they are written."""
    log: list[str] = []

    def build(node: Any) -> BaseHooks:
        if isinstance(node, int):
            return Named(str(node), log)
        return build(node[0]) & build(node[1])

    def leaves(node: Any) -> list[str]:
        return (
            [str(node)] if isinstance(node, int) else leaves(node[0]) + leaves(node[1])
        )

    build(tree).on_apply_for(_coro(), "i")
    assert log == leaves(tree)


def test_legacy_hooks_combine_on_either_side() -> None:
    """A 1.x-style object without BaseHooks combines with ``&`` from both sides."""
    log: list[str] = []
    a = Named("a", log)
    legacy = Legacy(log)
    for combined, expected in (
        (a & legacy, ["a", "legacy"]),  # type: ignore[operator]
        (legacy & a, ["legacy", "a"]),  # type: ignore[operator]
    ):
        log.clear()
        combined.on_apply_for(_coro(), "i")
        assert log == expected
        # The legacy member has no new methods: it is skipped, not an error.
        combined.on_execution_finished(_finished_event())


def test_composition_rejects_non_hooks() -> None:
    """``&`` and MultipleHooks() raise TypeError for objects that are not hooks."""
    with pytest.raises(TypeError, match="unsupported operand"):
        BaseHooks() & 1  # type: ignore[operator]
    with pytest.raises(TypeError, match="argument 2 must be a hooks object"):
        MultipleHooks(BaseHooks(), object())  # type: ignore[arg-type]


def test_isolation_member_failure_does_not_stop_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A raising member is logged and the members after it are still called."""
    log: list[str] = []
    raising = Raising()
    combined = Named("a", log) & raising & Named("b", log)
    with caplog.at_level(logging.ERROR, logger="async_reduce"):
        combined.on_apply_for(_coro(), "i")
    assert log == ["a", "b"]
    assert raising.calls == 1
    [record] = caplog.records
    assert record.name == "async_reduce"
    assert "Raising.on_apply_for raised RuntimeError" in record.getMessage()


async def test_isolation_through_reducer(caplog: pytest.LogCaptureFixture) -> None:
    """Hooks raising in every method never reach callers nor the hooks after them."""
    baseline = Recorder()
    expected = await run_scenario(AsyncReducer(hooks=baseline))
    recorder = Recorder()
    raising_runtime = Raising(RuntimeError)
    raising_key = Raising(KeyError)
    reducer = AsyncReducer(hooks=raising_runtime & recorder & raising_key)
    with caplog.at_level(logging.ERROR, logger="async_reduce"):
        outcomes = await run_scenario(reducer)
    assert repr(outcomes) == repr(expected)  # exceptions compare by identity
    # The recorder in the middle saw every call, of every method, in order.
    assert recorder.calls == baseline.calls
    assert {"left", "abandoned", "exception", "finished"} <= set(recorder.names())
    assert raising_runtime.calls == raising_key.calls == len(baseline.calls)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2  # once per hook object and exception type
    assert any("Raising.on_apply_for raised RuntimeError" in m for m in messages)
    assert any("Raising.on_apply_for raised KeyError" in m for m in messages)


@pytest.mark.parametrize(
    "method", [name for name in dir(BaseHooks) if name.startswith("on_")]
)
def test_every_hook_method_is_isolated_in_a_composition(method: str) -> None:
    """For each hook method, a raising member leaves the members after it called."""
    log: list[str] = []

    class After(BaseHooks):
        pass

    setattr(After, method, lambda self, *args: log.append(method))
    combined = Raising() & After()
    arguments = (_coro(), "i", None)[: _arity(method)]
    assert getattr(combined, method)(*arguments) is None
    assert log == [method]


def _arity(method: str) -> int:
    """How many arguments BaseHooks.<method> takes (self excluded)."""
    return len(inspect.signature(getattr(BaseHooks, method)).parameters) - 1


async def test_single_raising_hook_through_reducer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A lone raising hook object (not composed) does not affect the callers."""
    raising = Raising(ValueError)
    reducer = AsyncReducer(hooks=raising)
    with caplog.at_level(logging.ERROR, logger="async_reduce"):
        results = await asyncio.gather(reducer(work(1)), reducer(work(1)))
        assert list(results) == [1, 1]
    assert len(caplog.records) == 1


async def test_order_leader_and_joiner_result() -> None:
    """apply, executing, apply, reducing, then result and finished once."""
    recorder = Recorder()
    reducer = AsyncReducer(hooks=recorder)
    results = await asyncio.gather(
        reducer(work(3), ident="k"), reducer(work(3), ident="k")
    )
    assert list(results) == [3, 3]
    assert recorder.calls == [
        ("apply", "k"),
        ("executing", "k"),
        ("apply", "k"),
        ("reducing", "k"),
        ("result", 3),
        ("finished", ("result", 2)),
    ]


async def boom() -> None:
    """Shared work that fails after suspending once."""
    await asyncio.sleep(0)
    raise LookupError("boom")


async def test_order_error() -> None:
    """A failed execution reports exception then finished(error), once."""
    recorder = Recorder()
    reducer = AsyncReducer(hooks=recorder)
    results = await asyncio.gather(
        reducer(boom(), ident="k"), reducer(boom(), ident="k"), return_exceptions=True
    )
    assert all(isinstance(r, LookupError) for r in results)
    assert recorder.names() == [
        "apply",
        "executing",
        "apply",
        "reducing",
        "exception",
        "finished",
    ]
    assert recorder.calls[-2:] == [
        ("exception", "LookupError"),
        ("finished", ("error", 2)),
    ]


async def test_order_cancel_one_of_two() -> None:
    """A cancelled caller is reported as left; the execution goes on for the other."""
    recorder = Recorder()
    reducer = AsyncReducer(hooks=recorder)
    release = asyncio.Event()
    started = asyncio.Event()

    async def gated() -> str:
        started.set()
        await release.wait()
        return "done"

    first = asyncio.create_task(reducer(gated(), ident="k"))
    second = asyncio.create_task(reducer(gated(), ident="k"))
    await started.wait()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    release.set()
    assert await second == "done"
    assert recorder.calls[4:] == [
        ("left", ("cancelled", 1)),
        ("result", "done"),
        ("finished", ("result", 2)),
    ]


async def test_order_last_caller_leaves() -> None:
    """The last caller leaving: left, abandoned, then CancelledError and finished."""
    recorder = Recorder()
    reducer = AsyncReducer(hooks=recorder)
    started = asyncio.Event()
    ended = asyncio.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            ended.set()

    with pytest.raises(TimeoutError):
        await reducer(forever(), ident="k", timeout=0.01)
    await ended.wait()
    assert started.is_set()
    assert recorder.calls == [
        ("apply", "k"),
        ("executing", "k"),
        ("left", ("timeout", 0)),
        ("abandoned", True),
        ("exception", "CancelledError"),
        ("finished", ("cancelled", 1)),
    ]


async def test_order_orphans_finish() -> None:
    """With orphans="finish" an abandoned execution still reports its result."""
    recorder = Recorder()
    reducer = AsyncReducer(hooks=recorder, orphans="finish")
    started = asyncio.Event()
    release = asyncio.Event()
    ended = asyncio.Event()

    async def gated() -> str:
        started.set()
        await release.wait()
        # The hooks run in this same task step, right after the return.
        ended.set()
        return "late"

    task = asyncio.create_task(reducer(gated(), ident="k"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    await ended.wait()
    assert recorder.names()[2:] == ["left", "abandoned", "result", "finished"]
    assert recorder.calls[3] == ("abandoned", False)


async def test_end_hooks_run_before_callers_resume() -> None:
    """on_result_for and on_execution_finished run before any caller gets the result."""
    seen: list[str] = []

    class Marker(BaseHooks):
        def on_result_for(self, coro: Any, ident: Any, result: Any) -> None:
            seen.append("result hook")

        def on_execution_finished(self, event: ExecutionFinished) -> None:
            seen.append("finished hook")

    reducer = AsyncReducer(hooks=Marker())

    async def caller() -> None:
        await reducer(work(1), ident="k")
        seen.append("caller")

    await asyncio.gather(caller(), caller())
    assert seen == ["result hook", "finished hook", "caller", "caller"]
