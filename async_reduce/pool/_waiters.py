"""The first-come, first-served line of callers waiting for a connection."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["RETRY", "WaitQueue"]

RETRY: Any = object()
"""Result given to a waiter that should start over instead of waiting."""


class WaitQueue:
    """Waiters' futures in arrival order, with a count of those still waiting.

    A waiter stops counting exactly once: when the pool settles its future
    (``pop``, ``pop_all``, ``settle``), or when its own caller gives up on a
    future the pool did not settle (``leave``; the future was cancelled along
    with the caller's task).  Futures that are done are skipped when popped;
    ``leave`` does not search the deque, which is compacted instead when
    leftovers pile up, so a crowd of timeouts costs linear time, not
    quadratic.  Between a caller's cancellation and its ``leave``, the count
    still includes it: the pool may then queue a newcomer or open a
    connection it did not need, but never hands anything to that caller.
    """

    __slots__ = ("count", "line")

    def __init__(self) -> None:
        self.line: deque[asyncio.Future[Any]] = deque()
        self.count = 0

    def pop(self) -> asyncio.Future[Any] | None:
        """Take the first future still waiting out of the line, or ``None``."""
        line = self.line
        while line:
            future = line.popleft()
            if not future.done():
                self.count -= 1
                return future
        return None

    def settle(
        self, future: asyncio.Future[Any], error: Callable[[], BaseException]
    ) -> None:
        """Fail a waiting ``future`` where it stands in line with ``error()``.

        ``error`` is called once the future no longer counts as waiting.
        """
        if not future.done():
            self.count -= 1
            future.set_exception(error())
            self._compact()

    def leave(self, future: asyncio.Future[Any]) -> None:
        """Account for a caller that gave up on ``future`` (see class doc)."""
        if not future.done():
            future.cancel()
        elif not future.cancelled():
            return  # settled by the pool, which counted it out
        self.count -= 1
        self._compact()

    def _compact(self) -> None:
        if len(self.line) > 2 * self.count + 64:
            self.line = deque(f for f in self.line if not f.done())

    def pop_all(self) -> list[asyncio.Future[Any]]:
        """Take every future still waiting out of the line."""
        waiting = []
        while (future := self.pop()) is not None:
            waiting.append(future)
        return waiting
