"""Getting a connection out of the pool and back in.

The fast path (an idle, usable connection and nobody waiting) never yields to
the event loop.  Otherwise the caller joins a first-come, first-served line;
a connection returned or opened goes straight to the first caller in line,
so nobody can overtake a waiter.  Every ``await`` in here is a point where the
caller may be cancelled; each one is followed by code that gives back
whatever the caller was handed in the same instant.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Generic, TypeVar

from .._events import ConnectionAcquired
from ._entry import IDLE, LENT, Entry, acquisition_site
from ._maintenance import Maintenance
from ._state import logger
from ._waiters import RETRY

__all__ = ["Acquirer", "Lease"]

C = TypeVar("C")

monotonic = time.monotonic
get_running_loop = asyncio.get_running_loop
get_ident = threading.get_ident


class Acquirer(Maintenance[C]):
    """The callers' side of the pool."""

    _acquire_timeout: float | None

    def _bind(self) -> None:
        """Bind to the running loop on first use; refuse any other loop.

        Every call first runs a cheap test: has the bound loop been closed, or
        is the caller in another thread?  Only then does it run this full
        check (asking asyncio for the running loop costs a ``getpid()``
        system call, too slow for every call).  Another open loop in the
        same thread is caught by asyncio itself as soon as the caller waits.
        """
        loop = get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._loop_closed = loop.is_closed
            self._thread = get_ident()
            self._start_maintenance()
        elif self._loop is not loop:
            raise RuntimeError(
                f"{self!r} is bound to a different event loop"
                f"{' (now closed)' if self._loop.is_closed() else ''}; "
                "create one pool per event loop"
            )

    def _take_plain(self) -> Entry[C] | None:
        """The plainest fast path as a plain function (see ``Lease``)."""
        idle = self._idle
        if (
            idle
            and self._plain
            and not self._waiters.count
            and not self._loop_closed()
            and self._thread == get_ident()
        ):
            entry = idle[-1]
            try:
                broken = self._is_closed(entry.conn)
            except Exception:
                broken = True
            if not broken:
                idle.pop()
                entry.state = LENT
                self._acquired += 1
                return entry
        return None

    async def _acquire(self, timeout: float | None, site: str | None) -> Entry[C]:
        if self._closed:
            raise self._closed_error()
        if self._loop_closed() or self._thread != get_ident():
            self._bind()
        idle = self._idle
        if idle and not self._waiters.count:
            entry = idle[-1]
            now = monotonic() if self._clocked else 0.0
            if (
                now - entry.last_used <= self._check_after
                and now < entry.expires_at
                and not self._is_broken(entry.conn)
            ):
                idle.pop()
                entry.state = LENT
                entry.borrowed_at = now
                return self._lent_to_caller(entry, 0.0, site)
        return await self._acquire_slow(
            self._acquire_timeout if timeout is None else timeout, site
        )

    async def _acquire_slow(
        self, timeout: float | None, site: str | None, front: bool = False
    ) -> Entry[C]:
        """Acquire, waiting if need be; ``front``: a caller woken to retry."""
        if self._loop_closed() or self._thread != get_ident():
            self._bind()
        loop = self._loop
        assert loop is not None
        started = (
            monotonic()
            if timeout is not None or self._clocked or self._hooks is not None
            else 0.0
        )
        deadline = None if timeout is None else started + timeout
        while True:
            if self._closed:
                raise self._closed_error()
            # Nobody may overtake a waiter; one woken to retry is first in line.
            if self._idle and (front or not self._waiters.count):
                now = monotonic()
                entry = self._take_idle(now)
                if entry is not None:
                    if now - entry.last_used > self._check_after and not (
                        await self._check(entry, deadline, started)
                    ):
                        continue
                    return self._lent_to_caller(entry, started, site)
            if self._backoff.active and self._size < self._limit:
                await self._join_attempt(deadline, started)
                continue
            # Wait in line for a hand-off (inlined: this is the contended path).
            waiter = loop.create_future()
            waiters = self._waiters
            if front:
                waiters.line.appendleft(waiter)
            else:
                waiters.line.append(waiter)
            waiters.count += 1
            if self._size < self._limit:
                self._kick()
            timer = (
                None
                if deadline is None
                else loop.call_later(
                    deadline - monotonic(), self._expire, waiter, started
                )
            )
            try:
                result = await waiter
            except BaseException:
                self._leave_line(waiter)
                raise
            finally:
                if timer is not None:
                    timer.cancel()
            if result is RETRY:
                self._joining -= 1
                front = True
            elif result.state == LENT:  # not reclaimed before we resumed
                if self._borrow_timeout is None and self._hooks is None:
                    self._acquired += 1
                    return result  # type: ignore[no-any-return]
                return self._lent_to_caller(result, started, site)

    def _lent_to_caller(
        self, entry: Entry[C], started: float, site: str | None
    ) -> Entry[C]:
        self._acquired += 1
        if self._borrow_timeout is not None:
            entry.site = site or acquisition_site()
            self._poke(entry.borrowed_at + self._borrow_timeout)
        if self._hooks is not None:
            self._emit(
                ConnectionAcquired(self, monotonic() - started if started else 0.0)
            )
        return entry

    def _leave_line(self, future: asyncio.Future[Any]) -> None:
        """Undo a wait that ended in an exception (cancelled, timed out...)."""
        waiters = self._waiters
        waiters.leave(future)
        if self._idle and waiters.count:
            # While this caller was cancelled but still counted, a newcomer
            # may have queued although a connection went idle: wake it.
            self._wake_to_retry(min(len(self._idle), waiters.count))
        if not future.cancelled() and future.exception() is None:
            # Served in the same instant the caller was cancelled: pass it on.
            result = future.result()
            if result is RETRY:
                self._joining -= 1
                self._kick()
            elif result.state == LENT:
                self._checkin(result)

    def _expire(self, future: asyncio.Future[Any], started: float) -> None:
        if not future.done():
            self._waiters.settle(future, lambda: self._timeout_error(started))

    async def _check(
        self, entry: Entry[C], deadline: float | None, started: float
    ) -> bool:
        """Run ``check_connection`` on a lent entry; retire it unless it passes.

        A check that raises counts as failed.  One interrupted by the caller's
        cancellation or by the acquire deadline (then ``PoolTimeout``) leaves
        the connection in an unknown state: it is closed.
        """
        check = self._strategy.check
        assert check is not None
        try:
            if deadline is None:
                ok: bool | None = await check(entry.conn)
            else:
                ok = await self._check_until(entry, check(entry.conn), deadline)
        except Exception as exc:
            logger.debug("check_connection(%r) raised %r", entry.conn, exc)
            ok = False
        except BaseException:
            if entry.state == LENT:
                self._retire(entry, "broken")
            raise
        if ok is None:
            raise self._timeout_error(started)
        if entry.state != LENT:  # reclaimed (borrow_timeout) during the check
            return False
        if ok:
            entry.last_used = monotonic()
            return True
        self._retire(entry, "broken")
        return False

    async def _check_until(
        self, entry: Entry[C], check: Coroutine[Any, Any, bool], deadline: float
    ) -> bool | None:
        """``await check`` until ``deadline``; ``None`` if it did not finish.

        The check runs in a task of its own so that it can be abandoned at
        the deadline or on cancellation; the connection is then retired, and
        closed once the abandoned check has ended.
        """
        assert self._loop is not None
        task = self._loop.create_task(check)
        try:
            done, _ = await asyncio.wait((task,), timeout=deadline - monotonic())
        except BaseException:
            self._abandon_check(entry, task)
            raise
        if not done:
            self._abandon_check(entry, task)
            return None
        return task.result()

    def _abandon_check(self, entry: Entry[C], task: asyncio.Task[bool]) -> None:
        self._abandon_task(task)
        if entry.state == LENT:
            self._retire(entry, "broken", after=task)

    async def _join_attempt(self, deadline: float | None, started: float) -> None:
        """Share the pool's throttled connection attempt (during an outage)."""
        assert self._loop is not None
        self._joining += 1
        try:
            call = self._reducer(self._attempt(), ident=self._attempt_ident)
            if deadline is None:
                await call
                return
            task = self._loop.create_task(call)
            try:
                done, _ = await asyncio.wait((task,), timeout=deadline - monotonic())
            except BaseException:
                self._abandon_task(task)
                raise
            if not done:
                self._abandon_task(task)
                raise self._timeout_error(started)
            task.result()
        finally:
            self._joining -= 1
            # Our share of the attempt is over: if others queued meanwhile
            # still need one, wake them to join the next.
            self._kick()

    async def _release_entry(self, entry: Entry[C]) -> None:
        if entry.state != LENT:
            return  # reclaimed after borrow_timeout: the slot is already free
        task = self._checkin(entry)
        if task is not None:
            await asyncio.shield(task)


