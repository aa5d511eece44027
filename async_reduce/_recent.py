"""The reuse window (``share_for``): outcomes kept for a while after they were produced.

Per-flight coalescing only joins callers that arrive while the work runs; a
caller arriving just after it ended starts it again (the dogpile effect).
With ``share_for`` seconds, a reducer keeps each execution's outcome (its
result or its exception, never a cancellation) for that long, and a call
whose key has a kept outcome gets it at once, without starting anything.

Only the miss path consults this (when no execution is in flight), and only
when ``share_for`` is set, so reducers without it pay nothing.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Coroutine, Hashable
from typing import Any

from ._copies import copier

__all__ = ["RecentOutcomes"]

# (expires at loop time, failed, result or exception)
_Entry = tuple[float, bool, Any]


class RecentOutcomes:
    """Outcomes of one reducer, per event loop, each kept ``share_for`` seconds."""

    __slots__ = ("_by_loop", "_lock", "share_for")

    def __init__(self, share_for: float) -> None:
        self.share_for = share_for
        self._by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[Hashable, _Entry]
        ] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def _table(self, loop: asyncio.AbstractEventLoop) -> dict[Hashable, _Entry]:
        table = self._by_loop.get(loop)
        if table is None:
            with self._lock:
                table = self._by_loop.setdefault(loop, {})
        return table

    def reuse(
        self,
        loop: asyncio.AbstractEventLoop,
        key: Hashable,
        future: asyncio.Future[Any],
    ) -> bool:
        """Settle ``future`` with ``key``'s kept outcome, if there is one."""
        entry = self._table(loop).get(key)
        if entry is None or entry[0] <= loop.time():
            return False
        if entry[1]:
            # Each caller raises a copy of its own (see _copies).
            future.set_exception(copier(entry[2])())
        else:
            future.set_result(entry[2])
        return True

    def remember(
        self,
        loop: asyncio.AbstractEventLoop,
        key: Hashable,
        coro: Coroutine[Any, Any, Any],
    ) -> Coroutine[Any, Any, Any]:
        """``coro``, wrapped so that its outcome is kept when it ends."""
        return self._run(loop, key, coro)

    async def _run(
        self,
        loop: asyncio.AbstractEventLoop,
        key: Hashable,
        coro: Coroutine[Any, Any, Any],
    ) -> Any:
        table = self._table(loop)
        try:
            result = await coro
        except Exception as exc:
            entry: _Entry = (loop.time() + self.share_for, True, exc)
            table[key] = entry
            loop.call_later(self.share_for, _drop, table, key, entry)
            raise
        entry = (loop.time() + self.share_for, False, result)
        table[key] = entry
        loop.call_later(self.share_for, _drop, table, key, entry)
        return result

    def forget(self, key: Hashable, loop: asyncio.AbstractEventLoop | None) -> None:
        """Drop ``key``'s kept outcome (on ``loop``, or on every loop)."""
        with self._lock:
            tables = (
                list(self._by_loop.values())
                if loop is None
                else [self._by_loop.get(loop, {})]
            )
        for table in tables:
            table.pop(key, None)


def _drop(table: dict[Hashable, _Entry], key: Hashable, entry: _Entry) -> None:
    """Remove ``entry`` once it expired, unless a newer one replaced it."""
    if table.get(key) is entry:
        del table[key]
