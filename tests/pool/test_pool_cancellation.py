"""Cancelling a caller at any await point loses no connection and no slot."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pool_helpers import (
    CheckingStrategy,
    MemoryConnection,
    MemoryStrategy,
    check_invariants,
    eventually,
    settle,
)

from async_reduce.pool import ConnectionPool


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def _assert_whole(pool: ConnectionPool[Any], strategy: MemoryStrategy) -> None:
    """Nothing is lent or awaited, every slot is usable, close closes all."""
    await eventually(lambda: pool.statistics().creating == 0)
    check_invariants(pool)
    stats = pool.statistics()
    assert (stats.in_use, stats.waiting) == (0, 0), stats
    limit = stats.max_size if stats.burst_limit is None else stats.burst_limit
    conns = [await pool.acquire(timeout=5) for _ in range(limit)]
    assert len({id(c) for c in conns}) == limit
    for conn in conns:
        await pool.release(conn)
    await pool.close()
    assert strategy.open == []


ACQUIRE_STYLES: dict[str, Callable[[ConnectionPool[Any]], Awaitable[Any]]] = {}


def _style(name: str) -> Callable[[Any], Any]:
    def register(fn: Any) -> Any:
        ACQUIRE_STYLES[name] = fn
        return fn

    return register


@_style("get_connection")
async def _with_context(pool: ConnectionPool[Any]) -> None:
    async with pool.get_connection():
        await asyncio.sleep(0)


@_style("get_connection+timeout")
async def _with_context_timeout(pool: ConnectionPool[Any]) -> None:
    async with pool.get_connection(timeout=30):
        await asyncio.sleep(0)


@_style("acquire/release")
async def _with_acquire(pool: ConnectionPool[Any]) -> None:
    conn = await pool.acquire()
    try:
        await asyncio.sleep(0)
    finally:
        await pool.release(conn)


@_style("run")
async def _with_run(pool: ConnectionPool[Any]) -> None:
    async def use(conn: MemoryConnection) -> None:
        await asyncio.sleep(0)

    await pool.run(use)


@pytest.mark.parametrize("style", ACQUIRE_STYLES)
async def test_cancel_while_waiting_in_line(
    style: str, strategy: MemoryStrategy
) -> None:
    """A caller cancelled while queued leaves the line and takes nothing."""
    pool = ConnectionPool(strategy, 1)
    held = await pool.acquire()
    task = asyncio.create_task(ACQUIRE_STYLES[style](pool))
    await settle()
    assert pool.statistics().waiting == 1
    await _cancel(task)
    assert pool.statistics().waiting == 0
    await pool.release(held)
    assert pool.statistics().idle == 1
    await _assert_whole(pool, strategy)


@pytest.mark.parametrize("style", ACQUIRE_STYLES)
async def test_cancel_just_after_hand_off(style: str, strategy: MemoryStrategy) -> None:
    """A caller cancelled after being handed a connection passes it on."""
    pool = ConnectionPool(strategy, 1)
    held = await pool.acquire()
    task = asyncio.create_task(ACQUIRE_STYLES[style](pool))
    second = asyncio.create_task(pool.acquire())
    await settle()
    await pool.release(held)  # handed to ``task``, which has not resumed yet
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await second is held  # the next in line got it
    await pool.release(held)
    await _assert_whole(pool, strategy)


@pytest.mark.parametrize("style", ACQUIRE_STYLES)
async def test_cancel_while_connection_opens(
    style: str, strategy: MemoryStrategy
) -> None:
    """The connection opened for a cancelled caller is kept, not lost."""
    pool = ConnectionPool(strategy, 2)
    strategy.create_gate = asyncio.Event()
    task = asyncio.create_task(ACQUIRE_STYLES[style](pool))
    await strategy.entered_create.wait()
    await _cancel(task)
    assert pool.statistics().creating == 1
    strategy.create_gate.set()
    await eventually(lambda: pool.statistics().idle == 1)
    await _assert_whole(pool, strategy)


@pytest.mark.parametrize("timeout", [None, 30.0])
async def test_cancel_during_health_check(timeout: float | None) -> None:
    """A caller cancelled mid-check closes that connection and frees its slot."""
    strategy = CheckingStrategy()
    pool = ConnectionPool(strategy, 1, check_after=0)
    async with pool.get_connection():
        pass
    strategy.check_gate = asyncio.Event()
    task = asyncio.create_task(pool.acquire(timeout=timeout))
    await strategy.entered_check.wait()
    await _cancel(task)
    await strategy.connection_closed.wait()
    assert strategy.created[0].closed
    assert pool.statistics().size == 0
    strategy.check_gate.set()
    await _assert_whole(pool, strategy)


@pytest.mark.parametrize("style", ACQUIRE_STYLES)
async def test_cancel_while_joined_to_a_reconnect(
    style: str, strategy: MemoryStrategy
) -> None:
    """A caller cancelled during the outage backoff leaves nothing behind."""
    pool = ConnectionPool(strategy, 2, reconnect_backoff=(30.0, 30.0))
    strategy.failures = [OSError("down")]
    with pytest.raises(OSError, match="down"):
        await pool.acquire()
    task = asyncio.create_task(ACQUIRE_STYLES[style](pool))
    await settle()
    assert pool.statistics().waiting == 1
    await _cancel(task)
    await settle()
    assert pool.statistics().waiting == 0
    pool._backoff.succeeded()  # the backend is back: skip the long backoff
    await _assert_whole(pool, strategy)


async def test_cancel_while_reconnect_opens(strategy: MemoryStrategy) -> None:
    """The reconnect attempt survives its callers leaving; its connection is kept."""
    pool = ConnectionPool(strategy, 2, reconnect_backoff=(0.01, 0.01))
    strategy.failures = [OSError("down")]
    with pytest.raises(OSError, match="down"):
        await pool.acquire()
    strategy.create_gate = asyncio.Event()
    strategy.entered_create.clear()
    task = asyncio.create_task(pool.acquire())
    await strategy.entered_create.wait()
    await _cancel(task)
    strategy.create_gate.set()
    await eventually(lambda: pool.statistics().idle == 1)
    assert not pool.statistics().outage
    await _assert_whole(pool, strategy)


async def test_cancel_during_release_close(strategy: MemoryStrategy) -> None:
    """A caller cancelled while its release awaits a close: the close finishes."""
    pool = ConnectionPool(strategy, 1, burst_limit=2)
    a = await pool.acquire()
    b = await pool.acquire()
    strategy.close_gate = asyncio.Event()
    task = asyncio.create_task(pool.release(b))  # burst: b is closed
    await settle()
    await _cancel(task)
    assert pool.statistics().size == 1
    strategy.close_gate.set()
    await strategy.connection_closed.wait()
    assert b.closed
    await pool.release(a)
    await _assert_whole(pool, strategy)


@pytest.mark.parametrize("steps", range(6))
async def test_cancel_after_being_woken_to_retry(
    strategy: MemoryStrategy, steps: int
) -> None:
    """A caller woken to retry and then cancelled passes its turn on."""
    pool = ConnectionPool(strategy, 2, reconnect_backoff=(0.01, 0.01))
    a = await pool.acquire()
    b = await pool.acquire()
    strategy.fail_always = OSError("down")
    first = asyncio.create_task(pool.acquire())
    second = asyncio.create_task(pool.acquire())
    third = asyncio.create_task(pool.acquire())
    await settle()
    b.broken = True
    await pool.release(b)  # the replacement fails: ``first`` gets the error,
    for _ in range(steps):  # ``second`` is woken to retry
        await asyncio.sleep(0)
    second.cancel()
    with pytest.raises(OSError, match="down"):
        await first
    with pytest.raises(asyncio.CancelledError):
        await second
    with pytest.raises(OSError, match="down"):  # the turn went on to ``third``
        await asyncio.wait_for(third, 5)
    strategy.fail_always = None
    await pool.release(a)
    await _assert_whole(pool, strategy)


@pytest.mark.parametrize("style", ACQUIRE_STYLES)
@pytest.mark.parametrize("steps", range(12))
async def test_cancel_at_every_step(style: str, steps: int) -> None:
    """Cancelled after any number of loop steps, a caller leaves the pool whole."""
    strategy = CheckingStrategy()
    pool = ConnectionPool(strategy, 2, check_after=0)
    holders = [asyncio.create_task(ACQUIRE_STYLES[style](pool)) for _ in range(3)]
    victim = asyncio.create_task(ACQUIRE_STYLES[style](pool))
    for _ in range(steps):
        await asyncio.sleep(0)
    victim.cancel()
    await asyncio.gather(*holders, victim, return_exceptions=True)
    assert all(t.exception() is None for t in holders)
    await _assert_whole(pool, strategy)
