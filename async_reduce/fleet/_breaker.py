"""A circuit breaker: stop paying a store's timeout on every call while it is down."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Breaker"]


class Breaker:
    """Closed while the store answers; open for a while after it failed.

    The first failure opens the breaker for ``backoff`` seconds; during that
    time :meth:`allow` says no and calls skip the store.  After it, one call
    is let through as a probe (*half-open*): its success closes the breaker,
    its failure opens it again for twice as long, up to ``max_backoff``.

    Args:
        backoff: first open period, seconds.
        max_backoff: cap of the open period, seconds.
        clock: monotonic clock (tests may pass their own).
    """

    __slots__ = ("_backoff", "_clock", "_current", "_max", "_probing", "_reopen_at")

    def __init__(
        self,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backoff = backoff
        self._max = max_backoff
        self._clock = clock
        self._current = 0.0  # 0: closed
        self._reopen_at = 0.0
        self._probing = False

    @property
    def closed(self) -> bool:
        """Whether calls use the store."""
        return self._current == 0.0

    def allow(self) -> bool:
        """Whether this call may use the store (a probe when half-open)."""
        if self._current == 0.0:
            return True
        if self._probing or self._clock() < self._reopen_at:
            return False
        self._probing = True
        return True

    def succeeded(self) -> bool:
        """The store answered.  Returns whether this closed an open breaker."""
        self._probing = False
        if self._current == 0.0:
            return False
        self._current = 0.0
        return True

    def failed(self) -> bool:
        """The store failed.  Returns whether this opened a closed breaker."""
        was_closed = self._current == 0.0
        if was_closed:
            self._current = self._backoff
        elif self._probing:
            self._current = min(self._current * 2, self._max)
        self._probing = False
        self._reopen_at = self._clock() + self._current
        return was_closed
