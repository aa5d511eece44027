"""PrometheusHooks, checked by scraping a real CollectorRegistry."""

from __future__ import annotations

import importlib
import math
import os
import subprocess
import sys
from typing import Any

import pytest
from hooks_scenario import FETCH_LOCATION, OTHER_LOCATION, run_scenario
from prometheus_client import REGISTRY, CollectorRegistry, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from async_reduce import AsyncReducer
from async_reduce._events import ExecutionFinished
from async_reduce.contrib.prometheus import PrometheusHooks


def scrape(
    registry: CollectorRegistry,
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the registry's text exposition, keyed by name and labels."""
    text = generate_latest(registry).decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, location: str, **labels: str) -> float:
    """The sample ``name`` for ``location`` (and extra labels)."""
    key = tuple(sorted({"location": location, **labels}.items()))
    return samples[name, key]


async def test_scenario_values() -> None:
    """After the scripted scenario every series has the expected value."""
    registry = CollectorRegistry()
    await run_scenario(AsyncReducer(hooks=PrometheusHooks(registry)))
    samples = scrape(registry)
    expected = {
        "async_reduce_calls_total": 10,
        "async_reduce_executions_total": 5,
        "async_reduce_joins_total": 5,
        "async_reduce_errors_total": 1,  # bad; cancelled executions are not errors
        "async_reduce_cancellations_total": 3,
        "async_reduce_timeouts_total": 1,
        "async_reduce_abandoned_total": 2,
        "async_reduce_in_flight": 0,
        "async_reduce_execution_seconds_count": 3,  # a, bad, c
        "async_reduce_execution_callers_count": 5,
        "async_reduce_execution_callers_sum": 10,
    }
    for name, number in expected.items():
        assert value(samples, name, FETCH_LOCATION) == number, name
    # Callers per execution: d served 1; bad, c, e served 2; a served 3.
    callers = "async_reduce_execution_callers_bucket"
    assert value(samples, callers, FETCH_LOCATION, le="1.0") == 1
    assert value(samples, callers, FETCH_LOCATION, le="2.0") == 4
    assert value(samples, callers, FETCH_LOCATION, le="3.0") == 5
    assert value(samples, "async_reduce_calls_total", OTHER_LOCATION) == 2
    assert value(samples, "async_reduce_joins_total", OTHER_LOCATION) == 0
    assert value(samples, "async_reduce_execution_seconds_count", OTHER_LOCATION) == 2


async def test_in_flight_gauge_while_running() -> None:
    """The in-flight gauge counts executions that have started and not ended."""
    import asyncio

    registry = CollectorRegistry()
    reducer = AsyncReducer(hooks=PrometheusHooks(registry))
    started, release = asyncio.Event(), asyncio.Event()

    async def gated() -> int:
        started.set()
        await release.wait()
        return 1

    task = asyncio.create_task(reducer(gated()))
    await started.wait()
    location = f"{__name__}:test_in_flight_gauge_while_running.<locals>.gated"
    assert value(scrape(registry), "async_reduce_in_flight", location) == 1
    release.set()
    assert await task == 1
    assert value(scrape(registry), "async_reduce_in_flight", location) == 0


def test_namespace_and_bounded_labels() -> None:
    """Names follow the namespace; at most max_locations labels plus ``<other>``."""
    registry = CollectorRegistry()
    hooks = PrometheusHooks(registry, namespace="svc", max_locations=2)
    for index in range(5):
        namespace: dict[str, Any] = {}
        exec(f"async def fn{index}():\n    pass", namespace)
        coro = namespace[f"fn{index}"]()
        coro.close()
        hooks.on_apply_for(coro, "i")
    samples = scrape(registry)
    locations = {
        dict(labels)["location"]
        for (name, labels) in samples
        if name == "svc_calls_total"
    }
    assert len(locations) == 3
    assert "<other>" in locations
    assert value(samples, "svc_calls_total", "<other>") == 3


def test_duplicate_registration_is_refused_atomically() -> None:
    """A name clash raises ValueError and leaves no half-registered metrics."""
    registry = CollectorRegistry()
    Gauge("svc_in_flight", "taken", registry=registry)
    with pytest.raises(ValueError, match="Share one PrometheusHooks"):
        PrometheusHooks(registry, namespace="svc")
    names = {name for name, _ in scrape(registry)}
    assert names == {"svc_in_flight"}
    PrometheusHooks(registry, namespace="other")  # another namespace is fine


