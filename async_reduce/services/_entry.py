"""One service instance and the bookkeeping around it.

An entry is created when a start begins and lives until its teardown ended.
Its ``state`` moves only forward::

    starting -> running <-> lingering
       |           |            |
       |           +-> stopping <+     (released, linger over, scope exit,
       |           +-> broken          a dependency failed) / (it failed)
       +-> (gone: the start failed or was abandoned)

``stopping`` and ``broken`` entries are no longer registered under their key,
so the next use starts a fresh instance; they stay in the scope's list until
their teardown ended, so that the scope's exit waits for them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any, Final

__all__ = [
    "BROKEN",
    "LINGERING",
    "RUNNING",
    "STARTING",
    "STOPPED",
    "STOPPING",
    "ServiceEntry",
]

STARTING: Final = "starting"
RUNNING: Final = "running"
LINGERING: Final = "lingering"
STOPPING: Final = "stopping"
BROKEN: Final = "broken"
STOPPED: Final = "stopped"


class ServiceEntry:
    """A service instance: its state, users and dependency edges."""

    __slots__ = (
        "abort_error",
        "acquire_watchers",
        "acquired",
        "cancelled_watchers",
        "dependencies",
        "dependents",
        "done",
        "entered",
        "failed_dependency",
        "failure",
        "instance",
        "key",
        "linger",
        "name",
        "ran_since",
        "reason",
        "scope",
        "seq",
        "serial",
        "start_began",
        "start_duration",
        "state",
        "stop_began",
        "stop_duration",
        "stop_signal",
        "task",
        "timer",
        "users",
        "watchers",
    )

    def __init__(
        self,
        scope: object,
        key: Hashable,
        name: str,
        serial: int,
        linger: float,
        loop: asyncio.AbstractEventLoop,
        now: float,
    ) -> None:
        self.scope = scope
        self.key = key
        self.name = name
        self.serial = serial
        self.state: str = STARTING
        self.instance: Any = None
        # Holds: use blocks plus acquire() calls not yet released.
        self.users = 0
        # The part of ``users`` taken by acquire() (what release() may drop).
        self.acquired = 0
        self.linger = linger
        self.timer: asyncio.TimerHandle | None = None
        # Services this one's start used, in order; each keeps it up.
        self.dependencies: list[ServiceEntry] = []
        # Services whose start used this one and whose teardown has not ended.
        self.dependents: set[ServiceEntry] = set()
        self.task: asyncio.Task[None] | None = None
        # Set to make the service task tear down.
        self.stop_signal: asyncio.Future[None] = loop.create_future()
        # Set when the teardown ended (or the start failed).
        self.done: asyncio.Future[None] = loop.create_future()
        # Error handed to the waiters when the start is aborted from outside.
        self.abort_error: BaseException | None = None
        # The factory's context manager was entered (the start can no longer
        # be interrupted, only followed by a teardown).
        self.entered = False
        # What its users are told (its own failure or a dependency's).
        self.failure: BaseException | None = None
        # The failed service that stopped this one, if any.
        self.failed_dependency: ServiceEntry | None = None
        self.reason: str | None = None
        # Tasks to cancel if it fails (cancel_on_failure=True), and those
        # cancelled for that reason.
        self.watchers: list[asyncio.Task[Any]] = []
        # The same for acquire() holds (release() may come from another task).
        self.acquire_watchers: list[asyncio.Task[Any]] = []
        self.cancelled_watchers: list[asyncio.Task[Any]] = []
        self.seq = 0  # order of becoming running within the scope
        self.start_began = now
        self.start_duration: float | None = None
        self.ran_since = 0.0
        self.stop_began = 0.0
        self.stop_duration: float | None = None

    @property
    def up(self) -> bool:
        """Running or lingering: usable at once."""
        return self.state is RUNNING or self.state is LINGERING

    def cause(self) -> BaseException | None:
        """What users are told: its failure, or its failed dependency's
        (read late: a failure is known for sure once its exit ended)."""
        dependency = self.failed_dependency
        return self.failure if dependency is None else dependency.cause()

    def __repr__(self) -> str:
        return (
            f"<service {self.name} #{self.serial} {self.state} users={self.users}"
            f" dependents={len(self.dependents)}>"
        )
