"""The public connection pool."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Hashable
from types import TracebackType
from typing import Any, Generic, TypeVar

from .._location import function_location
from .._reducer import AsyncReducer
from ._acquire import Acquirer, Lease, current_task_of
from ._config import (
    DEFAULT_CHECK_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_CONNECTING,
    Settings,
    check_backoff,
    check_check_after,
    check_max_connecting,
    check_sizes,
)
from ._config import check_timeout as _timeout
from ._entry import IDLE, LENT, UNKNOWN_SITE, acquisition_site
from ._idle import IdleConnections
from ._stats import PoolStatistics
from ._strategy import ConnectionStrategy, LegacyConnectionStrategy, StrategyCalls

__all__ = ["ConnectionPool"]

C = TypeVar("C")
R = TypeVar("R")

monotonic = time.monotonic
get_ident = threading.get_ident


class ConnectionPool(Acquirer[C], Generic[C]):
    """A fair, burstable, cancellation-safe pool of connections.

    The pool is generic over the connection type; everything specific to it
    lives in the ``strategy`` (:class:`ConnectionStrategy`, or a strategy
    written for asyncio-connection-pool 1.x).

    Semantics:

    * **Fast path.** When an idle, usable connection exists and nobody is
      waiting, ``acquire`` returns it without yielding to the event loop.
      All bookkeeping is synchronous; opening and closing connections happen
      in tasks the pool owns.
    * **Fairness.** Callers that must wait are served first come, first
      served: a returned connection goes straight to the first waiter, so a
      task that releases and re-acquires queues behind those already waiting.
    * **Size.** ``size`` (open plus opening connections) never exceeds
      ``max_size``, or ``burst_limit`` when given: then extra connections open
      under load and close when returned with nobody waiting.  (After
      :meth:`resize` shrinks the pool, connections lent out above the new
      limit close when returned.)  Connections are opened in pool tasks for
      waiters; a waiter takes whichever connection comes first, returned or
      new, and one opened for a caller that gave up is kept.
    * **One holder per lending.** Each lending is recorded with the task it
      went to (and the ``get_connection()`` context, if any); a release ends
      that lending and no other.  A second ``release()`` of a connection that
      went on to another caller raises ``ValueError`` and changes nothing
      (see :meth:`release`).
    * **Health.** A connection for which ``connection_is_closed`` is true is
      closed and never handed out, fresh ones included.  ``check_connection``
      runs at checkout only after the connection sat idle longer than
      ``check_after``, for at most ``check_timeout`` (longer counts as failed).
      ``max_lifetime`` (shortened by a random 0-5% per connection) and
      ``idle_timeout`` retire connections; ``min_size`` are kept open, and
      idle ones reported closed are replaced within about a second.
      Background work runs in one task per pool (only when one of these
      features is on), started on first use and stopped by :meth:`close`.
    * **Opening.** At most ``max_connecting`` ``create_connection`` calls
      run at once, however many callers wait (they take connections as they
      are opened or returned), and each is cancelled after
      ``connect_timeout``, which then counts as a failed attempt: a hung
      backend never holds a slot for good.  ``statistics().creating`` and
      :class:`PoolTimeout` show the connections being opened.  A
      ``create_connection`` that returns a connection the pool already holds
      fails the caller with a ``RuntimeError`` naming the strategy.
    * **Outages.** A failing ``create_connection`` raises its error in the
      caller first in line and frees the slot.  From then on at most one
      attempt at a time is in flight, run through the pool's reducer under a
      fixed key, so that every caller needing a new connection shares its
      outcome (they all get the error), with capped exponential backoff
      (``reconnect_backoff``, jittered) between attempts.  Callers queued
      behind a full pool keep waiting for returned connections.  The first
      success ends the outage; :meth:`statistics` shows ``outage``.  A fresh
      connection reported closed counts as a failed attempt too, but its
      caller keeps waiting for the next attempt.
    * **Coalesced calls.** :meth:`run` runs concurrent identical calls once,
      on one connection, through the same reducer.
    * **Events.** Opening, failing, lending (with the wait), timing out,
      reclaiming and closing (with the reason) are reported to
      ``on_pool_event`` of the reducer's hooks, as the frozen event objects
      of :mod:`async_reduce.hooks`; a failing hook never affects the pool.
    * **Cancellation.** Cancelling a caller at any point inside
      :meth:`acquire`, :meth:`get_connection` or :meth:`run`, including just
      after a connection was handed to it, never loses a connection or a
      slot: a connection handed to a cancelled caller goes to the next one.
    * **Event loop.** The pool binds to the running loop on first use, so it
      can be built anywhere; using it from another loop (a second loop in the
      same thread included, while the first is still open) raises
      ``RuntimeError`` on every path.  It is not thread-safe.
    * **Eager tasks.** With ``asyncio.eager_task_factory`` (Python 3.12+)
      the limits hold as well: the need for a new connection is recomputed
      before each one is opened.

    Args:
        strategy: opens, tests and closes connections.
        max_size: connections kept at most when not bursting (>= 1).
        burst_limit: hard limit under load (>= ``max_size``); ``None``: no
            bursting.
        min_size: connections kept open even when idle (<= ``max_size``).
        acquire_timeout: default seconds ``acquire`` waits before raising
            :class:`PoolTimeout`; ``None`` waits as long as it takes.
        max_lifetime: seconds after which a connection is retired (when idle
            or when returned).
        idle_timeout: seconds after which an idle connection above
            ``min_size`` is closed.
        borrow_timeout: seconds after which a lent connection is reclaimed:
            a warning names where it was acquired, the connection is closed
            (never lent again) and its slot freed; the late ``release`` is a
            no-op.
        check_after: seconds of idleness after which checkout runs the
            strategy's ``check_connection``; ``0`` checks every time, ``None``
            never.
        check_timeout: seconds a ``check_connection`` may take (default 5);
            a slower one counts as failed and its connection is closed.
            ``None``: no limit (a hung check then holds its caller).
        connect_timeout: seconds a ``create_connection`` may take (default
            10); a slower one is cancelled, its slot freed, and it counts as
            a failed attempt (the caller waiting for it gets a
            ``TimeoutError``).  ``None``: no limit (a hung backend then holds
            the slot until it answers).
        max_connecting: ``create_connection`` calls in flight at most
            (default 2, as in the MongoDB drivers' pool specification), so
            that a crowd of callers on a cold pool or after a restart does
            not open a storm of connections at once.
        reconnect_backoff: ``(initial, maximum)`` seconds between attempts
            during an outage.
        reducer: the :class:`~async_reduce.AsyncReducer` used by :meth:`run`
            and for outage attempts (its hooks also receive the pool's
            events); by default a private one.
        hooks: hooks for the private reducer (pass ``reducer`` or ``hooks``,
            not both).  Pool events go to ``hooks.on_pool_event(event)``.
        name: shown in the pool's ``repr``, and so in its log messages, to
            tell pools apart.
        service_name: the same as ``name``, under the name
            asyncio-connection-pool's Datadog pool gives it.

    Raises:
        TypeError: a wrong type of argument, or a strategy missing a method.
        ValueError: ``max_size < 1``, ``burst_limit < max_size``,
            ``min_size`` outside ``0..max_size``, ``max_connecting < 1``, a
            timeout that is not a positive number of seconds, or a bad
            ``reconnect_backoff``.

    .. versionadded:: 2.0
    """

    def __init__(
        self,
        strategy: ConnectionStrategy[C] | LegacyConnectionStrategy[C],
        max_size: int = 10,
        *,
        burst_limit: int | None = None,
        min_size: int = 0,
        acquire_timeout: float | None = None,
        max_lifetime: float | None = None,
        idle_timeout: float | None = None,
        borrow_timeout: float | None = None,
        check_after: float | None = 0.5,
        check_timeout: float | None = DEFAULT_CHECK_TIMEOUT,
        connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
        max_connecting: int = DEFAULT_MAX_CONNECTING,
        reconnect_backoff: tuple[float, float] = (0.05, 5.0),
        reducer: AsyncReducer | None = None,
        hooks: Any = None,
        name: str | None = None,
        service_name: str | None = None,
    ) -> None:
        calls = StrategyCalls(strategy)
        if service_name is not None:
            if name is not None:
                raise TypeError("pass name= or service_name=, not both")
            name = service_name
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, got {type(name).__name__}")
        self._name = name
        settings = Settings(
            sizes=check_sizes(max_size, burst_limit, min_size),
            acquire_timeout=_timeout(acquire_timeout, "acquire_timeout"),
            max_lifetime=_timeout(max_lifetime, "max_lifetime"),
            idle_timeout=_timeout(idle_timeout, "idle_timeout"),
            borrow_timeout=_timeout(borrow_timeout, "borrow_timeout"),
            check_after=check_check_after(check_after),
            check_timeout=_timeout(check_timeout, "check_timeout"),
            connect_timeout=_timeout(connect_timeout, "connect_timeout"),
            max_connecting=check_max_connecting(max_connecting),
            reconnect_backoff=check_backoff(reconnect_backoff),
        )
        if reducer is None:
            reducer = AsyncReducer(hooks=hooks)
        elif hooks is not None:
            raise TypeError(
                "pass hooks= or reducer=, not both (the pool reports to reducer.hooks)"
            )
        self._init_state(calls, reducer, settings)

    # -- public API ----------------------------------------------------------

    async def acquire(self, timeout: float | None = None) -> C:
        """Borrow a connection; give it back with :meth:`release`.

        Prefer :meth:`get_connection`, which cannot forget to release.

        Args:
            timeout: seconds to wait; ``None`` uses the pool's
                ``acquire_timeout``.

        Raises:
            PoolTimeout: no connection within the timeout.
            PoolClosed: the pool is closed, or was closed while waiting.
            Exception: whatever the strategy's ``create_connection`` raised,
                when the connection opened for this caller failed.

        If the caller is cancelled, it gets ``CancelledError`` and the pool
        keeps every connection and slot, including one handed to the caller
        in the same instant.
        """
        if timeout is not None:
            timeout = _timeout(timeout)
        entry = self._take_plain()
        if entry is None:
            if self._fast_paths_apply and self._waiters.count:  # back of the line
                entry = await self._acquire_slow(
                    self._acquire_timeout if timeout is None else timeout, None
                )
            else:
                entry = await self._acquire(timeout, None)
        return entry.conn

    async def release(self, conn: C) -> None:
        """Give back a connection obtained from :meth:`acquire`.

        The connection goes to the first waiter, back to the pool, or is
        closed (broken, past ``max_lifetime``, above ``max_size`` with nobody
        waiting, or the pool is closed); in the last case this awaits the
        close, which continues if the caller is cancelled.  Releasing a
        connection that was reclaimed after ``borrow_timeout`` does nothing.

        A release ends the lending it belongs to, never another one: the
        pool records which task each lending went to.  Releasing from that
        task is the normal case.  Releasing from a task that held the
        connection before (among its last 8 lendings), after it went to
        another caller that is still running, raises ``ValueError`` and
        changes nothing, as does releasing a connection still on its way to
        a waiter.  Any other task may release on the holder's behalf (a
        connection handed from task to task), and anyone may release a
        connection whose holder task has finished (for example one that
        acquired it and returned it as its result).  Releasing inside a
        ``get_connection()`` block ends that block's lending (another one
        there raises ``ValueError`` once the connection went on); the block
        then leaves without releasing anything.

        Raises:
            ValueError: ``conn`` is not lent out by this pool (for example it
                was already released), or this release would end another
                caller's lending.
            RuntimeError: called from another event loop than the pool's.
        """
        if self._running._thread_id != get_ident():
            self._bind()  # refuses another loop, as acquiring does
        task = current_task_of(self._loop)
        entry = self._entries.get(id(conn))
        if entry is not None and id(conn) in self._twins:
            entry = self._lent_entry(conn, task)
        if entry is None or entry.conn is not conn or entry.state != LENT:
            reclaimed = self._reclaimed_conns
            if id(conn) in reclaimed and reclaimed[id(conn)] is conn:
                del reclaimed[id(conn)]
                return
            raise ValueError(
                f"release(): {conn!r} is not lent out by this pool "
                "(already released, or from another pool)"
            )
        if entry.holder is not task:
            self._refuse_release(entry, task)
        entry.lease = None
        if self._fast_paths_apply:
            waiters = self._waiters
            if not waiters.count:
                entry.state = IDLE  # its last holder is kept: see _take_plain
                self._idle.append(entry)
                return
            if not self._is_broken(entry.conn):
                waiter = waiters.pop()
                if waiter is not None:
                    entry.holder = None
                    waiter.set_result(entry)  # straight to the first in line
                    return
        entry.holder = None
        closing = self._checkin(entry)
        if closing is not None:
            await asyncio.shield(closing)

    def get_connection(self, timeout: float | None = None) -> Lease[C]:
        """``async with pool.get_connection() as conn:`` borrows ``conn``.

        Entering acquires as :meth:`acquire` does (same errors, same
        cancellation guarantee); leaving releases as :meth:`release` does,
        whether the block raised or not.  A connection whose protocol state
        an interrupted operation may have left broken should be reported by
        the strategy's ``connection_is_closed``.

        Args:
            timeout: seconds to wait; ``None`` uses the pool's
                ``acquire_timeout``.
        """
        if timeout is not None:
            timeout = _timeout(timeout)
        return Lease(self, timeout)

    async def run(
        self,
        fn: Callable[..., Awaitable[R]],
        *args: Hashable,
        ident: Hashable | None = None,
    ) -> R:
        """``await fn(conn, *args)`` on a pooled connection, coalesced.

        Concurrent calls with the same ``fn`` and arguments (compared by
        equality and type), or with the same ``ident``, run once through the
        pool's reducer, on one connection, and all get its result or its
        exception.  The function's identity is part of the key: define
        ``fn`` once (at module level, or once per pool) and pass that object;
        a ``lambda`` or a function defined inside the caller is a new object
        on every call, so such calls never coalesce (pass ``ident=`` to name
        the call instead).  Calls on different pools never coalesce.  The shared call
        acquires with the pool's ``acquire_timeout``.  A caller that is
        cancelled leaves the others unaffected; when the last one leaves, the
        shared call is cancelled and its connection returned.

        Args:
            fn: a coroutine function taking the connection first.
            *args: further arguments of ``fn``, hashable.
            ident: the key to coalesce on, instead of ``fn`` and ``args``.

        Raises:
            TypeError: ``fn`` is not callable, or an argument is unhashable
                (pass ``ident=`` then).
        """
        if not callable(fn):
            raise TypeError(f"fn must be a coroutine function, got {fn!r}")
        key: Hashable = (
            (self, fn, args, tuple(map(type, args))) if ident is None else (self, ident)
        )
        try:
            hash(key)
        except TypeError:
            raise TypeError(
                "run(): the arguments must be hashable to coalesce calls; "
                "pass ident= to name the call instead"
            ) from None
        site = None
        if self._borrow_timeout is not None:
            site = acquisition_site()
            if site == UNKNOWN_SITE:  # run() is the top of its task
                site = f"run({function_location(fn)})"
        return await self._reducer(self._run_on_connection(fn, args, site), ident=key)

    async def _run_on_connection(
        self, fn: Callable[..., Awaitable[R]], args: tuple[Any, ...], site: str | None
    ) -> R:
        entry = await self._acquire(None, site)
        holder = entry.holder
        try:
            return await fn(entry.conn, *args)
        finally:
            await self._release_entry(entry, holder)

    async def start(self) -> None:
        """Bind to the running loop and open ``min_size`` connections.

        Optional: a pool starts by itself on first use.  Raises the first
        error from ``create_connection`` if warming up failed (the pool stays
        usable and keeps trying in the background).  If the caller is
        cancelled, the connections being opened are still opened and kept.
        """
        if self._closed:
            raise self._closed_error()
        self._bind()
        loop = self._loop
        assert loop is not None
        outcomes: list[asyncio.Future[None]] = []
        # Recomputed each time: an eager task may open it at once.
        while self._size < self._min_size and not self._closed:
            outcomes.append(loop.create_future())
            self._start_creation(outcomes[-1])
        if not outcomes:
            return
        try:
            await asyncio.wait(outcomes)
        finally:
            for outcome in outcomes:
                outcome.cancel()
        errors = [o.exception() for o in outcomes if not o.cancelled()]
        for error in errors:
            if error is not None:
                raise error

    async def close(self) -> None:
        """Close the pool.

        Waiters get :class:`PoolClosed`, idle connections are closed now,
        connections being opened are cancelled, and lent ones are closed when
        they are returned.  A checkout still inside its health check ends
        with :class:`PoolClosed`: its check is cancelled and its connection
        closed.  Returns when the pool's own closing work is done;
        if the caller is cancelled meanwhile, that work still completes.
        Idempotent.  Later acquires raise ``PoolClosed``.
        """
        loop = self._loop
        if loop is not None and loop.is_closed():
            self._closed = True
            self._refresh_plain()
            return
        if loop is not None and loop is not asyncio.get_running_loop():
            raise RuntimeError(f"{self!r} is bound to a different event loop")
        if not self._closed:
            self._shut_down()
        if self._tasks:
            await asyncio.wait(list(self._tasks))

    async def resize(
        self,
        max_size: int | None = None,
        min_size: int | None = None,
        burst_limit: int | None = None,
    ) -> None:
        """Change the size limits; ``None`` keeps a value as it is.

        Growing serves waiters at once.  Shrinking closes idle connections
        above the new limits now and lent ones when returned.  To stop
        bursting, pass ``burst_limit=max_size``.  This awaits the closing of
        idle connections it retired (which completes even if the caller is
        cancelled); the new limits apply at once.  Assigning
        :attr:`max_size` or :attr:`burst_limit` does the same without
        awaiting.

        Raises:
            ValueError: as for the constructor, naming the argument.
            PoolClosed: the pool is closed.
        """
        retiring = self._apply_sizes(
            self._max_size if max_size is None else max_size,
            self._burst_limit if burst_limit is None else burst_limit,
            self._min_size if min_size is None else min_size,
        )
        if retiring:
            await asyncio.wait(retiring)

    def _apply_sizes(
        self, max_size: Any, burst_limit: Any, min_size: Any
    ) -> list[asyncio.Task[None]]:
        """Check and apply new limits now; return the closings it started."""
        new = check_sizes(max_size, burst_limit, min_size)
        if self._closed:
            raise self._closed_error()
        if self._loop is not None:
            self._bind()
        self._max_size, self._burst_limit, self._min_size = new
        self._limit = self._max_size if self._burst_limit is None else self._burst_limit
        self._refresh_plain()
        if self._loop is None:
            return []
        retiring = []
        while self._idle and self._size > self._max_size:
            retiring.append(self._retire(self._idle.popleft(), "resize"))
        self._open_for_waiters()
        self._start_maintenance()
        self._wake_maintenance(0.0)
        return retiring

    # -- asyncio-connection-pool's public attributes ---------------------------

    @property
    def max_size(self) -> int:
        """Connections kept at most when not bursting.

        Assignable, as in asyncio-connection-pool: the new limit applies at
        once, as with :meth:`resize` (raising it serves waiters now; lowering
        it closes idle connections above it now and lent ones as they come
        back).  ``ValueError`` if it would go above ``burst_limit`` or below
        ``min_size``.
        """
        return self._max_size

    @max_size.setter
    def max_size(self, value: int) -> None:
        self._apply_sizes(value, self._burst_limit, self._min_size)

    @property
    def burst_limit(self) -> int | None:
        """The hard limit under load, ``None`` when the pool does not burst.

        Assignable, as in asyncio-connection-pool: raising it lets waiters
        burst at once; lowering it closes connections above it as they come
        back; ``None`` stops bursting.  ``ValueError`` if below ``max_size``.
        """
        return self._burst_limit

    @burst_limit.setter
    def burst_limit(self, value: int | None) -> None:
        self._apply_sizes(self._max_size, value, self._min_size)

    @property
    def min_size(self) -> int:
        """Connections kept open even when idle (change it with :meth:`resize`)."""
        return self._min_size

    @property
    def in_use(self) -> int:
        """Connections lent out now (including one handed to a waiter that
        has not resumed yet), as asyncio-connection-pool's ``in_use``."""
        return self._in_use

    @property
    def currently_allocating(self) -> int:
        """Connections being opened now, as asyncio-connection-pool's
        ``currently_allocating`` (``statistics().creating``)."""
        return self._creating

    @property
    def available(self) -> IdleConnections:
        """The idle connections, as asyncio-connection-pool's ``available``
        queue is read: ``pool.available.qsize()``, ``pool.available.empty()``
        (a live, read-only view)."""
        return IdleConnections(self)

    def statistics(self) -> PoolStatistics:
        """A consistent snapshot of sizes and counters."""
        return PoolStatistics(
            size=self._size,
            idle=len(self._idle),
            in_use=self._in_use,
            creating=self._creating,
            waiting=self._waiters.count + self._waiting_outside_line,
            max_size=self._max_size,
            burst_limit=self._burst_limit,
            min_size=self._min_size,
            created=self._created,
            closed=self._closed_count,
            acquired=self._acquired,
            timeouts=self._timeouts,
            create_failures=self._create_failures,
            reclaimed=self._reclaimed,
            outage=self._backoff.active,
        )

    @property
    def closed(self) -> bool:
        """``True`` once :meth:`close` was called."""
        return self._closed

    @property
    def name(self) -> str | None:
        """The name given at construction, if any."""
        return self._name

    @property
    def strategy(self) -> Any:
        """The strategy given at construction."""
        return self._strategy.strategy

    @property
    def reducer(self) -> AsyncReducer:
        """The reducer behind :meth:`run` and outage attempts."""
        return self._reducer

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        limit = f"{self._max_size}" + (
            "" if self._burst_limit is None else f"(burst {self._burst_limit})"
        )
        name = "" if self._name is None else f"{self._name!r} "
        return (
            f"<ConnectionPool {name}{state} size={self._size}/{limit} "
            f"idle={len(self._idle)} in_use={self._in_use} "
            f"waiting={self._waiters.count + self._waiting_outside_line}>"
        )

    async def __aenter__(self) -> ConnectionPool[C]:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
