"""Rule 8: statistics() snapshots and service events reaching hooks."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import pytest
from services_helpers import EventRecorder, Lab, Supervised, settle

from async_reduce import AsyncReducer
from async_reduce.hooks import BaseHooks, StatisticsOverallHooks
from async_reduce.services import (
    ServiceFailed,
    ServiceLingering,
    Services,
    ServiceStarted,
    ServiceStartFailed,
    ServiceStopped,
)


def states(services: Services) -> dict[str, str]:
    return {s.name.rsplit(":", 1)[-1]: s.state for s in services.statistics().services}


async def test_statistics_show_every_state(lab: Lab) -> None:
    """starting, running, lingering, stopping and broken are reported."""
    start_gate, stop_gate = asyncio.Event(), asyncio.Event()
    slow_start = lab.factory("slow_start", start_gate=start_gate)
    slow_stop = lab.factory("slow_stop", stop_gate=stop_gate)
    lingerer = lab.factory("lingerer")
    worker = Supervised(lab, "worker")
    breaking = worker.factory(uses=(slow_stop,))
    async with Services() as services:
        starting = asyncio.create_task(services.acquire(slow_start, services))
        await services.acquire(lingerer, services, linger=60)
        services.release(await services.acquire(lingerer, services))
        await services.acquire(breaking, services)
        await settle()
        assert states(services) == {
            "slow_start": "starting",
            "lingerer": "running",
            "slow_stop": "running",
            "worker": "running",
        }
        held = await services.acquire(lingerer, services)
        services.release(held)
        services.release(held)  # acquired twice above, both released now
        worker.fail()
        await lab.down("worker")
        await settle()
        seen = states(services)
        assert seen["lingerer"] == "lingering"
        # slow_stop was torn down after the worker it kept: stopping now.
        assert seen["slow_stop"] == "stopping"
        stop_gate.set()
        start_gate.set()
        await starting


async def test_statistics_snapshot_is_frozen_and_complete(lab: Lab) -> None:
    """The snapshot is a frozen dataclass with users, dependencies,
    dependents, linger and durations; stopped services keep their stop time."""
    db = lab.factory("db")
    app = lab.factory("app", uses=(db,))
    async with Services(linger=0) as services:
        await services.acquire(app, services)
        await services.acquire(app, services)
        stats = services.statistics()
        with pytest.raises(dataclasses.FrozenInstanceError):
            stats.started = 5  # type: ignore[misc]
        by_name = {s.name.rsplit(":", 1)[-1]: s for s in stats.services}
        assert by_name["app"].users == 2
        assert by_name["app"].dependencies == (by_name["db"].name,)
        assert by_name["db"].dependents == (by_name["app"].name,)
        assert by_name["db"].users == 1  # the app's own acquire()
        assert all(s.start_duration is not None for s in stats.services)
        assert all(s.stop_duration is None for s in stats.services)
        assert stats.state == "open"
        assert stats.started == 2
    stats = services.statistics()
    assert stats.state == "closed"
    assert stats.stopped == 2
    assert [s.name.rsplit(":", 1)[-1] for s in stats.recently_stopped] == [
        "app",
        "db",
    ]
    assert all(s.stop_duration is not None for s in stats.recently_stopped)
    assert all(s.stop_reason == "scope_exit" for s in stats.recently_stopped)


async def test_events_tell_the_life_of_a_service(lab: Lab) -> None:
    """Started, lingering, stopped (with reasons), failed starts and failures
    reach on_service_event, in order."""
    recorder = EventRecorder()
    db = lab.factory("db")
    bad = lab.factory("bad", start_error=OSError("refused"))
    worker = Supervised(lab, "worker")
    async with Services(hooks=recorder) as services:
        async with services.use(db, services, linger=60):
            pass
        with pytest.raises(OSError, match="refused"):
            await services.acquire(bad, services)
        await services.acquire(worker.factory(), services)
        worker.fail()
        await lab.down("worker")
    kinds = [(type(e).__name__, e.name.rsplit(":", 1)[-1]) for e in recorder.events]
    assert kinds == [
        ("ServiceStarted", "db"),
        ("ServiceLingering", "db"),
        ("ServiceStartFailed", "bad"),
        ("ServiceStarted", "worker"),
        ("ServiceFailed", "worker"),
        ("ServiceStopped", "worker"),
        ("ServiceStopped", "db"),
    ]
    stopped = [e for e in recorder.events if isinstance(e, ServiceStopped)]
    assert [e.reason for e in stopped] == ["broken", "scope_exit"]
    assert all(e.scope is services for e in recorder.events)
    assert [e.kind for e in recorder.events] == [
        "started",
        "lingering",
        "start_failed",
        "started",
        "failed",
        "stopped",
        "stopped",
    ]
    for event in recorder.events:
        assert dataclasses.is_dataclass(event)
        with pytest.raises(dataclasses.FrozenInstanceError):
            event.name = "x"  # type: ignore[misc]
    assert isinstance(recorder.events[0], ServiceStarted)
    assert isinstance(recorder.events[1], ServiceLingering)
    assert isinstance(recorder.events[2], ServiceStartFailed)
    assert isinstance(recorder.events[4], ServiceFailed)


async def test_events_never_carry_argument_values() -> None:
    """A secret passed to the factory appears in no event and no statistic."""
    secret = "postgres://admin:hunter2@db/app"
    recorder = EventRecorder()

    @asynccontextmanager
    async def database(dsn: str) -> AsyncIterator[str]:
        yield "connection"

    async with (
        Services(hooks=recorder) as services,
        services.use(database, secret),
    ):
        assert "hunter2" not in repr(services.statistics())
    assert recorder.events
    for event in recorder.events:
        assert "hunter2" not in repr(event)


async def test_statistics_overall_hooks_count_service_events(lab: Lab) -> None:
    """StatisticsOverallHooks counts starts, failures and stops by reason."""
    hooks = StatisticsOverallHooks()
    db = lab.factory("db")
    bad = lab.factory("bad", start_error=OSError("refused"))
    worker = Supervised(lab, "worker")
    async with Services(reducer=AsyncReducer(hooks=hooks)) as services:
        async with services.use(db, services):
            pass
        with pytest.raises(OSError, match="refused"):
            await services.acquire(bad, services)
        await services.acquire(worker.factory(), services)
        worker.fail()
        await lab.down("worker")
        await services.acquire(db, services)
    figures = hooks.snapshot().services
    assert figures.started == 3
    assert figures.start_failures == 1
    assert figures.broken == 1
    assert figures.stopped == 3
    assert dict(figures.stopped_by_reason) == {
        "released": 1,
        "broken": 1,
        "scope_exit": 1,
    }
    assert figures.start_time is not None
    assert figures.start_time.count == 3


async def test_raising_hook_never_affects_services(
    lab: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    """A hook raising in on_service_event is logged; services work on."""

    class Raising(BaseHooks):
        def on_service_event(self, event: Any) -> None:
            raise RuntimeError("hook bug")

    db = lab.factory("db")
    with caplog.at_level(logging.ERROR, logger="async_reduce"):
        async with (
            Services(hooks=Raising()) as services,
            services.use(db, services) as instance,
        ):
            assert instance.up
    assert lab.order("down") == ["db"]
    assert any("on_service_event" in r.getMessage() for r in caplog.records)


async def test_combined_and_legacy_hooks(lab: Lab) -> None:
    """MultipleHooks passes service events to each member; a 1.x-style hooks
    object without on_service_event is accepted and ignored."""

    class Legacy:
        def on_apply_for(self, coro: Coroutine[Any, Any, Any], ident: Any) -> None:
            pass

        on_executing_for = on_reducing_for = on_apply_for

        def on_result_for(self, coro: Any, ident: Any, result: Any) -> None:
            pass

        def on_exception_for(self, coro: Any, ident: Any, exc: Any) -> None:
            pass

    one, two = EventRecorder(), EventRecorder()
    db = lab.factory("db")
    async with Services(hooks=one & two) as services:
        await services.acquire(db, services)
    assert one.kinds() == two.kinds()
    assert len(one.events) == 2
    async with Services(hooks=Legacy()) as services:
        await services.acquire(db, services)
    assert lab.starts == {"db": 2}


async def test_prometheus_hooks_export_service_events(lab: Lab) -> None:
    """PrometheusHooks count service events by service, kind and stop reason,
    with start times, in a real prometheus_client registry; service names
    beyond max_locations go under <other>."""
    from prometheus_client import CollectorRegistry

    from async_reduce.contrib.prometheus import PrometheusHooks

    registry = CollectorRegistry()
    hooks = PrometheusHooks(registry=registry, namespace="svc", max_locations=2)
    db = lab.factory("db")
    bad = lab.factory("bad", start_error=OSError("refused"))
    extra = lab.factory("extra")
    async with Services(hooks=hooks) as services:
        async with services.use(db, services):
            pass
        with pytest.raises(OSError, match="refused"):
            await services.acquire(bad, services)
        await services.acquire(extra, services)

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    db_name = "services_helpers:db"
    assert (
        sample("svc_service_events_total", service=db_name, kind="started", reason="")
        == 1
    )
    assert (
        sample(
            "svc_service_events_total",
            service=db_name,
            kind="stopped",
            reason="released",
        )
        == 1
    )
    assert (
        sample(
            "svc_service_events_total",
            service="services_helpers:bad",
            kind="start_failed",
            reason="",
        )
        == 1
    )
    assert (
        sample(
            "svc_service_events_total",
            service="<other>",
            kind="stopped",
            reason="scope_exit",
        )
        == 1
    )
    assert sample("svc_service_start_seconds_count", service=db_name) == 1


async def test_opentelemetry_hooks_export_service_events(lab: Lab) -> None:
    """OpenTelemetryHooks count service events by service, kind and stop
    reason and record start durations, read back through the real SDK."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from async_reduce.contrib.opentelemetry import OpenTelemetryHooks

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        hooks = OpenTelemetryHooks(provider.get_meter("test"))
        db = lab.factory("db")
        async with Services(hooks=hooks) as services:
            async with services.use(db, services):
                pass
            await services.acquire(db, services)
        data = reader.get_metrics_data()
    finally:
        provider.shutdown()
    found: dict[str, list[Any]] = {}
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    events = {
        (p.attributes["kind"], p.attributes["reason"]): p.value
        for p in found["async_reduce.service.events"]
        if p.attributes["service"] == "services_helpers:db"
    }
    assert events == {
        ("started", ""): 2,
        ("stopped", "released"): 1,
        ("stopped", "scope_exit"): 1,
    }
    (starts,) = found["async_reduce.service.start_duration"]
    assert starts.count == 2
