"""A connection pool per DSN, shared by every module through the services scope.

Two modules of a program (orders and audit) each ask for "the Redis pool of
this DSN" whenever they need it; the scope starts one ``ConnectionPool`` per
DSN, however many ask at the same time, keeps it while anyone uses it (and 30
seconds longer, so that bursts do not reopen sockets), and closes it at the
end.  Needs a redis-server (``REDIS_URL``, default redis://127.0.0.1:6379)::

    redis-server --port 6379 --save ''
    .venv/bin/python examples/services_pool.py
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from async_reduce.contrib.redis import RedisStrategy
from async_reduce.pool import ConnectionPool
from async_reduce.services import Services

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")
opened: list[str] = []


@asynccontextmanager
async def redis_pool(dsn: str) -> AsyncIterator[ConnectionPool[Any]]:
    """The service: one pool of Redis clients for ``dsn``."""
    opened.append(dsn)
    strategy = RedisStrategy.from_url(dsn, decode_responses=True)
    async with ConnectionPool(strategy, max_size=4) as pool:
        yield pool


async def place_order(services: Services, n: int) -> None:
    """The orders module: writes to database 0."""
    async with (
        services.use(redis_pool, f"{REDIS_URL}/0") as pool,
        pool.get_connection() as client,
    ):
        await client.incr("example:orders")


async def audit(services: Services, n: int) -> None:
    """The audit module: writes to database 0 too, and to database 1."""
    async with services.use(redis_pool, f"{REDIS_URL}/0") as pool:
        await pool.run(lambda client: client.rpush("example:audit", n), ident=n)
    async with (
        services.use(redis_pool, f"{REDIS_URL}/1") as pool,
        pool.get_connection() as client,
    ):
        await client.incr("example:audited")


async def main() -> None:
    async with Services(linger=30) as services:
        await asyncio.gather(
            *(place_order(services, n) for n in range(100)),
            *(audit(services, n) for n in range(100)),
        )
        for service in services.statistics().services:
            print(f"{service.name}: {service.state}, users={service.users}")
        async with services.use(redis_pool, f"{REDIS_URL}/0") as pool:
            stats = pool.statistics()
            print(f"database 0 pool: size={stats.size} (max 4)")
            async with pool.get_connection() as client:
                await client.delete("example:orders", "example:audit")
        async with (
            services.use(redis_pool, f"{REDIS_URL}/1") as pool,
            pool.get_connection() as client,
        ):
            await client.delete("example:audited")
    print(f"pools opened: {len(opened)}")


if __name__ == "__main__":
    asyncio.run(main())
