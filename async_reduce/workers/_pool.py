"""The worker-thread pool: blocking calls run on threads, coalesced,
prioritized and bounded."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import itertools
import os
import threading
import weakref
from collections.abc import Callable, Coroutine, Generator, Hashable, Iterable
from typing import Any, TypeVar

from .._hookerrors import report_hook_error
from .._reducer import AsyncReducer
from .._validate import UNSET, Unset, check_bool, check_timeout
from ..hooks.base import BaseHooks, MultipleHooks
from ._errors import WorkerQueueFull
from ._events import (
    WorkerCallFinished,
    WorkerCallRejected,
    WorkerEvent,
    WorkerStarted,
    WorkerStopped,
)
from ._start import IDENT, CallKey, Start
from ._state import (
    Job,
    PoolState,
    RoomWaiter,
    Ticket,
    Worker,
    closed_error,
    fail_later,
)
from ._stats import WorkerPoolStatistics
from ._threads import start_worker

__all__ = ["WorkerPool"]

R = TypeVar("R")

_get_running_loop = asyncio.get_running_loop
_copy_context = contextvars.copy_context
_pool_numbers = itertools.count(1)
_JOIN_TIMEOUT = 1.0
# [(loop, key)] while a submitted call has not reached the reducer; emptied
# when it has (or its task ended first).
_Admission = list[
    tuple[asyncio.AbstractEventLoop, Hashable]
]  # seconds to wait for a thread that has left its work loop


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _check_priority(priority: Any) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(f"priority must be an int, got {type(priority).__name__}")
    return priority


def _wants_worker_events(hooks: Any) -> bool:
    if hooks is None:
        return False
    if isinstance(hooks, MultipleHooks):
        return any(map(_wants_worker_events, hooks.hooks_list))
    method = getattr(type(hooks), "on_worker_event", None)
    if isinstance(hooks, BaseHooks):
        return method is not BaseHooks.on_worker_event
    return callable(method)


class WorkerPool:
    """Runs blocking functions on worker threads for asyncio callers.

    ``await pool.run(fn, *args, **kwargs)`` runs ``fn(*args, **kwargs)`` on a
    worker thread and returns its result, or raises its exception.  Like
    :func:`asyncio.to_thread`, the call runs in a copy of the caller's
    :mod:`contextvars` context.  On top of that:

    * **Coalescing.**  Concurrent calls with the same function and arguments
      (compared by equality and type), or the same ``ident=``, run once,
      through the pool's :class:`~async_reduce.AsyncReducer`, and every
      caller gets the outcome: the reducer's hooks, timeouts and cancellation
      contract apply.  Calls whose arguments are not hashable run each on
      their own unless ``ident=`` is given; ``coalesce=False`` turns
      coalescing off for the whole pool.  A call that joins an identical one
      shares its queue slot, and lifts it to its own priority if that is
      higher and the call is still queued.
    * **Priorities.**  Higher ``priority`` first; first come, first served
      within a priority.  Aging bounds how long a low priority can starve:
      a queued call gains one priority level every ``aging`` seconds, so a
      call queued at time *t* with priority *p* runs before every call of
      priority *q > p* queued after *t + (q - p) * aging*.
    * **Bounds and scaling.**  At most ``max_workers`` threads; a thread is
      started when a call is queued, no thread is idle and fewer than
      ``max_workers`` exist, and a thread idle for ``idle_timeout`` seconds
      ends, down to ``min_workers``.  With ``max_queue``, at most that many
      calls wait for a worker: :meth:`run` and :meth:`submit` wait for room
      (higher priority first), :meth:`submit_nowait` raises
      :class:`WorkerQueueFull`.  Calls that join an identical call in flight
      need no room.
    * **Cancellation.**  A caller that is cancelled (or whose timeout
      elapses) leaves; when every caller of a queued call has left, the call
      is removed from the queue and never runs (from the moment the last
      caller's task has received its ``CancelledError``/``TimeoutError``;
      with a reducer made with ``orphans="finish"`` it is kept and runs, as
      that reducer's contract says).
      A call already running cannot be interrupted (Python threads cannot
      be): it runs to its end on its thread and its outcome is dropped.
    * **Event loops.**  The pool is not bound to a loop: each caller's
      result is handed to that caller's loop (``call_soon_threadsafe``), so
      loops in several threads can share one pool.  Coalescing happens
      within one loop, as the reducer's executions are per loop.
    * **Shutdown.**  ``async with pool:`` shuts the pool down on exit;
      :meth:`shutdown` and :meth:`drain` wait for the work.  After
      :meth:`shutdown` every call raises :class:`WorkerPoolClosed`.  Worker
      threads are daemon threads: a call stuck in a thread never keeps the
      process from exiting (and is abandoned when it exits).

    Args:
        max_workers: most threads at once; default ``min(32, cpus + 4)``, as
            :class:`concurrent.futures.ThreadPoolExecutor`.
        min_workers: threads kept even when idle (started at once).
        max_queue: most calls waiting for a worker; ``None`` is unbounded.
        idle_timeout: seconds an idle thread above ``min_workers`` waits for
            work before it ends; ``None`` keeps idle threads.
        aging: seconds for a queued call to gain one priority level;
            ``None`` turns aging off (strict priorities: a steady flow of
            higher-priority calls can then starve lower ones).
        coalesce: run identical concurrent calls once (default ``True``).
        reducer: the reducer coalesced calls go through (its hooks also get
            the pool's events through ``on_worker_event``); default: a new
            one with ``hooks``.
        hooks: hooks for the pool's own reducer (pass ``reducer`` or
            ``hooks``, not both).
        name: shown in ``repr()`` and in the worker threads' names.

    Raises:
        TypeError, ValueError: an argument has the wrong type or value.

    .. versionadded:: 2.0
    """

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        min_workers: int = 0,
        max_queue: int | None = None,
        idle_timeout: float | None = 60.0,
        aging: float | None = 10.0,
        coalesce: bool = True,
        reducer: AsyncReducer | None = None,
        hooks: Any = None,
        name: str | None = None,
    ) -> None:
        if max_workers is None:
            max_workers = min(32, (os.cpu_count() or 1) + 4)
        max_workers = _check_int(max_workers, "max_workers", 1)
        min_workers = _check_int(min_workers, "min_workers", 0)
        if min_workers > max_workers:
            raise ValueError(
                f"min_workers ({min_workers}) must not exceed "
                f"max_workers ({max_workers})"
            )
        if max_queue is not None:
            max_queue = _check_int(max_queue, "max_queue", 1)
        idle_timeout = check_timeout(idle_timeout, "idle_timeout")
        aging = check_timeout(aging, "aging")
        self._coalesce = check_bool(coalesce, "coalesce")
        if reducer is None:
            reducer = AsyncReducer(hooks=hooks)
        elif not isinstance(reducer, AsyncReducer):
            raise TypeError(
                f"reducer must be an AsyncReducer, got {type(reducer).__name__}"
            )
        elif hooks is not None:
            raise TypeError(
                "pass hooks= or reducer=, not both (the pool reports to reducer.hooks)"
            )
        if name is None:
            name = f"WorkerPool-{next(_pool_numbers)}"
        elif not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        self._name = name
        self._reducer = reducer
        # The reducer's hooks are assignable: re-read them, and whether they
        # want worker events, when they change.
        self._hooks_seen: Any = None
        self._events_wanted = False
        state = self._state = PoolState(
            min_workers, max_workers, max_queue, idle_timeout, aging
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._checked_fn: Any = None  # the last function found to be plain
        # Coalesced calls submitted to a bounded queue whose task has not
        # reached the reducer yet: an identical call joins them without room.
        self._admitted: dict[tuple[asyncio.AbstractEventLoop, Hashable], int] = {}
        # Queued or running coalesced calls, for callers joining them with a
        # higher priority.
        self._jobs: dict[tuple[asyncio.AbstractEventLoop, Hashable], Job] = {}
        state.on_stopped = _weak_report_stopped(self)
        # An unused pool can be collected: its threads then finish the queue
        # and end (they refer to the state, not to the pool).
        finalizer = weakref.finalize(self, _close_unused, state)
        finalizer.atexit = False
        for worker in state.resize(min_workers, max_workers):
            self._start_worker(worker)

    # -- introspection ---------------------------------------------------------

    @property
    def reducer(self) -> AsyncReducer:
        """The reducer coalesced calls go through."""
        return self._reducer

    @property
    def name(self) -> str:
        """The pool's name (its threads are called ``<name>-worker-<n>``)."""
        return self._name

    @property
    def closed(self) -> bool:
        """Whether :meth:`shutdown` was called."""
        return self._state.closed

    def statistics(self) -> WorkerPoolStatistics:
        """A consistent, frozen snapshot of the pool's state and counters."""
        return self._state.snapshot()

    def __repr__(self) -> str:
        stats = self._state.snapshot()
        return (
            f"<WorkerPool {self._name!r} workers={stats.workers} busy={stats.busy}"
            f" queued={stats.queued} max_workers={stats.max_workers}"
            f"{' closed' if stats.closed else ''}>"
        )

    # -- calling ---------------------------------------------------------------

    def run(
        self,
        fn: Callable[..., R],
        /,
        *args: Any,
        priority: int = 0,
        ident: Hashable | None = None,
        **kwargs: Any,
    ) -> Coroutine[Any, Any, R]:
        """Run ``fn(*args, **kwargs)`` on a worker thread; its result.

        Returns a coroutine (that of :meth:`apply`, with no layer between).

        Waits for room when the queue is full.  Cancelling the caller
        leaves the call (see the class documentation); the pool's reducer's
        ``timeout`` applies.  ``priority`` and ``ident`` are taken by the
        pool: use :meth:`apply` for a function taking arguments of those
        names.

        Args:
            fn: a plain (blocking) callable, not a coroutine function.
            priority: higher runs first.
            ident: the key to coalesce on, instead of ``fn`` and arguments.

        Raises:
            WorkerPoolClosed: the pool is shut down.
            TypeError: ``fn`` is not callable or is a coroutine function,
                ``priority`` is not an int, ``ident`` is unhashable.
            BaseException: whatever ``fn`` raised.
        """
        return self.apply(fn, args, kwargs, priority=priority, ident=ident)

    async def apply(
        self,
        fn: Callable[..., R],
        args: Iterable[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        priority: int = 0,
        ident: Hashable | None = None,
        timeout: float | Unset | None = UNSET,
        reducer: AsyncReducer | None = None,
    ) -> R:
        """:meth:`run` with the arguments passed as a sequence and a dict.

        Args:
            timeout: seconds this caller waits before ``TimeoutError``
                (``None``: forever); default: the reducer's timeout.
            reducer: the reducer to coalesce through; default: the pool's.

        Other arguments and errors are those of :meth:`run`.
        """
        args = tuple(args)
        kwargs = {} if kwargs is None else kwargs
        if type(priority) is not int:
            priority = _check_priority(priority)
        if reducer is None:
            reducer = self._reducer
        timeout = reducer.timeout if timeout is UNSET else check_timeout(timeout)
        key = self._key(fn, args, kwargs, ident)
        loop = _get_running_loop()
        state = self._state
        state.enter(loop)
        try:
            ticket = None
            if state.max_queue is not None:
                ticket = await self._admit(key, reducer, priority, loop)
            return await self._dispatch(
                fn, args, kwargs, priority, key, ticket, timeout, reducer
            )
        finally:
            # Room reserved and never used (the shared call never started)
            # goes back; no-op once the call was queued.
            state.release(ticket)
            state.leave()

    async def submit(
        self,
        fn: Callable[..., R],
        /,
        *args: Any,
        priority: int = 0,
        ident: Hashable | None = None,
        **kwargs: Any,
    ) -> asyncio.Future[R]:
        """Queue ``fn(*args, **kwargs)``, waiting for room; a future of its
        outcome.

        Returns once the call is accepted (room in a bounded queue, or an
        identical call in flight to join).  Cancelling the returned future
        leaves the call, as cancelling :meth:`run` does; cancelling
        ``submit()`` while it waits for room queues nothing.

        Arguments and errors are those of :meth:`run`.
        """
        priority = _check_priority(priority)
        key = self._key(fn, args, kwargs, ident)
        loop = _get_running_loop()
        state = self._state
        state.enter(loop)
        try:
            ticket = None
            if state.max_queue is not None:
                ticket = await self._admit(key, self._reducer, priority, loop)
        except BaseException:
            state.leave()
            raise
        return self._spawn(fn, args, kwargs, priority, key, ticket, loop)

    def submit_nowait(
        self,
        fn: Callable[..., R],
        /,
        *args: Any,
        priority: int = 0,
        ident: Hashable | None = None,
        **kwargs: Any,
    ) -> asyncio.Future[R]:
        """:meth:`submit` without waiting: a full queue raises at once.

        Must be called with an event loop running (the future belongs to it).

        Raises:
            WorkerQueueFull: ``max_queue`` calls are waiting already (and no
                identical call is in flight to join).
            WorkerPoolClosed, TypeError: as :meth:`run`.
        """
        priority = _check_priority(priority)
        key = self._key(fn, args, kwargs, ident)
        loop = _get_running_loop()
        state = self._state
        state.enter(loop)
        ticket = None
        try:
            if state.max_queue is not None and not self._joins(
                key, self._reducer, loop
            ):
                ticket = state.reserve_nowait()
                if ticket is None:
                    state.count_rejected()
                    if self._events():
                        self._emit(WorkerCallRejected(self, priority))
                    raise WorkerQueueFull(
                        f"the worker pool's queue is full ({state.max_queue} calls"
                        " waiting); use submit() to wait for room"
                    )
        except BaseException:
            state.leave()
            raise
        return self._spawn(fn, args, kwargs, priority, key, ticket, loop)

    async def map(
        self,
        fn: Callable[..., R],
        /,
        *iterables: Iterable[Any],
        priority: int = 0,
        limit: int | None = None,
        strict: bool = False,
    ) -> list[R]:
        """``[fn(*items) for items in zip(*iterables)]``, run on the pool.

        Results are in input order.  At most ``limit`` calls are in flight at
        once (default: twice ``max_workers``), so a long or endless iterable is
        consumed as calls finish.  When a call raises, the calls still in
        flight are cancelled and the exception is raised; cancelling
        ``map()`` cancels them too.

        Args:
            strict: the iterables must have the same length, as in ``zip()``.

        Raises:
            ValueError: ``limit`` is not an int >= 1; with ``strict``, the
                iterables differ in length (calls made so far are cancelled).
        """
        items = zip(*iterables, strict=check_bool(strict, "strict"))
        return await self.starmap(fn, items, priority=priority, limit=limit)

    async def starmap(
        self,
        fn: Callable[..., R],
        iterable: Iterable[Iterable[Any]],
        /,
        *,
        priority: int = 0,
        limit: int | None = None,
    ) -> list[R]:
        """``[fn(*args) for args in iterable]``, run on the pool; see :meth:`map`."""
        priority = _check_priority(priority)
        if limit is None:
            limit = 2 * self._state.max_workers
        limit = _check_int(limit, "limit", 1)
        loop = _get_running_loop()
        results: list[Any] = []
        pending: dict[asyncio.Future[Any], int] = {}

        def collect(done: Iterable[asyncio.Future[Any]]) -> None:
            for future in done:
                results[pending.pop(future)] = future.result()

        try:
            for args in iterable:
                while len(pending) >= limit:
                    done, _ = await asyncio.wait(
                        pending, return_when=asyncio.FIRST_COMPLETED
                    )
                    collect(done)
                pending[loop.create_task(self.apply(fn, args, priority=priority))] = (
                    len(results)
                )
                results.append(None)
            while pending:
                done, _ = await asyncio.wait(
                    pending, return_when=asyncio.FIRST_COMPLETED
                )
                collect(done)
        except BaseException:
            for future in pending:
                future.cancel()
            if pending:
                await asyncio.wait(pending)
                for future in pending:
                    if not future.cancelled():
                        future.exception()  # retrieved: never logged as lost
            raise
        return results

    # -- lifecycle -------------------------------------------------------------

    async def __aenter__(self) -> WorkerPool:
        if self._state.closed:
            raise closed_error()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    async def shutdown(
        self, *, cancel_pending: bool = False, timeout: float | None = None
    ) -> bool:
        """Take no new calls, finish the work, and end the threads.

        Calls queued before are still run, unless ``cancel_pending``: then
        they are removed and their callers get :class:`WorkerPoolClosed`
        (calls already running are not interrupted).  Callers waiting for
        room get :class:`WorkerPoolClosed`.  Calling it again waits again.

        Cancelling ``shutdown()`` stops the waiting only: the pool stays shut
        down.

        Args:
            cancel_pending: drop the calls that have not started.
            timeout: seconds to wait for the threads; ``None`` waits forever.

        Returns:
            ``True`` when every worker thread has ended; ``False`` when
            ``timeout`` elapsed first (threads stuck in a call go on, as
            daemon threads that do not keep the process alive).
        """
        cancel_pending = check_bool(cancel_pending, "cancel_pending")
        timeout = check_timeout(timeout)
        state = self._state
        loop = _get_running_loop()
        state.remember_loop(loop)
        removed, turned_away = state.close(cancel_pending)
        for job in removed:
            fail_later(
                job.loop,
                job.future,
                closed_error().with_traceback(None),
            )
            if self._events():
                self._emit(
                    WorkerCallFinished(self, job.priority, "closed", job.wait, 0.0)
                )
        for waiter in turned_away:
            fail_later(waiter.loop, waiter.future, closed_error())
        ended = await self._wait_until(lambda: not state.threads, timeout, loop)
        if ended:
            state.join_ended(_JOIN_TIMEOUT)
        return ended

    async def drain(self) -> None:
        """Wait until no call is queued, running or waiting for room.

        Calls made while it waits are waited for too.  A call whose callers
        all left while it ran still counts until its thread finishes it.
        Cancelling ``drain()`` changes nothing in the pool.
        """
        loop = _get_running_loop()
        await asyncio.sleep(0)  # let calls made just before enter the pool
        await self._wait_until(self._state.quiet, None, loop)

    def resize(
        self, min_workers: int | None = None, max_workers: int | None = None
    ) -> Coroutine[Any, Any, None]:
        """Change the thread limits at run time.

        Applies at once, in the call: no new call starts on a thread above
        the new ``max_workers``, idle threads above it end, and threads are
        started up to ``min_workers`` (and for queued calls, up to
        ``max_workers``).  Awaiting the result then waits until threads busy
        above the new maximum have finished their call and ended; not
        awaiting it is fine.  Cancelling the wait keeps the new limits.

        Raises:
            WorkerPoolClosed: the pool is shut down.
            TypeError, ValueError: as for the constructor.
        """
        state = self._state
        if min_workers is None:
            min_workers = state.min_workers
        if max_workers is None:
            max_workers = max(state.max_workers, min_workers)
        max_workers = _check_int(max_workers, "max_workers", 1)
        min_workers = _check_int(min_workers, "min_workers", 0)
        if min_workers > max_workers:
            raise ValueError(
                f"min_workers ({min_workers}) must not exceed "
                f"max_workers ({max_workers})"
            )
        with contextlib.suppress(RuntimeError):  # outside a loop: none to remember
            state.remember_loop(_get_running_loop())
        for worker in state.resize(min_workers, max_workers):
            self._start_worker(worker)
        return _Resized(self)

    # -- internals -------------------------------------------------------------

    def _key(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        ident: Hashable | None,
    ) -> Hashable | None:
        """The coalescing key of a call, ``None`` for a call run on its own."""
        if fn is not self._checked_fn:  # the same function is checked once
            if not callable(fn):
                raise TypeError(f"fn must be callable, got {type(fn).__name__}")
            if inspect.iscoroutinefunction(fn):
                raise TypeError(
                    f"fn must be a plain (blocking) function; {fn!r} is a"
                    " coroutine function: await it instead"
                )
            self._checked_fn = fn
        if ident is not None:
            key = CallKey((self, IDENT, ident))
            try:
                hash(key)
            except TypeError:
                raise TypeError(
                    f"ident must be hashable, got {type(ident).__name__}"
                ) from None
            return key
        if not self._coalesce:
            return None
        if kwargs:
            key = CallKey(
                (
                    self,
                    fn,
                    args,
                    tuple(map(type, args)),
                    frozenset((k, v, type(v)) for k, v in kwargs.items()),
                )
            )
        else:
            key = CallKey((self, fn, args, tuple(map(type, args))))
        try:
            hash(key)
        except TypeError:
            return None  # unhashable arguments: the call runs on its own
        return key

    async def _admit(
        self,
        key: Hashable | None,
        reducer: AsyncReducer,
        priority: int,
        loop: asyncio.AbstractEventLoop,
    ) -> Ticket | None:
        """Room in the bounded queue (``None`` when the call will join one)."""
        if self._joins(key, reducer, loop):
            return None
        state = self._state
        got = state.wait_for_room(loop, priority)
        if isinstance(got, Ticket):
            return got
        waiter: RoomWaiter = got
        try:
            await waiter.future
        except BaseException:
            state.withdraw(waiter)
            raise
        return Ticket()  # granted: the state counts it as reserved already

    def _dispatch(
        self,
        fn: Callable[..., R],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        priority: int,
        key: Hashable | None,
        ticket: Ticket | None,
        timeout: float | None,
        reducer: AsyncReducer,
    ) -> Coroutine[Any, Any, R]:
        """The coroutine running an admitted call: through the reducer when
        it coalesces, else straight to the queue."""
        if key is None:
            coro = self._execute(fn, args, kwargs, priority, ticket)
            return coro if timeout is None else self._within(coro, timeout)
        if self._jobs:
            job = self._jobs.get((_get_running_loop(), key))
            if job is not None and priority > job.priority:
                self._state.raise_priority(job, priority)
        return reducer(
            Start(self, fn, args, kwargs, priority, ticket, key),
            ident=key,
            timeout=timeout,
        )

    @staticmethod
    async def _within(coro: Coroutine[Any, Any, R], timeout: float) -> R:
        try:
            return await asyncio.wait_for(coro, timeout)
        except asyncio.TimeoutError as exc:
            if isinstance(exc, TimeoutError):
                raise
            # Python 3.10: the builtin TimeoutError, as the reducer raises.
            raise TimeoutError("the caller's timeout elapsed") from None

    async def _execute(
        self,
        fn: Callable[..., R],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        priority: int,
        ticket: Ticket | None,
        key: Hashable | None = None,
    ) -> R:
        """Queue the call and wait for its outcome (the shared execution of a
        coalesced call, whose ``key`` is given); leaving removes a queued call."""
        loop = _get_running_loop()
        future = loop.create_future()
        job = Job(fn, args, kwargs, _copy_context(), priority, loop, future)
        if self._events():
            job.report = self._report_finished
        state = self._state
        jobs = self._jobs
        if key is not None:
            jobs[loop, key] = job
        try:
            worker = state.push(job, ticket)
            if worker is not None:
                self._start_worker(worker)
            return await future  # type: ignore[no-any-return]
        except BaseException:
            if state.cancel(job) and self._events():
                self._emit(
                    WorkerCallFinished(self, job.priority, "cancelled", job.wait, 0.0)
                )
            raise
        finally:
            if key is not None and jobs.get((loop, key)) is job:
                del jobs[loop, key]

    def _spawn(
        self,
        fn: Callable[..., R],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        priority: int,
        key: Hashable | None,
        ticket: Ticket | None,
        loop: asyncio.AbstractEventLoop,
    ) -> asyncio.Future[R]:
        """A task running an admitted call (``enter`` done; left when it ends)."""
        reducer = self._reducer
        state = self._state
        admission = None
        if key is not None and state.max_queue is not None:
            admission = [(loop, key)]
            self._admitted[(loop, key)] = self._admitted.get((loop, key), 0) + 1
        try:
            task = loop.create_task(
                self._dispatch_spawned(
                    fn, args, kwargs, priority, key, ticket, reducer, admission
                )
            )
        except BaseException:
            self._forget_admitted(admission)
            state.release(ticket)
            state.leave()
            raise
        self._tasks.add(task)
        task.add_done_callback(functools.partial(self._spawned_done, ticket, admission))
        return task

    async def _dispatch_spawned(
        self,
        fn: Callable[..., R],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        priority: int,
        key: Hashable | None,
        ticket: Ticket | None,
        reducer: AsyncReducer,
        admission: _Admission | None,
    ) -> R:
        # The reducer takes the key over in this same step: no gap to mind.
        self._forget_admitted(admission)
        return await self._dispatch(
            fn, args, kwargs, priority, key, ticket, reducer.timeout, reducer
        )

    def _spawned_done(
        self,
        ticket: Ticket | None,
        admission: _Admission | None,
        task: asyncio.Task[Any],
    ) -> None:
        self._tasks.discard(task)
        self._forget_admitted(admission)  # cancelled before it started
        state = self._state
        state.release(ticket)  # likewise: give the room back
        state.leave()

    def _joins(
        self,
        key: Hashable | None,
        reducer: AsyncReducer,
        loop: asyncio.AbstractEventLoop,
    ) -> bool:
        """Whether a call of ``key`` would join an identical one in flight."""
        return key is not None and (key in reducer or (loop, key) in self._admitted)

    def _forget_admitted(self, admission: _Admission | None) -> None:
        """Once per admission: its task reached the reducer or ended."""
        if admission:
            admitted = admission.pop()
            left = self._admitted.pop(admitted, 1) - 1
            if left:
                self._admitted[admitted] = left

    def _joined(self, ticket: Ticket | None) -> None:
        """A coalesced call joined an identical call in flight."""
        state = self._state
        state.release(ticket)
        state.count_coalesced()

    def _start_worker(self, worker: Worker) -> None:
        start_worker(self._state, worker, self._name)
        if self._events():
            self._emit(WorkerStarted(self, self._state.threads))

    async def _wait_until(
        self,
        done: Callable[[], bool],
        timeout: float | None,
        loop: asyncio.AbstractEventLoop,
    ) -> bool:
        state = self._state
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            future = state.watch(loop, done)
            if future is None:
                return True
            try:
                if deadline is None:
                    await future
                else:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        return False
                    try:
                        await asyncio.wait_for(future, remaining)
                    except asyncio.TimeoutError:
                        return False
            finally:
                if not future.done():
                    state.unwatch(future)

    # -- events ----------------------------------------------------------------

    def _events(self) -> bool:
        """Whether the reducer's hooks (as they are now) want worker events."""
        hooks = self._reducer.hooks
        if hooks is not self._hooks_seen:
            self._events_wanted = _wants_worker_events(hooks)
            self._hooks_seen = hooks
        return self._events_wanted

    def _emit(self, event: WorkerEvent) -> None:
        hooks = self._reducer.hooks
        if hooks is None:
            return
        try:
            hooks.on_worker_event(event)
        except Exception as exc:
            report_hook_error(hooks, "on_worker_event", exc)

    def _report_finished(self, job: Job) -> None:
        outcome = "dropped" if job.dropped else "result" if job.ok else "error"
        self._emit(
            WorkerCallFinished(self, job.priority, outcome, job.wait, job.duration)  # type: ignore[arg-type]
        )

    def _report_stopped(self, reason: str, workers: int) -> None:
        if self._events():
            self._emit(WorkerStopped(self, reason, workers))  # type: ignore[arg-type]


def _close_unused(state: PoolState) -> None:
    """The pool was collected: let its threads finish the queue and end.

    Collection can happen in any thread, possibly one holding the state's
    lock (which is not reentrant), so the closing runs in a thread of its own.
    """
    closer = threading.Thread(
        target=state.close, args=(False,), name="WorkerPool-close", daemon=True
    )
    with contextlib.suppress(RuntimeError):  # at interpreter shutdown: no need
        closer.start()


class _Resized(Coroutine[Any, Any, None]):
    """What :meth:`WorkerPool.resize` returns: awaiting it (or running it as
    a task) waits until the threads fit the new maximum; dropping it unused
    is fine (unlike a native coroutine, it is then not reported)."""

    __slots__ = ("_gen", "_pool")

    def __init__(self, pool: WorkerPool) -> None:
        self._pool = pool
        self._gen: Generator[Any, None, None] | None = None

    def __await__(self) -> Generator[Any, None, None]:
        gen = self._gen
        if gen is None:
            gen = self._gen = self._wait().__await__()
        return gen

    def send(self, value: Any) -> Any:
        return self.__await__().send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None, /) -> Any:
        return self.__await__().throw(typ if val is None else val)

    def close(self) -> None:
        if self._gen is not None:
            self._gen.close()

    async def _wait(self) -> None:
        pool = self._pool
        state = pool._state
        loop = _get_running_loop()
        await pool._wait_until(lambda: state.threads <= state.max_workers, None, loop)
        state.join_ended(_JOIN_TIMEOUT)


def _weak_report_stopped(pool: WorkerPool) -> Callable[[str, int], None]:
    """``pool._report_stopped`` without keeping the pool alive (the state,
    which worker threads hold, keeps this)."""
    method = weakref.WeakMethod(pool._report_stopped)

    def report(reason: str, workers: int) -> None:
        bound = method()
        if bound is not None:
            bound(reason, workers)

    return report
