"""The public API: 1.x compatibility, argument checks, module surfaces."""

from __future__ import annotations

import asyncio
import importlib
import io
from typing import Any

import pytest

import async_reduce
from async_reduce import AsyncReducer, async_reduceable
from async_reduce.hooks import DebugHooks, StatisticsOverallHooks
from async_reduce.hooks.base import BaseHooks

from .conftest import Gate, settle


async def fetch(user_id: int) -> str:
    await asyncio.sleep(0)
    return f"user{user_id}"


def test_1x_imports_exist() -> None:
    """Everything 1.x users import is importable from the same place."""
    from async_reduce import AsyncReducer, async_reduce, async_reduceable  # noqa: F401
    from async_reduce.hooks import (  # noqa: F401
        DebugHooks,
        StatisticsDetailHooks,
        StatisticsOverallHooks,
    )
    from async_reduce.hooks.base import BaseHooks, MultipleHooks  # noqa: F401

    assert isinstance(async_reduce, AsyncReducer)


@pytest.mark.parametrize(
    "module",
    [
        "async_reduce",
        "async_reduce.hooks",
        "async_reduce.hooks.base",
        "async_reduce.pool",
    ],
)
def test_public_modules_declare_all(module: str) -> None:
    """Every public module lists its API in __all__, and each name exists."""
    mod = importlib.import_module(module)
    assert mod.__all__, module
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"
        assert getattr(mod, name).__doc__, f"{module}.{name} has no docstring"


async def test_call_returns_a_coroutine_usable_with_create_task() -> None:
    """async_reduce(coro) is a coroutine: await, create_task and gather all work."""
    reducer = AsyncReducer()
    assert await reducer(fetch(1)) == "user1"
    assert await asyncio.create_task(reducer(fetch(2))) == "user2"
    assert await asyncio.gather(reducer(fetch(3))) == ["user3"]
    assert await asyncio.wait_for(reducer(fetch(4)), 5) == "user4"


