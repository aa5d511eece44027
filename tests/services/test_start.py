"""Rule 3: started once; failing, cancelled and abandoned starts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from services_helpers import EventRecorder, Lab, settle

from async_reduce import AsyncReducer
from async_reduce.hooks import StatisticsOverallHooks
from async_reduce.services import Services, ServiceStartFailed, ServiceStopped


async def test_concurrent_first_users_share_one_start(lab: Lab) -> None:
    """Many users asking at once wait on one start and get one instance."""
    gate = asyncio.Event()
    db = lab.factory("db", start_gate=gate)
    async with Services() as services:
        tasks = [asyncio.create_task(services.acquire(db, services)) for _ in range(20)]
        await settle()
        assert lab.order("starting") == ["db"]
        gate.set()
        instances = await asyncio.gather(*tasks)
        assert all(instance is instances[0] for instance in instances)
        assert lab.starts == {"db": 1}
        assert services.statistics().services[0].users == 20


async def test_start_is_coalesced_through_the_reducer(lab: Lab) -> None:
    """The start goes through the scope's reducer: its hooks see one
    execution and the joining callers."""
    hooks = StatisticsOverallHooks()
    gate = asyncio.Event()
    db = lab.factory("db", start_gate=gate)
    async with Services(reducer=AsyncReducer(hooks=hooks)) as services:
        tasks = [asyncio.create_task(services.acquire(db, services)) for _ in range(5)]
        await settle()
        gate.set()
        await asyncio.gather(*tasks)
        # later users take the running instance without the reducer
        await services.acquire(db, services)
    assert (hooks.started, hooks.reduced, hooks.total) == (1, 4, 5)


async def test_failing_start_reaches_every_waiter_as_itself(lab: Lab) -> None:
    """Every user waiting on a failing start gets the factory's exception
    (a copy of its own); nothing stays registered; the next use starts again."""
    error = ConnectionRefusedError("db down")
    gate = asyncio.Event()
    db = lab.factory("db", start_gate=gate, start_error=error)
    async with Services() as services:
        tasks = [asyncio.create_task(services.acquire(db, services)) for _ in range(3)]
        await settle()
        gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        # The reducer hands each waiter a copy of its own: same type and args.
        assert all(type(result) is ConnectionRefusedError for result in results)
        assert all(result.args == error.args for result in results)
        stats = services.statistics()
        assert stats.services == ()
        assert stats.start_failures == 1
        assert lab.order("starting") == ["db"]

        good = lab.factory("db2")
        await services.acquire(good, services)
        with pytest.raises(ConnectionRefusedError):
            await services.acquire(db, services)
        assert lab.order("starting") == ["db", "db2", "db"]


async def test_next_use_after_a_failed_start_retries() -> None:
    """A start that failed once is tried again by the next use and can succeed."""
    attempts = []

    @asynccontextmanager
    async def flaky() -> AsyncIterator[int]:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("first attempt fails")
        yield len(attempts)

    async with Services() as services:
        with pytest.raises(OSError, match="first attempt"):
            await services.acquire(flaky)
        assert await services.acquire(flaky) == 2


async def test_cancelled_waiter_leaves_and_the_start_goes_on(lab: Lab) -> None:
    """A user cancelled while waiting leaves; the others still get the service."""
    gate = asyncio.Event()
    db = lab.factory("db", start_gate=gate)
    async with Services() as services:
        leaving = asyncio.create_task(services.acquire(db, services))
        staying = asyncio.create_task(services.acquire(db, services))
        await settle()
        leaving.cancel()
        await settle()
        assert leaving.cancelled()
        gate.set()
        instance = await staying
        assert instance.up
        assert lab.starts == {"db": 1}
        assert services.statistics().services[0].users == 1


async def test_start_is_cancelled_when_nobody_waits(lab: Lab) -> None:
    """When every waiting user left, the start is cancelled (the factory sees
    CancelledError), nothing stays registered, the next use starts again."""
    recorder = EventRecorder()
    gate = asyncio.Event()
    db = lab.factory("db", start_gate=gate)
    async with Services(hooks=recorder) as services:
        users = [asyncio.create_task(services.acquire(db, services)) for _ in range(3)]
        await settle()
        for user in users:
            user.cancel()
        await settle()
        assert lab.order("start failed") == ["db"]
        assert services.statistics().services == ()
        failed = [e for e in recorder.events if isinstance(e, ServiceStartFailed)]
        assert len(failed) == 1
        assert isinstance(failed[0].exception, asyncio.CancelledError)
        gate.set()
        instance = await services.acquire(db, services)
        assert instance.up
        assert lab.starts == {"db": 1}


async def test_waiter_with_a_timeout_leaves_like_a_cancelled_one(lab: Lab) -> None:
    """A user giving up through asyncio.wait_for leaves; the start goes on
    for the others."""
    gate = asyncio.Event()
    db = lab.factory("db", start_gate=gate)
    async with Services() as services:
        staying = asyncio.create_task(services.acquire(db, services))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(services.acquire(db, services), 0.01)
        gate.set()
        assert (await staying).up
        assert services.statistics().services[0].users == 1


async def test_scope_exit_aborts_starts_in_progress(lab: Lab) -> None:
    """Users waiting for a start when the scope exits get ServicesClosed."""
    from async_reduce.services import ServicesClosed

    db = lab.factory("db", start_gate=asyncio.Event())
    services = Services()
    async with services:
        waiter = asyncio.create_task(services.acquire(db, services))
        await settle()
    with pytest.raises(ServicesClosed):
        await waiter
    assert lab.order("start failed") == ["db"]
    assert services.statistics().services == ()


async def test_reducer_timeout_bounds_the_wait_for_a_start(lab: Lab) -> None:
    """With a reducer timeout, a user waiting longer for a start gets
    TimeoutError; with nobody left waiting the start is cancelled, and the
    next use starts again."""
    gate = asyncio.Event()
    db = lab.factory("db", start_gate=gate)
    async with Services(reducer=AsyncReducer(timeout=0.2)) as services:
        with pytest.raises(TimeoutError):
            await services.acquire(db, services)
        await lab.until(lambda: lab.order("start failed") == ["db"])
        gate.set()
        assert (await services.acquire(db, services)).up


async def test_start_nobody_waits_for_finishes_with_orphans_finish(lab: Lab) -> None:
    """With a reducer keeping orphans, an abandoned start completes and the
    unused service is then stopped (nothing stays up without a user)."""
    recorder = EventRecorder()
    gate = asyncio.Event()
    db = lab.factory("db", start_gate=gate)
    reducer = AsyncReducer(hooks=recorder, orphans="finish")
    async with Services(reducer=reducer) as services:
        user = asyncio.create_task(services.acquire(db, services))
        await settle()
        user.cancel()
        await settle()
        gate.set()
        await lab.down("db")
        assert services.statistics().services == ()
    stopped = [e for e in recorder.events if isinstance(e, ServiceStopped)]
    assert [e.reason for e in stopped] == ["released"]


async def test_running_service_is_handed_out_without_suspending(lab: Lab) -> None:
    """Later users get the running instance at once: acquire() and entering
    use() complete without yielding to the event loop."""
    db = lab.factory("db")
    async with Services() as services:
        first = await services.acquire(db, services)
        call = services.acquire(db, services)
        with pytest.raises(StopIteration) as done:
            call.send(None)
        assert done.value.value is first
        enter = services.use(db, services).__aenter__()
        with pytest.raises(StopIteration) as entered:
            enter.send(None)
        assert entered.value.value is first


async def test_abandoned_start_cancels_the_starts_it_waits_for(lab: Lab) -> None:
    """When the only user of A leaves while A's start waits for B's start
    (used by nobody else), both starts are cancelled; nothing stays."""
    gate = asyncio.Event()
    db = lab.factory("db", start_gate=gate)
    app = lab.factory("app", uses=(db,))
    async with Services() as services:
        user = asyncio.create_task(services.acquire(app, services))
        await lab.until(lambda: "db" in lab.order("starting"))
        await settle()
        user.cancel()
        await lab.until(lambda: len(lab.order("start failed")) == 2)
        assert sorted(lab.order("start failed")) == ["app", "db"]
        assert services.statistics().services == ()
        assert lab.starts == {}


async def test_shared_dependency_start_goes_on_for_its_other_user(lab: Lab) -> None:
    """When A's start is abandoned, the start of B that A waited for goes on
    if another user waits for B too."""
    gate = asyncio.Event()
    db = lab.factory("db", start_gate=gate)
    app = lab.factory("app", uses=(db,))
    async with Services() as services:
        app_user = asyncio.create_task(services.acquire(app, services))
        db_user = asyncio.create_task(services.acquire(db, services))
        await lab.until(lambda: "db" in lab.order("starting"))
        await settle()
        app_user.cancel()
        await lab.until(lambda: "app" in lab.order("start failed"))
        gate.set()
        assert (await db_user).up
        assert lab.order("start failed") == ["app"]


@pytest.mark.parametrize("cancel_first", [True, False])
async def test_start_completing_as_its_last_waiter_leaves(cancel_first: bool) -> None:
    """A start whose only waiter leaves in the very step its setup completes
    is torn down once and never left running; the next use starts afresh."""
    setup_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    log: list[str] = []

    @asynccontextmanager
    async def service() -> AsyncIterator[int]:
        log.append("enter")
        await setup_done
        log.append("entered")
        try:
            yield len(log)
        finally:
            log.append("exit")

    async with Services() as services:
        user = asyncio.create_task(services.acquire(service))
        await settle()
        if cancel_first:
            user.cancel()
            setup_done.set_result(None)
        else:
            setup_done.set_result(None)
            user.cancel()
        await settle(30)
        assert user.cancelled() or user.done()
        assert services.statistics().services == ()
        assert log.count("exit") == log.count("entered")
        setup_done = asyncio.get_running_loop().create_future()
        setup_done.set_result(None)
        assert await services.acquire(service) > 0
