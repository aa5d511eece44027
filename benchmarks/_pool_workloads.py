"""The pools compared by ``pool_bench`` and the workloads they run.

Peers, all lending the same trivial in-memory connection object:

* ``ours``: :class:`async_reduce.pool.ConnectionPool`, ``async with
  pool.get_connection()``;
* ``ours_manual``: the same pool through ``acquire()``/``release()``
  (reported for information, not judged);
* ``acp``: asyncio-connection-pool 1.1.1, ``async with pool.get_connection()``
  (its only API);
* ``queue``: the floor, a bare ``asyncio.Queue`` of connections behind an
  ``async with`` (no health check, no limits, no fairness).

Each workload builds its pool inside a fresh event loop and returns what it
measured; timing excludes building and warming up.  The throughput
workloads count CPU time of this process (``time.process_time``), not wall
time: they never wait for anything but the CPU, so this is their cost, and
other work on a shared machine does not count in it.  The cold start waits
for a (simulated) backend and is timed by the wall clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any

from asyncio_connection_pool import ConnectionPool as ACPPool
from asyncio_connection_pool import ConnectionStrategy as ACPStrategy

from async_reduce.pool import ConnectionPool, ConnectionStrategy

cpu_time = time.process_time

__all__ = [
    "COLD_START_PEERS",
    "PEERS",
    "cold_start",
    "contended",
    "fairness",
    "uncontended",
]


class Connection:
    """The pooled object: nothing behind it, so only the pool is measured."""

    closed = False


class Strategy(ConnectionStrategy[Connection]):
    async def create_connection(self) -> Connection:
        return Connection()

    def connection_is_closed(self, conn: Connection) -> bool:
        return conn.closed

    async def close_connection(self, conn: Connection) -> None:
        conn.closed = True


class ACPConnectionStrategy(ACPStrategy[Connection]):
    async def make_connection(self) -> Connection:
        return Connection()

    def connection_is_closed(self, conn: Connection) -> bool:
        return conn.closed

    async def close_connection(self, conn: Connection) -> None:
        conn.closed = True


class QueuePool:
    """The floor: connections in an ``asyncio.Queue``, opened on demand."""

    def __init__(self, max_size: int) -> None:
        self.queue: asyncio.Queue[Connection] = asyncio.Queue()
        self.free = max_size

    def get_connection(self) -> _QueueLease:
        return _QueueLease(self)

    async def close(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait().closed = True


class _QueueLease:
    __slots__ = ("conn", "pool")

    def __init__(self, pool: QueuePool) -> None:
        self.pool = pool

    async def __aenter__(self) -> Connection:
        pool = self.pool
        if pool.queue.empty() and pool.free:
            pool.free -= 1
            self.conn = Connection()
        else:
            self.conn = await pool.queue.get()
        return self.conn

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.pool.queue.put_nowait(self.conn)


async def _close(pool: Any) -> None:
    close = getattr(pool, "close", None)
    if close is not None:
        await close()


def _ours(max_size: int) -> Any:
    return ConnectionPool(Strategy(), max_size)


def _acp(max_size: int) -> Any:
    return ACPPool(strategy=ACPConnectionStrategy(), max_size=max_size)


PEERS: dict[str, Callable[[int], Any]] = {
    "queue": QueuePool,
    "ours": _ours,
    "ours_manual": _ours,  # the loops call acquire()/release() directly
    "acp": _acp,
}
"""Peer name -> factory of a pool of ``max_size`` (called inside the loop)."""


def _in_fresh_loop(work: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    return asyncio.run(work())


def uncontended(peer: str, cycles: int) -> float:
    """Acquire+release cycles per second by one task that never waits."""

    async def work() -> float:
        pool = PEERS[peer](10)
        for _ in range(200):  # warm up (and open the one connection used)
            async with pool.get_connection():
                pass
        if peer == "ours_manual":
            acquire, release = pool.acquire, pool.release
            started = cpu_time()
            for _ in range(cycles):
                conn = await acquire()
                await release(conn)
        else:
            started = cpu_time()
            for _ in range(cycles):
                async with pool.get_connection():
                    pass
        elapsed = cpu_time() - started
        await _close(pool)
        return cycles / elapsed

    result: float = _in_fresh_loop(work)
    return result


def contended(peer: str, cycles: int, tasks: int = 100, size: int = 10) -> float:
    """Cycles per second of ``tasks`` tasks sharing ``size`` connections.

    Each task holds its connection across one suspension
    (``await asyncio.sleep(0)``, standing for a query), so callers queue.
    """

    async def work() -> float:
        pool = PEERS[peer](size)
        per_task = cycles // tasks

        async def loop(count: int) -> None:
            for _ in range(count):
                async with pool.get_connection():
                    await asyncio.sleep(0)

        if peer == "ours_manual":

            async def loop(count: int) -> None:
                for _ in range(count):
                    conn = await pool.acquire()
                    await asyncio.sleep(0)
                    await pool.release(conn)

        await asyncio.gather(*(loop(10) for _ in range(tasks)))  # warm up
        started = cpu_time()
        await asyncio.gather(*(loop(per_task) for _ in range(tasks)))
        elapsed = cpu_time() - started
        await _close(pool)
        return per_task * tasks / elapsed

    result: float = _in_fresh_loop(work)
    return result


def fairness(peer: str, acquisitions: int, tasks: int = 10) -> list[int]:
    """Acquisitions per task when ``tasks`` tasks loop on a pool of one.

    Every task loops acquire / hold across one suspension / release until
    ``acquisitions`` were made in total; the spread of the counts is the
    fairness (a fair pool gives every task the same share).
    """

    async def work() -> list[int]:
        pool = PEERS[peer](1)
        counts = [0] * tasks
        done = asyncio.Event()

        async def loop(index: int) -> None:
            while not done.is_set():
                async with pool.get_connection():
                    counts[index] += 1
                    if sum(counts) >= acquisitions:
                        done.set()
                    await asyncio.sleep(0)

        runners = [asyncio.create_task(loop(i)) for i in range(tasks)]
        await done.wait()
        # Tasks still queued for the connection never get it back in some
        # peers (asyncio-connection-pool): stop them.
        for runner in runners:
            runner.cancel()
        await asyncio.gather(*runners, return_exceptions=True)
        await _close(pool)
        return counts

    result: list[int] = _in_fresh_loop(work)
    return result


# -- cold start: a crowd on an empty pool, against a backend slow to connect --

CONNECT_SECONDS = 0.005
QUERY_SECONDS = 0.001


class _SlowConnect:
    """Counts connection attempts in flight; each takes ``CONNECT_SECONDS``."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.most_in_flight = 0
        self.opened = 0

    async def connect(self) -> Connection:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(CONNECT_SECONDS)
        finally:
            self.in_flight -= 1
        self.opened += 1
        return Connection()


