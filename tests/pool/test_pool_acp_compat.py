"""asyncio-connection-pool 1.x code runs unchanged: its attributes and names."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from pool_helpers import MemoryStrategy, check_invariants, eventually, settle

from async_reduce.pool import ConnectionPool, ConnectionStrategy

ACP_MESSAGE = "burst_limit must be greater than or equal to max_size"


class Holders:
    """``count`` tasks that each hold a connection until released."""

    def __init__(self, pool: ConnectionPool[Any], count: int) -> None:
        self.release = asyncio.Event()
        self.holding = 0
        self.tasks = [asyncio.create_task(self._hold(pool)) for _ in range(count)]

    async def _hold(self, pool: ConnectionPool[Any]) -> None:
        async with pool.get_connection():
            self.holding += 1
            await self.release.wait()
            self.holding -= 1

    async def finish(self) -> None:
        self.release.set()
        await asyncio.gather(*self.tasks)


async def test_acp_attributes_read_the_live_state(
    make_pool: Any, strategy: MemoryStrategy
) -> None:
    """in_use, currently_allocating, available.qsize()/empty(), max_size and
    burst_limit have asyncio-connection-pool's meanings, read live."""
    pool = make_pool(4, burst_limit=6)
    available = pool.available
    assert (pool.max_size, pool.burst_limit) == (4, 6)
    assert (pool.in_use, pool.currently_allocating) == (0, 0)
    assert available.empty()
    assert available.qsize() == 0
    strategy.create_gate = asyncio.Event()
    holders = Holders(pool, 3)
    await eventually(lambda: pool.currently_allocating == 3)
    assert pool.in_use == 0
    strategy.create_gate.set()
    await eventually(lambda: holders.holding == 3)
    assert (pool.in_use, pool.currently_allocating) == (3, 0)
    assert available.empty()
    await holders.finish()
    assert pool.in_use == 0
    assert available.qsize() == 3  # the same view object, read again
    assert not available.empty()
    assert len(available) == 3
    assert available.maxsize == 4
    assert not available.full()
    await pool.close()


async def test_raising_burst_limit_lets_waiters_burst_at_once(
    make_pool: Any,
) -> None:
    """Assigning a higher burst_limit opens connections for waiters at once."""
    pool = make_pool(2)
    holders = Holders(pool, 2)
    await eventually(lambda: holders.holding == 2)
    waiter = asyncio.create_task(pool.acquire())
    await settle()
    assert not waiter.done()
    pool.burst_limit = 3
    conn = await waiter
    stats = pool.statistics()
    assert (stats.size, stats.burst_limit) == (3, 3)
    await pool.release(conn)  # nobody waits: the burst connection closes
    await eventually(lambda: pool.statistics().size == 2)
    await holders.finish()
    await pool.close()


async def test_lowering_burst_limit_closes_extras_as_they_come_back(
    make_pool: Any,
) -> None:
    """Assigning a lower burst_limit (or None) closes connections above it as
    they are returned, even to waiters, and never opens new ones above it."""
    pool = make_pool(1, burst_limit=3)
    holders = Holders(pool, 3)
    await eventually(lambda: holders.holding == 3)
    pool.burst_limit = None
    assert pool.burst_limit is None
    waiter = asyncio.create_task(pool.acquire())
    await holders.finish()
    conn = await waiter
    await eventually(lambda: pool.statistics().size == 1)
    check_invariants(pool)
    await pool.release(conn)
    await pool.close()


async def test_assigning_max_size_takes_effect(
    make_pool: Any, strategy: MemoryStrategy
) -> None:
    """Assigning max_size grows the pool for waiters at once and shrinks it by
    closing idle connections above it."""
    pool = make_pool(1)
    holders = Holders(pool, 3)
    await eventually(lambda: holders.holding == 1)
    pool.max_size = 3
    await eventually(lambda: holders.holding == 3)
    assert pool.statistics().max_size == 3
    await holders.finish()
    assert pool.available.qsize() == 3
    pool.max_size = 1
    assert pool.max_size == 1
    await eventually(lambda: len(strategy.closed) == 2)
    assert pool.statistics().size == 1
    await pool.close()


