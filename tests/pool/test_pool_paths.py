"""Rules checked on every copy of the pool's paths.

For speed the pool repeats its checkout and check-in sequences: a plain pool
(no hooks, no timed features) lends through ``get_connection()`` without a
coroutine frame, a pool with hooks or clocks takes another fast path, a
caller that must wait takes the slow path, and a connection comes back either
through the ``Lease``'s exit or through ``release()``.  Each rule here runs
over every combination.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pool_helpers import (
    MemoryConnection,
    MemoryStrategy,
    RecordingHooks,
    check_invariants,
    eventually,
)

from async_reduce._events import ConnectionAcquired, ConnectionClosed
from async_reduce.pool import ConnectionPool

CONFIGS: dict[str, dict[str, Any]] = {
    "plain": {},
    "hooks": {},  # RecordingHooks, made for each pool
    "clocked": {"max_lifetime": 3600.0, "idle_timeout": 3600.0},
}


@pytest.fixture(params=list(CONFIGS))
def config(request: pytest.FixtureRequest) -> str:
    """Pool options that choose which fast path runs."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=["lease", "release()"])
def api(request: pytest.FixtureRequest) -> str:
    """How a connection is given back: the Lease's exit, or release()."""
    return request.param  # type: ignore[no-any-return]


def make(
    strategy: MemoryStrategy, config: str, max_size: int
) -> tuple[ConnectionPool[Any], RecordingHooks | None]:
    """A pool of ``config``, and its hooks when it has some."""
    hooks = RecordingHooks() if config == "hooks" else None
    return ConnectionPool(strategy, max_size, hooks=hooks, **CONFIGS[config]), hooks


@contextlib.asynccontextmanager
async def borrow(pool: ConnectionPool[Any], api: str) -> AsyncIterator[Any]:
    """A connection for the block, given back the way ``api`` says."""
    if api == "lease":
        async with pool.get_connection() as conn:
            yield conn
    else:
        conn = await pool.acquire()
        try:
            yield conn
        finally:
            await pool.release(conn)


async def test_closed_idle_connection_is_never_handed_out(
    strategy: MemoryStrategy, config: str, api: str
) -> None:
    """An idle connection reported closed is dropped and replaced, on every path."""
    pool, hooks = make(strategy, config, 2)
    async with borrow(pool, api) as first:
        pass
    first.broken = True
    async with borrow(pool, api) as second:
        assert second is not first
        assert not second.broken
        assert not second.closed
    await strategy.connection_closed.wait()
    assert first.closed
    stats = pool.statistics()
    assert (stats.size, stats.idle, stats.in_use, stats.acquired) == (1, 1, 0, 2)
    if hooks is not None:
        closed = hooks.of(ConnectionClosed)
        assert [e.reason for e in closed] == ["broken"]
    check_invariants(pool)
    await pool.close()


async def test_each_checkout_is_counted_and_returned(
    strategy: MemoryStrategy, config: str, api: str
) -> None:
    """Every checkout counts once in acquired and comes back idle, on every path."""
    pool, hooks = make(strategy, config, 2)
    for round_ in range(1, 4):
        async with borrow(pool, api) as conn:
            stats = pool.statistics()
            assert (stats.in_use, stats.idle, stats.acquired) == (1, 0, round_)
            assert not conn.closed
        stats = pool.statistics()
        assert (stats.in_use, stats.idle, stats.size) == (0, 1, 1)
    assert len(strategy.created) == 1  # the same connection, reused
    if hooks is not None:
        assert len(hooks.of(ConnectionAcquired)) == 3
    await pool.close()


async def test_error_in_the_block_gives_the_connection_back(
    strategy: MemoryStrategy, config: str, api: str
) -> None:
    """An exception inside the block still returns the connection, on every path."""
    pool, _hooks = make(strategy, config, 1)
    with pytest.raises(LookupError):
        async with borrow(pool, api):
            raise LookupError("in the caller's code")
    stats = pool.statistics()
    assert (stats.in_use, stats.idle, stats.size) == (0, 1, 1)
    async with borrow(pool, api) as conn:  # the only slot is free again
        assert conn is strategy.created[0]
    check_invariants(pool)
    await pool.close()


async def test_returned_connection_goes_to_the_waiter(
    strategy: MemoryStrategy, config: str, api: str
) -> None:
    """A connection given back is handed to the caller waiting (slow path)."""
    pool, _hooks = make(strategy, config, 1)
    entered, leave = asyncio.Event(), asyncio.Event()

    async def holder() -> MemoryConnection:
        async with borrow(pool, api) as conn:
            entered.set()
            await leave.wait()
        return conn  # type: ignore[no-any-return]

    async def waiter() -> MemoryConnection:
        async with borrow(pool, api) as conn:
            return conn  # type: ignore[no-any-return]

    first = asyncio.create_task(holder())
    await entered.wait()
    second = asyncio.create_task(waiter())
    await eventually(lambda: pool.statistics().waiting == 1)
    leave.set()
    assert await first is await second  # handed over, not a new connection
    stats = pool.statistics()
    assert (stats.size, stats.idle, stats.in_use, stats.waiting) == (1, 1, 0, 0)
    assert stats.acquired == 2
    check_invariants(pool)
    await pool.close()


async def test_cancelled_waiter_leaves_no_slot_stuck(
    strategy: MemoryStrategy, config: str, api: str
) -> None:
    """A waiter cancelled in line takes nothing; the next caller is served."""
    pool, _hooks = make(strategy, config, 1)
    conn = await pool.acquire()
    waiting = asyncio.create_task(pool.acquire())
    await eventually(lambda: pool.statistics().waiting == 1)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert pool.statistics().waiting == 0
    await pool.release(conn)
    async with borrow(pool, api) as again:
        assert again is conn
    stats = pool.statistics()
    assert (stats.size, stats.idle, stats.in_use, stats.waiting) == (1, 1, 0, 0)
    await pool.close()
