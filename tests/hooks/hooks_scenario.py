"""Helpers of the hooks tests: a recording hook and a scripted scenario."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from async_reduce import AsyncReducer
from async_reduce.hooks import BaseHooks


class Recorder(BaseHooks):
    """Appends ``(method name, detail)`` for every hook call."""

    def __init__(self, calls: list[tuple[str, Any]] | None = None) -> None:
        self.calls: list[tuple[str, Any]] = [] if calls is None else calls

    def on_apply_for(self, coro: Any, ident: Any) -> None:
        self.calls.append(("apply", ident))

    def on_executing_for(self, coro: Any, ident: Any) -> None:
        self.calls.append(("executing", ident))

    def on_reducing_for(self, coro: Any, ident: Any) -> None:
        self.calls.append(("reducing", ident))

    def on_result_for(self, coro: Any, ident: Any, result: Any) -> None:
        self.calls.append(("result", result))

    def on_exception_for(self, coro: Any, ident: Any, exception: BaseException) -> None:
        self.calls.append(("exception", type(exception).__name__))

    def on_execution_finished(self, event: Any) -> None:
        self.calls.append(("finished", (event.outcome, event.callers)))

    def on_caller_left(self, event: Any) -> None:
        self.calls.append(("left", (event.reason, event.remaining)))

    def on_execution_abandoned(self, event: Any) -> None:
        self.calls.append(("abandoned", event.cancelled))

    def on_pool_event(self, event: Any) -> None:
        self.calls.append(("pool", type(event).__name__))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@dataclass
class Gates:
    """Per-name events that let a test script when shared work starts and ends."""

    started: dict[str, asyncio.Event] = field(default_factory=dict)
    release: dict[str, asyncio.Event] = field(default_factory=dict)
    ended: dict[str, asyncio.Event] = field(default_factory=dict)

    def __getitem__(self, name: str) -> tuple[asyncio.Event, asyncio.Event]:
        started = self.started.setdefault(name, asyncio.Event())
        release = self.release.setdefault(name, asyncio.Event())
        return started, release

    def ended_event(self, name: str) -> asyncio.Event:
        return self.ended.setdefault(name, asyncio.Event())

    def clear(self) -> None:
        self.started.clear()
        self.release.clear()
        self.ended.clear()


GATES = Gates()


async def fetch(name: str) -> str:
    """Shared work scripted by GATES: ``bad*`` names raise LookupError."""
    started, release = GATES[name]
    started.set()
    try:
        await release.wait()
        if name.startswith("bad"):
            raise LookupError(name)
        return name.upper()
    finally:
        GATES.ended_event(name).set()


async def other(name: str) -> str:
    """A second coroutine function, at another location than ``fetch``."""
    await asyncio.sleep(0)
    return name


FETCH_LOCATION = f"{__name__}:fetch"
OTHER_LOCATION = f"{__name__}:other"


async def run_scenario(reducer: AsyncReducer) -> dict[str, Any]:
    """Drive ``reducer`` through hits, joins, errors, cancellations and a timeout.

    All on ``fetch`` unless said otherwise:

    * ``a``: 3 callers share one execution that returns ``"A"``.
    * ``bad``: 2 callers share one execution that raises ``LookupError``.
    * ``c``: 2 callers; one is cancelled while the work runs, the other gets
      the result.
    * ``d``: 1 caller with a timeout; it times out, the work is abandoned
      (and cancelled).
    * ``e``: 2 callers, both cancelled: the work is abandoned.
    * ``other("x")`` twice in a row (2 executions, no join), at another
      location.

    Returns what the callers got, by name.
    """
    GATES.clear()
    outcomes: dict[str, Any] = {}

    async def burst(name: str, callers: int) -> list[asyncio.Task[str]]:
        tasks = [asyncio.create_task(reducer(fetch(name))) for _ in range(callers)]
        # The leader starts the work after every caller of the burst joined.
        await GATES[name][0].wait()
        return tasks

    tasks_a = await burst("a", 3)
    GATES["a"][1].set()
    outcomes["a"] = await asyncio.gather(*tasks_a)

    tasks_bad = await burst("bad", 2)
    GATES["bad"][1].set()
    outcomes["bad"] = await asyncio.gather(*tasks_bad, return_exceptions=True)

    tasks_c = await burst("c", 2)
    tasks_c[0].cancel()
    with pytest.raises(asyncio.CancelledError):
        await tasks_c[0]
    GATES["c"][1].set()
    outcomes["c"] = await tasks_c[1]

    timed = asyncio.create_task(reducer(fetch("d"), timeout=0.01))
    await GATES["d"][0].wait()
    with pytest.raises(TimeoutError):
        await timed
    await GATES.ended_event("d").wait()

    tasks_e = await burst("e", 2)
    for task in tasks_e:
        task.cancel()
    for task in tasks_e:
        with pytest.raises(asyncio.CancelledError):
            await task
    await GATES.ended_event("e").wait()

    # Hooks for the end of an execution run before its callers resume.
    outcomes["other"] = [await reducer(other("x")), await reducer(other("x"))]
    return outcomes
