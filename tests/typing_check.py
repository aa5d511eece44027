"""Static typing checks: mypy --strict checks this file; nothing runs it.

Each ``assert_type`` states the type a user should see.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Hashable
from typing import Any

from typing_extensions import assert_type

from async_reduce import AsyncReducer, async_reduce, async_reduceable
from async_reduce.hooks import StatisticsOverallHooks
from async_reduce.pool import ConnectionPool, ConnectionStrategy, PoolStatistics


async def fetch(user_id: int, *, fresh: bool = False) -> dict[str, int]:
    return {"id": user_id}


@async_reduceable()
async def decorated(user_id: int, *, fresh: bool = False) -> str:
    return str(user_id)


@async_reduceable(AsyncReducer(hooks=StatisticsOverallHooks()), timeout=5)
async def with_reducer(name: str) -> bytes:
    return name.encode()


@async_reduceable
async def bare(x: float) -> float:
    return x


class Repo:
    @async_reduceable()
    async def get(self, item: int) -> str:
        return str(item)


async def usage() -> None:
    assert_type(await async_reduce(fetch(1)), dict[str, int])
    assert_type(await async_reduce(fetch(1), ident=("user", 1)), dict[str, int])
    assert_type(await async_reduce(fetch(1), timeout=2.5), dict[str, int])
    call = async_reduce(fetch(2))
    checked = assert_type(call, Coroutine[Any, Any, dict[str, int]])
    await checked
    task = asyncio.create_task(async_reduce(fetch(3)))
    assert_type(task, asyncio.Task[dict[str, int]])

    assert_type(await decorated(1), str)
    assert_type(await decorated(1, fresh=True), str)
    assert_type(decorated.key(1), Hashable)
    assert_type(decorated.reducer, AsyncReducer)
    assert_type(await with_reducer("x"), bytes)
    assert_type(await bare(1.5), float)
    assert_type(await Repo().get(3), str)

    reducer = AsyncReducer(typed=True, timeout=None, orphans="finish")
    assert_type(len(reducer), int)
    assert_type("key" in reducer, bool)
    assert_type(reducer.forget("key"), bool)


async def compat_usage() -> None:
    """async-reduce 1.x's module paths, DebugHooks' default, hooks assignment."""
    from async_reduce.async_reduceable import async_reduceable as old_decorator
    from async_reduce.async_reducer import AsyncReducer as OldReducer
    from async_reduce.async_reducer import async_reduce as old_async_reduce
    from async_reduce.hooks import DebugHooks

    @old_decorator(OldReducer(hooks=DebugHooks(events="all")))
    async def old_style(x: int) -> int:
        return x

    assert_type(await old_style(1), int)
    assert_type(await old_async_reduce(fetch(1)), dict[str, int])
    old_async_reduce.hooks = StatisticsOverallHooks()
    old_async_reduce.hooks = None


class Conn:
    async def get(self, key: str) -> bytes:
        return key.encode()


class Strategy(ConnectionStrategy[Conn]):
    async def create_connection(self) -> Conn:
        return Conn()

    def connection_is_closed(self, conn: Conn) -> bool:
        return False

    async def close_connection(self, conn: Conn) -> None:
        return None


async def get(conn: Conn, key: str) -> bytes:
    return await conn.get(key)


async def pool_usage() -> None:
    pool = ConnectionPool(Strategy(), max_size=4, acquire_timeout=1.0)
    async with pool.get_connection() as conn:
        assert_type(conn, Conn)
    conn = await pool.acquire(timeout=0.5)
    assert_type(conn, Conn)
    await pool.release(conn)
    assert_type(await pool.run(get, "k"), bytes)
    assert_type(pool.statistics(), PoolStatistics)


async def misuse() -> None:
    await decorated("1")  # type: ignore[arg-type]
    await decorated(1, fresher=True)  # type: ignore[call-arg]


# -- worker pool ---------------------------------------------------------------

from async_reduce.workers import WorkerPool, WorkerPoolStatistics  # noqa: E402

workers = WorkerPool(4, max_queue=100)


def parse(data: bytes, *, strict: bool = False) -> dict[str, int]:
    return {"size": len(data)}


@async_reduceable(workers=workers)
def blocking_load(user_id: int) -> str:
    return str(user_id)


async def worker_usage() -> None:
    assert_type(await workers.run(parse, b"x", strict=True, priority=2), dict[str, int])
    assert_type(await workers.apply(parse, (b"x",), {"strict": True}), dict[str, int])
    future = await workers.submit(parse, b"x")
    assert_type(future, asyncio.Future[dict[str, int]])
    assert_type(workers.submit_nowait(parse, b"x"), asyncio.Future[dict[str, int]])
    assert_type(await workers.map(parse, [b"a", b"b"]), list[dict[str, int]])
    assert_type(await blocking_load(3), str)
    assert_type(workers.statistics(), WorkerPoolStatistics)
    await blocking_load("3")  # type: ignore[arg-type]


# -- shared services -----------------------------------------------------------

from collections.abc import AsyncIterator  # noqa: E402
from contextlib import asynccontextmanager  # noqa: E402

from async_reduce.services import Services, ServicesStatistics  # noqa: E402


@asynccontextmanager
async def database(dsn: str, pool_size: int = 10) -> AsyncIterator[bytes]:
    yield dsn.encode()


class Session:
    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


async def plain_generator(url: str) -> AsyncIterator[float]:
    yield 1.0


async def services_usage() -> None:
    async with Services(linger=5) as services:
        async with services.use(database, "dsn", pool_size=2) as db:
            assert_type(db, bytes)
        assert_type(await services.acquire(database, "dsn"), bytes)
        assert_type(await services.acquire(Session), Session)
        async with services.use(Session, name="session", linger=1.0) as session:
            assert_type(session, Session)
        services.release(db)
        assert_type(services.statistics(), ServicesStatistics)
        assert_type(await services.acquire(plain_generator, "u"), float)
        async with services.use(plain_generator, url="u") as value:
            assert_type(value, float)
        services.use(len, "not a context manager")  # type: ignore[arg-type]


# -- fleet ---------------------------------------------------------------------
import redis.asyncio  # noqa: E402

from async_reduce.contrib.redis_fleet import RedisFleetReducer  # noqa: E402
from async_reduce.fleet import FleetEvent, FleetReducer, RemoteError  # noqa: E402
from async_reduce.hooks import BaseHooks  # noqa: E402


class FleetCounter(BaseHooks):
    def __init__(self) -> None:
        self.kinds: list[str] = []

    def on_fleet_event(self, event: FleetEvent) -> None:
        self.kinds.append(event.kind)


fleet = RedisFleetReducer(
    redis.asyncio.Redis(), "typing", share_for=1.0, hooks=FleetCounter()
)


@async_reduceable(fleet)
async def fleet_user(user_id: int, region: str = "eu") -> dict[str, int]:
    return {"id": user_id}


async def fleet_usage() -> None:
    assert_type(await fleet_user(1), dict[str, int])
    assert_type(await fleet_user(1, region="us"), dict[str, int])
    assert_type(await fleet(fleet_user.__wrapped__(2), ident="user:2"), dict[str, int])
    assert isinstance(fleet, FleetReducer)
    try:
        await fleet_user(3)
    except RemoteError as exc:
        assert_type(exc.type_name, str)
    await fleet_user("x")  # type: ignore[arg-type]
