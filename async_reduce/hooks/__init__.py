"""Hooks: observe every call a reducer handles.

Attach one hooks object with ``AsyncReducer(hooks=...)``; combine several
with ``&``.  :mod:`async_reduce.hooks.base` documents the order in which a
reducer calls the hook methods.  Exporters for Prometheus and OpenTelemetry
live in :mod:`async_reduce.contrib`.
"""

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

from ._locations import OTHER_LOCATION
from .base import BaseHooks, MultipleHooks
from .debug import DebugHooks
from .statistics import (
    DetailStatistics,
    LatencySummary,
    LocationStatistics,
    OverallStatistics,
    PoolEventStatistics,
    ServiceEventStatistics,
    StatisticsDetailHooks,
    StatisticsOverallHooks,
    WorkerEventStatistics,
)

__all__ = [
    "OTHER_LOCATION",
    "AcquireTimedOut",
    "BaseHooks",
    "CallerLeft",
    "ConnectionAcquired",
    "ConnectionClosed",
    "ConnectionCreateFailed",
    "ConnectionCreated",
    "ConnectionReclaimed",
    "DebugHooks",
    "DetailStatistics",
    "ExecutionAbandoned",
    "ExecutionFinished",
    "LatencySummary",
    "LocationStatistics",
    "MultipleHooks",
    "OverallStatistics",
    "PoolEvent",
    "PoolEventStatistics",
    "ServiceEventStatistics",
    "StatisticsDetailHooks",
    "StatisticsOverallHooks",
    "WorkerEventStatistics",
]
