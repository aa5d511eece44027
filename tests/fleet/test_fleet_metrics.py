"""Fleet events reach StatisticsOverallHooks and the metric exporters."""

from __future__ import annotations

import asyncio
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry

from async_reduce.contrib.opentelemetry import OpenTelemetryHooks
from async_reduce.contrib.prometheus import PrometheusHooks
from async_reduce.hooks import StatisticsOverallHooks
from tests.fleet.conftest import Events


async def work(gate: str) -> str:
    await GATES[gate].wait()
    return "done"


GATES: dict[str, asyncio.Event] = {}


class _Nowhere:
    host, port = "127.0.0.1", 1


async def test_events_counted_everywhere(redis_server: Any, make_fleet: Any) -> None:
    """Leader, remote join and fallback events are counted by the statistics
    hooks, Prometheus and OpenTelemetry; no key or argument is a label."""
    stats = StatisticsOverallHooks()
    registry = CollectorRegistry()
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    hooks = (
        stats
        & PrometheusHooks(registry)
        & OpenTelemetryHooks(provider.get_meter("test"))
    )
    leader_events, follower_events = Events(), Events()
    a = make_fleet(redis_server, "metrics", hooks=hooks & leader_events)
    b = make_fleet(redis_server, "metrics", hooks=hooks & follower_events)
    GATES["m"] = asyncio.Event()
    first = asyncio.ensure_future(a(work("m")))
    await leader_events.wait_for("leader")
    second = asyncio.ensure_future(b(work("m")))
    await follower_events.wait_for("remote_join")
    GATES["m"].set()
    assert await first == await second == "done"
    down = make_fleet(_Nowhere(), "metrics", hooks=hooks, redis_timeout=0.2)
    assert await down(work("m")) == "done"

    fleet = stats.snapshot().fleet
    assert fleet["leader"] == 1
    assert fleet["remote_join"] == 1
    assert fleet["fallback"] == 1
    assert fleet["breaker_opened"] == 1

    def sample(kind: str, reason: str = "") -> float | None:
        return registry.get_sample_value(
            "async_reduce_fleet_events_total",
            {"fleet": "metrics", "kind": kind, "reason": reason},
        )

    assert sample("leader") == 1
    assert sample("remote_join") == 1
    assert sample("fallback", "unavailable") == 1
    data = reader.get_metrics_data()
    assert data is not None
    points = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == "async_reduce.fleet.events":
                    for point in metric.data.data_points:
                        attributes = dict(point.attributes or {})
                        points[attributes["kind"], attributes["reason"]] = point.value
                        assert set(attributes) == {"fleet", "kind", "reason"}
    provider.shutdown()
    assert points["leader", ""] == 1
    assert points["fallback", "unavailable"] == 1
    stats.reset()
    assert dict(stats.snapshot().fleet) == {}
