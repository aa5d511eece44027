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
import sys
import threading
import time
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

# ``current_task_of(loop)``: the task running in ``loop``.  Before Python
# 3.12, ``asyncio.current_task(loop)`` costs several times a lookup in the
# dict it reads, which the pool's fast paths can afford once a call; the
# lookup is checked against ``asyncio.current_task`` when a pool binds.
_current_tasks = getattr(asyncio.tasks, "_current_tasks", None)
current_task_of: Any = (
    _current_tasks.get
    if sys.version_info < (3, 12) and isinstance(_current_tasks, dict)
    else asyncio.current_task
)


def _check_current_task_of(loop: asyncio.AbstractEventLoop) -> None:
    global current_task_of
    if current_task_of(loop) is not asyncio.current_task(loop):  # pragma: no cover
        current_task_of = asyncio.current_task


class Acquirer(Maintenance[C]):
    """The callers' side of the pool."""

    _acquire_timeout: float | None

    def _bind(self) -> None:
        """Bind to the running loop on first use; refuse any other loop.

        Every call first runs a cheap test: is the bound loop running in the
        caller's thread (``self._running._thread_id == get_ident()``, which an
        asyncio loop sets while it runs)?  Only when it is not does it run
        this full check (asking asyncio for the running loop costs a
        ``getpid()`` system call before Python 3.12, too slow for every call).
        So a second loop in the same thread, or a loop in another thread, is
        refused on every path, the fast ones included.  A loop that does not
        keep ``_thread_id`` (not derived from ``asyncio.BaseEventLoop``) goes
        through the full check on every call.
        """
        loop = get_running_loop()
        if self._loop is None:
            self._loop = loop
            _check_current_task_of(loop)
            if getattr(loop, "_thread_id", None) == get_ident():
                self._running = loop
            self._refresh_plain()
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
        if idle and self._fast._thread_id == get_ident() and not self._waiters.count:
            entry = idle[-1]
            try:
                broken = self._is_closed(entry.conn)
            except Exception:
                broken = True
            if not broken:
                idle.pop()
                entry.state = LENT
                task = current_task_of(self._loop)
                if entry.holder is not task:  # else already its last holder
                    entry.holder = task
                    entry.past.append(id(task))
                entry.lease = None
                self._acquired += 1
                return entry
        return None

    async def _acquire(self, timeout: float | None, site: str | None) -> Entry[C]:
        if self._closed:
            raise self._closed_error()
        if self._running._thread_id != get_ident():
            self._bind()
        idle = self._idle
        if idle and not self._waiters.count:
            entry = idle[-1]
            now = monotonic() if self._uses_clock else 0.0
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
        if self._running._thread_id != get_ident():
            self._bind()
        loop = self._loop
        assert loop is not None
        started = (
            monotonic()
            if timeout is not None or self._uses_clock or self._hooks is not None
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
                self._open_for_waiters()
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
                self._waiting_outside_line -= 1
                front = True
            elif result.state == LENT:  # not reclaimed before we resumed
                if self._borrow_timeout is None and self._hooks is None:
                    self._acquired += 1
                    result.holder = task = current_task_of(loop)
                    result.lease = None
                    result.past.append(id(task))
                    return result  # type: ignore[no-any-return]
                return self._lent_to_caller(result, started, site)

    def _lent_to_caller(
        self, entry: Entry[C], started: float, site: str | None
    ) -> Entry[C]:
        """Record the lending of a taken ``entry`` to the calling task."""
        entry.holder = task = current_task_of(self._loop)
        entry.lease = None
        entry.past.append(id(task))
        self._acquired += 1
        if self._borrow_timeout is not None:
            entry.site = site or acquisition_site()
            self._wake_maintenance(entry.borrowed_at + self._borrow_timeout)
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
                self._waiting_outside_line -= 1
                self._open_for_waiters()
            elif result.state == LENT:
                self._checkin(result)

    def _expire(self, future: asyncio.Future[Any], started: float) -> None:
        if not future.done():
            self._waiters.settle(future, lambda: self._timeout_error(started))

    async def _check(
        self, entry: Entry[C], deadline: float | None, started: float
    ) -> bool:
        """Run ``check_connection`` on a taken entry; retire it unless it passes.

        The check runs in a task of its own, bounded by ``check_timeout`` and
        by the acquire deadline, so that it can be abandoned.  A check that
        raises or outlasts ``check_timeout`` counts as failed.  One
        interrupted by the caller's cancellation or by the acquire deadline
        (then ``PoolTimeout``) leaves the connection in an unknown state: it
        is closed.  If :meth:`close` runs meanwhile, it cancels the check and
        closes the connection, and the caller gets ``PoolClosed``.
        """
        check = self._strategy.check
        loop = self._loop
        assert check is not None
        assert loop is not None
        task = loop.create_task(check(entry.conn))
        self._checks[task] = entry
        timeout = self._check_timeout
        if deadline is not None:
            left = deadline - monotonic()
            timeout = left if timeout is None else min(timeout, left)
        try:
            done, _ = await asyncio.wait((task,), timeout=timeout)
        except BaseException:
            self._checks.pop(task, None)
            self._abandon_check(entry, task)
            raise
        self._checks.pop(task, None)
        if self._closed:  # close() ran during the check: it wins
            self._abandon_check(entry, task)
            raise self._closed_error()
        if not done:
            self._abandon_check(entry, task)
            if deadline is not None and monotonic() >= deadline:
                raise self._timeout_error(started)
            logger.debug(
                "check_connection(%r) took longer than check_timeout=%gs",
                entry.conn,
                self._check_timeout,
            )
            return False
        ok = False
        if not task.cancelled():
            exc = task.exception()
            if exc is None:
                ok = bool(task.result())
            elif isinstance(exc, Exception):
                logger.debug("check_connection(%r) raised %r", entry.conn, exc)
            else:
                if entry.state == LENT:
                    self._retire(entry, "broken")
                raise exc
        if entry.state != LENT:  # reclaimed (borrow_timeout) during the check
            return False
        if ok:
            entry.last_used = monotonic()
            return True
        self._retire(entry, "broken")
        return False

    def _abandon_check(self, entry: Entry[C], task: asyncio.Task[bool]) -> None:
        """Give up on a check; close its connection once the check has ended."""
        if task.done():
            task.cancelled() or task.exception()  # retrieved, never logged
        else:
            self._abandon_task(task)
        if entry.state == LENT:
            self._retire(
                entry, "broken" if not self._closed else "pool_closed", after=task
            )

    async def _join_attempt(self, deadline: float | None, started: float) -> None:
        """Share the pool's throttled connection attempt (during an outage)."""
        assert self._loop is not None
        self._waiting_outside_line += 1
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
            self._waiting_outside_line -= 1
            # Our share of the attempt is over: if others queued meanwhile
            # still need one, wake them to join the next.
            self._open_for_waiters()

    async def _release_entry(self, entry: Entry[C], holder: object) -> None:
        """End ``holder``'s lending of ``entry``, if it still holds it."""
        if entry.state != LENT or entry.holder is not holder:
            return  # reclaimed after borrow_timeout, or released already
        entry.holder = entry.lease = None
        task = self._checkin(entry)
        if task is not None:
            await asyncio.shield(task)

    def _refuse_release(self, entry: Entry[C], task: object) -> None:
        """Raise ``ValueError`` unless ``task`` may end the current lending.

        Called when ``task`` is not the holder.  A connection on its way to a
        waiter has no holder yet: nobody may release it.  A holder task that
        has finished passed the connection on (for example as its result):
        anyone may release it.  Otherwise a task among the recent past holders
        already ended its own lending, and its release would end another
        caller's; any other task is taken to release on the holder's behalf
        (a connection handed from task to task).
        """
        holder = entry.holder
        if holder is None or (id(task) in entry.past and not holder.done()):
            raise ValueError(
                f"release(): {entry.conn!r} was already released and is now "
                "lent to another caller; each acquire() is ended by exactly "
                "one release() (get_connection() releases by itself)"
            )


class Lease(Generic[C]):
    """The context manager returned by ``ConnectionPool.get_connection()``.

    Both methods carry an inlined copy of the plainest paths (no timed
    features, no hooks, pool open and not bursting: the pool's
    ``_fast_paths_apply``): taking an idle connection, waiting in line
    without a timeout, giving a connection back or straight to the first
    waiter.  Everything else goes
    through the pool's general methods.  The lending is the context's own
    (``entry.lease is self``): leaving the block ends it and nothing else.
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
        if pool._fast._thread_id == get_ident():
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
                        pool._open_for_waiters()
                    try:
                        result = await waiter
                    except BaseException:
                        pool._leave_line(waiter)
                        raise
                    if result is not RETRY and result.state == LENT:
                        pool._acquired += 1
                        result.holder = task = current_task_of(pool._loop)
                        result.lease = self
                        result.past.append(id(task))
                        self._entry = result
                        return result.conn  # type: ignore[no-any-return]
                    front = result is RETRY
                    if front:
                        pool._waiting_outside_line -= 1
                entry = await pool._acquire_slow(timeout, None, front)
                entry.lease = self
                self._entry = entry
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
                    task = current_task_of(pool._loop)
                    if entry.holder is not task:  # else already its last holder
                        entry.holder = task
                        entry.past.append(id(task))
                    entry.lease = self
                    pool._acquired += 1
                    self._entry = entry
                    return entry.conn
        entry = await pool._acquire(self._timeout, None)
        entry.lease = self
        self._entry = entry
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
        if entry.lease is not self:
            # Its lending ended already: released with release() inside the
            # block, or reclaimed after borrow_timeout.  Nothing is ours to
            # give back (the connection may be another caller's by now).
            return
        pool = self._pool
        if pool._fast_paths_apply:
            waiters = pool._waiters
            if not waiters.count:
                entry.state = IDLE
                pool._idle.append(entry)
                return
            if not pool._is_broken(entry.conn):
                waiter = waiters.pop()
                if waiter is not None:
                    entry.holder = entry.lease = None
                    waiter.set_result(entry)  # straight to the first in line
                    return
        entry.holder = entry.lease = None
        task = pool._checkin(entry)
        if task is not None:
            await asyncio.shield(task)
