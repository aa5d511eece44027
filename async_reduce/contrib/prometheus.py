"""Prometheus metrics for reducers, with ``prometheus_client``.

Install with ``pip install 'async-reduce[prometheus]'``, then::

    from async_reduce import AsyncReducer
    from async_reduce.contrib.prometheus import PrometheusHooks

    reducer = AsyncReducer(hooks=PrometheusHooks())

and expose the registry as usual (``prometheus_client.start_http_server``,
``generate_latest`` in a web handler, ...).

Design: a labelled ``prometheus_client`` metric takes a lock on every update
(about 0.25 us per counter increment and 0.6 us per histogram observation
here), which would add roughly half the cost of a reducer call.  So, in a
normal single-process setup, the hooks count in plain integers per location
and a collector registered in the registry turns them into metric families
when the registry is scraped.  In ``prometheus_client``'s multiprocess mode a
scrape reads the values other processes wrote to files, which only the
library's own metric objects do; there the hooks update such objects instead.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Callable, Coroutine, Iterator, Sequence
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Protocol

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
    from prometheus_client import values as _prometheus_values
    from prometheus_client.metrics_core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
    from prometheus_client.utils import floatToGoString
except ImportError as exc:
    raise ImportError(
        "async_reduce.contrib.prometheus needs prometheus_client; "
        "install it with: pip install 'async-reduce[prometheus]'",
        name="prometheus_client",
    ) from exc

from async_reduce._events import CallerLeft, ExecutionAbandoned, ExecutionFinished
from async_reduce._location import coroutine_location
from async_reduce.hooks._buckets import CALLERS_BUCKETS, SECONDS_BUCKETS
from async_reduce.hooks._locations import (
    DEFAULT_MAX_LOCATIONS,
    LocationTable,
    check_limit,
)
from async_reduce.hooks.base import BaseHooks

from ._prometheus_services import ServiceMetrics
from ._prometheus_workers import WorkerMetrics

if TYPE_CHECKING:
    from async_reduce.fleet import FleetEvent
    from async_reduce.services import ServiceEvent
    from async_reduce.workers import WorkerEvent

__all__ = ["PrometheusHooks"]

_LABEL = "location"
# "le" label values formatted as prometheus_client's own histograms do.
_le: Callable[[float], str] = floatToGoString
# Classic metric names, which every Prometheus version and scraper accepts.
_NAMESPACE = re.compile(r"(?:[a-zA-Z_:][a-zA-Z0-9_:]*)?")

# (name, help) of the counters, in exposition order.
_COUNTERS = (
    ("calls", "Calls to the reducer; each one starts an execution or joins one."),
    ("executions", "Shared executions started."),
    ("joins", "Calls that joined an execution in flight instead of starting one."),
    ("errors", "Executions that raised an exception (cancellations not included)."),
    ("cancellations", "Callers cancelled before the execution they waited on ended."),
    (
        "timeouts",
        "Callers whose timeout elapsed before the execution they waited on ended.",
    ),
    ("abandoned", "Executions that every caller left before they ended."),
)
_IN_FLIGHT_HELP = "Executions running now."
_SECONDS_HELP = "Duration of executions that ended with a result or an error."
_CALLERS_HELP = "Callers served per execution, the one that started it included."


class _Recorder(Protocol):
    """What the hooks update per location, in either mode."""

    def call(self) -> None: ...
    def start(self) -> None: ...
    def join(self) -> None: ...
    def finish(self, outcome: str, duration: float, callers: int) -> None: ...
    def leave(self, timed_out: bool) -> None: ...
    def abandon(self) -> None: ...


def _check_buckets(name: str, buckets: Sequence[float]) -> tuple[float, ...]:
    """Finite, strictly increasing upper bounds (a trailing +Inf is implied)."""
    try:
        bounds = tuple(float(bound) for bound in buckets)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of numbers") from None
    if bounds and bounds[-1] == math.inf:
        bounds = bounds[:-1]
    if not bounds:
        raise ValueError(f"{name} needs at least one finite bound")
    if not all(math.isfinite(bound) for bound in bounds) or any(
        low >= high for low, high in pairwise(bounds)
    ):
        raise ValueError(
            f"{name} must be finite and strictly increasing, got {buckets}"
        )
    return bounds


class _Series:
    """In-process counts of one location, read by :class:`_Collector`."""

    __slots__ = (
        "abandoned",
        "callers",
        "callers_bounds",
        "callers_sum",
        "calls",
        "cancellations",
        "errors",
        "executions",
        "in_flight",
        "joins",
        "seconds",
        "seconds_bounds",
        "seconds_sum",
        "timeouts",
    )

    def __init__(
        self, seconds_bounds: tuple[float, ...], callers_bounds: tuple[float, ...]
    ) -> None:
        self.calls = 0
        self.executions = 0
        self.joins = 0
        self.errors = 0
        self.cancellations = 0
        self.timeouts = 0
        self.abandoned = 0
        self.in_flight = 0
        self.seconds_bounds = seconds_bounds
        self.seconds = [0] * (len(seconds_bounds) + 1)  # the last one is +Inf
        self.seconds_sum = 0.0
        self.callers_bounds = callers_bounds
        self.callers = [0] * (len(callers_bounds) + 1)
        self.callers_sum = 0

    def call(self) -> None:
        self.calls += 1

    def start(self) -> None:
        self.executions += 1
        self.in_flight += 1

    def join(self) -> None:
        self.joins += 1

    def finish(self, outcome: str, duration: float, callers: int) -> None:
        self.in_flight -= 1
        # Buckets hold values <= their bound ("le"), as bisect_left finds.
        self.callers[bisect_left(self.callers_bounds, callers)] += 1
        self.callers_sum += callers
        if outcome != "cancelled":
            self.seconds[bisect_left(self.seconds_bounds, duration)] += 1
            self.seconds_sum += duration
            if outcome == "error":
                self.errors += 1

    def leave(self, timed_out: bool) -> None:
        if timed_out:
            self.timeouts += 1
        else:
            self.cancellations += 1

    def abandon(self) -> None:
        self.abandoned += 1


def _cumulative(
    bounds: tuple[float, ...], counts: list[int]
) -> list[tuple[str, float]]:
    buckets = []
    total = 0
    for bound, count in zip((*bounds, math.inf), list(counts), strict=True):
        total += count
        buckets.append((_le(bound), float(total)))
    return buckets


class _Collector:
    """Turns the :class:`_Series` of every location into metric families."""

    def __init__(self, namespace: str, table: LocationTable[_Series]) -> None:
        self._prefix = f"{namespace}_" if namespace else ""
        self._table = table

    def _families(
        self,
    ) -> tuple[
        dict[str, CounterMetricFamily],
        GaugeMetricFamily,
        HistogramMetricFamily,
        HistogramMetricFamily,
    ]:
        prefix = self._prefix
        counters = {
            name: CounterMetricFamily(prefix + name, help_text, labels=(_LABEL,))
            for name, help_text in _COUNTERS
        }
        in_flight = GaugeMetricFamily(
            prefix + "in_flight", _IN_FLIGHT_HELP, labels=(_LABEL,)
        )
        seconds = HistogramMetricFamily(
            prefix + "execution_seconds", _SECONDS_HELP, labels=(_LABEL,)
        )
        callers = HistogramMetricFamily(
            prefix + "execution_callers", _CALLERS_HELP, labels=(_LABEL,)
        )
        return counters, in_flight, seconds, callers

    def describe(self) -> Iterator[Metric]:
        """The families without samples, for the registry's name-clash check."""
        counters, in_flight, seconds, callers = self._families()
        return iter([*counters.values(), in_flight, seconds, callers])

    def collect(self) -> Iterator[Metric]:
        """The families with one sample set per location."""
        counters, in_flight, seconds, callers = self._families()
        for location, series in self._table.items():
            labels = (location,)
            for name, family in counters.items():
                family.add_metric(labels, getattr(series, name))
            in_flight.add_metric(labels, series.in_flight)
            seconds.add_metric(
                labels,
                _cumulative(series.seconds_bounds, series.seconds),
                series.seconds_sum,
            )
            callers.add_metric(
                labels,
                _cumulative(series.callers_bounds, series.callers),
                series.callers_sum,
            )
        return iter([*counters.values(), in_flight, seconds, callers])


