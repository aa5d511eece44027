"""The pool's bookkeeping: every state change is synchronous.

Connections move IDLE -> LENT -> IDLE ... -> RETIRED.  Each method here
decides the next state without awaiting and leaves the I/O (opening and
closing connections) to tasks the pool owns, so no caller ever holds the pool
across an ``await`` and a cancelled caller cannot leave it half-updated.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, Generic, TypeVar

from .._events import (
    AcquireTimedOut,
    ConnectionClosed,
    ConnectionCreated,
    ConnectionCreateFailed,
    PoolEvent,
)
from .._hookerrors import report_hook_error
from .._reducer import AsyncReducer
from ._backoff import Backoff
from ._entry import IDLE, LENT, RETIRED, Entry
from ._errors import PoolClosed, PoolTimeout
from ._strategy import StrategyCalls
from ._waiters import RETRY, WaitQueue

__all__ = ["PoolState", "logger", "resolve"]

logger = logging.getLogger("async_reduce.pool")

C = TypeVar("C")

_INF = math.inf
monotonic = time.monotonic


def resolve(future: asyncio.Future[None]) -> None:
    """Set ``future``'s result to ``None`` unless it is already done."""
    if not future.done():
        future.set_result(None)


def _true() -> bool:
    return True


class _Reservation:
    """A slot reserved for a connection being opened, until it is settled."""

    __slots__ = ("outcome", "pending", "pool")

    def __init__(self, outcome: asyncio.Future[None] | None) -> None:
        self.outcome = outcome
        self.pending = True
        self.pool: PoolState[Any] | None = None

    def task_done(self, task: asyncio.Task[Any]) -> None:
        """The opening task ended: free the slot if nothing else did.

        That happens when the task was cancelled (by ``close()``) while
        opening, or before it ever ran.
        """
        pool = self.pool
        assert pool is not None
        pool._creations.discard(task)
        if self.pending:
            pool._give_up_reservation(self)
            if self.outcome is not None and not self.outcome.done():
                self.outcome.set_exception(pool._closed_error())
            pool._kick()


def _consume_outcome(task: asyncio.Task[Any]) -> None:
    # For tasks the pool stopped waiting for: their outcome is expected
    # and deliberately dropped.
    if not task.cancelled():
        task.exception()


