"""Prometheus metrics for reducers, with ``prometheus_client``.

Install with ``pip install 'async-reduce[prometheus]'``, then::

    from async_reduce import AsyncReducer
    from async_reduce.contrib.prometheus import PrometheusHooks

    reducer = AsyncReducer(hooks=PrometheusHooks())

and expose the registry as usual (``prometheus_client.start_http_server``,
``generate_latest`` in a web handler, ...).
"""

from __future__ import annotations

import re
from collections.abc import Coroutine, Sequence
from typing import Any

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
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

__all__ = ["PrometheusHooks"]

_LABEL = "location"
# Classic metric names, which every Prometheus version and scraper accepts.
_NAMESPACE = re.compile(r"(?:[a-zA-Z_:][a-zA-Z0-9_:]*)?")


class _Metrics:
    """The metric families of one PrometheusHooks."""

    def __init__(
        self,
        namespace: str,
        seconds_buckets: Sequence[float],
        callers_buckets: Sequence[float],
    ) -> None:
        labels = (_LABEL,)
        common: dict[str, Any] = {"namespace": namespace, "registry": None}
        self.calls = Counter(
            "calls",
            "Calls to the reducer; each one starts an execution or joins one.",
            labels,
            **common,
        )
        self.executions = Counter(
            "executions", "Shared executions started.", labels, **common
        )
        self.joins = Counter(
            "joins",
            "Calls that joined an execution in flight instead of starting one.",
            labels,
            **common,
        )
        self.errors = Counter(
            "errors",
            "Executions that raised an exception (cancellations not included).",
            labels,
            **common,
        )
        self.cancellations = Counter(
            "cancellations",
            "Callers cancelled before the execution they waited on ended.",
            labels,
            **common,
        )
        self.timeouts = Counter(
            "timeouts",
            "Callers whose timeout elapsed before the execution they waited on ended.",
            labels,
            **common,
        )
        self.abandoned = Counter(
            "abandoned",
            "Executions that every caller left before they ended.",
            labels,
            **common,
        )
        self.in_flight = Gauge(
            "in_flight",
            "Executions running now.",
            labels,
            multiprocess_mode="livesum",
            **common,
        )
        self.seconds = Histogram(
            "execution_seconds",
            "Duration of executions that ended with a result or an error.",
            labels,
            buckets=seconds_buckets,
            **common,
        )
        self.callers = Histogram(
            "execution_callers",
            "Callers served per execution, the one that started it included.",
            labels,
            buckets=callers_buckets,
            **common,
        )

    def all(self) -> tuple[Counter | Gauge | Histogram, ...]:
        return (
            self.calls,
            self.executions,
            self.joins,
            self.errors,
            self.cancellations,
            self.timeouts,
            self.abandoned,
            self.in_flight,
            self.seconds,
            self.callers,
        )


class _Children:
    """The labelled children of every metric for one location."""

    __slots__ = (
        "abandoned",
        "callers",
        "calls",
        "cancellations",
        "errors",
        "executions",
        "in_flight",
        "joins",
        "seconds",
        "timeouts",
    )

    def __init__(self, metrics: _Metrics, location: str) -> None:
        self.calls = metrics.calls.labels(location)
        self.executions = metrics.executions.labels(location)
        self.joins = metrics.joins.labels(location)
        self.errors = metrics.errors.labels(location)
        self.cancellations = metrics.cancellations.labels(location)
        self.timeouts = metrics.timeouts.labels(location)
        self.abandoned = metrics.abandoned.labels(location)
        self.in_flight = metrics.in_flight.labels(location)
        self.seconds = metrics.seconds.labels(location)
        self.callers = metrics.callers.labels(location)


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

    The ``location`` label takes at most ``max_locations`` distinct values;
    later locations are counted under ``<other>``, so dynamically created
    coroutine functions cannot grow the number of series without bound.

    Per call the hooks only update labelled children cached per location.
    Create one instance per registry and namespace, and share it between
    reducers (``&`` it with other hooks as needed).

    Args:
        registry: the registry to register the metrics in; the default
            ``prometheus_client.REGISTRY`` when ``None``.
        namespace: prefix of every metric name.
        max_locations: how many distinct locations get their own label value.
        seconds_buckets: upper bounds of the ``execution_seconds`` buckets.
        callers_buckets: upper bounds of the ``execution_callers`` buckets.

    Raises:
        TypeError: ``registry`` is not a ``CollectorRegistry``, or
            ``max_locations`` not an int.
        ValueError: metrics of this namespace are already registered in the
            registry (nothing is registered then), ``namespace`` is not a
            classic metric name (``[a-zA-Z_:][a-zA-Z0-9_:]*``) or empty, or
            ``max_locations < 0``.

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
        metrics = _Metrics(namespace, seconds_buckets, callers_buckets)
        registered = []
        try:
            for metric in metrics.all():
                registry.register(metric)
                registered.append(metric)
        except ValueError as exc:
            for metric in registered:
                registry.unregister(metric)
            raise ValueError(
                f"cannot register the {namespace!r} metrics of PrometheusHooks: {exc}."
                " Share one PrometheusHooks per registry and namespace, or pass"
                " another registry or namespace."
            ) from exc
        self.registry = registry
        self.namespace = namespace
        self.max_locations = limit
        self._metrics = metrics
        self._table = LocationTable(limit, self._children)

    def __repr__(self) -> str:
        return f"PrometheusHooks(namespace={self.namespace!r})"

    def _children(self, location: str) -> _Children:
        return _Children(self._metrics, location)

    def unregister(self) -> None:
        """Remove this object's metrics from its registry.

        The hooks keep counting, but nothing is exported any more.
        """
        for metric in self._metrics.all():
            self.registry.unregister(metric)

    def on_apply_for(self, coro: Coroutine[Any, Any, Any], ident: Any) -> None:
        """Count a call."""
        self._table.get(coroutine_location(coro)).calls.inc()

    def on_executing_for(self, coro: Coroutine[Any, Any, Any], ident: Any) -> None:
        """Count an execution started."""
        children = self._table.get(coroutine_location(coro))
        children.executions.inc()
        children.in_flight.inc()

    def on_reducing_for(self, coro: Coroutine[Any, Any, Any], ident: Any) -> None:
        """Count a join."""
        self._table.get(coroutine_location(coro)).joins.inc()

    def on_execution_finished(self, event: ExecutionFinished) -> None:
        """Record the execution's outcome, duration and callers."""
        children = self._table.get(event.location)
        children.in_flight.dec()
        children.callers.observe(event.callers)
        outcome = event.outcome
        if outcome != "cancelled":
            children.seconds.observe(event.duration)
            if outcome == "error":
                children.errors.inc()

    def on_caller_left(self, event: CallerLeft) -> None:
        """Count a cancelled or timed-out caller."""
        children = self._table.get(event.location)
        if event.reason == "timeout":
            children.timeouts.inc()
        else:
            children.cancellations.inc()

    def on_execution_abandoned(self, event: ExecutionAbandoned) -> None:
        """Count an execution every caller left."""
        self._table.get(event.location).abandoned.inc()
