"""Moving connections between states; every state change is synchronous.

Connections move IDLE -> LENT -> IDLE ... -> RETIRED.  Each method here
decides the next state without awaiting and leaves the I/O (opening and
closing connections) to tasks the pool owns, so no caller ever holds the pool
across an ``await`` and a cancelled caller cannot leave it half-updated.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from typing import Any, TypeVar

from .._events import ConnectionClosed, ConnectionCreated, ConnectionCreateFailed
from ._entry import IDLE, LENT, RETIRED, Entry
from ._state import SWEEP_INTERVAL, VALUE_TYPES, PoolState, logger, resolve
from ._waiters import RETRY

__all__ = ["Lifecycle"]

C = TypeVar("C")

_INF = math.inf
monotonic = time.monotonic


class ClosedOnArrival(ConnectionError):
    """A fresh connection was already reported closed (it was closed)."""


class _Reservation:
    """A slot reserved for a connection being opened, until it is settled.

    ``for_waiters``: opened for whoever waits in line, so dropped if nobody
    needs it any more when its turn to connect comes (see ``max_connecting``).
    ``timed_out`` is set when ``connect_timeout`` cancelled the attempt.
    """

    __slots__ = ("for_waiters", "outcome", "pending", "pool", "timed_out")

    def __init__(
        self,
        pool: Lifecycle[Any],
        outcome: asyncio.Future[None] | None,
        for_waiters: bool,
    ) -> None:
        self.pool = pool
        self.outcome = outcome
        self.for_waiters = for_waiters
        self.pending = True
        self.timed_out = False

    def task_done(self, task: asyncio.Task[Any]) -> None:
        """The opening task ended: free the slot if nothing else did.

        That happens when the task was cancelled (by ``close()``) while
        opening, or before it ever ran.
        """
        pool = self.pool
        pool._creations.discard(task)
        if self.pending:
            pool._give_up_reservation(self)
            if self.outcome is not None and not self.outcome.done():
                self.outcome.set_exception(pool._closed_error())
            pool._open_for_waiters()

    def expire(self, task: asyncio.Task[Any]) -> None:
        """``connect_timeout`` passed: cancel the attempt."""
        self.timed_out = True
        task.cancel()


class Lifecycle(PoolState[C]):
    """Lending, taking back, opening and retiring connections."""

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
                entry.holder = entry.lease = None  # lent, but to nobody yet
                entry.borrowed_at = now
                return entry
        return None

    def _place(self, entry: Entry[C], now: float) -> asyncio.Task[None] | None:
        """Hand a lent-state ``entry`` to the first waiter, or park it idle."""
        if self._waiters.count:
            waiter = self._waiters.pop()
            if waiter is not None:
                entry.borrowed_at = now
                entry.holder = entry.lease = None  # the waiter claims it
                waiter.set_result(entry)
                return None
        # Slots reserved for openings still waiting for their turn do not
        # count: with nobody waiting, those are dropped when their turn comes.
        if self._size > self._max_size and (
            self._size - sum(not turn.done() for turn in self._turns) > self._max_size
        ):
            return self._retire(entry, "burst")
        entry.state = IDLE
        entry.last_used = now
        self._idle.append(entry)
        if self._idle_timeout is not None:
            self._wake_maintenance(min(entry.expires_at, now + self._idle_timeout))
        elif entry.expires_at < _INF:
            self._wake_maintenance(entry.expires_at)
        return None

    def _checkin(self, entry: Entry[C]) -> asyncio.Task[None] | None:
        """Take back a lent connection: hand it on, keep it, or retire it."""
        now = monotonic() if self._uses_clock else 0.0
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
        self._forget(entry)
        self._closed_count += 1
        if self._hooks is not None:
            self._emit(ConnectionClosed(self, reason))
        task = self._spawn(self._close_connection(entry.conn, reason, after))
        self._open_for_waiters()
        if self._min_size:
            self._wake_maintenance(0.0)
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

    def _open_for_waiters(self) -> None:
        """Open connections for waiters nobody is opening one for yet.

        During an outage no attempt starts here: waiters are woken instead to
        join the pool's single throttled attempt.  The need is recomputed
        before each opening, since with eager tasks an opening may complete
        (and serve a waiter) before ``_start_creation`` returns.
        """
        if self._closed:
            return
        waiters = self._waiters
        if self._backoff.active:
            wanted = min(
                waiters.count - self._creating - self._waiting_outside_line,
                self._limit - self._size,
            )
            if wanted > 0:
                self._wake_to_retry(wanted)
            return
        while (
            waiters.count > self._creating + self._waiting_outside_line
            and self._size < self._limit
            and not self._closed
            and not self._backoff.active
        ):
            self._start_creation(None, for_waiters=True)

    def _wake_to_retry(self, count: int) -> None:
        """Wake up to ``count`` callers in line to start their acquire over."""
        waiters = self._waiters
        for _ in range(count):
            waiter = waiters.pop()
            if waiter is None:
                break
            self._waiting_outside_line += 1
            waiter.set_result(RETRY)

    # -- opening connections -------------------------------------------------

    def _start_creation(
        self, outcome: asyncio.Future[None] | None, *, for_waiters: bool = False
    ) -> None:
        """Reserve a slot and open a connection for it in a pool task."""
        self._creating += 1
        self._size += 1
        self._refresh_plain()
        reservation = _Reservation(self, outcome, for_waiters)
        task = self._spawn(self._create(reservation))
        self._creations.add(task)
        task.add_done_callback(reservation.task_done)

    def _give_up_reservation(self, reservation: _Reservation) -> None:
        """Free a slot whose connection was never opened."""
        reservation.pending = False
        self._creating -= 1
        self._size -= 1
        self._refresh_plain()

    # -- at most max_connecting attempts at once ------------------------------

    def _take_turn(self) -> asyncio.Future[None] | None:
        """A turn to call ``create_connection``: ``None`` if it is ours now,
        else a future resolved when it is (the count is then already ours)."""
        if self._connecting < self._max_connecting and not self._turns:
            self._connecting += 1
            return None
        assert self._loop is not None
        turn: asyncio.Future[None] = self._loop.create_future()
        self._turns.append(turn)
        return turn

    def _pass_turn(self) -> None:
        """An attempt ended: give its turn to the next one in line, if any."""
        turns = self._turns
        while turns:
            turn = turns.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self._connecting -= 1

    def _leave_turn(self, turn: asyncio.Future[None]) -> None:
        """A queued attempt was cancelled: give back a turn it was given."""
        if turn.done() and not turn.cancelled():
            self._pass_turn()
        else:
            turn.cancel()

    def _still_needed(self, reservation: _Reservation) -> bool:
        """Whether a reservation that waited for its turn should connect."""
        if self._closed:
            return False
        if not reservation.for_waiters:
            return True
        # During an outage, waiters join the single throttled attempt.
        return (
            not self._backoff.active
            and self._waiters.count + self._waiting_outside_line >= self._connecting
        )

    async def _create(self, reservation: _Reservation) -> None:
        """Open one connection; its slot is already reserved.

        Waits for a turn among ``max_connecting`` attempts first.  The
        connection goes to the first waiter, else to the idle set.  A
        failure (an exception, ``connect_timeout``, a connection reported
        closed at once, or one the pool already holds) goes to the
        reservation's ``outcome`` when there is one, else to the first
        waiter.  Only :meth:`close` and ``connect_timeout`` cancel this task
        (possibly before it even starts: then ``_Reservation.task_done``
        frees the slot).
        """
        turn = self._take_turn()
        if turn is not None:
            try:
                await turn
            except BaseException:
                self._leave_turn(turn)
                raise
        try:
            if not self._still_needed(reservation):
                self._give_up_reservation(reservation)
                self._open_for_waiters()
                return
            await self._connect(reservation)
        finally:
            self._pass_turn()

    async def _connect(self, reservation: _Reservation) -> None:
        """The attempt itself, bounded by ``connect_timeout``."""
        loop = self._loop
        assert loop is not None
        outcome = reservation.outcome
        started = monotonic()
        task = asyncio.current_task()
        timer = None
        if self._connect_timeout is not None and task is not None:
            timer = loop.call_later(self._connect_timeout, reservation.expire, task)
        error: Exception | None
        deliver = True
        try:
            conn = await self._strategy.create()
        except asyncio.CancelledError:
            if not reservation.timed_out or self._closed:
                raise
            uncancel = getattr(task, "uncancel", None)
            if uncancel is not None:  # Python 3.11+
                uncancel()
            error = TimeoutError(
                f"{self._strategy.create_name} did not finish within "
                f"connect_timeout={self._connect_timeout:g}s"
            )
        except Exception as exc:
            error = exc
        else:
            error, deliver = self._refusal(conn)
            if error is None:
                reservation.pending = False
                self._creating -= 1
                self._connection_opened(conn, started)
                if outcome is not None and not outcome.done():
                    outcome.set_result(None)
                return
        finally:
            if timer is not None:
                timer.cancel()
        self._give_up_reservation(reservation)
        self._create_failed(error, started, deliver=deliver and outcome is None)
        if outcome is not None and not outcome.done():
            outcome.set_exception(error)
        self._open_for_waiters()

    def _refusal(self, conn: C) -> tuple[Exception | None, bool]:
        """Why a connection fresh from ``create_connection`` cannot be used.

        Returns the error, and whether it goes to the first waiter.  One the
        pool already holds (lent out or idle: the strategy returned it twice)
        is a bug of the strategy, reported to the waiter and left alone.  One
        already reported closed is closed and counts as a failed attempt
        (further attempts are throttled, as in an outage), but the waiters
        keep waiting for one that arrives open: an ``acquire_timeout`` ends
        their wait with ``PoolTimeout``, whose ``__cause__`` says why.
        """
        known = self._entries.get(id(conn))
        if (
            known is not None
            and known.conn is conn
            and known.state != RETIRED
            and type(conn) not in VALUE_TYPES
        ):
            where = "lent out" if known.state == LENT else "idle"
            return RuntimeError(
                f"{self._strategy.create_name} returned {conn!r}, which this "
                f"pool already holds ({where}); a strategy must return a new "
                "connection each time"
            ), True
        if self._is_broken(conn):
            self._spawn(self._close_connection(conn, "broken", None))
            return ClosedOnArrival(
                f"{self._strategy.create_name} returned {conn!r}, which its "
                "connection_is_closed() reports closed"
            ), False
        return None, False

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
        self._record(entry)
        if self._hooks is not None:
            self._emit(ConnectionCreated(self, now - started))
        if self._closed:
            self._retire(entry, "pool_closed")
            return
        self._place(entry, now)
        self._open_for_waiters()
        # One more connection to look after:
        self._wake_maintenance(now + SWEEP_INTERVAL)

    def _create_failed(self, exc: Exception, started: float, *, deliver: bool) -> None:
        """Count a failed attempt, start or continue the outage, report it."""
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
            self._wake_maintenance(0.0)

    async def _attempt(self) -> None:
        """The pool's one throttled connection attempt during an outage.

        Run through the reducer under a fixed key, so that everyone needing a
        new connection shares it.  Returns once a connection was opened (it
        went to the first waiter, or idle), raises the strategy's error if
        opening failed, or ``PoolClosed``.  A connection that arrives
        closed is no error for the callers: the attempt is repeated (after
        the backoff) until one arrives open.  If everyone stops waiting, the
        opening itself still completes in the background.
        """
        while True:
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
            try:
                await outcome
            except ClosedOnArrival:
                continue  # closed and counted: the next one, after the backoff
            return

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
        self._refresh_plain()
        for waiter in self._waiters.pop_all():
            waiter.set_exception(self._closed_error())
        for future in self._sleepers:
            resolve(future)
        for task in self._creations:
            task.cancel()
        for check, entry in list(self._checks.items()):
            # Checkouts inside their health check end with PoolClosed.
            self._abandon_task(check)
            if entry.state == LENT:
                self._retire(entry, "pool_closed", after=check)
        if self._maintenance is not None:
            self._maintenance.cancel()
        while self._idle:
            self._retire(self._idle.popleft(), "pool_closed")