class _Metrics:
    """Metric objects for multiprocess mode, unregistered until registered."""

    def __init__(
        self,
        namespace: str,
        seconds_bounds: tuple[float, ...],
        callers_bounds: tuple[float, ...],
    ) -> None:
        common: dict[str, Any] = {
            "labelnames": (_LABEL,),
            "namespace": namespace,
            "registry": None,
        }
        self.counters = {
            name: Counter(name, help_text, **common) for name, help_text in _COUNTERS
        }
        self.in_flight = Gauge(
            "in_flight", _IN_FLIGHT_HELP, multiprocess_mode="livesum", **common
        )
        self.seconds = Histogram(
            "execution_seconds", _SECONDS_HELP, buckets=seconds_bounds, **common
        )
        self.callers = Histogram(
            "execution_callers", _CALLERS_HELP, buckets=callers_bounds, **common
        )

    def all(self) -> list[Counter | Gauge | Histogram]:
        return [*self.counters.values(), self.in_flight, self.seconds, self.callers]


class _Children:
    """Labelled metric children of one location (multiprocess mode)."""

    __slots__ = (
        "_abandoned",
        "_callers",
        "_calls",
        "_cancellations",
        "_errors",
        "_executions",
        "_in_flight",
        "_joins",
        "_seconds",
        "_timeouts",
    )

    def __init__(self, metrics: _Metrics, location: str) -> None:
        counters = metrics.counters
        self._calls = counters["calls"].labels(location)
        self._executions = counters["executions"].labels(location)
        self._joins = counters["joins"].labels(location)
        self._errors = counters["errors"].labels(location)
        self._cancellations = counters["cancellations"].labels(location)
        self._timeouts = counters["timeouts"].labels(location)
        self._abandoned = counters["abandoned"].labels(location)
        self._in_flight = metrics.in_flight.labels(location)
        self._seconds = metrics.seconds.labels(location)
        self._callers = metrics.callers.labels(location)

    def call(self) -> None:
        self._calls.inc()

    def start(self) -> None:
        self._executions.inc()
        self._in_flight.inc()

    def join(self) -> None:
        self._joins.inc()

    def finish(self, outcome: str, duration: float, callers: int) -> None:
        self._in_flight.dec()
        self._callers.observe(callers)
        if outcome != "cancelled":
            self._seconds.observe(duration)
            if outcome == "error":
                self._errors.inc()

    def leave(self, timed_out: bool) -> None:
        if timed_out:
            self._timeouts.inc()
        else:
            self._cancellations.inc()

    def abandon(self) -> None:
        self._abandoned.inc()


