"""Helpers of the worker pool tests."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from async_reduce.hooks import BaseHooks

HANG_GUARD = 30.0  # seconds: only reached when a test is broken


class Gate:
    """A blocking function: each call records its tag and waits for release.

    ``await wait_started(n)`` returns once ``n`` calls have started, without
    sleeping: the worker thread wakes the loop.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.lock = threading.Lock()
        self.started: list[Any] = []
        self.finished: list[Any] = []
        self.release = threading.Event()
        self.running = 0
        self.max_running = 0
        self._waiters: list[asyncio.Future[None]] = []

    def __call__(self, tag: Any = None, *, fail: bool = False) -> Any:
        with self.lock:
            self.started.append(tag)
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        self.loop.call_soon_threadsafe(self._wake)
        try:
            if not self.release.wait(HANG_GUARD):
                raise RuntimeError("gate never released")
            if fail:
                raise ValueError(tag)
            return tag
        finally:
            with self.lock:
                self.running -= 1
                self.finished.append(tag)
            self.loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)

    async def wait_for(self, predicate: Any) -> None:
        """Wait until ``predicate()`` holds (checked when a call starts or ends)."""
        await asyncio.wait_for(self._until(predicate), HANG_GUARD)

    async def _until(self, predicate: Any) -> None:
        while not predicate():
            future = self.loop.create_future()
            self._waiters.append(future)
            await future

    async def wait_started(self, n: int) -> None:
        await self.wait_for(lambda: len(self.started) >= n)

    async def wait_finished(self, n: int) -> None:
        await self.wait_for(lambda: len(self.finished) >= n)

    def release_all(self) -> None:
        self.release.set()


class EventRecorder(BaseHooks):
    """Records worker events; ``await wait(pred)`` waits for one matching."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self._changed: asyncio.Event | None = None

    def on_worker_event(self, event: Any) -> None:
        self.events.append(event)
        if self._changed is not None:
            self._changed.set()

    async def wait(self, predicate: Any) -> None:
        await asyncio.wait_for(self._until(predicate), HANG_GUARD)

    async def _until(self, predicate: Any) -> None:
        while not predicate(self.events):
            self._changed = asyncio.Event()
            await self._changed.wait()


def thread_names(prefix: str) -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(prefix + "-")]


async def until(predicate: Any) -> None:
    """Yield until ``predicate()`` holds: a state other tasks of this loop
    (or worker threads) reach on their own, with no event to wait on.  The
    short sleep only hands the loop over; nothing relies on its length."""

    async def poll() -> None:
        while not predicate():  # noqa: ASYNC110 - see the docstring
            await asyncio.sleep(0.001)

    await asyncio.wait_for(poll(), HANG_GUARD)
