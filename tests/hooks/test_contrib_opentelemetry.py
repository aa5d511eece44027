"""OpenTelemetryHooks, read back through the SDK's InMemoryMetricReader."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hooks_scenario import FETCH_LOCATION, OTHER_LOCATION, run_scenario
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from async_reduce import AsyncReducer
from async_reduce.contrib.opentelemetry import OpenTelemetryHooks
from async_reduce.hooks._buckets import SECONDS_BUCKETS


@pytest.fixture
def reader() -> Iterator[tuple[InMemoryMetricReader, MeterProvider]]:
    """An SDK meter provider whose metrics are read in memory."""
    metric_reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[metric_reader])
    yield metric_reader, provider
    provider.shutdown()


def points(metric_reader: InMemoryMetricReader) -> dict[tuple[str, str], Any]:
    """Every data point collected now, keyed by instrument name and location."""
    data = metric_reader.get_metrics_data()
    found: dict[tuple[str, str], Any] = {}
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    assert point.attributes is not None
                    found[metric.name, str(point.attributes["location"])] = point
    return found


async def test_scenario_values(
    reader: tuple[InMemoryMetricReader, MeterProvider],
) -> None:
    """After the scripted scenario every instrument holds the expected value."""
    metric_reader, provider = reader
    hooks = OpenTelemetryHooks(provider.get_meter("test"))
    await run_scenario(AsyncReducer(hooks=hooks))
    found = points(metric_reader)
    expected = {
        "async_reduce.calls": 10,
        "async_reduce.executions": 5,
        "async_reduce.joins": 5,
        "async_reduce.errors": 1,
        "async_reduce.cancellations": 3,
        "async_reduce.timeouts": 1,
        "async_reduce.abandoned": 2,
        "async_reduce.in_flight": 0,
    }
    for name, number in expected.items():
        assert found[name, FETCH_LOCATION].value == number, name
    duration = found["async_reduce.execution.duration", FETCH_LOCATION]
    assert duration.count == 3
    assert tuple(duration.explicit_bounds) == SECONDS_BUCKETS
    callers = found["async_reduce.execution.callers", FETCH_LOCATION]
    assert (callers.count, callers.sum, callers.min, callers.max) == (5, 10, 1, 3)
    assert found["async_reduce.calls", OTHER_LOCATION].value == 2
    assert found["async_reduce.execution.duration", OTHER_LOCATION].count == 2


def test_bounded_attribute_values(
    reader: tuple[InMemoryMetricReader, MeterProvider],
) -> None:
    """At most max_locations attribute values, the rest under ``<other>``."""
    metric_reader, provider = reader
    hooks = OpenTelemetryHooks(provider.get_meter("test"), max_locations=1)
    for index in range(4):
        namespace: dict[str, Any] = {}
        exec(f"async def fn{index}():\n    pass", namespace)
        coro = namespace[f"fn{index}"]()
        coro.close()
        hooks.on_apply_for(coro, "i")
    calls = {
        location: point.value
        for (name, location), point in points(metric_reader).items()
        if name == "async_reduce.calls"
    }
    assert len(calls) == 2
    assert calls["<other>"] == 3


_LATE_PROVIDER = """
import asyncio
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from async_reduce import AsyncReducer
from async_reduce.contrib.opentelemetry import OpenTelemetryHooks

async def fetch(x):
    await asyncio.sleep(0)
    return x

async def calls(x):
    reducer = AsyncReducer(hooks=hooks)
    return await asyncio.gather(reducer(fetch(x)), reducer(fetch(x)))

hooks = OpenTelemetryHooks()  # no MeterProvider configured yet
assert asyncio.run(calls(1)) == [1, 1]
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
assert asyncio.run(calls(2)) == [2, 2]
data = reader.get_metrics_data()
for resource in data.resource_metrics:
    for scope in resource.scope_metrics:
        for metric in scope.metrics:
            for point in metric.data.data_points:
                if metric.name in ("async_reduce.calls", "async_reduce.joins"):
                    print(metric.name, point.value)
"""


def test_default_meter_follows_a_provider_set_later() -> None:
    """Without a meter, hooks work with no SDK and report once a provider is set."""
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", _LATE_PROVIDER],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    # Counted since the hooks were made, before the provider existed.
    assert sorted(done.stdout.split("\n")) == [
        "",
        "async_reduce.calls 4",
        "async_reduce.joins 2",
    ]


async def _nothing() -> None:
    """A coroutine function for direct hook calls."""


def _closed() -> Any:
    coro = _nothing()
    coro.close()
    return coro


def test_bad_max_locations() -> None:
    """A negative max_locations raises ValueError naming it."""
    with pytest.raises(ValueError, match="max_locations"):
        OpenTelemetryHooks(max_locations=-1)


def test_missing_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without opentelemetry-api the import error says which extra to install."""
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.delitem(sys.modules, "async_reduce.contrib.opentelemetry")
    with pytest.raises(ImportError, match=r"pip install 'async-reduce\[otel\]'"):
        importlib.import_module("async_reduce.contrib.opentelemetry")
