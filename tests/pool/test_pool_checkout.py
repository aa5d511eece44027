"""Health checks at checkout: bounded in time, and overruled by close()."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pool_helpers import CheckingStrategy, check_invariants, eventually

from async_reduce.pool import PoolClosed


@pytest.fixture
def checking() -> CheckingStrategy:
    return CheckingStrategy()


async def _idle_pool(make_pool: Any, strategy: CheckingStrategy, **kwargs: Any) -> Any:
    """A pool holding one idle connection that is checked at every checkout."""
    pool = make_pool(1, strategy=strategy, check_after=0, **kwargs)
    await pool.release(await pool.acquire())
    strategy.check_gate = asyncio.Event()  # checks now hang until set
    strategy.entered_check.clear()
    return pool


@pytest.mark.parametrize("entry_point", ["acquire", "context", "run"])
async def test_close_wins_over_a_checkout_in_its_health_check(
    make_pool: Any, checking: CheckingStrategy, entry_point: str
) -> None:
    """A checkout still inside its health check when close() runs ends with
    PoolClosed, and its connection is closed."""
    pool = await _idle_pool(make_pool, checking)
    conn = checking.created[0]

    async def borrow() -> None:
        if entry_point == "acquire":
            await pool.acquire()
        elif entry_point == "context":
            async with pool.get_connection():
                pass
        else:

            async def noop(c: Any) -> None:
                return None

            await pool.run(noop)

    checkout = asyncio.create_task(borrow())
    await checking.entered_check.wait()
    await pool.close()
    with pytest.raises(PoolClosed):
        await checkout
    assert conn.closed
    stats = pool.statistics()
    assert (stats.size, stats.in_use, stats.idle) == (0, 0, 0)


async def test_close_wins_even_if_the_check_passes_at_once(
    make_pool: Any, checking: CheckingStrategy
) -> None:
    """A check that completes in the same loop turn as close() still loses."""
    pool = await _idle_pool(make_pool, checking)
    checkout = asyncio.create_task(pool.acquire())
    await checking.entered_check.wait()
    assert checking.check_gate is not None
    checking.check_gate.set()  # the check passes ...
    await pool.close()  # ... but the pool is closed before the caller resumes
    with pytest.raises(PoolClosed):
        await checkout
    await eventually(lambda: checking.created[0].closed)


async def test_hung_health_check_is_abandoned_after_check_timeout(
    make_pool: Any, checking: CheckingStrategy
) -> None:
    """A check_connection that outlasts check_timeout counts as failed: its
    connection is closed and the caller gets a new one."""
    pool = await _idle_pool(make_pool, checking, check_timeout=0.05)
    first = checking.created[0]
    conn = await pool.acquire(timeout=30)
    assert conn is not first
    assert first.closed or await _closed_soon(first)
    check_invariants(pool)
    assert checking.check_gate is not None
    checking.check_gate.set()
    await pool.release(conn)
    await pool.close()


async def _closed_soon(conn: Any) -> bool:
    await eventually(lambda: conn.closed)
    return True


async def test_check_timeout_is_validated(make_pool: Any) -> None:
    """check_timeout and connect_timeout are seconds > 0 or None, named."""
    for name in ("check_timeout", "connect_timeout"):
        with pytest.raises(ValueError, match=name):
            make_pool(1, **{name: 0})
        with pytest.raises(TypeError, match=name):
            make_pool(1, **{name: "1"})
