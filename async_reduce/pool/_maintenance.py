"""Background upkeep: lifetimes, idle timeouts, borrow timeouts, ``min_size``.

One task per pool, started on first use when any of these features is on,
held by the pool and cancelled by ``close()``.  It sleeps until the earliest
deadline it knows of, and at most about a second while the pool holds
connections (to drop those ``connection_is_closed`` reports, so ``min_size`` stays
usable); the pool wakes it early (``_wake_maintenance``) when something happens that may
need attention sooner.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import TypeVar

from .._events import ConnectionReclaimed
from ._entry import LENT, RECLAIMED, Entry
from ._lifecycle import Lifecycle
from ._state import SWEEP_INTERVAL, logger, resolve

__all__ = ["Maintenance"]

C = TypeVar("C")

_INF = math.inf
_MAX_REMEMBERED_RECLAIMS = 1024
monotonic = time.monotonic


class Maintenance(Lifecycle[C]):
    """The maintenance task's side of the pool."""

    _replenisher: asyncio.Task[None] | None = None

    def _needs_maintenance(self) -> bool:
        return bool(
            self._min_size
            or self._max_lifetime is not None
            or self._idle_timeout is not None
            or self._borrow_timeout is not None
        )

    def _start_maintenance(self) -> None:
        if self._maintenance is None and not self._closed and self._needs_maintenance():
            self._maintenance = self._spawn(self._maintain())

    async def _maintain(self) -> None:
        loop = self._loop
        assert loop is not None
        while not self._closed:
            now = monotonic()
            try:
                next_at = self._maintenance_pass(now)
            except Exception as exc:  # a bug; keep the pool maintained anyway
                loop.call_exception_handler(
                    {"message": f"maintenance of {self!r} failed", "exception": exc}
                )
                next_at = now + SWEEP_INTERVAL
            wake: asyncio.Future[None] = loop.create_future()
            self._maintenance_wake = wake
            self._maintenance_next = next_at
            handle = (
                None
                if next_at == _INF
                else loop.call_later(next_at - now, resolve, wake)
            )
            try:
                await wake
            finally:
                self._maintenance_wake = None
                self._maintenance_next = _INF
                if handle is not None:
                    handle.cancel()

    def _maintenance_pass(self, now: float) -> float:
        """Do what is due at ``now``; return when the next pass is due."""
        next_at = _INF
        borrow_timeout = self._borrow_timeout
        if borrow_timeout is not None and self._in_use:
            for entry in [e for e in self._all_entries() if e.state == LENT]:
                due = entry.borrowed_at + borrow_timeout
                if due <= now:
                    self._reclaim(entry, now)
                else:
                    next_at = min(next_at, due)
        idle_timeout = self._idle_timeout
        for entry in list(self._idle):  # oldest first
            if now >= entry.expires_at:
                reason = "lifetime"
            elif self._is_broken(entry.conn):
                reason = "broken"
            elif (
                idle_timeout is not None
                and now - entry.last_used >= idle_timeout
                and self._size > self._min_size
            ):
                reason = "idle"
            else:
                next_at = min(next_at, entry.expires_at)
                if idle_timeout is not None and self._size > self._min_size:
                    next_at = min(next_at, entry.last_used + idle_timeout)
                continue
            self._idle.remove(entry)
            self._retire(entry, reason)
        if self._size:
            next_at = min(next_at, now + SWEEP_INTERVAL)
        if self._size < self._min_size and not self._closed:
            if not self._backoff.active:
                # Recomputed each time: an eager task may open it at once.
                while self._size < self._min_size and not self._closed:
                    self._start_creation(None)
            elif self._replenisher is None:
                self._replenisher = self._spawn(self._replenish())
        return next_at

    async def _replenish(self) -> None:
        """Join the outage attempt on behalf of ``min_size``."""
        try:
            await self._reducer(self._attempt(), ident=self._attempt_ident)
        except Exception:  # counted and logged where it happened
            pass
        finally:
            self._replenisher = None
            self._wake_maintenance(0.0)

    def _reclaim(self, entry: Entry[C], now: float) -> None:
        """Take back a connection held past ``borrow_timeout`` and close it."""
        held = now - entry.borrowed_at
        self._reclaimed += 1
        conns = self._reclaimed_conns
        conns[id(entry.conn)] = entry.conn
        if len(conns) > _MAX_REMEMBERED_RECLAIMS:
            del conns[next(iter(conns))]
        logger.warning(
            "%r: connection %r was held for %.3fs, longer than borrow_timeout=%gs; "
            "it is closed and its slot freed (acquired at %s)",
            self,
            entry.conn,
            held,
            self._borrow_timeout,
            entry.site,
        )
        if self._hooks is not None:
            self._emit(ConnectionReclaimed(self, held, entry.site))
        if entry.lease is not None:
            entry.lease = RECLAIMED
        self._retire(entry, "reclaimed")
