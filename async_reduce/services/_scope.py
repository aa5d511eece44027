"""The scope of services: registry, reference counts, stop order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Hashable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Literal, TypeVar

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
from ._errors import (
    ServiceBroken,
    ServiceCycleError,
    ServiceNotHeld,
    ServicesClosed,
)
from ._events import (
    ServiceEvent,
    ServiceFailed,
    ServiceLingering,
    ServiceStarted,
    ServiceStartFailed,
    ServiceStopped,
)
from ._graph import WaitGraph
from ._identity import NAMED, Identity, StartIdent
from ._lifecycle import current_start, run_service
from ._stats import ServicesStatistics, ServiceStatistics
from ._use import ServiceUse

__all__ = ["Services"]

T = TypeVar("T")

logger = logging.getLogger("async_reduce.services")
perf_counter = time.perf_counter

_RECENT = 16


def _check_linger(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"linger must be a number of seconds, got {type(value).__name__}"
        )
    if not value >= 0 or math.isinf(value):
        raise ValueError(
            f"linger must be a finite number of seconds >= 0, got {value!r}"
        )
    return float(value)


class Services:
    """A scope owning shared services: each started once however many ask,
    kept while anyone uses it, stopped in dependency order.

    ::

        async with Services() as services:
            async with services.use(database, "postgres://db/app") as db:
                ...

    A *factory* is an async context manager function (written with
    :func:`contextlib.asynccontextmanager`: set up, ``yield`` the service,
    tear down), or any callable returning an async context manager (a class
    such as :class:`~async_reduce.pool.ConnectionPool` works).  A service is
    identified by its factory plus the factory's arguments bound to its
    signature and compared by equality (as reducer keys are), or by an
    explicit ``name=``.

    Semantics:

    * **Started once.** Concurrent first users wait on one start, coalesced
      through the reducer; later users get the running instance without
      yielding to the event loop.  A failing start raises its error, itself,
      in every user waiting for it, leaves nothing registered, and the next
      use tries again.
    * **Cancellation.** A user cancelled while waiting for a start leaves;
      the start goes on for the others and is cancelled when nobody waits any
      more (its factory sees ``CancelledError`` inside its setup).  Cancelling
      a user that holds a service just releases its hold when its ``use``
      block is left.
    * **Reference counts.** A service stops when its last hold is released,
      or ``linger`` seconds later (a use meanwhile keeps it, without
      restart), or when the scope exits.  Its teardown runs in the task that
      entered it, which the scope owns; leaving a ``use`` block never waits
      for it.
    * **Dependencies.** Services used by a factory while its service starts
      (in any task the start creates) are its dependencies: each stays up
      while the dependent is up, and is stopped after it.  A start that
      would wait for itself, directly or through others, raises
      :class:`ServiceCycleError` naming the cycle.
    * **Failure.** A running service whose task is cancelled from inside
      (a task group of the service whose background task failed) or from
      outside is *broken*: it is unregistered at once (the next use starts a
      fresh one), its failure is logged, every service depending on it is
      stopped, then its context manager is exited with the failure.  Its
      users are told: a ``use`` block holding it raises
      :class:`ServiceBroken` (``__cause__``: the failure) when left, unless
      it is raising already; with ``cancel_on_failure=True`` the holding task
      is also cancelled at once (and the block raises ``ServiceBroken``
      instead of the ``CancelledError``).
    * **Scope exit.** Starts in progress are aborted (their users get
      :class:`ServicesClosed`); then every service is stopped, dependents
      before their dependencies and otherwise the most recently started
      first, one at a time.  A teardown error is logged and does not stop
      the others.  The exception that ends the ``async with`` block, if
      any, propagates unchanged (never wrapped in an ``ExceptionGroup``,
      never replaced by a teardown error); nothing is stopped before the
      block's own ``except``/``finally`` code has run, so an error handler
      can still use the services.  Cancelling the exiting task cancels the
      teardowns running at that moment; the remaining services are still
      stopped, then ``CancelledError`` propagates.  While exiting, running
      services can still be used (a teardown may need one); nothing new
      starts.
    * **Events.** Starts, failed starts, lingering, failures and stops are
      reported to ``on_service_event`` of the reducer's hooks (frozen event
      objects from :mod:`async_reduce.services`); a failing hook never
      affects a service.
    * **Event loop.** The scope binds to the running loop when entered; it
      is not thread-safe.

    Args:
        linger: default seconds a service is kept after its last user left
            (``use(..., linger=)`` may ask for more).
        reducer: the :class:`~async_reduce.AsyncReducer` coalescing starts
            (its hooks receive the service events; its ``timeout`` bounds
            the wait for a start; it must not keep outcomes, ``share_for=0``);
            by default a private one.
        hooks: hooks for the private reducer (pass ``reducer`` or ``hooks``,
            not both).

    Raises:
        TypeError, ValueError: a bad argument, named in the message.

    .. versionadded:: 2.0
    """

    def __init__(
        self,
        *,
        linger: float = 0.0,
        reducer: AsyncReducer | None = None,
        hooks: Any = None,
    ) -> None:
        self._linger = _check_linger(linger)
        if reducer is None:
            reducer = AsyncReducer(hooks=hooks)
        elif not isinstance(reducer, AsyncReducer):
            raise TypeError(
                f"reducer must be an AsyncReducer, got {type(reducer).__name__}"
            )
        elif hooks is not None:
            raise TypeError("pass reducer or hooks, not both")
        if getattr(reducer, "share_for", 0.0):
            # A kept outcome would hand out a service that has since stopped,
            # or a start failure instead of a new attempt.
            raise ValueError(
                "reducer: a Services scope needs a reducer that keeps no"
                f" outcomes (share_for=0), got share_for={reducer.share_for}"
            )
        self._reducer = reducer
        self._state: Literal["new", "open", "closing", "closed"] = "new"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._registry: dict[Hashable, ServiceEntry] = {}
        self._live: dict[ServiceEntry, None] = {}  # ordered set
        self._pending: dict[Hashable, int] = {}
        self._held: dict[int, list[ServiceEntry]] = {}
        self._identities: dict[Any, Identity] = {}
        self._waits = WaitGraph()
        self._tasks: set[asyncio.Task[None]] = set()
        self._serial = 0
        self._seq = 0
        self._started = 0
        self._start_failures = 0
        self._stopped = 0
        self._broken = 0
        self._recent: deque[ServiceStatistics] = deque(maxlen=_RECENT)

    def __repr__(self) -> str:
        return f"<Services {self._state} services={len(self._live)}>"

    # -- the scope -------------------------------------------------------------

    async def __aenter__(self) -> Services:
        if self._state != "new":
            raise RuntimeError("a Services scope can be entered only once")
        self._loop = asyncio.get_running_loop()
        self._state = "open"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop every service (see *Scope exit* above); what ``async with``
        does on exit.  Does nothing when the scope is not open."""
        if self._state != "open":
            return
        self._state = "closing"
        cancelled: BaseException | None = None
        for starting in list(self._live):
            if starting.state is STARTING:
                self._abort_start(
                    starting,
                    ServicesClosed("the scope exited while the service started"),
                )
        while self._live:
            entry = self._next_to_stop()
            if entry is not None:
                self._request_stop(entry, "scope_exit")
                waits = [entry.done]
            else:
                waits = [live.done for live in self._live]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError as exc:
                cancelled = exc
                for live in self._live:
                    if live.state is STOPPING or live.state is BROKEN:
                        assert live.task is not None
                        live.task.cancel()
        self._state = "closed"
        self._identities.clear()
        if cancelled is not None:
            raise cancelled

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

    # -- using services ----------------------------------------------------------

    def use(
        self,
        factory: Callable[..., AbstractAsyncContextManager[T]],
        /,
        *args: Any,
        name: Hashable | None = None,
        linger: float | None = None,
        cancel_on_failure: bool = False,
        **kwargs: Any,
    ) -> ServiceUse[T]:
        """``async with services.use(factory, *args, **kwargs) as svc:``

        Holds the service for the block: starts it (once, however many ask
        at the same time) unless it is running, and releases it when the
        block is left.  Every error raised while starting it (by its factory,
        or by a start it depends on) reaches the block as itself.

        Args:
            factory: an async context manager function (or any callable
                returning an async context manager).
            *args, **kwargs: the factory's arguments; with ``factory``, they
                identify the service (see the class documentation).
            name: identify the service by this hashable instead (needed when
                an argument is unhashable).  Keywords ``name``, ``linger``
                and ``cancel_on_failure`` are this method's, never the
                factory's.
            linger: keep the service this many seconds after its last user
                left; the largest asked for by any use applies.  Default:
                the scope's.
            cancel_on_failure: cancel the task holding the service if the
                service fails meanwhile; the block then raises
                :class:`ServiceBroken`.

        Raises:
            TypeError: ``factory`` is not callable, the arguments do not fit
                its signature or are unhashable (without ``name``), or an
                option has the wrong type.
            ValueError: ``linger`` is negative.
        """
        key, shown = self._key(factory, args, kwargs, name)
        if linger is not None:
            linger = _check_linger(linger)
        if cancel_on_failure is not False and cancel_on_failure is not True:
            raise TypeError(
                f"cancel_on_failure must be True or False, got {cancel_on_failure!r}"
            )
        return ServiceUse(
            self, key, shown, factory, args, kwargs, linger, cancel_on_failure
        )

    async def acquire(
        self,
        factory: Callable[..., AbstractAsyncContextManager[T]],
        /,
        *args: Any,
        name: Hashable | None = None,
        linger: float | None = None,
        cancel_on_failure: bool = False,
        **kwargs: Any,
    ) -> T:
        """Hold a service until :meth:`release`: ``svc = await services.acquire(...)``.

        Arguments and errors as for :meth:`use`.  Cancelled while waiting for
        the start, the caller holds nothing.  With ``cancel_on_failure=True``
        the task that called ``acquire`` is cancelled if the service fails
        while held; a ``release`` from that task, or the last ``release``,
        ends that.
        """
        key, shown = self._key(factory, args, kwargs, name)
        if linger is not None:
            linger = _check_linger(linger)
        if cancel_on_failure is not False and cancel_on_failure is not True:
            raise TypeError(
                f"cancel_on_failure must be True or False, got {cancel_on_failure!r}"
            )
        entry = self._try_take(key, linger)
        if entry is None:
            entry = await self._acquire_slow(
                ServiceUse(self, key, shown, factory, args, kwargs, linger, False)
            )
        if not entry.acquired:
            self._held.setdefault(id(entry.instance), []).append(entry)
        entry.acquired += 1
        if cancel_on_failure is not False:
            task = asyncio.current_task()
            if task is not None:
                entry.acquire_watchers.append(task)
        instance: T = entry.instance
        return instance

    def release(self, service: object) -> None:
        """Drop one hold taken by :meth:`acquire` on the service ``service``.

        The service stops (now, or after its linger) when that was its last
        hold.  Releasing a service that has since failed or been stopped
        just drops the hold.

        Raises:
            ServiceNotHeld: ``service`` is not held through :meth:`acquire`
                (never acquired, or released as often as acquired); nothing
                changed.
        """
        entries = self._held.get(id(service))
        entry: ServiceEntry | None = None
        if entries:
            for candidate in reversed(entries):
                if candidate.instance is service:
                    entry = candidate
                    break
        if entry is None:
            raise ServiceNotHeld(
                f"release(): this {type(service).__name__} object is not held"
                " through acquire() in this scope (never acquired, or already"
                " released); nothing was changed"
            )
        entry.acquired -= 1
        if not entry.acquired:
            assert entries is not None
            entries.remove(entry)
            if not entries:
                del self._held[id(service)]
        watchers = entry.acquire_watchers
        if watchers:
            # Ends the watch of the releasing task; with no hold left, of all.
            task = asyncio.current_task()
            if not entry.acquired:
                watchers.clear()
            elif task in watchers:
                watchers.remove(task)
        self._drop(entry)

    # -- internals used by ServiceUse ---------------------------------------------

    def _key(
        self,
        factory: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        name: Hashable | None,
    ) -> tuple[Hashable, str]:
        if name is not None:
            try:
                hash(name)
            except TypeError:
                raise TypeError(
                    f"name must be hashable, got {type(name).__name__}"
                ) from None
            if not callable(factory):
                raise TypeError(
                    f"factory must be callable, got {type(factory).__name__}"
                )
            return (NAMED, name), str(name)
        try:
            identity = self._identities.get(factory)
        except TypeError:  # an unhashable callable
            identity = None
        if identity is None:
            if not callable(factory):
                raise TypeError(
                    f"factory must be callable, got {type(factory).__name__}"
                )
            identity = Identity(factory)
            with contextlib.suppress(TypeError):
                self._identities[factory] = identity
        return identity.key(args, kwargs), identity.name

    def _try_take(self, key: Hashable, linger: float | None) -> ServiceEntry | None:
        """Hold the running service ``key`` without waiting, if there is one."""
        entry = self._registry.get(key)
        if entry is None:
            return None
        state = entry.state
        if state is RUNNING:
            entry.users += 1
        elif state is LINGERING:
            entry.users += 1
            self._stop_lingering(entry)
        else:
            return None
        if linger is not None and linger > entry.linger:
            entry.linger = linger
        starting = current_start.get()
        if starting is not None:
            self._record_dependency(starting, entry)
        return entry

    async def _acquire_slow(self, use: ServiceUse[Any]) -> ServiceEntry:
        """Hold service ``use._key``, starting it (through the reducer) if
        need be."""
        key = use._key
        shown = use._name
        if self._loop is not None and asyncio.get_running_loop() is not self._loop:
            raise RuntimeError("this Services scope belongs to another event loop")
        starting = current_start.get()
        if starting is not None and (
            starting.scope is not self or starting.state is not STARTING
        ):
            starting = None
        ident = StartIdent(self, key, shown)
        linger = self._linger if use._linger is None else max(self._linger, use._linger)
        while True:
            if self._state != "open":
                raise ServicesClosed(
                    f"cannot start service {shown}: the scope is {self._state}"
                )
            if starting is not None:
                cycle = self._waits.cycle_through(
                    starting.key, starting.name, key, shown
                )
                if cycle is not None:
                    raise ServiceCycleError(cycle)
                self._waits.add(starting.key, starting.name, key, shown)
            self._pending[key] = self._pending.get(key, 0) + 1
            entry: ServiceEntry | None = None
            try:
                start = self._start(
                    key, shown, use._factory, use._args, use._kwargs, linger
                )
                entry = await self._reducer(start, ident=ident)
                entry = self._try_take(key, use._linger) if entry.up else None
            finally:
                if starting is not None:
                    self._waits.remove(starting.key, key)
                count = self._pending[key] - 1
                if count:
                    self._pending[key] = count
                else:
                    del self._pending[key]
                    current = self._registry.get(key)
                    if current is not None and current.state is RUNNING:
                        self._maybe_idle(current)
            if entry is not None:
                return entry
            # It stopped between the end of its start and this caller
            # resuming (scope exit, a failed dependency): try again.

    async def _start(
        self,
        key: Hashable,
        shown: str,
        factory: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        linger: float,
    ) -> ServiceEntry:
        """The coalesced start: one execution per key through the reducer."""
        if self._state != "open":
            raise ServicesClosed(
                f"cannot start service {shown}: the scope is {self._state}"
            )
        loop = self._loop
        assert loop is not None
        self._serial += 1
        entry = ServiceEntry(
            self, key, shown, self._serial, linger, loop, perf_counter()
        )
        self._registry[key] = entry
        self._live[entry] = None
        started: asyncio.Future[ServiceEntry] = loop.create_future()
        task = loop.create_task(
            run_service(self, entry, factory, args, kwargs, started)
        )
        entry.task = task
        self._tasks.add(task)
        task.add_done_callback(lambda task: self._task_done(task, entry, started))
        try:
            return await started
        except asyncio.CancelledError:
            # Nobody waits any more: stop starting (unless it just started,
            # then it is idle and stops as any unused service does).
            if entry.state is STARTING:
                task.cancel()
            raise

    def _task_done(
        self,
        task: asyncio.Task[None],
        entry: ServiceEntry,
        started: asyncio.Future[ServiceEntry],
    ) -> None:
        self._tasks.discard(task)
        if entry.state is STARTING:
            # Cancelled before its first step: run_service never ran.
            error = entry.abort_error or asyncio.CancelledError()
            self._on_start_failed(entry, error)
            if not started.done():
                if isinstance(error, asyncio.CancelledError):
                    started.cancel()
                else:
                    started.set_exception(error)

    # -- state decisions (synchronous) ------------------------------------------

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

    # -- introspection -----------------------------------------------------------

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

    def statistics(self) -> ServicesStatistics:
        """A frozen snapshot of the scope and each service in it."""
        return ServicesStatistics(
            state=self._state,
            services=tuple(self._snapshot(e, e.state) for e in self._live),
            started=self._started,
            start_failures=self._start_failures,
            stopped=self._stopped,
            broken=self._broken,
            recently_stopped=tuple(self._recent),
        )
