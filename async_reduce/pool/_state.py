"""The pool's state: configuration, counters, connection records, events.

The transitions between states live in ``_lifecycle``, background upkeep in
``_maintenance`` and the callers' side in ``_acquire``; each layer is a
subclass of the previous one, ending with ``ConnectionPool``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Coroutine, Hashable
from typing import Any, Generic, TypeVar

from .._events import (
    AcquireTimedOut,
    PoolEvent,
)
from .._hookerrors import report_hook_error
from .._reducer import AsyncReducer
from ._backoff import Backoff
from ._config import Settings
from ._entry import LENT, Entry
from ._errors import PoolClosed, PoolTimeout
from ._strategy import StrategyCalls
from ._waiters import WaitQueue

__all__ = [
    "NOT_RUNNING",
    "SWEEP_INTERVAL",
    "VALUE_TYPES",
    "PoolState",
    "logger",
    "resolve",
]

logger = logging.getLogger("async_reduce.pool")

C = TypeVar("C")

_INF = math.inf
# While the pool holds connections, its maintenance task (if any) looks at the
# idle ones at least this often (seconds), so that one closed by the server is
# replaced before anyone asks for it.
SWEEP_INTERVAL = 1.0
monotonic = time.monotonic


def resolve(future: asyncio.Future[None]) -> None:
    """Set ``future``'s result to ``None`` unless it is already done."""
    if not future.done():
        future.set_result(None)


# Connections of these exact types are plain values (``None``, a number, a
# string...), which a strategy may return more than once: equal values cannot
# be told apart, and asyncio-connection-pool lets a connection be any value.
# Any other object returned while the pool holds it is a faulty strategy.
VALUE_TYPES = frozenset(
    {type(None), bool, int, float, complex, str, bytes, tuple, frozenset}
)


class _NotRunning:
    """Stands in for the bound loop where its thread cannot be read."""

    _thread_id = None


NOT_RUNNING = _NotRunning()


def _consume_outcome(task: asyncio.Task[Any]) -> None:
    # For tasks the pool stopped waiting for: their outcome is expected
    # and deliberately dropped.
    if not task.cancelled():
        task.exception()


