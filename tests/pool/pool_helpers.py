"""Helpers of the pool tests: an in-memory strategy, hook recorders, checks."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from async_reduce._events import PoolEvent
from async_reduce.hooks import BaseHooks
from async_reduce.pool import ConnectionPool, ConnectionStrategy


class MemoryConnection:
    """A connection to nothing: a numbered object that can be closed."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.closed = False
        self.broken = False
        self.healthy = True

    def __repr__(self) -> str:
        return f"<MemoryConnection #{self.number}{' closed' if self.closed else ''}>"


class MemoryStrategy(ConnectionStrategy[MemoryConnection]):
    """A real, minimal strategy whose behaviour the tests can steer.

    ``failures`` holds exceptions to raise from the next creations;
    ``create_gate``/``check_gate``, when set, make creation/checks wait for an
    event, so a test can cancel a caller while it is inside them.
    """

    def __init__(self) -> None:
        self._numbers = itertools.count(1)
        self.created: list[MemoryConnection] = []
        self.closed: list[MemoryConnection] = []
        self.checks = 0
        self.failures: list[BaseException] = []
        self.fail_always: BaseException | None = None
        self.create_attempts = 0
        self.create_gate: asyncio.Event | None = None
        self.check_gate: asyncio.Event | None = None
        self.close_gate: asyncio.Event | None = None
        self.entered_create = asyncio.Event()
        self.entered_check = asyncio.Event()
        self.connection_closed = asyncio.Event()

    async def create_connection(self) -> MemoryConnection:
        self.create_attempts += 1
        self.entered_create.set()
        if self.create_gate is not None:
            await self.create_gate.wait()
        if self.failures:
            raise self.failures.pop(0)
        if self.fail_always is not None:
            raise self.fail_always
        conn = MemoryConnection(next(self._numbers))
        self.created.append(conn)
        return conn

    def connection_is_closed(self, conn: MemoryConnection) -> bool:
        return conn.closed or conn.broken

    async def close_connection(self, conn: MemoryConnection) -> None:
        assert not conn.closed, f"{conn!r} closed twice"
        if self.close_gate is not None:
            await self.close_gate.wait()
        conn.closed = True
        self.closed.append(conn)
        self.connection_closed.set()

    async def _check(self, conn: MemoryConnection) -> bool:
        self.checks += 1
        self.entered_check.set()
        if self.check_gate is not None:
            await self.check_gate.wait()
        return conn.healthy

    @property
    def open(self) -> list[MemoryConnection]:
        """Connections created and not closed."""
        return [c for c in self.created if not c.closed]


class CheckingStrategy(MemoryStrategy):
    """A :class:`MemoryStrategy` whose ``check_connection`` is overridden."""

    async def check_connection(self, conn: MemoryConnection) -> bool:
        return await self._check(conn)


class RecordingHooks(BaseHooks):
    """Hooks that keep every pool event and reducer execution."""

    def __init__(self) -> None:
        self.events: list[PoolEvent] = []
        self.executions: list[Any] = []

    def on_pool_event(self, event: PoolEvent) -> None:
        self.events.append(event)

    def on_execution_finished(self, event: Any) -> None:
        self.executions.append(event)

    def of(self, kind: type[Any]) -> list[Any]:
        """The recorded events of one class."""
        return [e for e in self.events if isinstance(e, kind)]


def check_invariants(pool: ConnectionPool[Any]) -> None:
    """The accounting rules every pool state must satisfy."""
    stats = pool.statistics()
    assert stats.idle + stats.in_use + stats.creating == stats.size, stats
    limit = stats.max_size if stats.burst_limit is None else stats.burst_limit
    assert 0 <= stats.size <= limit, stats
    assert min(stats.idle, stats.in_use, stats.creating, stats.waiting) >= 0, stats


async def settle(rounds: int = 5) -> None:
    """Let every task that is ready run (a few event-loop iterations)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def eventually(predicate: Any, rounds: int = 200) -> None:
    """Let ready tasks run until ``predicate()`` holds (no wall-clock wait).

    Only for work that needs event-loop turns but no time (in-memory
    strategy); fails if the predicate still does not hold after ``rounds``.
    """
    for _ in range(rounds):
        if predicate():
            return
        await asyncio.sleep(0)
    assert predicate(), "condition not reached"


class Clock:
    """Monotonic time that moves only when the test says so.

    Replaces ``time.monotonic`` in the pool's modules and ``time()`` of the
    running event loop, so deadlines the pool computes and timers it sets
    agree: ``advance()`` makes every timer that falls due run on the next
    loop iteration, without waiting for real time to pass.
    """

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
