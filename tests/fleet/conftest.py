"""Fixtures of the fleet tests: real redis-servers, fleet reducers, event logs."""

from __future__ import annotations

import asyncio
import os
import shutil
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pytest_redis import factories

from async_reduce import _hookerrors
from async_reduce.hooks import BaseHooks

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
HAVE_REDIS = os.access(REDIS_SERVER, os.X_OK)

if HAVE_REDIS:
    fleet_redis_proc = factories.redis_proc(executable=REDIS_SERVER, port=None)
    fleet_redis_proc_restartable = factories.redis_proc(
        executable=REDIS_SERVER, port=None
    )


def _require_redis(request: pytest.FixtureRequest, name: str) -> Any:
    if not HAVE_REDIS:
        reason = f"redis-server not found (looked for {REDIS_SERVER})"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {reason}", pytrace=False)
        pytest.skip(reason)
    return request.getfixturevalue(name)


@pytest.fixture(autouse=True)
def _fresh_hook_error_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hook errors are logged once per hook id and type; start every test afresh."""
    monkeypatch.setattr(_hookerrors, "_reported", weakref.WeakKeyDictionary())


@pytest.fixture
async def redis_server(request: pytest.FixtureRequest) -> Any:
    """A real redis-server on 127.0.0.1 (shared by the session), emptied."""
    import redis.asyncio

    server = _require_redis(request, "fleet_redis_proc")
    client = redis.asyncio.Redis(host=server.host, port=server.port)
    await client.flushall()
    await client.aclose()
    return server


@pytest.fixture
def restartable_redis_server(request: pytest.FixtureRequest) -> Any:
    """A redis-server of its own, which the test may stop and start again."""
    server = _require_redis(request, "fleet_redis_proc_restartable")
    if not server.running():
        server.start()
    return server


class Events(BaseHooks):
    """Records every fleet event."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self._changed: asyncio.Event | None = None

    def on_fleet_event(self, event: Any) -> None:
        self.events.append(event)
        if self._changed is not None:
            self._changed.set()

    async def wait_for(self, kind: str, count: int = 1) -> None:
        """Until ``count`` events of ``kind`` were seen (hang guard: 20 s)."""
        while self.kinds()[kind] < count:
            self._changed = asyncio.Event()
            try:
                await asyncio.wait_for(self._changed.wait(), 20)
            except asyncio.TimeoutError:
                raise AssertionError(f"no {kind!r} event; saw {self.events}") from None

    def kinds(self) -> Counter[str]:
        return Counter(event.kind for event in self.events)


@pytest.fixture
async def make_fleet() -> AsyncIterator[Callable[..., Any]]:
    """Build RedisFleetReducers, each with a client of its own (as a process
    would have); everything is closed after the test."""
    import redis.asyncio

    from async_reduce.contrib.redis_fleet import RedisFleetReducer

    made: list[Any] = []

    def make(server: Any, namespace: str = "tests", **options: Any) -> Any:
        client = redis.asyncio.Redis(
            host=server.host, port=server.port, socket_timeout=2
        )
        options.setdefault("hooks", Events())
        fleet = RedisFleetReducer(client, namespace, **options)
        made.append(fleet)
        return fleet

    yield make
    for fleet in made:
        await fleet.aclose()
        await fleet.coordinator.client.aclose()