class PoolState(Generic[C]):
    """Counters, connection records and the transitions between them."""

    _loop: asyncio.AbstractEventLoop | None

    def _init_state(
        self,
        strategy: StrategyCalls[C],
        reducer: AsyncReducer,
        sizes: tuple[int, int | None, int],
        max_lifetime: float | None,
        idle_timeout: float | None,
        borrow_timeout: float | None,
        check_after: float,
        backoff: tuple[float, float],
    ) -> None:
        self._strategy = strategy
        self._is_closed = strategy.is_closed
        self._reducer = reducer
        self._hooks: Any = getattr(reducer, "hooks", None)
        self._max_size, self._burst_limit, self._min_size = sizes
        self._limit = self._max_size if self._burst_limit is None else self._burst_limit
        self._max_lifetime = max_lifetime
        self._idle_timeout = idle_timeout
        self._borrow_timeout = borrow_timeout
        # Without an active check there is nothing to skip, so never stale.
        self._check_after = _INF if strategy.check is None else check_after
        # Whether any feature needs timestamps; if not, the hot paths skip
        # reading the clock altogether.
        self._clocked = (
            self._check_after != _INF
            or max_lifetime is not None
            or idle_timeout is not None
            or borrow_timeout is not None
        )
        self._backoff = Backoff(*backoff)
        self._attempt_ident: Hashable = ("async_reduce.pool:reconnect", id(self))

        self._loop = None
        # Until bound, "closed" sends every call down the path that binds.
        self._loop_closed: Callable[[], bool] = _true
        self._thread = 0  # the thread of the bound loop
        self._closed = False
        self._idle: deque[Entry[C]] = deque()
        self._entries: dict[int, Entry[C]] = {}
        # Lent connections are not counted separately:
        # in use == _size - _creating - len(_idle).
        self._size = 0
        self._creating = 0
        # True while the plainest fast paths apply: no timed features, no
        # hooks, pool open, not above max_size.  Recomputed when any of these
        # change.
        self._plain = not self._clocked and self._hooks is None
        # Callers woken to start over (RETRY) that have not queued again, plus
        # callers inside the outage attempt: waiting, though not in line.
        self._joining = 0
        self._waiters = WaitQueue()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._creations: set[asyncio.Task[Any]] = set()
        self._sleepers: set[asyncio.Future[None]] = set()
        self._maintenance: asyncio.Task[None] | None = None
        self._maintenance_wake: asyncio.Future[None] | None = None
        self._maintenance_next = _INF
        self._reclaimed_conns: dict[int, object] = {}

        self._created = 0
        self._closed_count = 0
        self._acquired = 0
        self._timeouts = 0
        self._create_failures = 0
        self._reclaimed = 0

    # -- events and tasks ----------------------------------------------------

    def _emit(self, event: PoolEvent) -> None:
        hooks = self._hooks
        method = getattr(hooks, "on_pool_event", None)
        if method is None:
            return
        try:
            method(event)
        except Exception as exc:
            report_hook_error(hooks, "on_pool_event", exc)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` in a task the pool holds until it ends."""
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and self._loop is not None:
            self._loop.call_exception_handler(
                {
                    "message": f"internal task of {self!r} failed",
                    "exception": exc,
                    "task": task,
                }
            )

    @staticmethod
    def _abandon_task(task: asyncio.Task[Any]) -> None:
        """Cancel ``task`` and drop its outcome when it ends."""
        task.cancel()
        task.add_done_callback(_consume_outcome)

    def _closed_error(self) -> PoolClosed:
        return PoolClosed(f"{type(self).__name__} is closed")

    def _timeout_error(self, started: float) -> PoolTimeout:
        waited = monotonic() - started
        self._timeouts += 1
        exc = PoolTimeout(
            waited, self._size, self._in_use, self._waiters.count + self._joining
        )
        if self._backoff.active:
            exc.__cause__ = self._backoff.last_error
        if self._hooks is not None:
            self._emit(AcquireTimedOut(self, waited))
        return exc

    @property
    def _in_use(self) -> int:
        return self._size - self._creating - len(self._idle)

    def _refresh_plain(self) -> None:
        self._plain = (
            not self._clocked
            and self._hooks is None
            and not self._closed
            and self._size <= self._max_size
        )

    def _poke(self, at: float) -> None:
        """Wake the maintenance task if it sleeps past ``at``."""
        wake = self._maintenance_wake
        if wake is not None and at < self._maintenance_next and not wake.done():
            wake.set_result(None)

    # -- moving connections --------------------------------------------------

    def _is_broken(self, conn: C) -> bool:
        try:
            return bool(self._is_closed(conn))
        except Exception:
            logger.debug("connection_is_closed(%r) raised", conn, exc_info=True)
            return True

    def _take_idle(self, now: float) -> Entry[C] | None:
        """Lend the most recently used idle connection that is still usable."""
        idle = self._idle
        while idle:
            entry = idle.pop()
            if now >= entry.expires_at:
                self._retire(entry, "lifetime")
            elif self._is_broken(entry.conn):
                self._retire(entry, "broken")
            else:
                entry.state = LENT
                entry.borrowed_at = now
                return entry
        return None

    def _place(self, entry: Entry[C], now: float) -> asyncio.Task[None] | None:
        """Hand a lent-state ``entry`` to the first waiter, or park it idle."""
        if self._waiters.count:
            waiter = self._waiters.pop()
            if waiter is not None:
                entry.borrowed_at = now
                waiter.set_result(entry)
                return None
        if self._size > self._max_size:
            return self._retire(entry, "burst")
        entry.state = IDLE
        entry.last_used = now
        self._idle.append(entry)
        if self._idle_timeout is not None:
            self._poke(min(entry.expires_at, now + self._idle_timeout))
        elif entry.expires_at < _INF:
            self._poke(entry.expires_at)
        return None

    def _checkin(self, entry: Entry[C]) -> asyncio.Task[None] | None:
        """Take back a lent connection: hand it on, keep it, or retire it."""
        now = monotonic() if self._clocked else 0.0
        if self._closed:
            return self._retire(entry, "pool_closed")
        if now >= entry.expires_at:
            return self._retire(entry, "lifetime")
        if self._size > self._limit:
            return self._retire(entry, "resize")
        # Only a connection handed straight to a waiter is tested here; an
        # idle one is tested when it is next taken.
        if self._waiters.count and self._is_broken(entry.conn):
            return self._retire(entry, "broken")
        return self._place(entry, now)

    def _retire(
        self,
        entry: Entry[C],
        reason: str,
        after: asyncio.Task[Any] | None = None,
    ) -> asyncio.Task[None]:
        """Stop counting ``entry`` (already out of the idle deque) and close it.

        The close runs in a pool task, after ``after`` ends when given.
        """
        entry.state = RETIRED
        self._size -= 1
        self._refresh_plain()
        if self._entries.get(id(entry.conn)) is entry:
            del self._entries[id(entry.conn)]
        self._closed_count += 1
        if self._hooks is not None:
            self._emit(ConnectionClosed(self, reason))
        task = self._spawn(self._close_connection(entry.conn, reason, after))
        self._kick()
        if self._min_size:
            self._poke(0.0)
        return task

    async def _close_connection(
        self, conn: C, reason: str, after: asyncio.Task[Any] | None
    ) -> None:
        if after is not None:
            await asyncio.wait((after,))
        try:
            await self._strategy.close(conn)
        except Exception:
            logger.warning(
                "closing connection %r (%s) failed; it is dropped anyway",
                conn,
                reason,
                exc_info=True,
            )

    def _kick(self) -> None:
        """Open connections for waiters nobody is opening one for yet.

        During an outage no attempt starts here: waiters are woken instead to
        join the pool's single throttled attempt.
        """
        if self._closed:
            return
        waiters = self._waiters
        wanted = min(
            waiters.count - self._creating - self._joining,
            self._limit - self._size,
        )
        if wanted <= 0:
            return
        if self._backoff.active:
            self._wake_to_retry(wanted)
        else:
            for _ in range(wanted):
                self._start_creation(None)

    def _wake_to_retry(self, count: int) -> None:
        """Wake up to ``count`` callers in line to start their acquire over."""
        waiters = self._waiters
        for _ in range(count):
            waiter = waiters.pop()
            if waiter is None:
                break
            self._joining += 1
            waiter.set_result(RETRY)

    # -- opening connections -------------------------------------------------

    def _start_creation(self, outcome: asyncio.Future[None] | None) -> None:
        """Reserve a slot and open a connection for it in a pool task."""
        self._creating += 1
        self._size += 1
        self._refresh_plain()
        reservation = _Reservation(outcome)
        task = self._spawn(self._create(reservation))
        self._creations.add(task)
        task.add_done_callback(reservation.task_done)
        reservation.pool = self

    def _give_up_reservation(self, reservation: _Reservation) -> None:
        """Free a slot whose connection was never opened."""
        reservation.pending = False
        self._creating -= 1
        self._size -= 1
        self._refresh_plain()

    async def _create(self, reservation: _Reservation) -> None:
        """Open one connection; its slot is already reserved.

        The connection goes to the first waiter, else to the idle set.  A
        failure goes to the reservation's ``outcome`` when there is one, else
        to the first waiter.  Only :meth:`close` cancels this task (possibly
        before it even starts: then ``_Reservation.task_done`` frees the slot).
        """
        outcome = reservation.outcome
        started = monotonic()
        try:
            conn = await self._strategy.create()
        except Exception as exc:
            self._give_up_reservation(reservation)
            self._create_failed(exc, started, deliver=outcome is None)
            if outcome is not None and not outcome.done():
                outcome.set_exception(exc)
            self._kick()
            return
        reservation.pending = False
        self._creating -= 1
        self._connection_opened(conn, started)
        if outcome is not None and not outcome.done():
            outcome.set_result(None)

    def _connection_opened(self, conn: C, started: float) -> None:
        now = monotonic()
        self._created += 1
        self._backoff.succeeded()
        lifetime = self._max_lifetime
        # Up to 5% shorter, so connections opened together expire apart.
        expires = (
            _INF if lifetime is None else now + lifetime * (1 - random.random() / 20)
        )
        entry = Entry(conn, now, expires)
        entry.state = LENT
        self._entries[id(conn)] = entry
        if self._hooks is not None:
            self._emit(ConnectionCreated(self, now - started))
        if self._closed:
            self._retire(entry, "pool_closed")
            return
        self._place(entry, now)
        self._kick()

    def _create_failed(self, exc: Exception, started: float, *, deliver: bool) -> None:
        now = monotonic()
        self._create_failures += 1
        first = not self._backoff.active
        self._backoff.failed(now, exc)
        if self._hooks is not None:
            self._emit(ConnectionCreateFailed(self, exc))
        waiter = self._waiters.pop() if deliver else None
        if waiter is not None:
            waiter.set_exception(exc)
        (logger.warning if first else logger.debug)(
            "%r: opening a connection failed after %.3fs (%s: %s); "
            "further attempts are throttled until one succeeds",
            self,
            now - started,
            type(exc).__name__,
            exc,
        )
        if self._min_size:
            self._poke(0.0)

    async def _attempt(self) -> None:
        """The pool's one throttled connection attempt during an outage.

        Run through the reducer under a fixed key, so that everyone needing a
        new connection shares it.  Returns once a connection was opened (it
        went to the first waiter, or idle), raises the strategy's error if
        opening failed, or ``PoolClosed``.  If everyone stops waiting, the
        opening itself still completes in the background.
        """
        delay = self._backoff.delay(monotonic())
        if delay > 0:
            await self._sleep(delay)
        if self._closed:
            raise self._closed_error()
        if not self._backoff.active or self._size >= self._limit:
            return
        assert self._loop is not None
        outcome: asyncio.Future[None] = self._loop.create_future()
        self._start_creation(outcome)
        await outcome

    async def _sleep(self, delay: float) -> None:
        """Sleep ``delay`` seconds, or until the pool is closed."""
        assert self._loop is not None
        future: asyncio.Future[None] = self._loop.create_future()
        self._sleepers.add(future)
        handle = self._loop.call_later(delay, resolve, future)
        try:
            await future
        finally:
            handle.cancel()
            self._sleepers.discard(future)

    # -- closing -------------------------------------------------------------

    def _shut_down(self) -> None:
        """Close synchronously: fail waiters, stop tasks, retire idle ones."""
        self._closed = True
        self._plain = False
        for waiter in self._waiters.pop_all():
            waiter.set_exception(self._closed_error())
        for future in self._sleepers:
            resolve(future)
        for task in self._creations:
            task.cancel()
        if self._maintenance is not None:
            self._maintenance.cancel()
        while self._idle:
            self._retire(self._idle.popleft(), "pool_closed")
