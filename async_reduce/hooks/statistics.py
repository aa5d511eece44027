"""Statistics hooks: overall figures and figures per function location.

Both classes keep the attributes and ``str()`` of async-reduce 1.x, whose
counting differs between them on one point kept for compatibility:
``StatisticsOverallHooks.executed`` counts executions that *returned a
result*, while ``StatisticsDetailHooks.executed`` counts every execution
*started*, failed ones too.  ``snapshot()`` on either class spells both out
as ``started`` and ``succeeded``.

The hooks are plain counters updated synchronously in the reducer's calls;
they are exact when used from one thread at a time (one event loop, or loops
taking turns).  From loops running in several threads at once an increment
can occasionally be lost.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Coroutine
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from async_reduce._events import (
    AcquireTimedOut,
    CallerLeft,
    ConnectionAcquired,
    ConnectionClosed,
    ConnectionCreated,
    ConnectionCreateFailed,
    ConnectionReclaimed,
    ExecutionAbandoned,
    ExecutionFinished,
    PoolEvent,
)
from async_reduce._location import coroutine_location

from ._histogram import LogHistogram
from ._locations import DEFAULT_MAX_LOCATIONS, LocationTable, check_limit
from ._snapshots import (
    DetailStatistics,
    LatencySummary,
    LocationStatistics,
    OverallStatistics,
    PoolEventStatistics,
    ServiceEventStatistics,
    WorkerEventStatistics,
    summarize,
)
from ._workercounts import WorkerCounts
from .base import BaseHooks

if TYPE_CHECKING:
    from async_reduce.fleet._events import FleetEvent
    from async_reduce.services._events import ServiceEvent
    from async_reduce.workers._events import WorkerEvent

__all__ = [
    "DetailStatistics",
    "LatencySummary",
    "LocationStatistics",
    "OverallStatistics",
    "PoolEventStatistics",
    "ServiceEventStatistics",
    "StatisticsDetailHooks",
    "StatisticsOverallHooks",
    "WorkerEventStatistics",
]


class _PoolCounts:
    __slots__ = (
        "acquire_wait",
        "acquired",
        "closed",
        "create_failures",
        "created",
        "reclaimed",
        "timeouts",
    )

    def __init__(self) -> None:
        self.acquired = 0
        self.acquire_wait = LogHistogram()
        self.created = 0
        self.create_failures = 0
        self.closed: Counter[str] = Counter()
        self.timeouts = 0
        self.reclaimed = 0

    def count(self, event: PoolEvent) -> None:
        if isinstance(event, ConnectionAcquired):
            self.acquired += 1
            self.acquire_wait.record(event.wait)
        elif isinstance(event, ConnectionClosed):
            self.closed[event.reason] += 1
        elif isinstance(event, ConnectionCreated):
            self.created += 1
        elif isinstance(event, ConnectionCreateFailed):
            self.create_failures += 1
        elif isinstance(event, AcquireTimedOut):
            self.timeouts += 1
        elif isinstance(event, ConnectionReclaimed):
            self.reclaimed += 1

    def snapshot(self) -> PoolEventStatistics:
        return PoolEventStatistics(
            acquired=self.acquired,
            acquire_wait=summarize(self.acquire_wait),
            created=self.created,
            create_failures=self.create_failures,
            closed=sum(self.closed.values()),
            closed_by_reason=MappingProxyType(dict(self.closed)),
            timeouts=self.timeouts,
            reclaimed=self.reclaimed,
        )


class _ServiceCounts:
    """Shared-service events, told apart by their ``kind`` (importing the
    services layer here would be circular)."""

    __slots__ = (
        "broken",
        "start_failures",
        "start_time",
        "started",
        "stopped",
        "teardown_errors",
    )

    def __init__(self) -> None:
        self.started = 0
        self.start_failures = 0
        self.broken = 0
        self.stopped: Counter[str] = Counter()
        self.start_time = LogHistogram()
        self.teardown_errors = 0

    def count(self, event: Any) -> None:
        kind = getattr(event, "kind", None)
        if kind == "started":
            self.started += 1
            self.start_time.record(event.duration)
        elif kind == "stopped":
            self.stopped[event.reason] += 1
            if event.exception is not None:
                self.teardown_errors += 1
        elif kind == "start_failed":
            self.start_failures += 1
        elif kind == "failed":
            self.broken += 1

    def snapshot(self) -> ServiceEventStatistics:
        return ServiceEventStatistics(
            started=self.started,
            start_failures=self.start_failures,
            stopped=sum(self.stopped.values()),
            stopped_by_reason=MappingProxyType(dict(self.stopped)),
            broken=self.broken,
            teardown_errors=self.teardown_errors,
            start_time=summarize(self.start_time),
        )


class StatisticsOverallHooks(BaseHooks):
    """Counts over every call of the reducers these hooks are attached to.

    Counters (plain ``int`` attributes; the first four are 1.x's):

    * ``total``: calls (``on_apply_for``).
    * ``executed``: executions that returned a result (``on_result_for``).
      Failed or cancelled executions are not counted here, as in 1.x.
    * ``reduced``: calls that joined an execution in flight
      (``on_reducing_for``).
    * ``errors``: executions that raised (``on_exception_for``), including
      executions cancelled because every caller left.  Counted once per
      execution, however many callers received the exception.
    * ``started``: executions started (``on_executing_for``); so
      ``total == started + reduced``.
    * ``cancelled``: callers that left before the end because they were
      cancelled (``on_caller_left``); the execution may go on for others.
    * ``timeouts``: callers that left before the end because their timeout
      elapsed (``on_caller_left``).
    * ``orphaned``: executions every caller left before they ended
      (``on_execution_abandoned``).
    * ``in_flight`` (read-only): executions started and not yet finished.

    :meth:`snapshot` adds fan-in (callers per execution), the coalescing
    ratio, execution latency percentiles, connection pool and worker pool
    figures, and fleet events by kind; see
    :class:`OverallStatistics`.  :meth:`reset` zeroes everything except
    ``in_flight``, which is a level rather than a count.

    ``str()`` gives 1.x's ``Stats(total=5, executed=3, reduced=2, errors=0)``.
    """

    def __init__(self) -> None:
        self._in_flight = 0
        self._zero()

    def _zero(self) -> None:
        self.total = 0
        self.executed = 0
        self.reduced = 0
        self.errors = 0
        self.started = 0
        self.cancelled = 0
        self.timeouts = 0
        self.orphaned = 0
        self._finished = 0
        self._callers_sum = 0
        self._callers_max = 0
        self._latency = LogHistogram()
        self._pool = _PoolCounts()
        self._workers = WorkerCounts()
        self._services = _ServiceCounts()
        self._fleet: Counter[str] = Counter()

    def __str__(self) -> str:
        return (
            f"Stats(total={self.total}, executed={self.executed}, "
            f"reduced={self.reduced}, errors={self.errors})"
        )

    @property
    def in_flight(self) -> int:
        """Executions started and not yet finished.

        .. versionadded:: 2.0
        """
        return self._in_flight

    def on_apply_for(self, coro: Coroutine[Any, Any, Any], ident: Any) -> None:
        """Count a call."""
        self.total += 1

    def on_executing_for(self, coro: Coroutine[Any, Any, Any], ident: Any) -> None:
        """Count an execution started."""
        self.started += 1
        self._in_flight += 1

    def on_reducing_for(self, coro: Coroutine[Any, Any, Any], ident: Any) -> None:
        """Count a call that joined an execution."""
        self.reduced += 1

    def on_result_for(
        self, coro: Coroutine[Any, Any, Any], ident: Any, result: Any
    ) -> None:
        """Count an execution that returned a result."""
        self.executed += 1

    def on_exception_for(
        self, coro: Coroutine[Any, Any, Any], ident: Any, exception: BaseException
    ) -> None:
        """Count an execution that raised."""
        self.errors += 1

    def on_execution_finished(self, event: ExecutionFinished) -> None:
        """Record the execution's fan-in and, unless cancelled, its duration."""
        self._in_flight -= 1
        self._finished += 1
        callers = event.callers
        self._callers_sum += callers
        if callers > self._callers_max:
            self._callers_max = callers
        if event.outcome != "cancelled":
            self._latency.record(event.duration)

    def on_caller_left(self, event: CallerLeft) -> None:
        """Count a caller that was cancelled or timed out."""
        if event.reason == "timeout":
            self.timeouts += 1
        else:
            self.cancelled += 1

    def on_execution_abandoned(self, event: ExecutionAbandoned) -> None:
        """Count an execution every caller left."""
        self.orphaned += 1

    def on_pool_event(self, event: PoolEvent) -> None:
        """Count a connection pool event."""
        self._pool.count(event)

    def on_worker_event(self, event: WorkerEvent) -> None:
        """Count a worker pool event."""
        self._workers.count(event)

    def on_service_event(self, event: ServiceEvent) -> None:
        """Count a shared-service event."""
        self._services.count(event)

    def on_fleet_event(self, event: FleetEvent) -> None:
        """Count a fleet event by its ``kind``."""
        self._fleet[event.kind] += 1

    def snapshot(self) -> OverallStatistics:
        """Every figure, as a frozen :class:`OverallStatistics`.

        .. versionadded:: 2.0
        """
        finished = self._finished
        return OverallStatistics(
            total=self.total,
            started=self.started,
            succeeded=self.executed,
            errors=self.errors,
            reduced=self.reduced,
            finished=finished,
            in_flight=self._in_flight,
            cancelled=self.cancelled,
            timeouts=self.timeouts,
            orphaned=self.orphaned,
            fan_in_mean=self._callers_sum / finished if finished else 0.0,
            fan_in_max=self._callers_max,
            coalescing_ratio=self.reduced / self.total if self.total else 0.0,
            latency=summarize(self._latency),
            pool=self._pool.snapshot(),
            workers=self._workers.snapshot(),
            services=self._services.snapshot(),
            fleet=MappingProxyType(dict(self._fleet)),
        )

    def reset(self) -> None:
        """Zero every counter and histogram; ``in_flight`` is kept.

        .. versionadded:: 2.0
        """
        self._zero()


class _LocationFigures:
    """What StatisticsDetailHooks keeps per location besides its Counters."""

    __slots__ = (
        "callers_max",
        "callers_sum",
        "finished",
        "in_flight",
        "latency",
        "name",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.in_flight = 0
        self.finished = 0
        self.callers_sum = 0
        self.callers_max = 0
        self.latency = LogHistogram()


class StatisticsDetailHooks(BaseHooks):
    """Counts per function location (``package.module:qualname``).

    Counters (``collections.Counter`` attributes keyed by location; the first
    four are 1.x's):

    * ``total``: calls (``on_apply_for``).
    * ``executed``: executions *started* (``on_executing_for``), including
      those that later failed or were cancelled.  This differs from
      ``StatisticsOverallHooks.executed``, as it did in 1.x.
    * ``reduced``: calls that joined an execution in flight.
    * ``errors``: executions that raised, cancelled ones included.
    * ``succeeded``: executions that returned a result.
    * ``cancelled``: callers that left early because they were cancelled.
    * ``timeouts``: callers that left early because their timeout elapsed.
    * ``orphaned``: executions every caller left before they ended.

    :meth:`snapshot` adds, per location, what
    :class:`StatisticsOverallHooks` gives overall: in-flight level, fan-in,
    coalescing ratio and latency percentiles (see :class:`LocationStatistics`).

    Memory is bounded: the first ``max_locations`` distinct locations are
    counted under their own name, every later one under ``<other>``.  A
    location keeps its entry once admitted, :meth:`reset` included.

    ``str()`` gives 1.x's listing: ``Top total:``, ``Top executed:``,
    ``Top reduced:``, ``Top errors:``, each followed by one tab-indented
    ``location: count`` line per location, most common first.

    Args:
        max_locations: how many distinct locations get their own entry
            (keyword-only; ``0`` counts everything under ``<other>``).

    Raises:
        TypeError, ValueError: ``max_locations`` is not an int ``>= 0``.
    """

    def __init__(self, *, max_locations: int = DEFAULT_MAX_LOCATIONS) -> None:
        self.max_locations = check_limit(max_locations)
        self.total: Counter[str] = Counter()
        self.executed: Counter[str] = Counter()
        self.reduced: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.succeeded: Counter[str] = Counter()
        self.cancelled: Counter[str] = Counter()
        self.timeouts: Counter[str] = Counter()
        self.orphaned: Counter[str] = Counter()
        self._table = LocationTable(self.max_locations, _LocationFigures)

    def __str__(self) -> str:
        parts = []
        for title, counter in (
            ("total", self.total),
            ("executed", self.executed),
            ("reduced", self.reduced),
            ("errors", self.errors),
        ):
            parts.append(f"Top {title}:\n")
            parts.extend(
                f"\t{name}: {count}\n" for name, count in counter.most_common()
            )
        return "".join(parts)

    def _name(self, coro: Coroutine[Any, Any, Any]) -> str:
        return self._table.get(coroutine_location(coro)).name

    def on_apply_for(self, coro: Coroutine[Any, Any, Any], ident: Any) -> None:
        """Count a call."""
        self.total[self._name(coro)] += 1

    def on_executing_for(self, coro: Coroutine[Any, Any, Any], ident: Any) -> None:
        """Count an execution started."""
        figures = self._table.get(coroutine_location(coro))
        self.executed[figures.name] += 1
        figures.in_flight += 1

    def on_reducing_for(self, coro: Coroutine[Any, Any, Any], ident: Any) -> None:
        """Count a call that joined an execution."""
        self.reduced[self._name(coro)] += 1

    def on_result_for(
        self, coro: Coroutine[Any, Any, Any], ident: Any, result: Any
    ) -> None:
        """Count an execution that returned a result."""
        self.succeeded[self._name(coro)] += 1

    def on_exception_for(
        self, coro: Coroutine[Any, Any, Any], ident: Any, exception: BaseException
    ) -> None:
        """Count an execution that raised."""
        self.errors[self._name(coro)] += 1

    def on_execution_finished(self, event: ExecutionFinished) -> None:
        """Record the execution's fan-in and, unless cancelled, its duration."""
        figures = self._table.get(event.location)
        figures.in_flight -= 1
        figures.finished += 1
        callers = event.callers
        figures.callers_sum += callers
        if callers > figures.callers_max:
            figures.callers_max = callers
        if event.outcome != "cancelled":
            figures.latency.record(event.duration)

    def on_caller_left(self, event: CallerLeft) -> None:
        """Count a caller that was cancelled or timed out."""
        name = self._table.get(event.location).name
        if event.reason == "timeout":
            self.timeouts[name] += 1
        else:
            self.cancelled[name] += 1

    def on_execution_abandoned(self, event: ExecutionAbandoned) -> None:
        """Count an execution every caller left."""
        self.orphaned[self._table.get(event.location).name] += 1

    def snapshot(self) -> DetailStatistics:
        """Every figure per location, as a frozen :class:`DetailStatistics`.

        .. versionadded:: 2.0
        """
        locations = {}
        for name, figures in self._table.items():
            finished = figures.finished
            total = self.total[name]
            locations[name] = LocationStatistics(
                location=name,
                total=total,
                started=self.executed[name],
                succeeded=self.succeeded[name],
                errors=self.errors[name],
                reduced=self.reduced[name],
                finished=finished,
                in_flight=figures.in_flight,
                cancelled=self.cancelled[name],
                timeouts=self.timeouts[name],
                orphaned=self.orphaned[name],
                fan_in_mean=figures.callers_sum / finished if finished else 0.0,
                fan_in_max=figures.callers_max,
                coalescing_ratio=self.reduced[name] / total if total else 0.0,
                latency=summarize(figures.latency),
            )
        return DetailStatistics(
            locations=MappingProxyType(locations), max_locations=self.max_locations
        )

    def reset(self) -> None:
        """Zero every counter and histogram; in-flight levels and the set of
        known locations are kept.

        .. versionadded:: 2.0
        """
        for counter in (
            self.total,
            self.executed,
            self.reduced,
            self.errors,
            self.succeeded,
            self.cancelled,
            self.timeouts,
            self.orphaned,
        ):
            counter.clear()
        for _, figures in self._table.items():
            figures.finished = 0
            figures.callers_sum = 0
            figures.callers_max = 0
            figures.latency.clear()
