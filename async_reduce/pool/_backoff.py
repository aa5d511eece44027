"""Throttling of connection attempts while the backend is failing."""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """Capped exponential backoff with jitter between failed attempts.

    Failures that happen together (several connection attempts started before
    the first one failed) count as one round, so a burst of simultaneous
    failures does not jump straight to the cap.
    """

    __slots__ = ("active", "initial", "last_error", "maximum", "next_at", "rounds")

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum
        self.rounds = 0
        self.next_at = 0.0
        self.last_error: BaseException | None = None
        # True from a failed attempt until the next successful one.
        self.active = False

    def failed(self, now: float, error: BaseException) -> None:
        """Record a failed attempt at time ``now``."""
        self.last_error = error
        self.active = True
        if self.rounds and now < self.next_at:
            return
        self.rounds += 1
        delay = min(self.maximum, self.initial * 2 ** min(self.rounds - 1, 60))
        # Equal jitter: many processes hitting the same backend drift apart.
        self.next_at = now + delay * (0.5 + random.random() / 2)

    def succeeded(self) -> None:
        """Record a successful attempt: the outage is over."""
        self.rounds = 0
        self.next_at = 0.0
        self.last_error = None
        self.active = False

    def delay(self, now: float) -> float:
        """Seconds to wait before the next attempt may start."""
        return max(0.0, self.next_at - now) if self.rounds else 0.0
