"""Timeouts, failing connection attempts and outage protection."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pool_helpers import MemoryStrategy, RecordingHooks, check_invariants, settle

from async_reduce._events import AcquireTimedOut, ConnectionCreateFailed
from async_reduce.pool import PoolClosed, PoolTimeout
from async_reduce.pool._backoff import Backoff


async def test_acquire_timeout_raises_pool_timeout(make_pool: Any) -> None:
    """Past the timeout, PoolTimeout (a TimeoutError) describes the pool."""
    pool = make_pool(1)
    held = await pool.acquire()
    other = asyncio.create_task(pool.acquire())
    await settle()
    with pytest.raises(TimeoutError) as info:
        await pool.acquire(timeout=0.01)
    error = info.value
    assert isinstance(error, PoolTimeout)
    assert "size=1, in_use=1, waiting=1" in str(error)
    assert (error.size, error.in_use, error.waiting) == (1, 1, 1)
    assert error.waited >= 0.01
    stats = pool.statistics()
    assert (stats.timeouts, stats.waiting) == (1, 1)
    await pool.release(held)
    await pool.release(await other)
    check_invariants(pool)
    await pool.close()


async def test_pool_default_acquire_timeout(make_pool: Any) -> None:
    """acquire_timeout applies to get_connection() without a timeout."""
    hooks = RecordingHooks()
    pool = make_pool(1, acquire_timeout=0.01, hooks=hooks)
    async with pool.get_connection():
        with pytest.raises(PoolTimeout):
            async with pool.get_connection():
                pass
    [event] = hooks.of(AcquireTimedOut)
    assert event.pool is pool
    assert event.waited >= 0.01
    await pool.close()


def test_pool_timeout_pickles() -> None:
    """PoolTimeout survives pickling with its attributes."""
    import pickle

    error = pickle.loads(pickle.dumps(PoolTimeout(1.5, 3, 2, 7)))
    assert (error.waited, error.size, error.in_use, error.waiting) == (1.5, 3, 2, 7)
    assert str(error) == str(PoolTimeout(1.5, 3, 2, 7))


async def test_create_failure_reaches_caller_and_frees_the_slot(
    make_pool: Any, strategy: MemoryStrategy
) -> None:
    """A failing create_connection raises in the acquirer; the slot is free."""
    hooks = RecordingHooks()
    pool = make_pool(1, hooks=hooks)
    strategy.failures = [ConnectionRefusedError("no server")]
    with pytest.raises(ConnectionRefusedError, match="no server"):
        await pool.acquire()
    stats = pool.statistics()
    assert (stats.size, stats.creating, stats.create_failures) == (0, 0, 1)
    assert stats.outage
    [event] = hooks.of(ConnectionCreateFailed)
    assert isinstance(event.exception, ConnectionRefusedError)
    async with pool.get_connection() as conn:  # the next attempt succeeds
        assert conn.number == 1
    assert not pool.statistics().outage
    await pool.close()


async def test_outage_coalesces_attempts(
    make_pool: Any, strategy: MemoryStrategy
) -> None:
    """During an outage, many acquirers share one attempt and its error."""
    hooks = RecordingHooks()
    pool = make_pool(5, hooks=hooks, reconnect_backoff=(0.01, 0.01))
    strategy.fail_always = OSError("backend down")
    with pytest.raises(OSError, match="backend down"):
        await pool.acquire()
    assert strategy.create_attempts == 1
    results = await asyncio.gather(
        *(pool.acquire() for _ in range(20)), return_exceptions=True
    )
    assert all(isinstance(r, OSError) for r in results)
    assert strategy.create_attempts == 2  # one attempt for all twenty
    [execution] = hooks.executions
    assert execution.callers == 20
    assert execution.outcome == "error"
    check_invariants(pool)
    assert pool.statistics().size == 0
    await pool.close()


async def test_first_success_ends_the_outage(
    make_pool: Any, strategy: MemoryStrategy
) -> None:
    """Once an attempt succeeds, acquirers are served normally again."""
    pool = make_pool(3, reconnect_backoff=(0.01, 0.01))
    strategy.fail_always = OSError("backend down")
    with pytest.raises(OSError, match="backend down"):
        await pool.acquire()
    strategy.fail_always = None
    conns = await asyncio.gather(*(pool.acquire() for _ in range(3)))
    assert len({id(c) for c in conns}) == 3
    assert not pool.statistics().outage
    for conn in conns:
        await pool.release(conn)
    await pool.close()


async def test_waiters_at_capacity_keep_waiting_during_outage(
    make_pool: Any, strategy: MemoryStrategy
) -> None:
    """A caller queued behind a full pool is served by a release, not failed."""
    pool = make_pool(1, reconnect_backoff=(0.01, 0.01))
    held = await pool.acquire()
    strategy.fail_always = OSError("backend down")
    waiter = asyncio.create_task(pool.acquire())
    await settle()
    await pool.release(held)
    assert await waiter is held
    await pool.release(held)
    await pool.close()


async def test_slot_freed_during_outage_wakes_waiters_to_retry(
    make_pool: Any, strategy: MemoryStrategy
) -> None:
    """Callers queued at capacity get the create error once a slot frees up."""
    pool = make_pool(2, reconnect_backoff=(0.01, 0.01))
    a = await pool.acquire()
    b = await pool.acquire()
    strategy.fail_always = OSError("down")
    first = asyncio.create_task(pool.acquire())
    second = asyncio.create_task(pool.acquire())
    await settle()
    b.broken = True
    await pool.release(b)  # the replacement fails: first in line gets it
    with pytest.raises(OSError, match="down"):
        await first
    with pytest.raises(OSError, match="down"):  # woken to join the retry
        await second
    assert pool.statistics().create_failures == 2
    strategy.fail_always = None
    async with pool.get_connection() as conn:
        assert not conn.closed
    await pool.release(a)
    check_invariants(pool)
    await pool.close()


async def test_timeout_during_outage_names_the_cause(
    make_pool: Any, strategy: MemoryStrategy
) -> None:
    """A PoolTimeout during an outage carries the last create error as cause."""
    pool = make_pool(2, reconnect_backoff=(5.0, 5.0))
    strategy.failures = [OSError("refused")]
    with pytest.raises(OSError, match="refused"):
        await pool.acquire()
    with pytest.raises(PoolTimeout) as info:
        await pool.acquire(timeout=0.01)
    assert isinstance(info.value.__cause__, OSError)
    assert strategy.create_attempts == 1  # still backing off
    check_invariants(pool)
    await pool.close()


async def test_close_wakes_callers_waiting_on_the_backoff(
    make_pool: Any, strategy: MemoryStrategy
) -> None:
    """close() ends a reconnect attempt's backoff with PoolClosed."""
    pool = make_pool(2, reconnect_backoff=(30.0, 30.0))
    strategy.failures = [OSError("refused")]
    with pytest.raises(OSError, match="refused"):
        await pool.acquire()
    waiting = asyncio.create_task(pool.acquire())
    await settle()
    assert pool.statistics().waiting == 1
    await pool.close()
    with pytest.raises(PoolClosed):
        await waiting


def test_backoff_grows_to_its_cap() -> None:
    """Delays double per failed round, with jitter, up to the maximum."""
    backoff = Backoff(0.1, 1.0)
    now = 100.0
    delays = []
    for _ in range(8):
        backoff.failed(now, OSError())
        delay = backoff.delay(now)
        delays.append(delay)
        now += delay
    for round_, delay in enumerate(delays):
        nominal = min(1.0, 0.1 * 2**round_)
        assert nominal / 2 <= delay <= nominal
    backoff.succeeded()
    assert not backoff.active
    assert backoff.delay(now) == 0.0


def test_simultaneous_failures_count_as_one_round() -> None:
    """Failures before the backoff elapsed do not lengthen it."""
    backoff = Backoff(0.1, 10.0)
    for _ in range(10):
        backoff.failed(50.0, OSError())
    assert backoff.rounds == 1
    assert backoff.delay(50.0) <= 0.1
