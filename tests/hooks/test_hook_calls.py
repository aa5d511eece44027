"""What each hook method receives, and how a failure in each one is reported."""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

import pytest
from hooks_scenario import Recorder, run_scenario

from async_reduce import AsyncReducer, _hookerrors
from async_reduce.hooks import BaseHooks

SCENARIO_METHODS = [
    "on_apply_for",
    "on_executing_for",
    "on_reducing_for",
    "on_result_for",
    "on_exception_for",
    "on_execution_finished",
    "on_caller_left",
    "on_execution_abandoned",
]


@pytest.fixture(autouse=True)
def _fresh_hook_error_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hook errors are logged once per hook and type; start every test afresh."""
    monkeypatch.setattr(_hookerrors, "_reported", weakref.WeakKeyDictionary())


@pytest.mark.parametrize("method", SCENARIO_METHODS)
async def test_a_failing_hook_method_is_reported_by_name(
    method: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A hook raising in one method is logged once, naming its class and method."""
    baseline = await run_scenario(AsyncReducer(hooks=Recorder()))

    class FailsOnce(Recorder):
        pass

    def fail(self: Any, *args: Any) -> None:
        raise ArithmeticError(f"{method} failed")

    setattr(FailsOnce, method, fail)
    with caplog.at_level(logging.ERROR, logger="async_reduce"):
        outcomes = await run_scenario(AsyncReducer(hooks=FailsOnce()))
    assert repr(outcomes) == repr(baseline)  # callers never notice
    [record] = caplog.records
    assert record.getMessage().startswith(
        f"hook {FailsOnce.__qualname__}.{method} raised ArithmeticError;"
    )
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == f"{method} failed"


async def test_joining_callers_hooks_get_their_coroutine_and_the_shared_ident() -> None:
    """on_reducing_for gets the joiner's own coroutine and the execution's ident."""
    calls: list[tuple[str, Any, Any]] = []

    class Seen(BaseHooks):
        def on_apply_for(self, coro: Any, ident: Any) -> None:
            calls.append(("apply", coro, ident))

        def on_executing_for(self, coro: Any, ident: Any) -> None:
            calls.append(("executing", coro, ident))

        def on_reducing_for(self, coro: Any, ident: Any) -> None:
            calls.append(("reducing", coro, ident))

    reducer = AsyncReducer(hooks=Seen())
    running, release = asyncio.Event(), asyncio.Event()

    async def fetch(x: int) -> int:
        running.set()
        await release.wait()
        return x

    first, second = fetch(1), fetch(1)
    tasks = [asyncio.ensure_future(reducer(c)) for c in (first, second)]
    await running.wait()  # both callers were in before the work started
    release.set()
    assert await asyncio.gather(*tasks) == [1, 1]
    by_kind = {kind: (coro, ident) for kind, coro, ident in calls}
    assert by_kind["executing"][0] is first
    assert by_kind["reducing"][0] is second
    assert by_kind["reducing"][1] == by_kind["executing"][1]
    assert str(by_kind["reducing"][1]).startswith(f"{__name__}:")


async def test_a_call_served_from_a_kept_outcome_is_reported_as_a_join(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With share_for, a call served from a kept outcome is a join to the hooks."""
    calls: list[tuple[str, Any, Any]] = []

    class Seen(BaseHooks):
        def on_apply_for(self, coro: Any, ident: Any) -> None:
            calls.append(("apply", coro, ident))

        def on_reducing_for(self, coro: Any, ident: Any) -> None:
            calls.append(("reducing", coro, ident))
            raise ArithmeticError("reducing failed")

    reducer = AsyncReducer(hooks=Seen(), share_for=3600)

    async def fetch(x: int) -> int:
        return x

    assert await reducer(fetch(1)) == 1
    served = fetch(1)
    with caplog.at_level(logging.ERROR, logger="async_reduce"):
        assert await reducer(served) == 1  # from the kept outcome
    [(_, _, applied), (kind, coro, ident)] = calls[-2:]
    assert kind == "reducing"
    assert coro is served
    assert ident == applied
    assert str(ident).startswith(f"{__name__}:")
    [record] = caplog.records
    assert "Seen.on_reducing_for raised ArithmeticError" in record.getMessage()