def test_unregister() -> None:
    """unregister() removes every metric of the hooks from the registry."""
    registry = CollectorRegistry()
    hooks = PrometheusHooks(registry)
    hooks.unregister()
    assert generate_latest(registry) == b""
    PrometheusHooks(registry)  # the names are free again


def test_default_registry() -> None:
    """registry=None registers in prometheus_client's default REGISTRY."""
    prefix = "async_reduce_test_default"
    hooks = PrometheusHooks(namespace=prefix)
    try:
        assert hooks.registry is REGISTRY
        exposed = generate_latest(REGISTRY).decode()
        for name in ("calls_total", "in_flight", "execution_seconds"):
            assert f"# TYPE {prefix}_{name} " in exposed, name
        coro = _located()
        coro.close()
        hooks.on_apply_for(coro, "i")
        location = f"{__name__}:_located"
        assert (
            REGISTRY.get_sample_value(f"{prefix}_calls_total", {"location": location})
            == 1
        )
    finally:
        hooks.unregister()
    assert prefix not in generate_latest(REGISTRY).decode()


async def _located() -> None:
    """A coroutine function whose location the hooks report."""


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"registry": object()}, TypeError),
        ({"namespace": 3}, TypeError),
        ({"namespace": "bad name"}, ValueError),
        ({"max_locations": -1}, ValueError),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    """Wrong arguments raise at construction."""
    kwargs.setdefault("registry", CollectorRegistry())
    with pytest.raises(error):
        PrometheusHooks(**kwargs)


@pytest.mark.parametrize(
    ("buckets", "error"),
    [
        ([], ValueError),
        ([1.0, 0.5], ValueError),
        ([0.1, math.nan], ValueError),
        (["x"], TypeError),
    ],
)
def test_bad_buckets(buckets: list[Any], error: type[Exception]) -> None:
    """Histogram bounds must be finite, increasing numbers."""
    with pytest.raises(error, match="seconds_buckets"):
        PrometheusHooks(CollectorRegistry(), seconds_buckets=buckets)


def test_custom_buckets_and_trailing_inf() -> None:
    """Custom bounds are used as given; a trailing +Inf is accepted."""
    registry = CollectorRegistry()
    hooks = PrometheusHooks(registry, seconds_buckets=[0.5, 2, math.inf])
    hooks.on_execution_finished(
        ExecutionFinished(
            key="k",
            ident="k",
            location="m:f",
            outcome="result",
            duration=1.0,
            callers=1,
        )
    )
    samples = scrape(registry)
    bucket = "async_reduce_execution_seconds_bucket"
    assert value(samples, bucket, "m:f", le="0.5") == 0
    assert value(samples, bucket, "m:f", le="2.0") == 1
    assert value(samples, bucket, "m:f", le="+Inf") == 1
    assert value(samples, "async_reduce_execution_seconds_sum", "m:f") == 1.0


MULTIPROCESS_SCRIPT = """
import asyncio, sys
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from async_reduce import AsyncReducer
from async_reduce._events import ExecutionFinished
from async_reduce.contrib.prometheus import PrometheusHooks

async def work():
    await asyncio.sleep(0)
    return 1

async def main():
    reducer = AsyncReducer(hooks=PrometheusHooks(CollectorRegistry()))
    await asyncio.gather(*(reducer(work()) for _ in range(3)))

asyncio.run(main())
scraped = CollectorRegistry()
multiprocess.MultiProcessCollector(scraped)
sys.stdout.write(generate_latest(scraped).decode())
"""


def test_multiprocess_mode(tmp_path: Any) -> None:
    """In prometheus_client's multiprocess mode the values reach the shared files."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", MULTIPROCESS_SCRIPT],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    samples = {}
    for family in text_string_to_metric_families(done.stdout):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    location = "__main__:work"
    assert value(samples, "async_reduce_calls_total", location) == 3
    assert value(samples, "async_reduce_executions_total", location) == 1
    assert value(samples, "async_reduce_joins_total", location) == 2
    assert value(samples, "async_reduce_in_flight", location) == 0
    assert value(samples, "async_reduce_execution_callers_sum", location) == 3


def test_missing_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without prometheus_client the import error says which extra to install."""
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "async_reduce.contrib.prometheus")
    with pytest.raises(ImportError, match=r"pip install 'async-reduce\[prometheus\]'"):
        importlib.import_module("async_reduce.contrib.prometheus")


def test_core_import_needs_no_exporter_library() -> None:
    """Importing async_reduce and its hooks loads neither metrics library."""
    code = (
        "import sys, async_reduce, async_reduce.hooks, async_reduce.contrib;"
        "loaded = {'prometheus_client', 'opentelemetry'} & set(sys.modules);"
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
