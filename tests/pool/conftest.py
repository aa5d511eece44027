"""Fixtures of the pool tests: an in-memory strategy, hook recorders, Redis."""

from __future__ import annotations

import asyncio
import importlib
import os
import pkgutil
import shutil
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pool_helpers import Clock, MemoryConnection, MemoryStrategy
from pytest_redis import factories

import async_reduce.pool
from async_reduce import _hookerrors
from async_reduce.pool import ConnectionPool

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
HAVE_REDIS = os.access(REDIS_SERVER, os.X_OK)


@pytest.fixture(autouse=True)
def _fresh_hook_error_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hook errors are logged once per hook id and type; start every test afresh."""
    monkeypatch.setattr(_hookerrors, "_reported", weakref.WeakKeyDictionary())


@pytest.fixture
def strategy() -> MemoryStrategy:
    return MemoryStrategy()


@pytest.fixture
def make_pool(
    strategy: MemoryStrategy,
) -> Iterator[Callable[..., ConnectionPool[MemoryConnection]]]:
    """Build pools over ``strategy``; every pool is closed after the test."""
    pools: list[ConnectionPool[Any]] = []

    def make(max_size: int = 2, **kwargs: Any) -> ConnectionPool[MemoryConnection]:
        pool = ConnectionPool(kwargs.pop("strategy", strategy), max_size, **kwargs)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        assert pool.closed, f"{pool!r} left open by the test"


# -- Redis --------------------------------------------------------------------

if HAVE_REDIS:
    redis_proc = factories.redis_proc(executable=REDIS_SERVER, port=None)
    redis_proc_restartable = factories.redis_proc(executable=REDIS_SERVER, port=None)


def _require_redis(request: pytest.FixtureRequest, name: str) -> Any:
    if not HAVE_REDIS:
        reason = (
            f"redis-server not found (looked for {REDIS_SERVER}); install it "
            "(Debian: apt-get install redis-server) to run the Redis tests"
        )
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {reason}", pytrace=False)
        pytest.skip(reason)
    return request.getfixturevalue(name)


@pytest.fixture
def redis_server(request: pytest.FixtureRequest) -> Any:
    """A real redis-server on 127.0.0.1, shared by the session."""
    return _require_redis(request, "redis_proc")


@pytest.fixture
def restartable_redis_server(request: pytest.FixtureRequest) -> Any:
    """A redis-server of its own, which the test may stop and start again."""
    return _require_redis(request, "redis_proc_restartable")


@pytest.fixture
async def redis_flushed(redis_server: Any) -> Any:
    """``redis_server`` with its databases emptied before the test."""
    import redis.asyncio

    client = redis.asyncio.Redis(host=redis_server.host, port=redis_server.port)
    await client.flushall()
    await client.aclose()
    return redis_server


# -- a clock the test moves ------------------------------------------------------


@pytest.fixture
async def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """A :class:`Clock` driving the pool and the running loop for this test."""
    loop = asyncio.get_running_loop()
    fake = Clock(loop.time())
    for info in pkgutil.iter_modules(async_reduce.pool.__path__):
        module = importlib.import_module(f"async_reduce.pool.{info.name}")
        if getattr(module, "monotonic", None) is time.monotonic:
            monkeypatch.setattr(module, "monotonic", fake)
    monkeypatch.setattr(loop, "time", fake)
    return fake
