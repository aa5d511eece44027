"""An event loop on a virtual clock, for tests that replay examples.

Hypothesis replays a failing example to shrink it; the example must then run
the same way however loaded the machine is.  On this loop no real time
passes: when nothing is ready to run and the loop would wait for its next
timer, the clock jumps to that timer instead.  ``asyncio.sleep(0.002)`` and a
caller's ``timeout=0.001`` therefore fire in the order their deadlines say,
every time, and at once.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _JumpingSelector:
    """Wraps the loop's selector: waiting for a timer moves the clock instead."""

    def __init__(self, selector: selectors.BaseSelector, loop: VirtualClockLoop):
        self._selector = selector
        self._loop = loop

    def select(self, timeout: float | None = None) -> Any:
        ready = self._selector.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:  # no timer at all: only real I/O can wake us
            return self._selector.select(None)
        self._loop.now += timeout
        return []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._selector, name)


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose ``time()`` is virtual (see the module)."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self._selector = _JumpingSelector(self._selector, self)  # type: ignore[has-type]

    def time(self) -> float:
        return self.now


def run_virtual(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on a :class:`VirtualClockLoop`."""
    loop = VirtualClockLoop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
