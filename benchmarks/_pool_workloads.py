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
measured; timing excludes building and warming up.
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

__all__ = ["PEERS", "contended", "fairness", "uncontended"]


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
            started = time.perf_counter()
            for _ in range(cycles):
                conn = await acquire()
                await release(conn)
        else:
            started = time.perf_counter()
            for _ in range(cycles):
                async with pool.get_connection():
                    pass
        elapsed = time.perf_counter() - started
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
        started = time.perf_counter()
        await asyncio.gather(*(loop(per_task) for _ in range(tasks)))
        elapsed = time.perf_counter() - started
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