async def test_invalid_assignments_raise_and_change_nothing(make_pool: Any) -> None:
    """A burst_limit below max_size, or a max_size above burst_limit, raises
    ValueError with asyncio-connection-pool's words and the values; the
    limits stay as they were."""
    pool = make_pool(4, burst_limit=6)
    with pytest.raises(ValueError, match=ACP_MESSAGE) as caught:
        pool.burst_limit = 3
    assert "burst_limit=3" in str(caught.value)
    assert "max_size=4" in str(caught.value)
    with pytest.raises(ValueError, match=ACP_MESSAGE):
        pool.max_size = 7
    with pytest.raises(ValueError, match="max_size"):
        pool.max_size = 0
    with pytest.raises(TypeError, match="burst_limit"):
        pool.burst_limit = "7"
    assert (pool.max_size, pool.burst_limit) == (4, 6)
    await pool.close()


@pytest.mark.parametrize(
    "call",
    [
        lambda: ConnectionPool(MemoryStrategy(), 5, burst_limit=4),
        lambda: ConnectionPool(strategy=MemoryStrategy(), max_size=5, burst_limit=4),
    ],
)
def test_invalid_burst_limit_message(call: Any) -> None:
    """The constructor's message for burst_limit < max_size is the one
    asyncio-connection-pool users' tests match, naming the values."""
    with pytest.raises(ValueError, match=ACP_MESSAGE) as caught:
        call()
    assert "burst_limit=4" in str(caught.value)
    assert "max_size=5" in str(caught.value)


async def test_resize_uses_the_same_message(make_pool: Any) -> None:
    """resize() with burst_limit < max_size raises the same ValueError."""
    pool = make_pool(2)
    with pytest.raises(ValueError, match=ACP_MESSAGE):
        await pool.resize(max_size=3, burst_limit=2)
    await pool.close()


class ACPStyle(ConnectionStrategy[int]):
    """A strategy written against asyncio-connection-pool, import changed."""

    def __init__(self) -> None:
        self.numbers = itertools.count()
        self.closed: list[int] = []

    async def make_connection(self) -> int:
        return next(self.numbers)

    def connection_is_closed(self, conn: int) -> bool:
        return conn in self.closed

    def close_connection(self, conn: int) -> None:  # type: ignore[override]
        self.closed.append(conn)


async def test_subclass_defining_make_connection_is_complete() -> None:
    """A ConnectionStrategy subclass with make_connection (asyncio-connection-pool's
    name) and a plain close_connection can be instantiated and used."""
    strategy = ACPStyle()  # type: ignore[abstract]
    pool = ConnectionPool(strategy=strategy, max_size=2)
    async with pool.get_connection() as conn:
        assert conn == 0
    await pool.close()
    assert strategy.closed == [0]


def test_subclass_without_either_method_is_still_abstract() -> None:
    """A subclass defining neither create_connection nor make_connection
    cannot be instantiated."""

    class Incomplete(ConnectionStrategy[int]):
        def connection_is_closed(self, conn: int) -> bool:
            return False

        async def close_connection(self, conn: int) -> None:
            return None

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()  # type: ignore[abstract]


class Nones(ConnectionStrategy[None]):
    """Every "connection" is None, as in asyncio-connection-pool's own tests."""

    async def create_connection(self) -> None:
        await asyncio.sleep(0)

    def connection_is_closed(self, conn: None) -> bool:
        return False

    async def close_connection(self, conn: None) -> None:
        return None


async def test_plain_values_may_repeat_as_connections() -> None:
    """Connections that are plain values (None, numbers, strings) may repeat:
    each is a connection of its own, lent and released once each."""
    pool: ConnectionPool[None] = ConnectionPool(Nones(), max_size=5)
    holders = Holders(pool, 5)
    await eventually(lambda: holders.holding == 5)
    assert pool.in_use == 5
    await holders.finish()
    assert pool.available.qsize() == 5
    conns = [await pool.acquire() for _ in range(3)]
    for conn in conns:
        await pool.release(conn)
    with pytest.raises(ValueError, match="not lent out"):
        await pool.release(None)
    check_invariants(pool)
    await pool.close()
    assert pool.statistics().size == 0


async def test_name_and_service_name() -> None:
    """name= (or service_name=, asyncio-connection-pool's Datadog pool's word)
    shows in the repr; both at once is a TypeError."""
    pool = ConnectionPool(MemoryStrategy(), 2, service_name="cache")
    assert pool.name == "cache"
    assert repr(pool).startswith("<ConnectionPool 'cache' open")
    with pytest.raises(TypeError, match="service_name"):
        ConnectionPool(MemoryStrategy(), 2, name="a", service_name="b")
    with pytest.raises(TypeError, match="name"):
        ConnectionPool(MemoryStrategy(), 2, name=3)  # type: ignore[arg-type]
    await pool.close()
