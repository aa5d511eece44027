"""Fixtures of the worker pool tests: pools that are shut down after each
test, and blocking functions controlled with threading events."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from workers_helpers import Gate

from async_reduce.workers import WorkerPool


@pytest.fixture
async def make_pool() -> AsyncIterator[Callable[..., WorkerPool]]:
    """Build pools; every pool is shut down after the test and leaves no thread."""
    pools: list[WorkerPool] = []

    def make(max_workers: int = 2, **kwargs: Any) -> WorkerPool:
        pool = WorkerPool(max_workers, **kwargs)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        assert await pool.shutdown(cancel_pending=True, timeout=30), pool
        names = [t.name for t in threading.enumerate()]
        assert not [n for n in names if n.startswith(f"{pool.name}-")], names


@pytest.fixture
async def gate() -> AsyncIterator[Gate]:
    """A blocking function whose calls wait until released."""
    g = Gate(asyncio.get_running_loop())
    yield g
    g.release_all()
