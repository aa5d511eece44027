"""DebugHooks: 1.x's line format on a stream, or the same lines through logging."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import sys
from typing import Any

import pytest

from async_reduce import AsyncReducer
from async_reduce._events import (
    AcquireTimedOut,
    CallerLeft,
    ConnectionAcquired,
    ConnectionClosed,
    ConnectionCreated,
    ConnectionCreateFailed,
    ConnectionReclaimed,
    ExecutionAbandoned,
    ExecutionFinished,
)
from async_reduce.hooks import DebugHooks

WORK_LOCATION = f"{__name__}:work"


async def work(x: int) -> int:
    """Shared work that suspends once."""
    await asyncio.sleep(0)
    return x


async def failing() -> None:
    """Shared work that raises."""
    await asyncio.sleep(0)
    raise LookupError("boom")


async def test_lines_for_a_shared_call() -> None:
    """With events="all": 1.x's lines for a leader and a joiner, then a finished."""
    stream = io.StringIO()
    reducer = AsyncReducer(hooks=DebugHooks(stream, events="all"))
    first, second = work(3), work(3)
    results = await asyncio.gather(
        reducer(first, ident="k"), reducer(second, ident="k")
    )
    assert list(results) == [3, 3]
    lines = stream.getvalue().splitlines()
    assert lines[:5] == [
        f"[k] apply async_reduce() for {first}",
        f"[k] executing for {first}",
        f"[k] apply async_reduce() for {second}",
        f"[k] reducing for {second}",
        f"[k] result for {first}: 3",
    ]
    assert re.fullmatch(
        rf"\[k\] execution finished for {re.escape(WORK_LOCATION)}: "
        r"outcome=result duration=\d+\.\d{6}s callers=2",
        lines[5],
    )
    assert len(lines) == 6


async def test_exception_line() -> None:
    """A failed execution prints ``get exception for CORO: EXCEPTION``."""
    stream = io.StringIO()
    reducer = AsyncReducer(hooks=DebugHooks(stream))
    coro = failing()
    with pytest.raises(LookupError):
        await reducer(coro, ident="k")
    assert f"[k] get exception for {coro}: boom\n" in stream.getvalue()


async def test_automatic_ident_shows_location_and_state_hash() -> None:
    """For automatic keys IDENT is ``package.module:qualname(<state_hash:N>)``."""
    stream = io.StringIO()
    reducer = AsyncReducer(hooks=DebugHooks(stream))
    await reducer(work(5))
    first = stream.getvalue().splitlines()[0]
    assert re.match(
        rf"\[{re.escape(WORK_LOCATION)}\(<state_hash:-?\d+>\)\] apply async_reduce\(\)",
        first,
    )


def test_event_lines() -> None:
    """The 2.0 events print in the same ``[IDENT] ...`` style."""
    stream = io.StringIO()
    hooks = DebugHooks(stream, events="all")
    hooks.on_execution_finished(
        ExecutionFinished(
            key="k",
            ident="k",
            location="m:f",
            outcome="error",
            duration=0.25,
            callers=3,
        )
    )
    hooks.on_caller_left(
        CallerLeft(
            key="k",
            ident="k",
            location="m:f",
            reason="timeout",
            waited=0.5,
            remaining=2,
        )
    )
    hooks.on_execution_abandoned(
        ExecutionAbandoned(
            key="k", ident="k", location="m:f", cancelled=True, duration=1.5
        )
    )
    assert stream.getvalue().splitlines() == [
        "[k] execution finished for m:f: outcome=error duration=0.250000s callers=3",
        "[k] caller left for m:f: reason=timeout waited=0.500000s remaining=2",
        "[k] execution abandoned for m:f: cancelled=True duration=1.500000s",
    ]


def test_pool_event_lines() -> None:
    """Each pool event prints one line prefixed by the pool's repr."""
    stream = io.StringIO()
    hooks = DebugHooks(stream, events="all")
    pool = "P"
    for event in (
        ConnectionAcquired(pool=pool, wait=0.001),
        ConnectionCreated(pool=pool, duration=0.002),
        ConnectionCreateFailed(pool=pool, exception=OSError("refused")),
        ConnectionClosed(pool=pool, reason="idle"),
        AcquireTimedOut(pool=pool, waited=1.0),
        ConnectionReclaimed(pool=pool, held=3.0, acquired_at="app.py:10"),
    ):
        hooks.on_pool_event(event)
    assert stream.getvalue().splitlines() == [
        "['P'] connection acquired: wait=0.001000s",
        "['P'] connection created: duration=0.002000s",
        "['P'] connection create failed: OSError('refused')",
        "['P'] connection closed: reason=idle",
        "['P'] acquire timed out: waited=1.000000s",
        "['P'] connection reclaimed: held=3.000000s acquired_at=app.py:10",
    ]


