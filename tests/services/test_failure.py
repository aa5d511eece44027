"""Rule 6: a service failing while in use."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from services_helpers import EventRecorder, Lab, Supervised, settle

from async_reduce.services import (
    ServiceBroken,
    ServiceFailed,
    Services,
    ServiceStopped,
)


async def test_failed_service_is_broken_and_next_use_starts_fresh(
    lab: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    """A service failing while in use is unregistered at once and logged;
    the next use starts a fresh instance."""
    recorder = EventRecorder()
    worker = Supervised(lab, "worker")
    factory = worker.factory()
    with caplog.at_level(logging.ERROR, logger="async_reduce.services"):
        async with Services(hooks=recorder) as services:
            first = await services.acquire(factory, services)
            worker.fail()
            await lab.down("worker")
            assert not first.up
            stats = services.statistics()
            assert stats.broken == 1
            assert stats.services == ()
            worker.trigger.clear()
            second = await services.acquire(factory, services)
            assert second is not first
            assert second.up
            services.release(first)  # dropping a hold on a broken one is fine
            services.release(second)
    failed = [e for e in recorder.events if isinstance(e, ServiceFailed)]
    assert len(failed) == 1
    assert failed[0].exception is worker.error
    stops = [e for e in recorder.events if isinstance(e, ServiceStopped)]
    assert [e.reason for e in stops] == ["broken", "released"]
    assert any("worker" in r.getMessage() for r in caplog.records)


async def test_use_block_holding_a_failed_service_raises_service_broken(
    lab: Lab,
) -> None:
    """Users are told: the use block raises ServiceBroken (cause: the
    failure) when left."""
    worker = Supervised(lab, "worker")
    factory = worker.factory()

    async def hold_while_it_fails(services: Services) -> None:
        async with services.use(factory, services) as instance:
            worker.fail()
            await lab.down("worker")
            assert not instance.up

    async with Services() as services:
        with pytest.raises(ServiceBroken) as caught:
            await hold_while_it_fails(services)
        assert caught.value.__cause__ is worker.error
        assert "worker" in str(caught.value)


async def test_block_raising_its_own_error_keeps_it(lab: Lab) -> None:
    """A block already raising keeps its own error when the service broke."""
    worker = Supervised(lab, "worker")
    factory = worker.factory()

    async def hold_while_it_fails(services: Services) -> None:
        async with services.use(factory, services):
            worker.fail()
            await lab.down("worker")
            raise KeyError("own")

    async with Services() as services:
        with pytest.raises(KeyError):
            await hold_while_it_fails(services)


async def test_cancel_on_failure_interrupts_the_holder(lab: Lab) -> None:
    """With cancel_on_failure=True the holding task is cancelled at once and
    its block raises ServiceBroken instead of CancelledError."""
    worker = Supervised(lab, "worker")
    factory = worker.factory()
    reached = asyncio.Event()

    async def holder(services: Services) -> None:
        async with services.use(factory, services, cancel_on_failure=True):
            reached.set()
            await asyncio.Event().wait()  # would wait forever

    async with Services() as services:
        task = asyncio.create_task(holder(services))
        await reached.wait()
        worker.fail()
        with pytest.raises(ServiceBroken) as caught:
            await asyncio.wait_for(task, 10)
        assert caught.value.__cause__ is worker.error
        if sys.version_info >= (3, 11):
            assert task.cancelling() == 0


async def test_cancel_on_failure_lets_another_cancellation_through(
    lab: Lab,
) -> None:
    """A holder also cancelled by someone else gets CancelledError."""
    if sys.version_info < (3, 11):
        pytest.skip("telling cancellations apart needs Task.uncancel (3.11+)")
    worker = Supervised(lab, "worker")
    factory = worker.factory()
    reached = asyncio.Event()

    async def holder(services: Services) -> None:
        async with services.use(factory, services, cancel_on_failure=True):
            reached.set()
            await asyncio.Event().wait()

    async with Services() as services:
        task = asyncio.create_task(holder(services))
        await reached.wait()
        task.cancel()
        worker.fail()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_acquire_with_cancel_on_failure_cancels_the_task(lab: Lab) -> None:
    """acquire(cancel_on_failure=True): the acquiring task is cancelled."""
    worker = Supervised(lab, "worker")
    factory = worker.factory()
    reached = asyncio.Event()

    async def holder(services: Services) -> None:
        await services.acquire(factory, services, cancel_on_failure=True)
        reached.set()
        await asyncio.Event().wait()

    async with Services() as services:
        task = asyncio.create_task(holder(services))
        await reached.wait()
        worker.fail()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)


async def test_dependents_of_a_failed_service_stop_first(lab: Lab) -> None:
    """When a dependency fails, its dependents are torn down before it, and
    their users are told too; the next use starts both afresh."""
    db = Supervised(lab, "db")
    db_factory = db.factory()
    app = lab.factory("app", uses=(db_factory,))
    report = lab.factory("report", uses=(app,))

    async def hold_while_db_fails(services: Services) -> None:
        async with services.use(report, services) as instance:
            db.fail()
            await lab.down("db")
            assert not instance.up

    async with Services() as services:
        with pytest.raises(ServiceBroken) as caught:
            await hold_while_db_fails(services)
        assert caught.value.__cause__ is db.error
        assert lab.order("down") == ["report", "app", "db"]
        db.trigger.clear()
        async with services.use(report, services) as fresh:
            assert fresh.up
        assert lab.starts == {"db": 2, "app": 2, "report": 2}


async def test_failure_during_a_dependents_start_fails_that_start(lab: Lab) -> None:
    """A dependency failing while a dependent is still starting fails that
    start with ServiceBroken naming the dependency."""
    db = Supervised(lab, "db")
    db_factory = db.factory()
    gate = asyncio.Event()
    app = lab.factory("app", uses=(db_factory,), start_gate=gate)
    async with Services() as services:
        starting = asyncio.create_task(services.acquire(app, services))
        await lab.until(lambda: "db" in lab.order("up"))
        await settle()
        db.fail()
        with pytest.raises(ServiceBroken) as caught:
            await asyncio.wait_for(starting, 10)
        assert caught.value.name.endswith(":db")
        assert caught.value.__cause__ is not None
        await lab.down("db")
        assert services.statistics().services == ()


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.TaskGroup is 3.11+")
async def test_service_built_on_a_task_group_breaks_cleanly() -> None:
    """A factory whose TaskGroup child fails: the service is broken with the
    group's error as the cause, and the next use starts a fresh one."""
    trigger = asyncio.Event()
    made = []

    @asynccontextmanager
    async def ticker() -> AsyncIterator[int]:
        async def run() -> None:
            await trigger.wait()
            raise ValueError("tick failed")

        async with asyncio.TaskGroup() as group:  # type: ignore[attr-defined]
            task = group.create_task(run())
            made.append(task)
            yield len(made)
            task.cancel()

    recorder = EventRecorder()

    async def hold_while_it_fails(services: Services) -> int:
        async with services.use(ticker) as first:
            trigger.set()
            await recorder.wait_for(ServiceFailed)
        return first  # type: ignore[no-any-return]

    async with Services(hooks=recorder) as services:
        with pytest.raises(ServiceBroken) as caught:
            await hold_while_it_fails(services)
        assert len(made) == 1
        cause = caught.value.__cause__
        assert isinstance(cause, BaseExceptionGroup)  # noqa: F821 (3.11+)
        assert isinstance(cause.exceptions[0], ValueError)
        trigger.clear()
        async with services.use(ticker) as second:
            assert second == 2