async def test_default_reducer_and_decorator_default() -> None:
    """The module-level async_reduce is the decorator's default reducer."""

    @async_reduceable()
    async def twice(x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    assert twice.reducer is async_reduce.async_reduce
    assert await twice(4) == 8
    assert await async_reduce.async_reduce(fetch(5)) == "user5"


async def test_hooks_are_called_in_1x_order() -> None:
    """apply, then executing or reducing per call; result once per execution."""
    events: list[tuple[str, Any]] = []

    class Recorder(BaseHooks):
        def on_apply_for(self, coro: Any, ident: Any) -> None:
            events.append(("apply", ident))

        def on_executing_for(self, coro: Any, ident: Any) -> None:
            events.append(("executing", ident))

        def on_reducing_for(self, coro: Any, ident: Any) -> None:
            events.append(("reducing", ident))

        def on_result_for(self, coro: Any, ident: Any, result: Any) -> None:
            events.append(("result", result))

        def on_exception_for(self, coro: Any, ident: Any, exc: Any) -> None:
            events.append(("exception", type(exc)))

    reducer = AsyncReducer(hooks=Recorder())
    await asyncio.gather(reducer(fetch(1), ident="a"), reducer(fetch(1), ident="a"))
    assert events == [
        ("apply", "a"),
        ("executing", "a"),
        ("apply", "a"),
        ("reducing", "a"),
        ("result", "user1"),
    ]


async def test_debug_hooks_print_1x_lines_with_a_correct_module_path() -> None:
    """DebugHooks prints 1.x's lines; the ident shows module:qualname unmangled."""
    stream = io.StringIO()
    reducer = AsyncReducer(hooks=DebugHooks(stream=stream))
    await reducer(fetch(1))
    lines = stream.getvalue().splitlines()
    ident = f"{__name__}:fetch(<state_hash:"
    assert lines[0].startswith(f"[{ident}")
    assert "] apply async_reduce() for <coroutine object fetch at" in lines[0]
    assert "] executing for <coroutine object fetch" in lines[1]
    assert lines[2].endswith(": user1")
    assert "] result for <coroutine object fetch" in lines[2]


async def test_statistics_overall_1x_counting() -> None:
    """Overall stats count like 1.x: executed counts executions that succeeded."""
    stats = StatisticsOverallHooks()
    reducer = AsyncReducer(hooks=stats)

    async def fail() -> None:
        await asyncio.sleep(0)
        raise ValueError("x")

    await asyncio.gather(reducer(fetch(1)), reducer(fetch(1)), reducer(fetch(2)))
    await asyncio.gather(reducer(fail()), reducer(fail()), return_exceptions=True)
    assert str(stats) == "Stats(total=5, executed=2, reduced=2, errors=1)"


# -- argument checks -----------------------------------------------------------


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf")])
def test_bad_timeout_values_are_rejected(timeout: float) -> None:
    """timeout <= 0 (or not finite) raises ValueError naming timeout."""
    with pytest.raises(ValueError, match="timeout"):
        AsyncReducer(timeout=timeout)
    coro = fetch(1)
    with pytest.raises(ValueError, match="timeout"):
        AsyncReducer()(coro, timeout=timeout)
    with pytest.raises(ValueError, match="timeout"):
        async_reduceable(timeout=timeout)


@pytest.mark.parametrize("timeout", ["1", True, [1]])
def test_bad_timeout_types_are_rejected(timeout: Any) -> None:
    """A timeout that is not a number raises TypeError naming timeout."""
    with pytest.raises(TypeError, match="timeout"):
        AsyncReducer(timeout=timeout)


def test_unknown_orphans_value_is_rejected() -> None:
    """orphans must be "cancel" or "finish"."""
    with pytest.raises(ValueError, match="orphans"):
        AsyncReducer(orphans="keep")


def test_key_must_be_callable() -> None:
    """async_reduceable(key=...) must be callable."""
    with pytest.raises(TypeError, match="key"):
        async_reduceable(key="user_id")  # type: ignore[call-overload]


def test_typed_must_be_a_bool() -> None:
    """typed=1 is rejected rather than guessed."""
    with pytest.raises(TypeError, match="typed"):
        AsyncReducer(typed=1)  # type: ignore[arg-type]


def test_hooks_without_hook_methods_are_rejected() -> None:
    """hooks= must provide the hook methods."""
    with pytest.raises(TypeError, match="hooks"):
        AsyncReducer(hooks=object())


@pytest.mark.parametrize("bad", [None, 1, "coro", fetch])
def test_non_coroutines_are_rejected(bad: Any) -> None:
    """Passing something that is not a coroutine raises TypeError naming coro."""
    with pytest.raises(TypeError, match="coro"):
        AsyncReducer()(bad)


async def test_already_awaited_coroutine_is_rejected() -> None:
    """A coroutine that already ran raises ValueError naming coro."""
    coro = fetch(1)
    await coro
    with pytest.raises(ValueError, match="coro"):
        AsyncReducer()(coro)


def test_decorating_a_plain_function_is_rejected() -> None:
    """Only coroutine functions can be decorated."""
    with pytest.raises(TypeError, match="coroutine function"):
        async_reduceable()(lambda: 1)  # type: ignore[arg-type,return-value]


def test_reducer_argument_must_be_a_reducer() -> None:
    """async_reduceable(reducer=...) must be an AsyncReducer."""
    with pytest.raises(TypeError, match="reducer"):
        async_reduceable("nope")  # type: ignore[call-overload]


def test_rejected_calls_leave_no_unawaited_coroutine_warning() -> None:
    """A call rejected with an error closes the coroutine it was given."""
    coro = fetch(1)
    with pytest.raises(ValueError, match="timeout"):
        AsyncReducer()(coro, timeout=-1)
    assert coro.cr_frame is None  # closed: no "never awaited" warning


async def test_repr_shows_state(gate: Gate) -> None:
    """repr() shows the number of keys in flight and the settings."""
    reducer = AsyncReducer(timeout=5, orphans="finish")
    call = asyncio.ensure_future(reducer(gate.work(1)))
    await gate.running.wait()
    assert "in_flight=1" in repr(reducer)
    assert "orphans='finish'" in repr(reducer)
    gate.release.set()
    await call
    await settle()
    assert "in_flight=0" in repr(reducer)


async def test_1x_style_hooks_object_without_base_class(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A hooks object with only the five 1.x methods works, and nothing is logged."""
    seen: list[str] = []

    class OldHooks:
        def on_apply_for(self, coro: Any, ident: Any) -> None:
            seen.append("apply")

        def on_executing_for(self, coro: Any, ident: Any) -> None:
            seen.append("executing")

        def on_reducing_for(self, coro: Any, ident: Any) -> None:
            seen.append("reducing")

        def on_result_for(self, coro: Any, ident: Any, result: Any) -> None:
            seen.append("result")

        def on_exception_for(self, coro: Any, ident: Any, exc: Any) -> None:
            seen.append("exception")

    hooks = OldHooks()
    reducer = AsyncReducer(hooks=hooks)
    assert reducer.hooks is hooks
    # It has no event methods, so no event objects are built for it.
    assert not reducer._want_finished
    assert not reducer._want_left
    gate = Gate()
    first = asyncio.ensure_future(reducer(gate.work(1), ident="k"))
    second = asyncio.ensure_future(reducer(gate.work(1), ident="k"))
    await gate.running.wait()
    second.cancel()  # a caller leaving calls the newer on_caller_left: absent here
    await settle()
    gate.release.set()
    assert await first == 1
    assert seen == ["apply", "executing", "apply", "reducing", "result"]
    assert not caplog.records


async def test_a_raising_hook_never_reaches_the_caller(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A hook that raises is logged once per exception type; callers get results."""

    class Broken(BaseHooks):
        def on_apply_for(self, coro: Any, ident: Any) -> None:
            raise RuntimeError("hook bug")

    reducer = AsyncReducer(hooks=Broken())
    assert await reducer(fetch(1)) == "user1"
    assert await reducer(fetch(2)) == "user2"
    errors = [r for r in caplog.records if r.name == "async_reduce"]
    assert len(errors) == 1
    assert "on_apply_for" in errors[0].getMessage()
