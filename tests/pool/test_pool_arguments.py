"""Wrong arguments fail at the call that passed them, naming the argument."""

from __future__ import annotations

from typing import Any

import pytest
from pool_helpers import MemoryStrategy, check_invariants

from async_reduce.pool import ConnectionPool

BAD_CONSTRUCTOR_ARGS = [
    ({"max_size": 0}, ValueError, "max_size"),
    ({"max_size": -3}, ValueError, "max_size"),
    ({"max_size": 2.5}, TypeError, "max_size"),
    ({"max_size": True}, TypeError, "max_size"),
    ({"max_size": 5, "burst_limit": 4}, ValueError, "burst_limit"),
    ({"max_size": 5, "burst_limit": "9"}, TypeError, "burst_limit"),
    ({"max_size": 2, "min_size": 3}, ValueError, "min_size"),
    ({"min_size": -1}, ValueError, "min_size"),
    ({"acquire_timeout": 0}, ValueError, "acquire_timeout"),
    ({"acquire_timeout": -1.0}, ValueError, "acquire_timeout"),
    ({"acquire_timeout": float("nan")}, ValueError, "acquire_timeout"),
    ({"acquire_timeout": "1"}, TypeError, "acquire_timeout"),
    ({"max_lifetime": 0}, ValueError, "max_lifetime"),
    ({"idle_timeout": -5}, ValueError, "idle_timeout"),
    ({"borrow_timeout": 0.0}, ValueError, "borrow_timeout"),
    ({"check_after": -0.1}, ValueError, "check_after"),
    ({"check_after": "soon"}, TypeError, "check_after"),
    ({"reconnect_backoff": (1.0, 0.5)}, ValueError, "reconnect_backoff"),
    ({"reconnect_backoff": (0, 1.0)}, ValueError, r"reconnect_backoff\[0\]"),
    ({"reconnect_backoff": 3}, TypeError, "reconnect_backoff"),
]


@pytest.mark.parametrize(("kwargs", "error", "name"), BAD_CONSTRUCTOR_ARGS)
def test_constructor_rejects(kwargs: dict[str, Any], error: type, name: str) -> None:
    """The constructor raises TypeError/ValueError naming the bad argument."""
    with pytest.raises(error, match=name):
        ConnectionPool(MemoryStrategy(), **kwargs)


def test_pool_can_be_built_outside_a_loop() -> None:
    """Construction needs no running event loop (binding is lazy)."""
    pool = ConnectionPool(MemoryStrategy(), 3, check_after=None, max_lifetime=60)
    assert pool.statistics().size == 0
    assert not pool.closed


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"max_size": 0}, "max_size"),
        ({"max_size": 10}, "burst_limit"),  # above the current burst_limit (6)
        ({"burst_limit": 2}, "burst_limit"),
        ({"min_size": 7}, "min_size"),
        ({"min_size": -1}, "min_size"),
    ],
)
async def test_resize_rejects(kwargs: dict[str, Any], name: str) -> None:
    """resize() checks the combined new limits and changes nothing on error."""
    pool = ConnectionPool(MemoryStrategy(), 4, burst_limit=6, min_size=1)
    with pytest.raises(ValueError, match=name):
        await pool.resize(**kwargs)
    stats = pool.statistics()
    assert (stats.max_size, stats.burst_limit, stats.min_size) == (4, 6, 1)
    await pool.close()


@pytest.mark.parametrize("timeout", [0, -1, float("inf")])
async def test_acquire_rejects_bad_timeout(timeout: float) -> None:
    """acquire(timeout=...) and get_connection(timeout=...) check the timeout."""
    pool = ConnectionPool(MemoryStrategy(), 1)
    with pytest.raises(ValueError, match="timeout"):
        await pool.acquire(timeout=timeout)
    with pytest.raises(ValueError, match="timeout"):
        pool.get_connection(timeout=timeout)
    check_invariants(pool)
    assert pool.statistics().size == 0
    await pool.close()


async def test_run_rejects_bad_arguments() -> None:
    """run() needs a callable and hashable arguments (or an ident)."""
    pool = ConnectionPool(MemoryStrategy(), 1)
    with pytest.raises(TypeError, match="fn must be"):
        await pool.run(42)  # type: ignore[arg-type]

    async def query(conn: object, arg: object) -> object:
        return arg

    with pytest.raises(TypeError, match="hashable"):
        await pool.run(query, [1, 2])  # type: ignore[arg-type]
    assert await pool.run(query, [1, 2], ident="by-name") == [1, 2]  # type: ignore[arg-type]
    await pool.close()
