"""Frozen snapshots returned by the statistics hooks' ``snapshot()``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ._histogram import LogHistogram

__all__ = [
    "DetailStatistics",
    "LatencySummary",
    "LocationStatistics",
    "OverallStatistics",
    "PoolEventStatistics",
    "WorkerEventStatistics",
    "ServiceEventStatistics",
    "summarize",
]


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Distribution of durations, in seconds.

    Percentiles come from a fixed logarithmic histogram and are within 6.25%
    of the exact value (the maximum is exact).  Every figure is 0.0 when
    ``count`` is 0.

    Attributes:
        count: number of durations recorded.
        mean: their mean.
        p50, p90, p99: the 50th, 90th and 99th percentiles.
        max: the largest.

    .. versionadded:: 2.0
    """

    count: int
    mean: float
    p50: float
    p90: float
    p99: float
    max: float


def summarize(histogram: LogHistogram) -> LatencySummary:
    """The :class:`LatencySummary` of ``histogram`` now."""
    return LatencySummary(
        count=histogram.count,
        mean=histogram.mean,
        p50=histogram.quantile(0.50),
        p90=histogram.quantile(0.90),
        p99=histogram.quantile(0.99),
        max=histogram.max,
    )


@dataclass(frozen=True, slots=True)
class PoolEventStatistics:
    """Connection pool figures, summed over every pool reporting to the hooks.

    Attributes:
        acquired: connections handed to callers.
        acquire_wait: how long those callers waited for them.
        created: connections opened.
        create_failures: failed attempts to open one.
        closed: connections closed, for any reason.
        closed_by_reason: ``closed`` split by reason (``"broken"``,
            ``"lifetime"``, ``"idle"``, ``"burst"``, ``"reclaimed"``,
            ``"resize"``, ``"pool_closed"``); reasons never seen are absent.
        timeouts: acquires that gave up (``PoolTimeout``).
        reclaimed: connections taken back from a borrower that held one
            longer than the pool's ``borrow_timeout``.

    .. versionadded:: 2.0
    """

    acquired: int
    acquire_wait: LatencySummary
    created: int
    create_failures: int
    closed: int
    closed_by_reason: Mapping[str, int]
    timeouts: int
    reclaimed: int


@dataclass(frozen=True, slots=True)
class WorkerEventStatistics:
    """Worker pool figures, summed over every pool reporting to the hooks.

    Attributes:
        calls: calls queued on a pool that ended (once per execution, not
            per coalesced caller).
        calls_by_outcome: ``calls`` split by outcome (``"result"``,
            ``"error"``, ``"cancelled"``, ``"dropped"``, ``"closed"``; see
            :class:`async_reduce.workers.WorkerCallFinished`); outcomes never
            seen are absent.
        queue_wait: how long the calls that reached a worker waited for one.
        run_time: how long those calls ran.
        rejected: ``submit_nowait()`` calls refused by a full queue.
        threads_started: worker threads started.
        threads_stopped: worker threads ended.
        stopped_by_reason: ``threads_stopped`` by reason (``"idle"``,
            ``"resize"``, ``"shutdown"``).

    .. versionadded:: 2.0
    """

    calls: int
    calls_by_outcome: Mapping[str, int]
    queue_wait: LatencySummary
    run_time: LatencySummary
    rejected: int
    threads_started: int
    threads_stopped: int
    stopped_by_reason: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class ServiceEventStatistics:
    """Shared-service figures, summed over every scope reporting to the hooks.

    Attributes:
        started: services started.
        start_failures: starts that failed or were abandoned.
        stopped: services torn down (broken ones included).
        stopped_by_reason: ``stopped`` split by reason (``"released"``,
            ``"linger_expired"``, ``"scope_exit"``, ``"dependency_broken"``,
            ``"broken"``); reasons never seen are absent.
        broken: services that failed while in use.
        teardown_errors: teardowns that raised.
        start_time: how long successful starts took.

    .. versionadded:: 2.0
    """

    started: int = 0
    start_failures: int = 0
    stopped: int = 0
    stopped_by_reason: Mapping[str, int] = field(
        default_factory=lambda: MappingProxyType({})
    )
    broken: int = 0
    teardown_errors: int = 0
    start_time: LatencySummary | None = None


@dataclass(frozen=True, slots=True)
class OverallStatistics:
    """Everything :class:`~async_reduce.hooks.StatisticsOverallHooks` counts.

    Attributes:
        total: calls (``on_apply_for``).
        started: executions started (``on_executing_for``).
        succeeded: executions that returned a result (``on_result_for``);
            the 1.x attribute ``executed``.
        errors: executions that raised, cancelled ones included
            (``on_exception_for``).
        reduced: calls that joined an execution in flight instead of
            starting one (``on_reducing_for``).
        finished: executions that ended, whatever the outcome.
        in_flight: executions running now.
        cancelled: callers that left early because they were cancelled.
        timeouts: callers that left early because their timeout elapsed.
        orphaned: executions every caller left before they ended.
        fan_in_mean: mean number of callers served per finished execution
            (callers that left early included); 0.0 before any.
        fan_in_max: the largest number of callers one execution served.
        coalescing_ratio: ``reduced / total``, the share of calls that did
            not start an execution of their own; 0.0 before any call.
        latency: durations of the executions that finished with a result or
            an error (cancelled ones are left out: they were cut short).
        pool: connection pool figures.
        workers: worker pool figures.
        services: shared-service figures (``on_service_event``).
        fleet: fleet events counted by kind (see
            :class:`async_reduce.fleet.FleetEvent`), read-only; kinds never
            seen are absent.

    .. versionadded:: 2.0
    """

    total: int
    started: int
    succeeded: int
    errors: int
    reduced: int
    finished: int
    in_flight: int
    cancelled: int
    timeouts: int
    orphaned: int
    fan_in_mean: float
    fan_in_max: int
    coalescing_ratio: float
    latency: LatencySummary
    pool: PoolEventStatistics
    workers: WorkerEventStatistics
    services: ServiceEventStatistics = field(default_factory=ServiceEventStatistics)
    fleet: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class LocationStatistics:
    """The figures of :class:`OverallStatistics` for one function location.

    ``location`` is ``package.module:qualname``, or ``<other>`` for the
    locations beyond the hooks' ``max_locations``.  There are no pool
    figures (pools are not tied to a function).

    .. versionadded:: 2.0
    """

    location: str
    total: int
    started: int
    succeeded: int
    errors: int
    reduced: int
    finished: int
    in_flight: int
    cancelled: int
    timeouts: int
    orphaned: int
    fan_in_mean: float
    fan_in_max: int
    coalescing_ratio: float
    latency: LatencySummary


@dataclass(frozen=True, slots=True)
class DetailStatistics:
    """Everything :class:`~async_reduce.hooks.StatisticsDetailHooks` counts.

    Attributes:
        locations: :class:`LocationStatistics` by location, in the order the
            locations were first seen, ``<other>`` last.
        max_locations: how many distinct locations get their own entry.

    .. versionadded:: 2.0
    """

    locations: Mapping[str, LocationStatistics]
    max_locations: int
