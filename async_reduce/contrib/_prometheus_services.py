"""Prometheus metrics of shared services, for :class:`PrometheusHooks`.

Service events are rare (starts and stops, not uses), so the library's own
metric objects are cheap enough here and work the same in multiprocess mode.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Histogram

from async_reduce.hooks._locations import OTHER_LOCATION

__all__ = ["ServiceMetrics"]


class ServiceMetrics:
    """The service metrics of one namespace, labelled by service name."""

    def __init__(
        self, namespace: str, seconds_bounds: tuple[float, ...], max_names: int
    ) -> None:
        common: dict[str, Any] = {"namespace": namespace, "registry": None}
        self.events = Counter(
            "service_events",
            "Shared-service events (async_reduce.services), by kind and, for"
            " stops, reason.",
            labelnames=("service", "kind", "reason"),
            **common,
        )
        self.start_time = Histogram(
            "service_start_seconds",
            "Time successful service starts took.",
            labelnames=("service",),
            buckets=seconds_bounds,
            **common,
        )
        self._max_names = max_names
        self._names: set[str] = set()

    def all(self) -> list[Any]:
        return [self.events, self.start_time]

    def _label(self, name: str) -> str:
        names = self._names
        if name in names:
            return name
        if len(names) < self._max_names:
            names.add(name)
            return name
        return OTHER_LOCATION

    def count(self, event: Any) -> None:
        kind = getattr(event, "kind", None)
        if not isinstance(kind, str):
            return
        service = self._label(str(event.name))
        reason = getattr(event, "reason", "") if kind == "stopped" else ""
        self.events.labels(service, kind, reason).inc()
        if kind == "started":
            self.start_time.labels(service).observe(event.duration)
