"""Opening connections: checked when fresh, bounded in time and in number."""

from __future__ import annotations

import asyncio
import inspect
import math
import sys
from typing import Any

import pytest
from pool_helpers import (
    MemoryConnection,
    MemoryStrategy,
    check_invariants,
    eventually,
    settle,
)

from async_reduce.pool import ConnectionPool, PoolTimeout


class CountingStrategy(MemoryStrategy):
    """Counts the ``create_connection`` calls in flight, and the most at once."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = 0
        self.most_in_flight = 0

    async def create_connection(self) -> MemoryConnection:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await super().create_connection()
        finally:
            self.in_flight -= 1


# -- rule: a connection reported closed at once is never handed out ----------


class BrokenFirst(MemoryStrategy):
    """Its first ``broken_count`` connections are reported closed at once."""

    def __init__(self, broken_count: int = 1) -> None:
        super().__init__()
        self.broken_count = broken_count

    async def create_connection(self) -> MemoryConnection:
        conn = await super().create_connection()
        if conn.number <= self.broken_count:
            conn.broken = True
        return conn


@pytest.mark.parametrize("entry_point", ["acquire", "context", "run"])
async def test_fresh_connection_reported_closed_is_never_lent(
    make_pool: Any, entry_point: str
) -> None:
    """A connection that connection_is_closed reports closed right after
    creation is closed, never handed out; the caller gets a usable one."""
    strategy = BrokenFirst()
    pool = make_pool(2, strategy=strategy)
    if entry_point == "acquire":
        conn = await pool.acquire()
        await pool.release(conn)
    elif entry_point == "context":
        async with pool.get_connection() as conn:
            pass
    elif entry_point == "run":

        async def which(c: MemoryConnection) -> MemoryConnection:
            return c

        conn = await pool.run(which)
    assert not conn.broken
    await eventually(lambda: strategy.created[0].closed)
    check_invariants(pool)
    await pool.close()


@pytest.mark.parametrize("max_size", [1, 10])
async def test_fresh_connections_closed_in_a_row_are_replaced(
    make_pool: Any, max_size: int
) -> None:
    """Several fresh connections in a row reported closed are all replaced
    (throttled like an outage); every caller gets an open one."""
    strategy = BrokenFirst(broken_count=4)
    pool = make_pool(max_size, strategy=strategy, reconnect_backoff=(0.001, 0.002))

    async def borrow() -> MemoryConnection:
        async with pool.get_connection() as conn:
            return conn

    got = await asyncio.gather(*(borrow() for _ in range(10)))
    assert not any(conn.broken for conn in got)
    await eventually(lambda: all(c.closed for c in strategy.created[:4]))
    assert pool.statistics().create_failures >= 1
    check_invariants(pool)
    await pool.close()


async def test_persistently_closed_fresh_connections_are_never_lent(
    make_pool: Any,
) -> None:
    """When fresh connections keep coming back closed, the caller is never
    handed one: its wait ends with PoolTimeout, whose cause names the strategy."""
    strategy = BrokenFirst(broken_count=10**6)
    pool = make_pool(1, strategy=strategy, reconnect_backoff=(0.001, 0.002))
    with pytest.raises(PoolTimeout) as caught:
        await pool.acquire(timeout=0.2)
    assert "BrokenFirst.create_connection" in str(caught.value.__cause__)
    assert pool.statistics().in_use == 0
    await pool.close()
    await eventually(lambda: all(conn.closed for conn in strategy.created))


# -- rule: a strategy returning an object the pool holds is detected ---------


class SameObject(MemoryStrategy):
    """A faulty strategy: always the same connection object."""

    def __init__(self) -> None:
        super().__init__()
        self.only = MemoryConnection(1)

    async def create_connection(self) -> MemoryConnection:
        self.create_attempts += 1
        return self.only


async def test_strategy_returning_a_lent_connection_is_detected(
    make_pool: Any,
) -> None:
    """create_connection returning a connection already lent out fails that
    acquire with an error naming the strategy; the slot is freed."""
    strategy = SameObject()
    pool = make_pool(3, strategy=strategy)
    conn = await pool.acquire()
    with pytest.raises(RuntimeError, match=r"SameObject\.create_connection.*lent out"):
        await pool.acquire(timeout=30)
    stats = pool.statistics()
    assert (stats.size, stats.in_use, stats.creating) == (1, 1, 0)
    check_invariants(pool)
    await pool.release(conn)
    assert not conn.closed  # it is the holder's, not closed by the check
    assert pool.statistics().idle == 1
    await pool.close()


async def test_strategy_returning_an_idle_connection_is_detected(
    make_pool: Any,
) -> None:
    """create_connection returning a connection already idle in the pool is
    refused with an error naming the strategy; the slot is freed."""
    strategy = SameObject()
    pool = make_pool(2, strategy=strategy, min_size=2)
    with pytest.raises(RuntimeError, match=r"SameObject\.create_connection.*idle"):
        await pool.start()
    stats = pool.statistics()
    assert (stats.size, stats.idle, stats.in_use, stats.creating) == (1, 1, 0, 0)
    await pool.close()


# -- rule: hung backends never pin a slot ------------------------------------


def test_connect_and_check_timeouts_have_finite_defaults() -> None:
    """connect_timeout and check_timeout default to a finite number of seconds."""
    parameters = inspect.signature(ConnectionPool).parameters
    for name in ("connect_timeout", "check_timeout"):
        default = parameters[name].default
        assert isinstance(default, (int, float)), name
        assert 0 < default < math.inf, name


async def test_hung_creation_does_not_pin_the_slot(
    make_pool: Any, strategy: MemoryStrategy
) -> None:
    """A creation that hangs past connect_timeout is cancelled and its slot
    freed: once the backend answers again, acquiring works."""
    strategy.create_gate = asyncio.Event()  # the backend hangs
    pool = make_pool(1, connect_timeout=0.2, reconnect_backoff=(0.01, 0.01))
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(pool.acquire(), 0.01)
    stats = pool.statistics()
    assert (stats.size, stats.creating, stats.in_use) == (1, 1, 0)
    with pytest.raises(PoolTimeout, match="creating=1") as caught:
        await pool.acquire(timeout=0.01)
    assert caught.value.creating == 1
    strategy.create_gate.set()
    strategy.create_gate = None
    conn = await pool.acquire(timeout=30)
    assert not conn.closed
    await pool.release(conn)
    await pool.close()


async def test_connect_timeout_fails_the_waiter_and_frees_the_slot(
    make_pool: Any, strategy: MemoryStrategy
) -> None:
    """A caller waiting for a creation that outlasts connect_timeout gets a
    TimeoutError naming the strategy; no slot stays reserved."""
    strategy.create_gate = asyncio.Event()
    pool = make_pool(1, connect_timeout=0.05)
    with pytest.raises(TimeoutError, match=r"MemoryStrategy\.create_connection"):
        await pool.acquire()
    stats = pool.statistics()
    assert (stats.size, stats.creating, stats.create_failures) == (0, 0, 1)
    await pool.close()


# -- rule: at most max_connecting attempts at once ---------------------------


@pytest.mark.parametrize("max_connecting", [None, 1, 5])
async def test_connection_attempts_in_flight_are_limited(
    make_pool: Any, max_connecting: int | None
) -> None:
    """Many acquirers on a cold pool make at most max_connecting (default 2)
    connection attempts at once; all are served as connections arrive."""
    strategy = CountingStrategy()
    strategy.create_gate = asyncio.Event()
    kwargs = {} if max_connecting is None else {"max_connecting": max_connecting}
    limit = 2 if max_connecting is None else max_connecting
    pool = make_pool(10, strategy=strategy, **kwargs)

    async def borrow() -> None:
        async with pool.get_connection():
            await asyncio.sleep(0)

    borrowers = [asyncio.create_task(borrow()) for _ in range(50)]
    await eventually(lambda: strategy.in_flight == limit)
    await settle()
    assert strategy.in_flight == limit
    assert pool.statistics().creating >= limit
    strategy.create_gate.set()
    await asyncio.gather(*borrowers)
    assert strategy.most_in_flight == limit
    assert pool.statistics().size <= 10
    check_invariants(pool)
    await pool.close()


async def test_attempts_are_limited_while_the_backend_is_down(
    make_pool: Any,
) -> None:
    """With the backend down, 50 acquirers on a cold pool never make more than
    max_connecting attempts at once."""
    strategy = CountingStrategy()
    strategy.fail_always = ConnectionRefusedError("down")
    strategy.create_gate = asyncio.Event()
    pool = make_pool(20, strategy=strategy, reconnect_backoff=(0.001, 0.002))
    acquirers = [asyncio.create_task(pool.acquire(timeout=0.3)) for _ in range(50)]
    await eventually(lambda: strategy.in_flight == 2)
    await settle()
    assert strategy.in_flight == 2
    strategy.create_gate.set()
    results = await asyncio.gather(*acquirers, return_exceptions=True)
    assert all(isinstance(r, (ConnectionRefusedError, PoolTimeout)) for r in results)
    assert strategy.most_in_flight <= 2
    assert pool.statistics().size == 0
    await pool.close()


async def test_max_connecting_is_validated(make_pool: Any) -> None:
    """max_connecting must be an int >= 1, named in the error."""
    with pytest.raises(ValueError, match="max_connecting"):
        make_pool(2, max_connecting=0)
    with pytest.raises(TypeError, match="max_connecting"):
        make_pool(2, max_connecting=1.5)


async def test_warm_up_respects_max_connecting(make_pool: Any) -> None:
    """start() opens min_size connections, max_connecting at a time."""
    strategy = CountingStrategy()
    pool = make_pool(8, strategy=strategy, min_size=8, max_connecting=3)
    await pool.start()
    assert pool.statistics().idle == 8
    assert strategy.most_in_flight <= 3
    await pool.close()


# -- rule: eager tasks never push the size past the limits --------------------


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks: Python 3.12+")
@pytest.mark.parametrize(
    ("sizes", "grow"),
    [
        ({"max_size": 2}, {"max_size": 4}),
        ({"max_size": 2, "burst_limit": 2}, {"burst_limit": 5}),
    ],
)
async def test_eager_tasks_never_exceed_the_limits(
    sizes: dict[str, int], grow: dict[str, int]
) -> None:
    """With eager tasks and a create_connection that never suspends, size never
    exceeds max_size (or burst_limit), including when resize() lets a crowd of
    waiters be served at once."""
    loop = asyncio.get_running_loop()
    loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
    seen: list[tuple[int, int]] = []

    class Instant(MemoryStrategy):
        async def create_connection(self) -> MemoryConnection:
            stats = pool.statistics()
            seen.append((stats.size, stats.burst_limit or stats.max_size))
            return await super().create_connection()

    pool: ConnectionPool[MemoryConnection] = ConnectionPool(Instant(), **sizes)
    hold = asyncio.Event()

    async def borrow() -> None:
        async with pool.get_connection():
            await hold.wait()

    try:
        borrowers = [asyncio.create_task(borrow()) for _ in range(12)]
        await settle()
        assert pool.statistics().waiting == 10  # the pool is at its limit
        await pool.resize(**grow)
        await settle()
        check_invariants(pool)
        hold.set()
        await asyncio.gather(*borrowers)
        await pool.resize(max_size=1, burst_limit=1)
        check_invariants(pool)
        hold.clear()
        borrowers = [asyncio.create_task(borrow()) for _ in range(5)]
        await settle()
        await pool.resize(max_size=3, burst_limit=3)
        check_invariants(pool)
        hold.set()
        await asyncio.gather(*borrowers)
        assert len(seen) >= 4
        assert all(size <= limit for size, limit in seen), seen
        check_invariants(pool)
    finally:
        await pool.close()
        loop.set_task_factory(None)
