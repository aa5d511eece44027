"""Rule 9: a ConnectionPool per DSN, shared by every module through use()."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from services_helpers import EventRecorder

from async_reduce.contrib.redis import RedisStrategy
from async_reduce.pool import ConnectionPool
from async_reduce.services import Services, ServiceStopped

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "services_pool.py"

opened: list[str] = []


@asynccontextmanager
async def redis_pool(dsn: str, max_size: int = 4) -> AsyncIterator[ConnectionPool[Any]]:
    """One pool of Redis clients for ``dsn``, shared as a service."""
    strategy = RedisStrategy.from_url(
        dsn,
        decode_responses=True,
        retry=Retry(NoBackoff(), 0),
        socket_connect_timeout=2,
        socket_timeout=2,
    )
    opened.append(dsn)
    async with ConnectionPool(strategy, max_size) as pool:
        yield pool


async def orders_module(services: Services, dsn: str, n: int) -> ConnectionPool[Any]:
    async with services.use(redis_pool, dsn) as pool:
        async with pool.get_connection() as client:
            await client.incr("orders")
        await asyncio.sleep(0)
        return pool


async def audit_module(services: Services, dsn: str, n: int) -> ConnectionPool[Any]:
    async with services.use(redis_pool, dsn=dsn) as pool:
        await pool.run(lambda client: client.rpush("audit", n), ident=("audit", n))
        return pool


async def test_one_pool_per_dsn_shared_by_every_module(redis_server: Any) -> None:
    """Modules using the same DSN share one pool (started once, even when
    they ask at the same time); another DSN gets its own; pools close when
    the last module is done."""
    opened.clear()
    base = f"redis://{redis_server.host}:{redis_server.port}"
    dsn0, dsn1 = f"{base}/0", f"{base}/1"
    recorder = EventRecorder()
    async with Services(linger=0, hooks=recorder) as services:
        async with services.use(redis_pool, dsn0) as keep0:
            pools = await asyncio.gather(
                *(orders_module(services, dsn0, n) for n in range(10)),
                *(audit_module(services, dsn0, n) for n in range(10)),
                *(orders_module(services, dsn1, n) for n in range(5)),
            )
            assert all(pool is keep0 for pool in pools[:20])
            other = pools[20]
            assert other is not keep0
            assert all(pool is other for pool in pools[20:])
            assert sorted(opened) == [dsn0, dsn1]
            assert keep0.statistics().size <= 4
            await asyncio.sleep(0)
        await asyncio.wait_for(recorder.wait_count(ServiceStopped, 2), 10)
        assert keep0.closed
        assert other.closed
    for dsn, orders, audit in ((dsn0, "10", 10), (dsn1, "5", 0)):
        check = redis.asyncio.Redis.from_url(dsn, decode_responses=True)
        try:
            assert await check.get("orders") == orders
            assert await check.llen("audit") == audit
        finally:
            await check.aclose()


async def test_pool_service_is_closed_at_scope_exit(redis_server: Any) -> None:
    """A pool kept by linger is closed when the scope exits."""
    dsn = f"redis://{redis_server.host}:{redis_server.port}/2"
    async with Services(linger=60) as services:
        pool = await orders_module(services, dsn, 0)
        assert not pool.closed
        assert services.statistics().services[0].state == "lingering"
    assert pool.closed


def test_pool_service_example_runs(redis_server: Any) -> None:
    """examples/services_pool.py runs against a real Redis and reports one
    pool per DSN."""
    url = f"redis://{redis_server.host}:{redis_server.port}"
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"REDIS_URL": url, "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert "pools opened: 2" in result.stdout