class _SlowStrategy(Strategy):
    def __init__(self, backend: _SlowConnect) -> None:
        self.backend = backend

    async def create_connection(self) -> Connection:
        return await self.backend.connect()


class _SlowACPStrategy(ACPConnectionStrategy):
    def __init__(self, backend: _SlowConnect) -> None:
        self.backend = backend

    async def make_connection(self) -> Connection:
        return await self.backend.connect()


COLD_START_PEERS: dict[str, Callable[[_SlowConnect, int], Any]] = {
    "ours": lambda backend, size: ConnectionPool(_SlowStrategy(backend), size),
    "ours_max_connecting": lambda backend, size: ConnectionPool(
        _SlowStrategy(backend), size, max_connecting=size
    ),
    "acp": lambda backend, size: ACPPool(
        strategy=_SlowACPStrategy(backend), max_size=size
    ),
}
"""Peer name -> factory of a pool of ``size`` over a slow-connecting backend:
ours with the default ``max_connecting`` (2), ours with ``max_connecting``
equal to ``size`` (every slot may connect at once), and ACP (which opens one
connection per caller up to ``max_size``, all at once)."""


def cold_start(peer: str, acquirers: int = 100, size: int = 10) -> dict[str, float]:
    """Serve ``acquirers`` concurrent callers from an empty pool of ``size``.

    The backend takes ``CONNECT_SECONDS`` to connect; each caller holds its
    connection for a ``QUERY_SECONDS`` query.  Returns the seconds until the
    last caller was served, the connections opened and the most connection
    attempts in flight at once.
    """

    async def work() -> dict[str, float]:
        backend = _SlowConnect()
        pool = COLD_START_PEERS[peer](backend, size)

        async def caller() -> None:
            async with pool.get_connection():
                await asyncio.sleep(QUERY_SECONDS)

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(acquirers)))
        elapsed = time.perf_counter() - started
        await _close(pool)
        return {
            "seconds": elapsed,
            "opened": backend.opened,
            "most_in_flight": backend.most_in_flight,
        }

    result: dict[str, float] = _in_fresh_loop(work)
    return result
