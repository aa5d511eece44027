"""Helpers shared by the reducer tests."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest


class Gate:
    """Work that blocks until released, counting how often it started."""

    def __init__(self) -> None:
        self.started = 0
        self.running = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled = 0

    async def work(self, value: Any = None) -> Any:
        self.started += 1
        self.running.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return value


@pytest.fixture
def gate() -> Gate:
    return Gate()


async def settle() -> None:
    """Let every ready callback run (a few loop iterations, no wall clock)."""
    for _ in range(5):
        await asyncio.sleep(0)


def capture_loop_errors() -> list[dict[str, Any]]:
    """Record what the running loop's exception handler receives."""
    seen: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(
        lambda _loop, context: seen.append(context)
    )
    return seen
