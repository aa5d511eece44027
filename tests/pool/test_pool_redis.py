"""RedisStrategy against a real redis-server on 127.0.0.1 (pytest-redis)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis.asyncio
import redis.exceptions
from pool_helpers import RecordingHooks, check_invariants
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from async_reduce._events import ConnectionClosed
from async_reduce.contrib.redis import RedisStrategy
from async_reduce.pool import ConnectionPool


def _strategy(server: Any, **kwargs: Any) -> RedisStrategy:
    # No client-side retries: failures surface at once and the pool handles
    # reconnecting; short timeouts so that nothing here can hang.
    return RedisStrategy(
        host=server.host,
        port=server.port,
        retry=Retry(NoBackoff(), 0),
        socket_connect_timeout=2,
        socket_timeout=2,
        **kwargs,
    )


async def test_pool_of_redis_clients(redis_flushed: Any) -> None:
    """Pooled clients run commands; the pool opens only what is needed."""
    async with ConnectionPool(
        _strategy(redis_flushed, decode_responses=True), 3
    ) as pool:

        async def incr(n: int) -> None:
            async with pool.get_connection() as client:
                await client.incr("counter")

        await asyncio.gather(*(incr(n) for n in range(50)))
        async with pool.get_connection() as client:
            assert await client.get("counter") == "50"
            clients = await client.client_list()
        stats = pool.statistics()
        assert stats.size <= 3
        assert len(clients) == stats.size  # one socket per pooled client
    assert pool.statistics().size == 0


async def test_run_coalesces_identical_queries(redis_flushed: Any) -> None:
    """Identical concurrent pool.run() calls send one command."""
    hooks = RecordingHooks()
    strategy = _strategy(redis_flushed, decode_responses=True)
    async with ConnectionPool(strategy, 2, hooks=hooks) as pool:
        await pool.run(redis.asyncio.Redis.set, "greeting", "hello")

        async def get(client: redis.asyncio.Redis, key: str) -> Any:
            return await client.get(key)

        values = await asyncio.gather(*(pool.run(get, "greeting") for _ in range(20)))
        assert values == ["hello"] * 20
        assert [e.callers for e in hooks.executions][-1] == 20


async def test_check_connection_pings(redis_flushed: Any) -> None:
    """An idle client is PINGed on checkout; a dead one is replaced."""
    strategy = _strategy(redis_flushed)
    hooks = RecordingHooks()
    async with ConnectionPool(strategy, 1, check_after=0, hooks=hooks) as pool:
        async with pool.get_connection() as client:
            first_id = await client.client_id()
        # Kill the client's socket from the server side.
        async with redis.asyncio.Redis(
            host=redis_flushed.host, port=redis_flushed.port
        ) as admin:
            assert await admin.client_kill_filter(_id=first_id) == 1
        async with pool.get_connection() as client:
            assert await client.client_id() != first_id
        assert [e.reason for e in hooks.of(ConnectionClosed)] == ["broken"]


async def test_refused_connection_reaches_the_caller(redis_server: Any) -> None:
    """With nothing listening, acquire raises redis' ConnectionError."""
    strategy = RedisStrategy(
        host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0), socket_connect_timeout=2
    )
    pool = ConnectionPool(strategy, 2)
    with pytest.raises(redis.exceptions.ConnectionError):
        await pool.acquire()
    stats = pool.statistics()
    assert (stats.size, stats.create_failures, stats.outage) == (0, 1, True)
    await pool.close()


def test_reserved_arguments_are_refused() -> None:
    """The strategy sets single_connection_client and the client's pool itself."""
    with pytest.raises(TypeError, match="single_connection_client"):
        RedisStrategy(single_connection_client=False)
    with pytest.raises(TypeError, match="connection_pool"):
        RedisStrategy(connection_pool=None)
    assert repr(RedisStrategy.from_url("redis://127.0.0.1:1/0")) == (
        "<RedisStrategy redis://127.0.0.1:1/0>"
    )


async def test_from_url(redis_flushed: Any) -> None:
    """RedisStrategy.from_url connects to the URL's server and database."""
    url = f"redis://{redis_flushed.host}:{redis_flushed.port}/3"
    pool = ConnectionPool(RedisStrategy.from_url(url), 1)
    async with pool, pool.get_connection() as client:
        await client.set("k", "v")
    async with redis.asyncio.Redis(
        host=redis_flushed.host, port=redis_flushed.port, db=3
    ) as direct:
        assert await direct.get("k") == b"v"


async def test_server_restart_mid_use(restartable_redis_server: Any) -> None:
    """Through a redis-server restart: errors, no lost slots, then recovery."""
    server = restartable_redis_server
    strategy = _strategy(server)
    pool = ConnectionPool(
        strategy, 4, check_after=0.05, reconnect_backoff=(0.02, 0.2), acquire_timeout=5
    )
    outcomes: dict[str, int] = {"ok": 0, "error": 0}
    phase = {"stop": False}

    async def worker(n: int) -> None:
        while not phase["stop"]:
            try:
                async with pool.get_connection() as client:
                    await client.incr(f"worker:{n}")
                outcomes["ok"] += 1
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                outcomes["error"] += 1
            await asyncio.sleep(0.005)

    workers = [asyncio.create_task(worker(n)) for n in range(8)]
    try:
        await _until(lambda: outcomes["ok"] >= 50)
        await asyncio.to_thread(server.stop)
        await _until(lambda: outcomes["error"] >= 20)
        stats = pool.statistics()
        assert stats.outage
        assert stats.size <= 4
        ok_while_down = outcomes["ok"]
        await asyncio.to_thread(server.start)
        await _until(lambda: outcomes["ok"] >= ok_while_down + 50)
        assert not pool.statistics().outage
    finally:
        phase["stop"] = True
        await asyncio.gather(*workers)
    stats = pool.statistics()
    check_invariants(pool)
    assert (stats.in_use, stats.waiting, stats.creating) == (0, 0, 0)
    assert stats.size <= 4
    assert stats.create_failures >= 1
    # Every slot works again.
    clients = [await pool.acquire() for _ in range(4)]
    assert [await c.ping() for c in clients] == [True] * 4
    for client in clients:
        await pool.release(client)
    await pool.close()
    assert pool.statistics().size == 0


async def _until(condition: Any, timeout: float = 20.0) -> None:
    """Wait for real-world progress (a server restart) with a bound."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "no progress"
        await asyncio.sleep(0.01)
