"""A fleet execution whose callers all left stops even when the store's client
drops the cancellation (as ``asyncio.wait_for`` before Python 3.12 can, when
the command completes in the same loop iteration), on a real redis-server."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
import redis.asyncio

from async_reduce.contrib.redis_fleet import RedisCoordinator
from async_reduce.fleet import Claim, Coordinator, FleetReducer, Session

T = TypeVar("T")

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="a dropped cancellation shows from 3.11 on"
)


async def _dropping(aw: Coroutine[Any, Any, T], started: asyncio.Event) -> T:
    """Await ``aw``; if cancelled meanwhile, return its result anyway."""
    inner = asyncio.ensure_future(aw)
    started.set()
    try:
        return await asyncio.shield(inner)
    except asyncio.CancelledError:
        return await inner


class DroppingSession(Session):
    """A session whose claim and renew drop a cancellation."""

    def __init__(self, inner: Session, owner: DroppingCoordinator) -> None:
        self.inner = inner
        self.owner = owner

    async def claim(
        self, token: str, lease: float, share_for: float, accept: frozenset[str]
    ) -> Claim:
        call = self.inner.claim(token, lease, share_for, accept)
        return await _dropping(call, self.owner.claiming)

    async def wait(self, timeout: float) -> bytes | None:
        return await self.inner.wait(timeout)

    async def renew(self, token: str, lease: float) -> bool:
        call = self.inner.renew(token, lease)
        return await _dropping(call, self.owner.renewing)

    async def finish(self, token: str, message: bytes, keep: float) -> bool:
        return await self.inner.finish(token, message, keep)

    async def release(self, token: str, message: bytes) -> bool:
        try:
            return await self.inner.release(token, message)
        finally:
            self.owner.released.set()

    def close(self) -> None:
        self.inner.close()


class DroppingCoordinator(Coordinator):
    """The Redis coordinator, behind a client that drops cancellations."""

    def __init__(self, inner: RedisCoordinator) -> None:
        self.inner = inner
        self.claiming = asyncio.Event()
        self.renewing = asyncio.Event()
        self.released = asyncio.Event()

    async def session(self, digest: str) -> Session:
        return DroppingSession(await self.inner.session(digest), self)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _fleet(server: Any, lease: float) -> tuple[FleetReducer, Any]:
    client = redis.asyncio.Redis(host=server.host, port=server.port)
    coordinator = DroppingCoordinator(RedisCoordinator(client))
    return FleetReducer(coordinator, "dropped", lease=lease), client


async def test_cancelled_while_claiming_never_runs_the_work(redis_server: Any) -> None:
    """The only caller cancelled while the claim runs: the work never starts,
    the lease is freed and aclose() returns."""
    fleet, client = await _fleet(redis_server, lease=5.0)
    started = asyncio.Event()

    async def work() -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    try:
        call = asyncio.ensure_future(fleet(work(), ident="k"))
        coordinator: Any = fleet.coordinator
        await asyncio.wait_for(coordinator.claiming.wait(), 20)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await asyncio.wait_for(coordinator.released.wait(), 20)  # a hang guard only
        assert not started.is_set()
        assert len(fleet) == 0
        assert await client.keys("async_reduce:*:lock") == []
        await asyncio.wait_for(fleet.aclose(), 20)  # a hang guard only
    finally:
        await client.aclose()


async def test_renewal_stops_when_the_work_ends(redis_server: Any) -> None:
    """The work ends while a renewal runs that drops its cancellation: the
    renewal stops anyway, so aclose() returns."""
    fleet, client = await _fleet(redis_server, lease=0.3)
    release = asyncio.Event()

    async def work() -> str:
        await release.wait()
        return "done"

    try:
        call = asyncio.ensure_future(fleet(work(), ident="k"))
        coordinator: Any = fleet.coordinator
        await asyncio.wait_for(coordinator.renewing.wait(), 20)
        release.set()
        assert await asyncio.wait_for(call, 20) == "done"
        await asyncio.wait_for(fleet.aclose(), 20)  # a hang guard only
    finally:
        await client.aclose()
