"""Helpers shared by the reducer tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from async_reduce import AsyncReducer, async_reduceable
from async_reduce._validate import UNSET
from async_reduce.hooks import BaseHooks


class Gate:
    """Work that blocks until released, counting how often it started.

    When ``cleanup`` is an event, cancelled work waits for it before it ends,
    like work with a slow ``finally``.
    """

    def __init__(self) -> None:
        self.started = 0
        self.running = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled = 0
        self.cleanup: asyncio.Event | None = None

    async def work(self, value: Any = None) -> Any:
        self.started += 1
        self.running.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            if self.cleanup is not None:
                await self.cleanup.wait()
            raise
        return value

    async def fail(self, exc: BaseException) -> Any:
        """Like :meth:`work`, then raise ``exc``."""
        await self.work()
        raise exc


@pytest.fixture
def gate() -> Gate:
    return Gate()


async def settle() -> None:
    """Let every ready callback run (a few loop iterations, no wall clock)."""
    for _ in range(5):
        await asyncio.sleep(0)


def capture_loop_errors() -> list[dict[str, Any]]:
    """Record what the running loop's exception handler receives."""
    seen: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(
        lambda _loop, context: seen.append(context)
    )
    return seen


# -- the reducer's entry points ------------------------------------------------


class AllHooks(BaseHooks):
    """Hooks overriding every method, so every hook path of the reducer runs.

    ``calls`` records ``(method, what it got)``; with ``light=True`` only the
    method names, so no exception (and its traceback) is kept alive.
    """

    def __init__(self, light: bool = False) -> None:
        self.calls: list[tuple[str, Any]] = []
        if light:
            self.calls = _Names()  # type: ignore[assignment]

    def on_apply_for(self, coro: Any, ident: Any) -> None:
        self.calls.append(("apply", ident))

    def on_executing_for(self, coro: Any, ident: Any) -> None:
        self.calls.append(("executing", ident))

    def on_reducing_for(self, coro: Any, ident: Any) -> None:
        self.calls.append(("reducing", ident))

    def on_result_for(self, coro: Any, ident: Any, result: Any) -> None:
        self.calls.append(("result", result))

    def on_exception_for(self, coro: Any, ident: Any, exception: BaseException) -> None:
        self.calls.append(("exception", exception))

    def on_execution_finished(self, event: Any) -> None:
        self.calls.append(("finished", event))

    def on_caller_left(self, event: Any) -> None:
        self.calls.append(("left", event))

    def on_execution_abandoned(self, event: Any) -> None:
        self.calls.append(("abandoned", event))


class _Names(list[Any]):
    def append(self, call: Any) -> None:
        super().append((call[0], None))


class Entry:
    """One way into the reducer.

    The start-or-join sequence is written out once per entry point for
    speed (``reducer(coro)`` with and without hooks, the decorator with and
    without hooks), so every lifecycle rule is tested through each of them.
    """

    def __init__(self, name: str, *, hooks: bool, decorated: bool, ident: bool):
        self.name = name
        self.hooks = hooks
        self.decorated = decorated
        self.ident = ident

    def __repr__(self) -> str:
        return self.name

    def reducer(self, *, light: bool = False, **kwargs: Any) -> AsyncReducer:
        """A reducer that this entry point's calls go through (with
        ``AllHooks(light)`` for the entry points with hooks)."""
        if self.hooks:
            kwargs["hooks"] = AllHooks(light)
        return AsyncReducer(**kwargs)

    def bind(
        self, reducer: AsyncReducer, fn: Callable[..., Any], timeout: Any = UNSET
    ) -> Callable[..., Coroutine[Any, Any, Any]]:
        """``fn`` called through this entry point: equal arguments, one key."""
        if self.decorated:
            options = {} if timeout is UNSET else {"timeout": timeout}
            return async_reduceable(reducer, **options)(fn)  # type: ignore[no-any-return]

        def call(*args: Any, **kwargs: Any) -> Coroutine[Any, Any, Any]:
            options: dict[str, Any] = {} if timeout is UNSET else {"timeout": timeout}
            if self.ident:
                options["ident"] = (fn, args, frozenset(kwargs.items()))
            return reducer(fn(*args, **kwargs), **options)

        return call


ENTRIES = [
    Entry("reducer(coro)", hooks=False, decorated=False, ident=False),
    Entry("reducer(coro, ident=)", hooks=False, decorated=False, ident=True),
    Entry("reducer(coro) with hooks", hooks=True, decorated=False, ident=False),
    Entry("decorator", hooks=False, decorated=True, ident=False),
    Entry("decorator with hooks", hooks=True, decorated=True, ident=False),
]


@pytest.fixture(params=ENTRIES, ids=repr)
def entry(request: pytest.FixtureRequest) -> Entry:
    """Each of the reducer's entry points in turn."""
    return request.param  # type: ignore[no-any-return]
