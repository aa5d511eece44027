"""Service events, delivered to ``on_service_event`` of the reducer's hooks.

Each is a frozen, slotted dataclass, so fields added later never break a hook.
Events name a service by its name (the ``name=`` given to ``use``, or the
factory's ``module:qualname``) and never carry argument values, so they can
go to logs and metric labels without leaking a DSN or a password.  Durations
are seconds (``time.perf_counter`` differences).  Each class has a ``kind``
(``"started"``, ``"start_failed"``, ``"lingering"``, ``"failed"``,
``"stopped"``) for dispatching or labelling without importing the classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

__all__ = [
    "ServiceFailed",
    "ServiceEvent",
    "ServiceLingering",
    "ServiceStartFailed",
    "ServiceStarted",
    "ServiceStopped",
    "StopReason",
]

StopReason = Literal["released", "linger_expired", "scope_exit", "dependency_broken"]


@dataclass(frozen=True, slots=True)
class ServiceStarted:
    """A service's factory entered: the service is running.

    Attributes:
        scope: the :class:`~async_reduce.services.Services` it runs in.
        name: the service's name.
        serial: number of the instance within the scope (a restart gets a new
            one).
        duration: seconds the start took.
        dependencies: names of the services its start used.
    """

    kind: ClassVar[str] = "started"

    scope: object
    name: str
    serial: int
    duration: float
    dependencies: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ServiceStartFailed:
    """A start failed (or was cancelled because nobody waited any more);
    nothing was registered.

    ``exception`` is what the waiting users received (a ``CancelledError``
    for a start nobody waited for any more).
    """

    kind: ClassVar[str] = "start_failed"

    scope: object
    name: str
    serial: int
    duration: float
    exception: BaseException


@dataclass(frozen=True, slots=True)
class ServiceLingering:
    """The last user released the service; it stops in ``linger`` seconds
    unless used again."""

    kind: ClassVar[str] = "lingering"

    scope: object
    name: str
    serial: int
    linger: float


@dataclass(frozen=True, slots=True)
class ServiceFailed:
    """A running service failed (its context manager raised, or its task was
    cancelled from inside, while it was in use): its dependents are stopped,
    then it is torn down; the next use starts a fresh one."""

    kind: ClassVar[str] = "failed"

    scope: object
    name: str
    serial: int
    exception: BaseException


@dataclass(frozen=True, slots=True)
class ServiceStopped:
    """A service was torn down.

    Attributes:
        reason: ``"released"`` (last user left), ``"linger_expired"``,
            ``"scope_exit"``, ``"dependency_broken"`` (a service it depends
            on failed), or ``"broken"`` (it failed itself).
        duration: seconds its teardown took.
        lifetime: seconds from the end of its start to the end of its
            teardown.
        exception: what the teardown raised (logged, never propagated), else
            ``None``.
    """

    kind: ClassVar[str] = "stopped"

    scope: object
    name: str
    serial: int
    reason: StopReason | Literal["broken"]
    duration: float
    lifetime: float
    exception: BaseException | None = None


ServiceEvent = (
    ServiceStarted
    | ServiceStartFailed
    | ServiceLingering
    | ServiceFailed
    | ServiceStopped
)