def _multiprocess_mode() -> bool:
    """Whether prometheus_client writes values to files for other processes."""
    return _prometheus_values.ValueClass is not _prometheus_values.MutexValue


class PrometheusHooks(BaseHooks):
    """Export reducer metrics to a Prometheus registry.

    Metrics, each labelled ``location`` (``package.module:qualname`` of the
    coroutine function), with ``NS`` the ``namespace``:

    * ``NS_calls_total``: calls (``executions + joins``).
    * ``NS_executions_total``: shared executions started.
    * ``NS_joins_total``: calls that joined an execution in flight.
    * ``NS_errors_total``: executions that raised an exception, once per
      execution however many callers received it; cancelled executions are
      not errors.
    * ``NS_cancellations_total``: callers cancelled before their execution
      ended.
    * ``NS_timeouts_total``: callers whose ``timeout`` elapsed first.
    * ``NS_abandoned_total``: executions every caller left before they ended.
    * ``NS_in_flight``: executions running now (gauge).
    * ``NS_execution_seconds``: histogram of the duration of executions that
      ended with a result or an error.
    * ``NS_execution_callers``: histogram of callers served per execution
      (every finished execution, cancelled ones included).

    Fleet reducers (:mod:`async_reduce.fleet`) reporting to these hooks add
    ``NS_fleet_events_total``, labelled ``fleet`` (the fleet's namespace),
    ``kind`` and ``reason`` (the fields of
    :class:`~async_reduce.fleet.FleetEvent`; never a key or an argument).

    Worker pools (:mod:`async_reduce.workers`) reporting to these hooks add
    metrics labelled ``pool`` (the pool's name, at most ``max_locations``
    names, later ones under ``<other>``):

    * ``NS_worker_calls_total``: queued calls that ended, also labelled
      ``outcome`` (``result``, ``error``, ``cancelled``, ``dropped``,
      ``closed``).
    * ``NS_worker_queue_wait_seconds``, ``NS_worker_run_seconds``:
      histograms of the time calls waited for a thread and ran on it.
    * ``NS_worker_rejected_total``: ``submit_nowait()`` calls refused by a
      full queue.
    * ``NS_worker_threads``: worker threads alive (gauge).
    * ``NS_worker_threads_stopped_total``: threads that ended, also
      labelled ``reason`` (``idle``, ``resize``, ``shutdown``).

    Scopes of shared services (:mod:`async_reduce.services`) reporting to
    these hooks add, labelled ``service`` (the service's name, never its
    arguments; at most ``max_locations`` names, later ones under
    ``<other>``):

    * ``NS_service_events_total``: service events, also labelled ``kind``
      (``started``, ``start_failed``, ``lingering``, ``failed``,
      ``stopped``) and ``reason`` (why a service stopped; empty otherwise).
    * ``NS_service_start_seconds``: histogram of successful start times.

    The ``location`` label takes at most ``max_locations`` distinct values;
    later locations are counted under ``<other>``, so dynamically created
    coroutine functions cannot grow the number of series without bound.

    A call costs a few integer increments; the metric families are built
    when the registry is collected.  (In ``prometheus_client``'s
    multiprocess mode the hooks update the library's metric objects
    instead, which is several times slower per call; counters then carry the
    usual ``_created`` samples.)  Counts are exact when the hooks are used
    from one thread at a time; scraping from another thread is safe.

    Create one instance per registry and namespace and share it between
    reducers (``&`` it with other hooks as needed).

    Args:
        registry: the registry to register the metrics in; the default
            ``prometheus_client.REGISTRY`` when ``None``.
        namespace: prefix of every metric name.
        max_locations: how many distinct locations get their own label value.
        seconds_buckets: upper bounds of the ``execution_seconds`` buckets.
        callers_buckets: upper bounds of the ``execution_callers`` buckets.

    Raises:
        TypeError: ``registry`` is not a ``CollectorRegistry``, ``namespace``
            not a str, ``max_locations`` not an int, or buckets not numbers.
        ValueError: metric names of this namespace are already registered in
            the registry (nothing is registered then), ``namespace`` is not a
            classic metric name (``[a-zA-Z_:][a-zA-Z0-9_:]*``) or empty,
            ``max_locations < 0``, or buckets not strictly increasing.

    .. versionadded:: 2.0
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        namespace: str = "async_reduce",
        *,
        max_locations: int = DEFAULT_MAX_LOCATIONS,
        seconds_buckets: Sequence[float] = SECONDS_BUCKETS,
        callers_buckets: Sequence[float] = CALLERS_BUCKETS,
    ) -> None:
        if registry is None:
            registry = REGISTRY
        elif not isinstance(registry, CollectorRegistry):
            raise TypeError(
                "registry must be a prometheus_client.CollectorRegistry or None, "
                f"got {type(registry).__name__}"
            )
        if not isinstance(namespace, str):
            raise TypeError(f"namespace must be a str, got {type(namespace).__name__}")
        if not _NAMESPACE.fullmatch(namespace):
            raise ValueError(
                "namespace must be empty or a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*),"
                f" got {namespace!r}"
            )
        limit = check_limit(max_locations)
        seconds = _check_buckets("seconds_buckets", seconds_buckets)
        callers = _check_buckets("callers_buckets", callers_buckets)
        self.registry = registry
        self.namespace = namespace
        self.max_locations = limit
        collectors: list[Any]
        if _multiprocess_mode():
            metrics = _Metrics(namespace, seconds, callers)
            self._table: LocationTable[_Recorder] = LocationTable(
                limit, lambda location: _Children(metrics, location)
            )
            collectors = metrics.all()
        else:
            table: LocationTable[_Series] = LocationTable(
                limit, lambda location: _Series(seconds, callers)
            )
            self._table = table  # type: ignore[assignment]
            collectors = [_Collector(namespace, table)]
        self._workers = WorkerMetrics(namespace, seconds, limit)
        collectors.extend(self._workers.all())
        self._services = ServiceMetrics(namespace, seconds, limit)
        collectors.extend(self._services.all())
        self._fleet = Counter(
            "fleet_events",
            "Fleet reducer events (async_reduce.fleet.FleetEvent), by kind.",
            labelnames=("fleet", "kind", "reason"),
            namespace=namespace,
            registry=None,
        )
        collectors.append(self._fleet)
        self._collectors = collectors
        registered: list[Any] = []
        try:
            for collector in collectors:
                registry.register(collector)
                registered.append(collector)
        except ValueError as exc:
            for collector in registered:
                registry.unregister(collector)
            raise ValueError(
                f"cannot register the {namespace!r} metrics of PrometheusHooks: {exc}."
                " Share one PrometheusHooks per registry and namespace, or pass"
                " another registry or namespace."
            ) from exc

    def __repr__(self) -> str:
        return f"PrometheusHooks(namespace={self.namespace!r})"

    def unregister(self) -> None:
        """Remove this object's metrics from its registry.

        The hooks keep counting, but nothing is exported any more.
        """
        for collector in self._collectors:
            self.registry.unregister(collector)

    def on_apply_for(self, coro: Coroutine[Any, Any, Any], ident: Any) -> None:
        """Count a call."""
        self._table.get(coroutine_location(coro)).call()

    def on_executing_for(self, coro: Coroutine[Any, Any, Any], ident: Any) -> None:
        """Count an execution started."""
        self._table.get(coroutine_location(coro)).start()

    def on_reducing_for(self, coro: Coroutine[Any, Any, Any], ident: Any) -> None:
        """Count a join."""
        self._table.get(coroutine_location(coro)).join()

    def on_execution_finished(self, event: ExecutionFinished) -> None:
        """Record the execution's outcome, duration and callers."""
        self._table.get(event.location).finish(
            event.outcome, event.duration, event.callers
        )

    def on_caller_left(self, event: CallerLeft) -> None:
        """Count a cancelled or timed-out caller."""
        self._table.get(event.location).leave(event.reason == "timeout")

    def on_execution_abandoned(self, event: ExecutionAbandoned) -> None:
        """Count an execution every caller left."""
        self._table.get(event.location).abandon()

    def on_worker_event(self, event: WorkerEvent) -> None:
        """Record a worker pool event."""
        self._workers.count(event)

    def on_service_event(self, event: ServiceEvent) -> None:
        """Count a shared-service event."""
        self._services.count(event)

    def on_fleet_event(self, event: FleetEvent) -> None:
        """Count a fleet event."""
        self._fleet.labels(event.namespace, event.kind, event.reason).inc()
