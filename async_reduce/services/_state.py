"""The synchronous decisions of a scope of services.

Every change of a service's state is decided here, synchronously, in plain
method calls: who holds what, what lingers, what stops and in which order,
who is told of a failure.  Nothing here awaits; the I/O (entering and exiting
the factories' context managers) happens in the service tasks
(:mod:`._lifecycle`), which call back here at each step.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Hashable
from typing import Any, Literal

from .._hookerrors import report_hook_error
from .._reducer import AsyncReducer
from ._entry import (
    BROKEN,
    LINGERING,
    RUNNING,
    STARTING,
    STOPPED,
    STOPPING,
    ServiceEntry,
)
from ._errors import ServiceBroken, ServicesClosed
from ._events import (
    ServiceEvent,
    ServiceFailed,
    ServiceLingering,
    ServiceStarted,
    ServiceStartFailed,
    ServiceStopped,
)
from ._graph import WaitGraph
from ._stats import ServiceStatistics

__all__ = ["ScopeState", "logger"]

logger = logging.getLogger("async_reduce.services")
perf_counter = time.perf_counter

_RECENT = 16


class ScopeState:
    """The registry of a scope and every decision about its services."""

    def __init__(self, reducer: AsyncReducer) -> None:
        self._reducer = reducer
        self._state: Literal["new", "open", "closing", "closed"] = "new"
        self._loop: asyncio.AbstractEventLoop | None = None
        # key -> the instance new users get (starting, running or lingering)
        self._registry: dict[Hashable, ServiceEntry] = {}
        # every instance whose teardown has not ended, oldest first
        self._live: dict[ServiceEntry, None] = {}
        # key -> users waiting for its start (they take holds as they resume)
        self._pending: dict[Hashable, int] = {}
        # id(service object) -> instances holding it through acquire()
        self._held: dict[int, list[ServiceEntry]] = {}
        self._waits = WaitGraph()
        self._serial = 0
        self._seq = 0
        self._started = 0
        self._start_failures = 0
        self._stopped = 0
        self._broken = 0
        self._recent: deque[ServiceStatistics] = deque(maxlen=_RECENT)

    def _next_to_stop(self) -> ServiceEntry | None:
        """The up service started last among those without dependents."""
        chosen = None
        for entry in self._live:
            if (
                (entry.state is RUNNING or entry.state is LINGERING)
                and not entry.dependents
                and (chosen is None or entry.seq > chosen.seq)
            ):
                chosen = entry
        return chosen

    def _record_dependency(self, starting: ServiceEntry, entry: ServiceEntry) -> None:
        if (
            starting.scope is self
            and starting.state is STARTING
            and starting is not entry
            and entry not in starting.dependencies
        ):
            starting.dependencies.append(entry)
            entry.dependents.add(starting)

    def _drop(self, entry: ServiceEntry) -> None:
        """One hold on ``entry`` ended."""
        entry.users -= 1
        if entry.state is RUNNING and not entry.users:
            self._maybe_idle(entry)

    def _maybe_idle(self, entry: ServiceEntry) -> None:
        """Linger or stop ``entry`` if nothing keeps it any more."""
        if (
            entry.state is not RUNNING
            or entry.users
            or entry.dependents
            or self._state != "open"
        ):
            return
        if self._pending.get(entry.key) and self._registry.get(entry.key) is entry:
            return  # users about to take it once they resume
        if entry.linger > 0:
            assert self._loop is not None
            entry.state = LINGERING
            entry.timer = self._loop.call_later(entry.linger, self._linger_over, entry)
            self._emit(ServiceLingering(self, entry.name, entry.serial, entry.linger))
        else:
            self._request_stop(entry, "released")

    def _stop_lingering(self, entry: ServiceEntry) -> None:
        entry.state = RUNNING
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None

    def _linger_over(self, entry: ServiceEntry) -> None:
        entry.timer = None
        if entry.state is LINGERING:
            self._request_stop(entry, "linger_expired")

    def _unregister(self, entry: ServiceEntry) -> None:
        if self._registry.get(entry.key) is entry:
            del self._registry[entry.key]
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None

    def _request_stop(self, entry: ServiceEntry, reason: str) -> None:
        """Make ``entry``'s task tear it down (no effect unless it is up)."""
        if entry.state is not RUNNING and entry.state is not LINGERING:
            return
        entry.state = STOPPING
        entry.reason = reason
        entry.stop_began = perf_counter()
        self._unregister(entry)
        if not entry.stop_signal.done():
            entry.stop_signal.set_result(None)

    def _abort_start(self, entry: ServiceEntry, error: BaseException) -> None:
        """Interrupt a start; its users get ``error``."""
        if entry.state is STARTING and entry.abort_error is None:
            entry.abort_error = error
            assert entry.task is not None
            entry.task.cancel()

    def _on_start_failed(self, entry: ServiceEntry, error: BaseException) -> None:
        entry.state = STOPPED
        entry.reason = "start_failed"
        self._unregister(entry)
        self._live.pop(entry, None)
        self._start_failures += 1
        self._release_dependencies(entry)
        self._emit(
            ServiceStartFailed(
                self,
                entry.name,
                entry.serial,
                perf_counter() - entry.start_began,
                error,
            )
        )
        if not entry.done.done():
            entry.done.set_result(None)

    def _on_started(self, entry: ServiceEntry, instance: Any) -> None:
        now = perf_counter()
        entry.instance = instance
        entry.start_duration = now - entry.start_began
        entry.ran_since = now
        self._seq += 1
        entry.seq = self._seq
        entry.state = RUNNING
        self._started += 1
        self._emit(
            ServiceStarted(
                self,
                entry.name,
                entry.serial,
                entry.start_duration,
                tuple(dep.name for dep in entry.dependencies),
            )
        )
        if self._registry.get(entry.key) is not entry:
            self._request_stop(entry, "released")  # an abandoned start's leftover
        elif not self._pending.get(entry.key):
            self._maybe_idle(entry)

    def _on_failed(self, entry: ServiceEntry, exc: BaseException) -> None:
        """``entry`` failed while up: unregister it at once (its teardown,
        which tells its users, follows its dependents' teardowns)."""
        entry.state = BROKEN
        entry.reason = "broken"
        entry.stop_began = perf_counter()
        entry.failure = exc
        self._unregister(entry)
        self._broken += 1

    def _on_broken_exit(self, entry: ServiceEntry, error: BaseException | None) -> None:
        """The broken ``entry`` was exited; ``error`` is what the exit raised."""
        if error is not None:
            entry.failure = error
        failure = entry.failure
        logger.error(
            "service %s failed while in use; its dependents were stopped and the"
            " next use starts a fresh one",
            entry.name,
            exc_info=failure,
        )
        assert failure is not None
        self._emit(ServiceFailed(self, entry.name, entry.serial, failure))
        self._tell_users(entry)

    def _tell_users(self, entry: ServiceEntry) -> None:
        for task in (*entry.watchers, *entry.acquire_watchers):
            if not task.done():
                task.cancel()
                entry.cancelled_watchers.append(task)

    def _stop_dependents(self, entry: ServiceEntry) -> list[asyncio.Future[None]]:
        """Stop every service depending on ``entry``; their ``done`` futures."""
        failure = entry.failure
        futures = []
        for dependent in sorted(entry.dependents, key=lambda e: e.seq, reverse=True):
            if dependent.state is STARTING:
                error: BaseException = ServicesClosed(
                    f"the scope exited while the service {dependent.name} started"
                )
                if failure is not None:
                    error = ServiceBroken(entry.name)
                    error.__cause__ = failure
                self._abort_start(dependent, error)
            elif dependent.up:
                if failure is not None:
                    dependent.failure = failure
                    dependent.failed_dependency = entry
                    self._tell_users(dependent)
                    self._request_stop(dependent, "dependency_broken")
                else:
                    self._request_stop(dependent, entry.reason or "scope_exit")
            futures.append(dependent.done)
        return futures

    def _release_dependencies(self, entry: ServiceEntry) -> None:
        for dependency in entry.dependencies:
            dependency.dependents.discard(entry)
            self._maybe_idle(dependency)

    def _on_stopped(
        self,
        entry: ServiceEntry,
        duration: float,
        teardown_error: BaseException | None,
    ) -> None:
        entry.stop_duration = duration
        self._unregister(entry)
        self._live.pop(entry, None)
        self._stopped += 1
        reason = entry.reason or "released"
        if teardown_error is not None:
            logger.error(
                "stopping service %s raised %s; the other services are stopped"
                " regardless",
                entry.name,
                type(teardown_error).__name__,
                exc_info=teardown_error,
            )
        self._recent.append(self._snapshot(entry, "stopped"))
        entry.state = STOPPED
        self._release_dependencies(entry)
        self._emit(
            ServiceStopped(
                self,
                entry.name,
                entry.serial,
                reason,  # type: ignore[arg-type]
                duration,
                perf_counter() - entry.ran_since,
                teardown_error,
            )
        )
        if not entry.done.done():
            entry.done.set_result(None)

    def _emit(self, event: ServiceEvent) -> None:
        """Tell the reducer's current hooks (if they listen to services)."""
        hooks = self._reducer.hooks
        if hooks is None:
            return
        method = getattr(hooks, "on_service_event", None)
        if method is None:
            return
        try:
            method(event)
        except Exception as exc:
            report_hook_error(hooks, "on_service_event", exc)

    def _snapshot(self, entry: ServiceEntry, state: Any) -> ServiceStatistics:
        return ServiceStatistics(
            name=entry.name,
            serial=entry.serial,
            state=state,
            users=entry.users,
            dependents=tuple(d.name for d in entry.dependents),
            dependencies=tuple(d.name for d in entry.dependencies),
            linger=entry.linger,
            start_duration=entry.start_duration,
            stop_duration=entry.stop_duration,
            stop_reason=entry.reason,
        )
