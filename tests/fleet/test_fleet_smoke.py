"""First fleet rules, with two reducers standing for two processes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from async_reduce import async_reduceable
from async_reduce.fleet import RemoteError

RUNS: dict[str, int] = {}
RELEASE: dict[str, asyncio.Event] = {}


async def shared_work(name: str, x: int) -> dict[str, int]:
    """Counts its runs under ``name`` and waits for RELEASE[name]."""
    RUNS[name] = RUNS.get(name, 0) + 1
    await RELEASE[name].wait()
    return {"x": x}


async def test_two_reducers_one_execution(redis_server: Any, make_fleet: Any) -> None:
    """Concurrent identical calls through two fleet reducers run the work once."""
    a, b = make_fleet(redis_server), make_fleet(redis_server)
    RELEASE["two"] = asyncio.Event()
    calls = [asyncio.ensure_future(a(shared_work("two", 1))) for _ in range(5)]
    await a.hooks.wait_for("leader")
    calls += [asyncio.ensure_future(b(shared_work("two", 1))) for _ in range(5)]
    await b.hooks.wait_for("remote_join")
    RELEASE["two"].set()
    assert await asyncio.gather(*calls) == [{"x": 1}] * 10
    assert RUNS["two"] == 1


async def test_remote_error(redis_server: Any, make_fleet: Any) -> None:
    """A follower gets the leader's exception as RemoteError."""
    a, b = make_fleet(redis_server), make_fleet(redis_server)
    release = asyncio.Event()

    async def work() -> None:
        await release.wait()
        raise KeyError("nope")

    first = asyncio.ensure_future(a(work(), ident="e"))
    await a.hooks.wait_for("leader")
    second = asyncio.ensure_future(b(work(), ident="e"))
    await b.hooks.wait_for("remote_join")
    release.set()
    with pytest.raises(KeyError):
        await first
    with pytest.raises(RemoteError) as info:
        await second
    assert info.value.type_name == "KeyError"
    assert info.value.message == "'nope'"


async def test_decorator(redis_server: Any, make_fleet: Any) -> None:
    """@async_reduceable(fleet) shares one execution across reducers."""
    a, b = make_fleet(redis_server), make_fleet(redis_server)
    runs = 0
    release = asyncio.Event()

    async def body(x: int, y: int = 2) -> int:
        nonlocal runs
        runs += 1
        await release.wait()
        return x + y

    fa = async_reduceable(a)(body)
    fb = async_reduceable(b)(body)
    assert fa.key(1) == fb.key(1, y=2) == fb.key(x=1)
    calls = [asyncio.ensure_future(fa(1)) for _ in range(3)]
    await a.hooks.wait_for("leader")
    calls += [asyncio.ensure_future(fb(1)) for _ in range(3)]
    await a.hooks.wait_for("leader")
    await b.hooks.wait_for("remote_join")
    release.set()
    assert await asyncio.gather(*calls) == [3] * 6
    assert runs == 1