class Lease(Generic[C]):
    """The context manager returned by ``ConnectionPool.get_connection()``.

    Both methods carry an inlined copy of the plainest paths (no timed
    features, no hooks, pool open and not bursting: the pool's ``_plain``):
    taking an idle connection, waiting in line without a timeout, giving a
    connection back or straight to the first waiter.  Everything else goes
    through the pool's general methods.
    """

    __slots__ = ("_entry", "_pool", "_timeout")

    def __init__(self, pool: Acquirer[C], timeout: float | None) -> None:
        self._pool = pool
        self._timeout = timeout
        self._entry: Entry[C] | None = None

    async def __aenter__(self) -> C:
        if self._entry is not None:
            raise RuntimeError("this get_connection() context is already in use")
        pool = self._pool
        if pool._plain and not pool._loop_closed() and pool._thread == get_ident():
            waiters = pool._waiters
            if waiters.count:
                # Others wait already: straight to the back of the line.  The
                # simplest case (no timeout) waits right here.
                timeout = self._timeout
                if timeout is None:
                    timeout = pool._acquire_timeout
                front = False
                if timeout is None:
                    waiter = pool._loop.create_future()  # type: ignore[union-attr]
                    waiters.line.append(waiter)
                    waiters.count += 1
                    if pool._size < pool._limit:
                        pool._kick()
                    try:
                        result = await waiter
                    except BaseException:
                        pool._leave_line(waiter)
                        raise
                    if result is not RETRY and result.state == LENT:
                        pool._acquired += 1
                        self._entry = result
                        return result.conn  # type: ignore[no-any-return]
                    front = result is RETRY
                    if front:
                        pool._joining -= 1
                entry = self._entry = await pool._acquire_slow(timeout, None, front)
                return entry.conn
            idle = pool._idle
            if idle:
                entry = idle[-1]
                try:
                    broken = pool._is_closed(entry.conn)
                except Exception:
                    broken = True
                if not broken:
                    idle.pop()
                    entry.state = LENT
                    pool._acquired += 1
                    self._entry = entry
                    return entry.conn
        entry = self._entry = await pool._acquire(self._timeout, None)
        return entry.conn

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        entry = self._entry
        if entry is None:
            return
        self._entry = None
        if entry.state != LENT:
            return  # reclaimed after borrow_timeout: the slot is already free
        pool = self._pool
        if pool._plain:
            waiters = pool._waiters
            if not waiters.count:
                entry.state = IDLE
                pool._idle.append(entry)
                return
            if not pool._is_broken(entry.conn):
                waiter = waiters.pop()
                if waiter is not None:
                    waiter.set_result(entry)  # straight to the first in line
                    return
        task = pool._checkin(entry)
        if task is not None:
            await asyncio.shield(task)
