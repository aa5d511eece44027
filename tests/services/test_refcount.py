"""Rule 4: reference-counted life and linger."""

from __future__ import annotations

import asyncio

import pytest
from services_helpers import EventRecorder, Lab, settle

from async_reduce.services import Services, ServiceStopped


async def test_service_stops_when_last_use_block_ends(lab: Lab) -> None:
    """Overlapping use blocks keep the service; it stops when the last ends."""
    db = lab.factory("db")
    async with Services() as services:
        async with services.use(db, services) as one:
            async with services.use(db, services) as two:
                assert one is two
            await settle()
            assert one.up
        await lab.down("db")
        assert not one.up
        assert services.statistics().services == ()


async def test_cancelled_holder_releases_its_hold(lab: Lab) -> None:
    """A task cancelled inside its use block releases its hold."""
    db = lab.factory("db")
    entered = asyncio.Event()

    async def holder(services: Services) -> None:
        async with services.use(db, services):
            entered.set()
            await asyncio.Event().wait()

    async with Services() as services:
        task = asyncio.create_task(holder(services))
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await lab.down("db")


async def test_linger_keeps_the_service_and_a_new_use_does_not_restart(
    lab: Lab,
) -> None:
    """During linger the service stays up; a use meanwhile gets the same
    instance, and the linger starts over after its release."""
    recorder = EventRecorder()
    db = lab.factory("db")
    async with Services(hooks=recorder) as services:
        async with services.use(db, services, linger=60) as first:
            pass
        await settle()
        assert first.up
        assert services.statistics().services[0].state == "lingering"
        async with services.use(db, services) as second:
            assert second is first
            assert services.statistics().services[0].state == "running"
        assert lab.starts == {"db": 1}
        assert services.statistics().services[0].state == "lingering"
    assert lab.order("down") == ["db"]
    stopped = [e for e in recorder.events if isinstance(e, ServiceStopped)]
    assert [e.reason for e in stopped] == ["scope_exit"]


async def test_service_stops_when_linger_expires(lab: Lab) -> None:
    """With nobody using it, a lingering service stops after linger seconds."""
    recorder = EventRecorder()
    db = lab.factory("db")
    async with Services(hooks=recorder, linger=0.02) as services:
        async with services.use(db, services) as instance:
            pass
        await settle()
        assert instance.up
        await asyncio.wait_for(lab.down("db"), 10)
    stopped = [e for e in recorder.events if isinstance(e, ServiceStopped)]
    assert [e.reason for e in stopped] == ["linger_expired"]


async def test_largest_linger_asked_applies(lab: Lab) -> None:
    """The service keeps the largest linger asked by any of its uses."""
    db = lab.factory("db")
    async with Services(linger=0.5) as services:
        async with (
            services.use(db, services, linger=3),
            services.use(db, services, linger=1),
        ):
            pass
        assert services.statistics().services[0].linger == 3


async def test_use_while_stopping_starts_a_fresh_instance(lab: Lab) -> None:
    """Once a teardown began, a new use gets a new instance, never the one
    being torn down."""
    gate = asyncio.Event()
    db = lab.factory("db", stop_gate=gate)
    async with Services() as services:
        async with services.use(db, services) as first:
            pass
        await settle()
        assert services.statistics().services[0].state == "stopping"
        async with services.use(db, services) as second:
            assert second is not first
            assert second.up
        gate.set()