async def test_default_stream_is_current_stderr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a stream, lines go to sys.stderr as it is at print time."""
    hooks = DebugHooks()  # built while sys.stderr is still the old stream
    old = io.StringIO()
    monkeypatch.setattr(sys, "stderr", old)
    reducer = AsyncReducer(hooks=hooks)
    new = io.StringIO()
    monkeypatch.setattr(sys, "stderr", new)
    await reducer(work(1), ident="k")
    assert "[k] executing for <coroutine object" in new.getvalue()
    assert old.getvalue() == ""


async def test_logger_gets_same_lines_and_extra(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With a logger, each line is a DEBUG record with prefixed extra fields."""
    logger = logging.getLogger("tests.debughooks")
    stream = io.StringIO()
    reducer_stream = AsyncReducer(hooks=DebugHooks(stream))
    reducer_logger = AsyncReducer(hooks=DebugHooks(logger=logger, events="all"))
    with caplog.at_level(logging.DEBUG, logger="tests.debughooks"):
        coro = work(2)
        await reducer_logger(coro, ident="k")
    records = [r for r in caplog.records if r.name == "tests.debughooks"]
    assert all(r.levelno == logging.DEBUG for r in records)
    assert [r.async_reduce_event for r in records] == [  # type: ignore[attr-defined]
        "apply",
        "executing",
        "result",
        "finished",
    ]
    apply, _executing, result, finished = records
    assert apply.getMessage() == f"[k] apply async_reduce() for {coro}"
    assert result.getMessage() == f"[k] result for {coro}: 2"
    assert apply.async_reduce_ident == "k"  # type: ignore[attr-defined]
    assert apply.async_reduce_location == WORK_LOCATION  # type: ignore[attr-defined]
    assert apply.async_reduce_coro is coro  # type: ignore[attr-defined]
    assert result.async_reduce_result == 2  # type: ignore[attr-defined]
    assert finished.async_reduce_outcome == "result"  # type: ignore[attr-defined]
    assert finished.async_reduce_callers == 1  # type: ignore[attr-defined]
    assert finished.async_reduce_duration >= 0  # type: ignore[attr-defined]
    # The same messages as on a stream (the finished line's duration aside).
    await reducer_stream(coro := work(2), ident="k")
    assert stream.getvalue().splitlines()[0] == f"[k] apply async_reduce() for {coro}"


def test_logger_disabled_formats_nothing() -> None:
    """When the logger is not enabled for DEBUG, no argument is formatted."""
    logger = logging.getLogger("tests.debughooks.quiet")
    logger.setLevel(logging.INFO)
    formatted: list[str] = []

    class Loud:
        def __str__(self) -> str:
            formatted.append("str")
            return "loud"

    hooks = DebugHooks(logger=logger)
    coro = work(1)
    coro.close()
    hooks.on_result_for(coro, Loud(), Loud())
    hooks.on_exception_for(coro, Loud(), ValueError())
    assert formatted == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"stream": io.StringIO(), "logger": logging.getLogger("x")}, "not both"),
        ({"logger": "async_reduce"}, "logger must be a logging.Logger"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    """Both stream and logger, or a logger that is not one, raise TypeError."""
    with pytest.raises(TypeError, match=match):
        DebugHooks(**kwargs)


async def test_default_prints_only_the_1x_kinds() -> None:
    """By default only 1.x's five kinds of lines print, whatever else happens."""
    stream = io.StringIO()
    hooks = DebugHooks(stream)
    reducer = AsyncReducer(hooks=hooks)
    assert hooks.events == frozenset(
        {"apply", "executing", "reducing", "result", "exception"}
    )
    await asyncio.gather(reducer(work(1), ident="a"), reducer(work(1), ident="a"))
    with pytest.raises(LookupError):
        await reducer(failing(), ident="b")
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.ensure_future(reducer(forever(), ident="c"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    hooks.on_pool_event(ConnectionAcquired(pool="P", wait=0.001))
    kinds = [
        re.sub(r" for .*", "", line.split("] ", 1)[1])
        for line in stream.getvalue().splitlines()
    ]
    assert kinds == [
        "apply async_reduce()",
        "executing",
        "apply async_reduce()",
        "reducing",
        "result",
        "apply async_reduce()",
        "executing",
        "get exception",
        "apply async_reduce()",
        "executing",
        "get exception",
    ]


async def test_events_picks_kinds() -> None:
    """events= as a collection prints exactly those kinds."""
    stream = io.StringIO()
    reducer = AsyncReducer(hooks=DebugHooks(stream, events={"finished", "apply"}))
    await reducer(work(4), ident="k")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("[k] apply async_reduce() for <coroutine")
    assert lines[1].startswith(f"[k] execution finished for {WORK_LOCATION}:")


@pytest.mark.parametrize(
    ("events", "error", "match"),
    [
        ("everything", ValueError, "events must be '1.x', 'all'"),
        ({"apply", "finish"}, ValueError, "unknown kind.*'finish'"),
        (3, TypeError, "events must be .* got int"),
    ],
)
def test_bad_events(events: Any, error: type[Exception], match: str) -> None:
    """An unknown events value raises at construction, naming the argument."""
    with pytest.raises(error, match=match):
        DebugHooks(events=events)
