"""A pool of Redis connections: borrowing, coalesced queries, statistics.

Needs a redis-server on 127.0.0.1:6379 (override with ``REDIS_URL``), for
example one of these::

    redis-server --port 6379 --save ''   # Debian: apt-get install redis-server
    docker run --rm -p 6379:6379 redis:7

then::

    .venv/bin/python examples/pool_redis.py

It fills a few keys, then sends 200 concurrent reads of 5 keys through
``pool.run()``: identical concurrent reads run once, on one pooled connection.
Under that burst the pool may open up to ``burst_limit`` (6) sockets at once,
at most ``max_connecting`` (2) connection attempts at a time; the sockets
above ``max_size`` (4) close as they come back with nobody waiting, so the
pool ends the burst with at most ``max_size`` open.  Finally it prints the
pool's statistics and the pool events counted by ``StatisticsOverallHooks``.
"""

from __future__ import annotations

import asyncio
import os
import sys

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from async_reduce.contrib.redis import RedisStrategy
from async_reduce.hooks import StatisticsOverallHooks
from async_reduce.pool import ConnectionPool

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


async def read(client: redis.asyncio.Redis, key: str) -> str | None:
    """One query; ``pool.run`` hands it a pooled client."""
    value = await client.get(key)
    return None if value is None else str(value)


async def main() -> None:
    hooks = StatisticsOverallHooks()
    strategy = RedisStrategy.from_url(
        REDIS_URL,
        decode_responses=True,
        retry=Retry(NoBackoff(), 0),  # fail fast; the pool handles reconnecting
        socket_connect_timeout=2,
        socket_timeout=2,
    )
    async with ConnectionPool(
        strategy,
        max_size=4,
        burst_limit=6,
        min_size=1,
        acquire_timeout=5,
        max_lifetime=300,
        hooks=hooks,
    ) as pool:
        async with pool.get_connection() as client:
            for n in range(5):
                await client.set(f"example:user:{n}", f"user number {n}")

        keys = [f"example:user:{n % 5}" for n in range(200)]
        values = await asyncio.gather(*(pool.run(read, key) for key in keys))
        print(f"{len(values)} reads, {len(set(values))} distinct values")
        stats = pool.statistics()
        print(
            f"pool: {stats.created} sockets opened in all, never more than "
            f"burst_limit {stats.burst_limit} at once; "
            f"{stats.idle + stats.in_use} open after the burst "
            f"(max_size {stats.max_size}); {stats.acquired} acquisitions"
        )
    overall = hooks.snapshot()
    print(
        f"reducer: {overall.total} run() calls, {overall.started} executions "
        f"(coalescing ratio {overall.coalescing_ratio:.2f})"
    )
    print(
        f"pool events: {overall.pool.acquired} acquired "
        f"(p99 wait {overall.pool.acquire_wait.p99 * 1000:.2f} ms), "
        f"{overall.pool.created} created, {overall.pool.closed} closed "
        f"{dict(overall.pool.closed_by_reason)}"
    )


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except redis.exceptions.ConnectionError as exc:
        sys.exit(
            f"cannot reach Redis at {REDIS_URL} ({exc}); see the top of {__file__}"
        )
