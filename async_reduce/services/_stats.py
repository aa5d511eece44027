"""Frozen snapshots returned by ``Services.statistics()``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["ServiceState", "ServiceStatistics", "ServicesStatistics"]

ServiceState = Literal[
    "starting", "running", "lingering", "stopping", "broken", "stopped"
]


@dataclass(frozen=True, slots=True)
class ServiceStatistics:
    """One service instance at the moment of the snapshot.

    Attributes:
        name: the service's name (``name=`` or the factory's
            ``module:qualname``; never its argument values).
        serial: number of the instance within the scope.
        state: ``"starting"``, ``"running"``, ``"lingering"``,
            ``"stopping"``, ``"broken"`` (failed, being torn down), or
            ``"stopped"`` (in :attr:`ServicesStatistics.recently_stopped`).
        users: holds (``use`` blocks plus ``acquire`` calls not released).
        dependents: names of the services whose start used it and which are
            not torn down yet.
        dependencies: names of the services its start used.
        linger: seconds it is kept after its last user left.
        start_duration: seconds its start took (``None`` while starting).
        stop_duration: seconds its teardown took (``None`` until it ended).
        stop_reason: why it was stopped (``None`` while up); see
            :class:`~async_reduce.services.ServiceStopped`.
    """

    name: str
    serial: int
    state: ServiceState
    users: int
    dependents: tuple[str, ...]
    dependencies: tuple[str, ...]
    linger: float
    start_duration: float | None
    stop_duration: float | None
    stop_reason: str | None


@dataclass(frozen=True, slots=True)
class ServicesStatistics:
    """A scope of services at the moment of the snapshot.

    Attributes:
        state: ``"new"`` (not entered), ``"open"``, ``"closing"`` (exiting)
            or ``"closed"``.
        services: every instance not torn down yet, oldest first.
        started: starts that succeeded.
        start_failures: starts that failed or were abandoned.
        stopped: instances torn down (broken ones included).
        broken: instances that failed while running.
        recently_stopped: the last few instances torn down, oldest first,
            with their stop durations.
    """

    state: Literal["new", "open", "closing", "closed"]
    services: tuple[ServiceStatistics, ...]
    started: int
    start_failures: int
    stopped: int
    broken: int
    recently_stopped: tuple[ServiceStatistics, ...]
