"""The public scope of services: use, acquire, release, starts, exit.

The decisions about each service's state live in :mod:`._state`, the task
owning each service in :mod:`._lifecycle`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, TypeVar, overload

from .._reducer import AsyncReducer
from ._entry import (
    BROKEN,
    LINGERING,
    RUNNING,
    STARTING,
    STOPPING,
    ServiceEntry,
)
from ._errors import (
    ServiceCycleError,
    ServiceNotHeld,
    ServicesClosed,
)
from ._identity import NAMED, Identity, StartIdent
from ._lifecycle import current_start, run_service
from ._state import ScopeState
from ._stats import ServicesStatistics
from ._use import ServiceUse

__all__ = ["Services"]

T = TypeVar("T")

perf_counter = time.perf_counter


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


class Services(ScopeState):
    """A scope owning shared services: each started once however many ask,
    kept while anyone uses it, stopped in dependency order.

    ::

        async with Services() as services:
            async with services.use(database, "postgres://db/app") as db:
                ...

    A *factory* is an async context manager function (written with
    :func:`contextlib.asynccontextmanager`: set up, ``yield`` the service,
    tear down), a plain async generator function of that shape (as aiohttp's
    ``cleanup_ctx`` takes), or any callable returning an async context
    manager (a class such as :class:`~async_reduce.pool.ConnectionPool`
    works).  A service is identified by its factory plus the factory's
    arguments bound to its signature and compared by equality (as reducer
    keys are), or by an explicit ``name=``.

    Semantics:

    * **Started once.** Concurrent first users wait on one start, coalesced
      through the reducer; later users get the running instance without
      yielding to the event loop.  A failing start raises its error in every
      user waiting for it (never wrapped: each user gets a copy of its own,
      as the reducer hands out errors), leaves nothing registered, and the
      next use tries again.
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
        super().__init__(reducer)
        self._identities: dict[Any, Identity] = {}
        self._tasks: set[asyncio.Task[None]] = set()

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

    # -- using services ----------------------------------------------------------

    @overload
    def use(
        self,
        factory: Callable[..., AbstractAsyncContextManager[T]],
        /,
        *args: Any,
        name: Hashable | None = None,
        linger: float | None = None,
        cancel_on_failure: bool = False,
        **kwargs: Any,
    ) -> ServiceUse[T]: ...

    @overload
    def use(
        self,
        factory: Callable[..., AsyncIterator[T]],
        /,
        *args: Any,
        name: Hashable | None = None,
        linger: float | None = None,
        cancel_on_failure: bool = False,
        **kwargs: Any,
    ) -> ServiceUse[T]: ...

    def use(
        self,
        factory: Callable[..., Any],
        /,
        *args: Any,
        name: Hashable | None = None,
        linger: float | None = None,
        cancel_on_failure: bool = False,
        **kwargs: Any,
    ) -> ServiceUse[Any]:
        """``async with services.use(factory, *args, **kwargs) as svc:``

        Holds the service for the block: starts it (once, however many ask
        at the same time) unless it is running, and releases it when the
        block is left.  Every error raised while starting it (by its factory,
        or by a start it depends on) reaches the block as that error, never
        wrapped (a copy per waiting user, as the reducer hands out errors).

        Args:
            factory: an async context manager function, an async
                generator function of that shape, or any callable returning
                an async context manager.
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

    @overload
    async def acquire(
        self,
        factory: Callable[..., AbstractAsyncContextManager[T]],
        /,
        *args: Any,
        name: Hashable | None = None,
        linger: float | None = None,
        cancel_on_failure: bool = False,
        **kwargs: Any,
    ) -> T: ...

    @overload
    async def acquire(
        self,
        factory: Callable[..., AsyncIterator[T]],
        /,
        *args: Any,
        name: Hashable | None = None,
        linger: float | None = None,
        cancel_on_failure: bool = False,
        **kwargs: Any,
    ) -> T: ...

    async def acquire(
        self,
        factory: Callable[..., Any],
        /,
        *args: Any,
        name: Hashable | None = None,
        linger: float | None = None,
        cancel_on_failure: bool = False,
        **kwargs: Any,
    ) -> Any:
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
        return entry.instance

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
        if name is None and not kwargs:
            # The common call first: positional arguments binding one for one
            # to a known factory (the key Identity.key() builds for them).
            try:
                identity = self._identities.get(factory)
            except TypeError:  # an unhashable callable
                identity = None
            if identity is not None and len(args) == identity.plain:
                key: Hashable = (factory, args)
                try:
                    hash(key)
                except TypeError:
                    pass  # Identity.key() below raises the clear error
                else:
                    return key, identity.name
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
            if not entry.entered and entry.state is STARTING:
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