class PoolState(Generic[C]):
    """Counters, connection records and the transitions between them."""

    _loop: asyncio.AbstractEventLoop | None

    def _init_state(
        self, strategy: StrategyCalls[C], reducer: AsyncReducer, settings: Settings
    ) -> None:
        self._strategy = strategy
        self._is_closed = strategy.is_closed
        self._reducer = reducer
        self._hooks: Any = getattr(reducer, "hooks", None)
        self._max_size, self._burst_limit, self._min_size = settings.sizes
        self._limit = self._max_size if self._burst_limit is None else self._burst_limit
        self._acquire_timeout = settings.acquire_timeout
        self._max_lifetime = max_lifetime = settings.max_lifetime
        self._idle_timeout = idle_timeout = settings.idle_timeout
        self._borrow_timeout = borrow_timeout = settings.borrow_timeout
        self._check_timeout = settings.check_timeout
        self._connect_timeout = settings.connect_timeout
        self._max_connecting = settings.max_connecting
        # Without an active check there is nothing to skip, so never stale.
        self._check_after = _INF if strategy.check is None else settings.check_after
        # Whether any feature needs timestamps; if not, the hot paths skip
        # reading the clock altogether.
        self._uses_clock = (
            self._check_after != _INF
            or max_lifetime is not None
            or idle_timeout is not None
            or borrow_timeout is not None
        )
        self._backoff = Backoff(*settings.reconnect_backoff)
        self._attempt_ident: Hashable = ("async_reduce.pool:reconnect", id(self))

        self._loop = None
        # The fast paths' loop check: ``self._running._thread_id ==
        # threading.get_ident()`` holds only while the bound loop runs in the
        # calling thread (see ``Acquirer._bind``).  Until bound, it never
        # holds, which sends every call down the path that binds.
        self._running: Any = NOT_RUNNING
        # The same for the plainest fast paths: the bound loop while
        # ``_fast_paths_apply`` holds, else NOT_RUNNING (one test for both).
        self._fast: Any = NOT_RUNNING
        self._closed = False
        self._idle: deque[Entry[C]] = deque()
        # The record of each connection, by id(); connections that are plain
        # values (see VALUE_TYPES) may share an id: the others are "twins".
        self._entries: dict[int, Entry[C]] = {}
        self._twins: dict[int, list[Entry[C]]] = {}
        # Lent connections are not counted separately:
        # in use == _size - _creating - len(_idle).
        self._size = 0
        # Slots reserved for connections being opened (counted in _size) ...
        self._creating = 0
        # ... of which this many are in create_connection (<= max_connecting),
        # the others queued for a turn.
        self._connecting = 0
        self._turns: deque[asyncio.Future[None]] = deque()
        # True while the plainest fast paths apply: no timed features, no
        # hooks, pool open, not above max_size.  Recomputed when any of these
        # change.
        self._fast_paths_apply = not self._uses_clock and self._hooks is None
        # Callers woken to start over (RETRY) that have not queued again, plus
        # callers inside the outage attempt: waiting, though not in line.
        self._waiting_outside_line = 0
        self._waiters = WaitQueue()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._creations: set[asyncio.Task[Any]] = set()
        # Health checks in progress, and the connections they check.
        self._checks: dict[asyncio.Task[Any], Entry[C]] = {}
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
            waited,
            self._size,
            self._in_use,
            self._waiters.count + self._waiting_outside_line,
            self._creating,
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
        self._fast_paths_apply = plain = (
            not self._uses_clock
            and self._hooks is None
            and not self._closed
            and self._size <= self._max_size
        )
        self._fast = self._running if plain else NOT_RUNNING

    def _wake_maintenance(self, at: float) -> None:
        """Wake the maintenance task if it sleeps past ``at``."""
        wake = self._maintenance_wake
        if wake is not None and at < self._maintenance_next and not wake.done():
            wake.set_result(None)

    def _is_broken(self, conn: C) -> bool:
        try:
            return bool(self._is_closed(conn))
        except Exception:
            logger.debug("connection_is_closed(%r) raised", conn, exc_info=True)
            return True

    # -- connection records ----------------------------------------------------

    def _record(self, entry: Entry[C]) -> None:
        """Register a new connection's entry."""
        key = id(entry.conn)
        if key in self._entries:  # a plain value the pool holds already
            self._twins.setdefault(key, []).append(entry)
        else:
            self._entries[key] = entry

    def _forget(self, entry: Entry[C]) -> None:
        """Unregister a retired connection's entry."""
        key = id(entry.conn)
        twins = self._twins.get(key)
        if self._entries.get(key) is entry:
            if twins:
                self._entries[key] = twins.pop()
            else:
                del self._entries[key]
        elif twins is not None and entry in twins:
            twins.remove(entry)
        if twins is not None and not twins:
            del self._twins[key]

    def _all_entries(self) -> list[Entry[C]]:
        """Every connection's entry."""
        entries = list(self._entries.values())
        for twins in self._twins.values():
            entries.extend(twins)
        return entries

    def _lent_entry(self, conn: C, task: object) -> Entry[C] | None:
        """The entry a ``release(conn)`` by ``task`` is about, if lent out.

        With twins (equal plain values), the one ``task`` holds comes first.
        """
        entry = self._entries.get(id(conn))
        if entry is None or entry.conn is not conn:
            return None
        twins = self._twins.get(id(conn))
        if twins:
            lent = [e for e in [entry, *twins] if e.state == LENT]
            if not lent:
                return None
            return next((e for e in lent if e.holder is task), lent[0])
        return entry if entry.state == LENT else None
