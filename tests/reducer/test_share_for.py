"""share_for: an outcome stays reusable for a while after its execution ended.

Every rule runs through each entry point that repeats the miss path:
reducer(coro), reducer(coro, ident=), a reducer with hooks, and the
decorator with and without hooks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from async_reduce import AsyncReducer, async_reduceable
from async_reduce.hooks import BaseHooks

RUNS: list[Any] = []


STARTED: list[asyncio.Event] = []


async def work(value: Any) -> Any:
    RUNS.append(value)
    if isinstance(value, BaseException):
        raise value
    if value == "slow" and RUNS.count("slow") == 1:
        STARTED[-1].set()
        await asyncio.Event().wait()  # until cancelled
    return value


class Recorder(BaseHooks):
    def __init__(self) -> None:
        self.reducing = 0

    def on_reducing_for(self, coro: Any, ident: Any) -> None:
        self.reducing += 1


Caller = Callable[[Any], Awaitable[Any]]


def _entry_points(share_for: float) -> dict[str, tuple[AsyncReducer, Caller]]:
    plain = AsyncReducer(share_for=share_for)
    ident = AsyncReducer(share_for=share_for)
    hooked = AsyncReducer(Recorder(), share_for=share_for)
    decorated_reducer = AsyncReducer(share_for=share_for)
    decorated = async_reduceable(decorated_reducer)(work)
    decorated_hooked_reducer = AsyncReducer(Recorder(), share_for=share_for)
    decorated_hooked = async_reduceable(decorated_hooked_reducer)(work)
    return {
        "coro": (plain, lambda v: plain(work(v))),
        "ident": (ident, lambda v: ident(work(v), ident=("k", repr(v)))),
        "hooks": (hooked, lambda v: hooked(work(v))),
        "decorator": (decorated_reducer, decorated),
        "decorator+hooks": (decorated_hooked_reducer, decorated_hooked),
    }


ENTRY_POINTS = ["coro", "ident", "hooks", "decorator", "decorator+hooks"]


@pytest.fixture(autouse=True)
def _fresh() -> None:
    RUNS.clear()


@pytest.mark.parametrize("entry", ENTRY_POINTS)
async def test_result_reused_within_window(entry: str) -> None:
    """A call just after an execution ended gets its result without running."""
    reducer, call = _entry_points(60)[entry]
    assert await call(1) == 1
    assert await call(1) == 1
    assert await call(2) == 2
    assert RUNS == [1, 2]
    if isinstance(reducer.hooks, Recorder):
        assert reducer.hooks.reducing == 1


@pytest.mark.parametrize("entry", ENTRY_POINTS)
async def test_errors_reused_cancellations_not(entry: str) -> None:
    """An exception is kept like a result; a cancelled execution keeps nothing."""
    _, call = _entry_points(60)[entry]
    error = LookupError("x")
    for _ in range(2):
        with pytest.raises(LookupError):
            await call(error)
    assert [error] == RUNS
    RUNS.clear()
    STARTED.append(asyncio.Event())
    task = asyncio.ensure_future(call("slow"))
    await STARTED[-1].wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await call("slow") == "slow"
    assert RUNS == ["slow", "slow"]


@pytest.mark.parametrize("entry", ENTRY_POINTS)
async def test_default_keeps_nothing(entry: str) -> None:
    """share_for=0 (default): a call after the end runs the work again."""
    reducer, call = _entry_points(0)[entry]
    assert reducer.share_for == 0.0
    assert await call(1) == 1
    assert await call(1) == 1
    assert RUNS == [1, 1]


@pytest.mark.parametrize("entry", ENTRY_POINTS)
async def test_window_expires_and_forget_drops(entry: str) -> None:
    """After share_for seconds, or after forget(key), the work runs again."""
    _, call = _entry_points(0.05)[entry]
    assert await call(1) == 1
    await asyncio.sleep(0.1)  # the window itself is what is under test
    assert await call(1) == 1
    assert RUNS == [1, 1]
    long_reducer = AsyncReducer(share_for=60)
    assert await long_reducer(work(3), ident="k") == 3
    assert long_reducer.forget("k") is False  # nothing in flight
    assert await long_reducer(work(3), ident="k") == 3
    assert RUNS == [1, 1, 3, 3]


@pytest.mark.parametrize(
    ("value", "error"),
    [(-1, ValueError), (float("inf"), ValueError), ("1", TypeError), (True, TypeError)],
)
def test_bad_share_for(value: Any, error: type[Exception]) -> None:
    """share_for must be a finite number >= 0; the error names it."""
    with pytest.raises(error, match="share_for"):
        AsyncReducer(share_for=value)
