"""OpenTelemetry metrics for reducers, with ``opentelemetry-api``.

Install with ``pip install 'async-reduce[otel]'`` (and an SDK or a
distribution that sets up a ``MeterProvider``), then::

    from async_reduce import AsyncReducer
    from async_reduce.contrib.opentelemetry import OpenTelemetryHooks

    reducer = AsyncReducer(hooks=OpenTelemetryHooks())
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import TYPE_CHECKING, Any

try:
    from opentelemetry import metrics
    from opentelemetry.metrics import CallbackOptions, Histogram, Meter, Observation
except ImportError as exc:
    raise ImportError(
        "async_reduce.contrib.opentelemetry needs opentelemetry-api; "
        "install it with: pip install 'async-reduce[otel]'",
        name="opentelemetry",
    ) from exc

from async_reduce._events import CallerLeft, ExecutionAbandoned, ExecutionFinished
from async_reduce._location import coroutine_location
from async_reduce.hooks._buckets import CALLERS_BUCKETS, SECONDS_BUCKETS
from async_reduce.hooks._locations import (
    DEFAULT_MAX_LOCATIONS,
    OTHER_LOCATION,
    LocationTable,
    check_limit,
)
from async_reduce.hooks.base import BaseHooks

from ._otel_workers import WorkerInstruments

if TYPE_CHECKING:
    from async_reduce.fleet import FleetEvent
    from async_reduce.services import ServiceEvent
    from async_reduce.workers import WorkerEvent

__all__ = ["OpenTelemetryHooks"]

_ATTRIBUTE = "location"

# (name, unit, description) of the observable counters; the name is also the
# _Counts slot they read.
_COUNTERS = (
    (
        "calls",
        "{call}",
        "Calls to the reducer; each one starts an execution or joins one.",
    ),
    ("executions", "{execution}", "Shared executions started."),
    (
        "joins",
        "{call}",
        "Calls that joined an execution in flight instead of starting one.",
    ),
    (
        "errors",
        "{execution}",
        "Executions that raised an exception (cancellations not included).",
    ),
    (
        "cancellations",
        "{call}",
        "Callers cancelled before the execution they waited on ended.",
    ),
    (
        "timeouts",
        "{call}",
        "Callers whose timeout elapsed before the execution they waited on ended.",
    ),
    (
        "abandoned",
        "{execution}",
        "Executions that every caller left before they ended.",
    ),
)


class _Counts:
    """Counts for one location, read by the observable instruments."""

    __slots__ = (
        "abandoned",
        "attributes",
        "calls",
        "cancellations",
        "errors",
        "executions",
        "in_flight",
        "joins",
        "timeouts",
    )

    def __init__(self, location: str) -> None:
        self.attributes = {_ATTRIBUTE: location}
        self.calls = 0
        self.executions = 0
        self.joins = 0
        self.errors = 0
        self.cancellations = 0
        self.timeouts = 0
        self.abandoned = 0
        self.in_flight = 0


def _histogram(
    meter: Meter,
    name: str,
    unit: str,
    description: str,
    boundaries: Sequence[float],
) -> Histogram:
    """A histogram advising ``boundaries`` where the API can (1.23 and later)."""
    try:
        return meter.create_histogram(
            name,
            unit=unit,
            description=description,
            explicit_bucket_boundaries_advisory=boundaries,
        )
    except TypeError:  # an older API without bucket advice
        return meter.create_histogram(name, unit=unit, description=description)


class OpenTelemetryHooks(BaseHooks):
    """Export reducer metrics through the OpenTelemetry metrics API.

    Instruments, each with the attribute ``location``
    (``package.module:qualname`` of the coroutine function):

    * ``async_reduce.calls``, ``async_reduce.executions``,
      ``async_reduce.joins``, ``async_reduce.errors``,
      ``async_reduce.cancellations``, ``async_reduce.timeouts``,
      ``async_reduce.abandoned``: observable counters with the meaning of
      the Prometheus counters of the same names (see
      :class:`async_reduce.contrib.prometheus.PrometheusHooks`).
    * ``async_reduce.in_flight``: observable up-down counter, executions
      running now.
    * ``async_reduce.execution.duration`` (unit ``s``): histogram of the
      duration of executions that ended with a result or an error.
    * ``async_reduce.execution.callers``: histogram of callers served per
      execution.
    * ``async_reduce.fleet.events``: fleet reducer events, with the
      attributes ``fleet`` (namespace), ``kind`` and ``reason``.
    * Worker pools (:mod:`async_reduce.workers`) reporting to these hooks,
      with the attribute ``pool`` (the pool's name; at most
      ``max_locations`` names, later ones as ``<other>``):
      ``async_reduce.worker.calls`` (also ``outcome``),
      ``async_reduce.worker.queue_wait`` and ``async_reduce.worker.run_time``
      (``s``), ``async_reduce.worker.rejected``,
      ``async_reduce.worker.threads`` (up-down counter) and
      ``async_reduce.worker.threads_stopped`` (also ``reason``), with the
      meanings of the Prometheus metrics of the same names.

    * Scopes of shared services (:mod:`async_reduce.services`) reporting to
      these hooks, with the attribute ``service`` (the service's name, never
      its arguments; at most ``max_locations`` names, later ones as
      ``<other>``): ``async_reduce.service.events`` (also ``kind`` and, for
      stops, ``reason``) and ``async_reduce.service.start_duration``
      (``s``, successful starts).

    Counts are kept in plain integers and read by the SDK when it collects,
    so a call costs a few increments; each finished execution records two
    histogram values, which with the OpenTelemetry SDK costs a few
    microseconds each (the SDK's synchronous instruments are that slow,
    hence the observable counters).  The ``location`` attribute takes at most
    ``max_locations`` distinct values, later locations sharing ``<other>``.

    The observable instruments stay registered with the meter for its whole
    life: create one instance per meter and share it between reducers.

    Args:
        meter: the meter to create the instruments with; by default
            ``opentelemetry.metrics.get_meter("async_reduce")``, which follows
            the global ``MeterProvider`` even when it is set later.
        max_locations: how many distinct locations get their own attribute
            value.

    Raises:
        TypeError, ValueError: ``max_locations`` is not an int ``>= 0``.

    .. versionadded:: 2.0
    """

    def __init__(
        self,
        meter: Meter | None = None,
        *,
        max_locations: int = DEFAULT_MAX_LOCATIONS,
    ) -> None:
        limit = check_limit(max_locations)
        if meter is None:
            meter = metrics.get_meter("async_reduce")
        self.max_locations = limit
        self._table: LocationTable[_Counts] = LocationTable(limit, _Counts)
        for name, unit, description in _COUNTERS:
            meter.create_observable_counter(
                f"async_reduce.{name}",
                callbacks=[self._observer(name)],
                unit=unit,
                description=description,
            )
        meter.create_observable_up_down_counter(
            "async_reduce.in_flight",
            callbacks=[self._observer("in_flight")],
            unit="{execution}",
            description="Executions running now.",
        )
        self._seconds = _histogram(
            meter,
            "async_reduce.execution.duration",
            "s",
            "Duration of executions that ended with a result or an error.",
            SECONDS_BUCKETS,
        )
        self._callers = _histogram(
            meter,
            "async_reduce.execution.callers",
            "{call}",
            "Callers served per execution, the one that started it included.",
            CALLERS_BUCKETS,
        )
        self._workers = WorkerInstruments(meter, _histogram, SECONDS_BUCKETS, limit)
        self._service_events = meter.create_counter(
            "async_reduce.service.events",
            unit="{event}",
            description="Shared-service events, by kind and stop reason.",
        )
        self._service_starts = _histogram(
            meter,
            "async_reduce.service.start_duration",
            "s",
            "Duration of successful service starts.",
            SECONDS_BUCKETS,
        )
        self._service_names: set[str] = set()
        self._fleet = meter.create_counter(
            "async_reduce.fleet.events",
            unit="{event}",
            description="Fleet reducer events, by kind.",
        )

    def _observer(
        self, slot: str
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        table = self._table

        def observe(options: CallbackOptions) -> Iterable[Observation]:
            return [
                Observation(getattr(counts, slot), counts.attributes)
                for _, counts in table.items()
            ]

        return observe

    def on_apply_for(self, coro: Coroutine[Any, Any, Any], ident: Any) -> None:
        """Count a call."""
        self._table.get(coroutine_location(coro)).calls += 1

    def on_executing_for(self, coro: Coroutine[Any, Any, Any], ident: Any) -> None:
        """Count an execution started."""
        counts = self._table.get(coroutine_location(coro))
        counts.executions += 1
        counts.in_flight += 1

    def on_reducing_for(self, coro: Coroutine[Any, Any, Any], ident: Any) -> None:
        """Count a join."""
        self._table.get(coroutine_location(coro)).joins += 1

    def on_execution_finished(self, event: ExecutionFinished) -> None:
        """Record the execution's outcome, duration and callers."""
        counts = self._table.get(event.location)
        counts.in_flight -= 1
        self._callers.record(event.callers, counts.attributes)
        outcome = event.outcome
        if outcome != "cancelled":
            self._seconds.record(event.duration, counts.attributes)
            if outcome == "error":
                counts.errors += 1

    def on_caller_left(self, event: CallerLeft) -> None:
        """Count a cancelled or timed-out caller."""
        counts = self._table.get(event.location)
        if event.reason == "timeout":
            counts.timeouts += 1
        else:
            counts.cancellations += 1

    def on_execution_abandoned(self, event: ExecutionAbandoned) -> None:
        """Count an execution every caller left."""
        self._table.get(event.location).abandoned += 1

    def on_worker_event(self, event: WorkerEvent) -> None:
        """Record a worker pool event."""
        self._workers.count(event)

    def on_service_event(self, event: ServiceEvent) -> None:
        """Count a shared-service event; record a start's duration."""
        name = event.name
        names = self._service_names
        if name not in names:
            if len(names) < self.max_locations:
                names.add(name)
            else:
                name = OTHER_LOCATION
        kind = event.kind
        reason = str(getattr(event, "reason", "")) if kind == "stopped" else ""
        self._service_events.add(1, {"service": name, "kind": kind, "reason": reason})
        if kind == "started":
            self._service_starts.record(
                event.duration,  # type: ignore[union-attr]
                {"service": name},
            )

    def on_fleet_event(self, event: FleetEvent) -> None:
        """Count a fleet event."""
        self._fleet.add(
            1, {"fleet": event.namespace, "kind": event.kind, "reason": event.reason}
        )
