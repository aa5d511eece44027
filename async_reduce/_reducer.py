"""The reducer: one execution per key at a time, shared by every caller."""

from __future__ import annotations

import asyncio
import inspect
import sys
import threading
import time
import weakref
from collections.abc import Callable, Coroutine, Generator, Hashable
from types import CoroutineType, GeneratorType
from typing import Any, TypeVar

from ._flight import (
    CALLERS,
    FINISHED,
    FUTURES,
    INFO,
    TASK,
    Flight,
    HookInfo,
    execute,
    execute_with_hooks,
    expire,
    leave,
    release,
    running_flights,
    self_await_error,
)
from ._hookerrors import report_hook_error
from ._keys import AUTO, auto_key, display_ident, unhashable_error
from ._location import coroutine_location
from ._recent import RecentOutcomes
from ._validate import (
    UNSET,
    Unset,
    check_bool,
    check_hooks,
    check_orphans,
    check_share_for,
    check_timeout,
)
from .hooks.base import BaseHooks, MultipleHooks

__all__ = ["AsyncReducer", "ReducedCall", "async_reduce"]

# Coroutine.cr_suspended is 3.11+; on 3.10 a coroutine that has not started
# yet is the one whose frame has not executed an instruction (f_lasti -1).
_HAS_CR_SUSPENDED = sys.version_info >= (3, 11)

T = TypeVar("T")

_get_running_loop = asyncio.get_running_loop
_CO_VARKEYWORDS = inspect.CO_VARKEYWORDS

# Hook methods added after 1.x: a hooks object written for 1.x (not derived
# from BaseHooks) may lack them, and is then given no-ops.
_NEW_HOOK_METHODS = (
    "on_execution_finished",
    "on_caller_left",
    "on_execution_abandoned",
    "on_pool_event",
    "on_fleet_event",
    "on_service_event",
    "on_worker_event",
)
_OLD_HOOK_METHODS = (
    "on_apply_for",
    "on_executing_for",
    "on_reducing_for",
    "on_result_for",
    "on_exception_for",
)


def _wants(hooks: Any, name: str) -> bool:
    """Whether ``hooks`` does something in hook method ``name`` (events are
    only built for hooks that do)."""
    if isinstance(hooks, MultipleHooks):
        return hooks._wants(name)
    if isinstance(hooks, _HooksAdapter):
        return callable(getattr(hooks.wrapped, name, None))
    return getattr(type(hooks), name, None) is not getattr(BaseHooks, name)


def _no_flights() -> None:
    return None


class _LoopFlights(dict):  # type: ignore[type-arg]
    """One reducer's executions in flight on one event loop: key -> flight.

    The loop owns it (see :func:`_attach`); the reducer only holds weak
    references to it, so a loop closed with executions still pending is not
    kept alive by the reducer.
    """

    __slots__ = ("__weakref__", "loop")

    loop: asyncio.AbstractEventLoop


_LOOP_ATTRIBUTE = "_async_reduce_flights"


def _attach(
    loop: asyncio.AbstractEventLoop, reducer: AsyncReducer, flights: _LoopFlights
) -> bool:
    """Make ``loop`` own ``flights``; False when the loop takes no attributes."""
    owned = getattr(loop, _LOOP_ATTRIBUTE, None)
    if owned is None:
        owned = weakref.WeakKeyDictionary()
        try:
            setattr(loop, _LOOP_ATTRIBUTE, owned)
        except (AttributeError, TypeError):
            return False
    owned[reducer] = flights
    return True


def _runs(running: tuple[Flight[Any], ...], flight: Flight[Any]) -> bool:
    """Whether ``flight`` is among the flights the current context runs."""
    return any(f is flight for f in running)


class _HooksAdapter:
    """Gives a 1.x-style hooks object (not a BaseHooks) the newer methods."""

    def __init__(self, hooks: Any) -> None:
        self.wrapped = hooks
        for name in (*_OLD_HOOK_METHODS, *_NEW_HOOK_METHODS):
            method = getattr(hooks, name, None)
            setattr(self, name, method if callable(method) else self._ignore)

    @staticmethod
    def _ignore(*args: Any) -> None:
        return None


class ReducedCall(Coroutine[Any, Any, T]):
    """What ``reducer(coro)`` returns: a coroutine-compatible awaitable.

    Nothing happens until it is awaited (or driven by a task): then the call
    joins the execution of its key in flight, or starts one with ``coro``.
    It is a :class:`collections.abc.Coroutine`, so ``asyncio.create_task``,
    ``gather`` and ``wait_for`` accept it like a native coroutine.

    Unlike a native coroutine wrapping ``coro``, it closes ``coro`` when it
    is closed, or cancelled, before it ever ran, so ``coro`` is never reported
    as "never awaited" because of a cancellation.  If it is dropped without
    being awaited, Python reports ``coro`` as never awaited, as it would
    without the reducer.
    """

    # ``send`` is the bound ``send`` of the generator running the call: a
    # task driving the call directly (``gather(*[reducer(f(x)) ...])``)
    # resumes that generator with no Python frame in between.
    __slots__ = ("_awaited", "_coro", "_gen", "send")

    _awaited: bool
    _coro: Coroutine[Any, Any, T]
    _gen: GeneratorType[Any, None, T]
    send: Callable[[Any], Any]

    def __repr__(self) -> str:
        frame = self._gen.gi_frame
        key = frame.f_locals.get("key") if frame is not None else "?"
        return f"<ReducedCall {self._coro!r} key={key!r}>"

    # Cheap checks only: reading ``gi_frame`` of a generator that has not run
    # would build a frame object on every await.
    if sys.version_info >= (3, 11):

        def __await__(self) -> Generator[Any, None, T]:
            gen = self._gen
            if self._awaited or gen.gi_suspended or gen.gi_running:
                raise RuntimeError("cannot reuse already awaited coroutine")
            self._awaited = True
            return gen

    else:  # pragma: no cover - Python 3.10

        def __await__(self) -> Generator[Any, None, T]:
            gen = self._gen
            if self._awaited or _gen_running(gen):
                raise RuntimeError("cannot reuse already awaited coroutine")
            self._awaited = True
            return gen

    def throw(self, typ: Any, val: Any = None, tb: Any = None, /) -> Any:
        """Raise an exception inside the call, as a task cancelling it does."""
        gen = self._gen
        if _gen_unstarted(gen):
            # Never ran: close ``coro`` so it is not reported as never awaited.
            self._finish_unstarted()
            exc = typ if val is None else val
            if isinstance(exc, type):
                exc = exc()
            raise exc.with_traceback(tb) if tb is not None else exc
        return gen.throw(typ if val is None else val)

    def close(self) -> None:
        """Close the call; ``coro`` too when the call never ran."""
        gen = self._gen
        if _gen_unstarted(gen):
            self._finish_unstarted()
        else:
            gen.close()

    def _finish_unstarted(self) -> None:
        """End a call that never ran: close ``coro``; it can run no more."""
        self._gen.close()
        self._coro.close()
        self._awaited = True
        self.send = _send_after_end


if sys.version_info >= (3, 11):

    def _gen_running(gen: Any) -> bool:
        """Whether ``gen`` has started and not finished (no frame is built)."""
        return gen.gi_suspended or gen.gi_running  # type: ignore[no-any-return]

else:  # pragma: no cover - Python 3.10

    def _gen_running(gen: Any) -> bool:
        frame = gen.gi_frame
        return frame is not None and (gen.gi_running or frame.f_lasti != -1)


def _gen_unstarted(gen: Any) -> bool:
    """Whether ``gen`` has not run yet (and was not closed)."""
    return gen.gi_frame is not None and not _gen_running(gen)


def _send_after_end(value: Any) -> Any:
    raise RuntimeError("cannot reuse already awaited coroutine")


def _drive(
    reducer: AsyncReducer,
    coro: Coroutine[Any, Any, T],
    key: Hashable,
    ident: Hashable | None,
    timeout: float | None,
) -> Generator[Any, None, T]:
    """The steps of a :class:`ReducedCall`: start or join ``key``'s
    execution, then wait for its outcome (or this caller's timeout)."""
    loop = _get_running_loop()
    flights = reducer._cache()
    if flights is None or flights.loop is not loop:
        flights = reducer._flights_for(loop)
    try:
        flight = flights.get(key)
    except BaseException:  # the key's __eq__ raised
        coro.close()
        raise
    future = loop.create_future()
    hooks = reducer._hooks
    since = 0.0
    if hooks is not None:
        since, flight = _enter_with_hooks(
            reducer, hooks, loop, flights, key, flight, future, coro, ident
        )
    elif flight is None:
        recent = reducer._recent
        if recent is not None:
            flight, coro = _reuse_or_remember(recent, loop, key, future, coro)
        if flight is None:
            flights[key] = flight = [future, None, None, 1]
            try:
                flight[TASK] = loop.create_task(execute(flights, key, flight, coro))
            except BaseException:
                release(flights, key, flight)
                coro.close()
                raise
    else:
        coro.close()
        running = running_flights()
        if running and _runs(running, flight):
            raise self_await_error(key)
        waiting = flight[FUTURES]
        if type(waiting) is dict:
            waiting[future] = None
        else:  # the second caller: from one future to a dict of them
            flight[FUTURES] = {waiting: None, future: None}
    if timeout is None:
        try:
            return (yield from future)  # type: ignore[no-any-return]
        except BaseException:
            leave(reducer, flights, key, flight, future, since)
            raise
    timer = loop.call_later(timeout, expire, future)
    try:
        return (yield from future)  # type: ignore[no-any-return]
    except BaseException:
        leave(reducer, flights, key, flight, future, since)
        raise
    finally:
        timer.cancel()


def _enter_with_hooks(
    reducer: AsyncReducer,
    hooks: Any,
    loop: asyncio.AbstractEventLoop,
    flights: dict[Hashable, Flight[Any]],
    key: Hashable,
    flight: Flight[Any] | None,
    future: asyncio.Future[Any],
    coro: Coroutine[Any, Any, Any],
    ident: Hashable | None,
) -> tuple[float, Flight[Any]]:
    """Start or join ``key``'s flight, telling the hooks (reducer with hooks).

    Each hook runs before the state change it announces, so a hook raising
    a ``BaseException`` leaves nothing behind (``coro`` is closed).  Returns
    when the caller started waiting and the flight it waits on.
    """
    try:
        location = coroutine_location(coro)
        if ident is not None:
            shown: Hashable = ident
        elif flight is not None and flight[INFO] is not None:
            shown = flight[INFO].ident
        else:  # a new execution, or one started before hooks were set
            shown = display_ident(location, key)
        since = time.perf_counter()
        try:
            hooks.on_apply_for(coro, shown)
        except Exception as exc:
            report_hook_error(hooks, "on_apply_for", exc)
        recent = reducer._recent
        if flight is None and recent is not None:
            flight, coro = _reuse_or_remember(recent, loop, key, future, coro)
            if flight is not None:  # settled already: nothing is held
                try:
                    hooks.on_reducing_for(coro, shown)
                except Exception as exc:
                    report_hook_error(hooks, "on_reducing_for", exc)
                return since, flight
        if flight is None:
            info = _new_tuple(HookInfo, (coro, shown, location, since, hooks))
            try:
                hooks.on_executing_for(coro, shown)
            except Exception as exc:
                report_hook_error(hooks, "on_executing_for", exc)
            flights[key] = flight = [future, None, info, 1]
            try:
                flight[TASK] = loop.create_task(
                    execute_with_hooks(reducer, flights, key, flight, coro)
                )
            except BaseException:
                release(flights, key, flight)
                raise
        else:
            running = running_flights()
            if running and _runs(running, flight):
                raise self_await_error(key)
            try:
                hooks.on_reducing_for(coro, shown)
            except Exception as exc:
                report_hook_error(hooks, "on_reducing_for", exc)
            waiting = flight[FUTURES]
            if type(waiting) is dict:
                waiting[future] = None
            else:  # the second caller: from one future to a dict of them
                flight[FUTURES] = {waiting: None, future: None}
            flight[CALLERS] += 1
            coro.close()
    except BaseException:
        coro.close()
        raise
    return since, flight


def _reuse_or_remember(
    recent: RecentOutcomes,
    loop: asyncio.AbstractEventLoop,
    key: Hashable,
    future: asyncio.Future[Any],
    coro: Coroutine[Any, Any, Any],
) -> tuple[Flight[Any] | None, Coroutine[Any, Any, Any]]:
    """With ``share_for``: a finished flight holding ``key``'s kept outcome
    (``coro`` is closed), or no flight and ``coro`` wrapped to keep its own."""
    if recent.reuse(loop, key, future):
        coro.close()
        return [FINISHED, None, None, 1], coro
    return None, recent.remember(loop, key, coro)


_new_call = object.__new__


def _already_ran() -> ValueError:
    return ValueError(
        "coro must be a coroutine that has not run yet; this one has"
        " already been awaited, started or closed"
    )


_new_tuple = tuple.__new__


class AsyncReducer:
    """Coalesces concurrent identical coroutine calls into one execution.

    ``reducer(coro)`` returns a coroutine.  When it is awaited, the reducer
    looks up the call's key; if an execution of that key is in flight, the
    caller joins it (``coro`` is closed unused), otherwise ``coro`` starts as
    the shared execution.  Every caller gets the execution's result, or its
    exception.

    Keys: by default the coroutine function's code object plus the values of
    its bound arguments (and closure variables), compared by equality as a
    dict key, never by hash alone; pass ``ident=`` (any hashable) to choose
    the key yourself.  Calls with equal idents share, whatever coroutine they
    pass.

    Contract:

    * One execution per key (and event loop) at a time.  It runs in a task
      the reducer holds a strong reference to, created in a copy of the
      context of the caller that started it.
    * A caller that is cancelled while waiting gets ``CancelledError``;
      the other callers are unaffected.  When the last waiting caller has
      left, the key is released at once (later calls start afresh) and the
      work is cancelled, unless ``orphans="finish"``, in which case the work
      runs to its end and later callers may still join it.
    * With a timeout, a caller waits at most that many seconds and then gets
      the builtin ``TimeoutError``; it counts as having left, exactly like a
      cancelled caller.
    * A caller that left is forgotten at once: the execution keeps nothing
      of it (its future, its ``TimeoutError`` and the frames that error's
      traceback holds), so memory follows the callers still waiting.
    * An exception from the work reaches every waiting caller, each as a
      copy of its own (same type, ``args``, attributes, ``__cause__`` and
      the work's traceback), so what one caller's raise writes into it
      (``__context__``, ``__traceback__``, ``__notes__``) never shows in
      another caller's.  An exception that cannot be rebuilt that way (its
      class rejects its own ``args``) is raised as the same object in every
      caller.  Hooks see the original, once.  An exception that no caller
      is left to receive is never logged as "exception was never
      retrieved".  This holds for ``BaseException`` subclasses too, except
      that ``KeyboardInterrupt`` and ``SystemExit`` from the work also
      propagate out of the event loop, as asyncio does, and still release
      the key; a cancelled work cancels its callers.
    * Work that awaits its own key (directly, from a task it started, or
      through a chain of keys leading back to it) would wait for itself: the
      inner call raises ``RuntimeError`` naming the key instead.  The work's
      context knows which executions it runs; awaiting other keys is
      unaffected.
    * A hook raising an ``Exception`` is logged and ignored; one raising
      another ``BaseException`` propagates from where the hook was called,
      after the reducer has put its state right: no key stays held, and no
      caller is left waiting.
    * The key is released when the work ends, before any caller resumes:
      a call made after that starts a new execution.
    * Each event loop has its own executions: a reducer shared by several
      loops (successive ``asyncio.run()`` calls, a loop per thread) never
      hands one loop's future to another.  The loop owns them: a loop closed
      with executions pending is not kept alive by the reducer, and
      ``len()`` and ``in`` ignore closed loops.

    Args:
        hooks: an object with the hook methods of
            :class:`async_reduce.hooks.BaseHooks`; exceptions raised by hooks
            are logged and never reach callers.
        typed: keep arguments of different types apart in automatic keys
            (``f(1)``, ``f(1.0)`` and ``f(True)``), like
            ``functools.lru_cache(typed=True)``.
        timeout: default seconds a caller waits; ``None`` waits forever.
        orphans: ``"cancel"`` (default) cancels work that no caller waits for
            any more; ``"finish"`` lets it complete.
        share_for: seconds an execution's outcome (its result or exception;
            never a cancellation) stays reusable after it ended: a call of
            the same key within that time gets it at once instead of
            starting the work again.  ``0`` (default) keeps nothing, and
            costs nothing.

            .. versionadded:: 2.0
    """

    __slots__ = (
        "__weakref__",
        "_by_loop",
        "_cache",
        "_hooks",
        "_lock",
        "_original_hooks",
        "_orphans",
        "_orphans_cancel",
        "_pinned",
        "_recent",
        "_timeout",
        "_typed",
        "_want_abandoned",
        "_want_finished",
        "_want_left",
    )

    def __init__(
        self,
        hooks: Any = None,
        *,
        typed: bool = False,
        timeout: float | None = None,
        orphans: str = "cancel",
        share_for: float = 0.0,
    ) -> None:
        self._hooks: Any = None
        self._set_hooks(hooks)
        self._typed = check_bool(typed, "typed")
        self._timeout = check_timeout(timeout)
        self._orphans = check_orphans(orphans)
        self._orphans_cancel = self._orphans == "cancel"
        share_for = check_share_for(share_for)
        self._recent = RecentOutcomes(share_for) if share_for else None
        # Weak on both sides: each loop owns its executions (rule: a closed
        # loop is never kept alive by a reducer).
        self._by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, weakref.ref[_LoopFlights]
        ] = weakref.WeakKeyDictionary()
        # Loops that take no attributes: their executions are held here, and
        # dropped once the loop is closed.
        self._pinned: dict[int, _LoopFlights] = {}
        self._cache: Callable[[], _LoopFlights | None] = _no_flights
        self._lock = threading.Lock()

    # -- configuration -------------------------------------------------------

    @property
    def hooks(self) -> Any:
        """The hooks object (``None`` without hooks); assignable.

        Assigning checks the object as the constructor does and takes effect
        for calls awaited afterwards: each reports ``on_apply_for`` and
        ``on_executing_for``/``on_reducing_for`` to the hooks the reducer has
        then.  An execution already in flight finishes with the hooks it
        started with: its result or exception, its end and its callers
        leaving go to those.  So ``async_reduce.hooks =
        StatisticsOverallHooks()`` attaches statistics to the module-level
        reducer.  Assign from the thread that runs the reducer's event loop
        (typically at start-up); ``None`` detaches the hooks.

        .. versionchanged:: 2.0
           Assignable.
        """
        return self._original_hooks

    @hooks.setter
    def hooks(self, hooks: Any) -> None:
        self._set_hooks(hooks)

    def _set_hooks(self, hooks: Any) -> None:
        """Check and attach ``hooks`` (construction and assignment)."""
        if hooks is not None:
            check_hooks(hooks, _OLD_HOOK_METHODS, _NEW_HOOK_METHODS)
        original = hooks
        if hooks is not None and not all(
            callable(getattr(hooks, name, None)) for name in _NEW_HOOK_METHODS
        ):
            hooks = _HooksAdapter(hooks)
        # The flags first, the hooks last: a call seeing the new hooks never
        # sees flags of older ones (an extra event is harmless, see wants()).
        self._want_finished = hooks is not None and _wants(
            hooks, "on_execution_finished"
        )
        self._want_left = hooks is not None and _wants(hooks, "on_caller_left")
        self._want_abandoned = hooks is not None and _wants(
            hooks, "on_execution_abandoned"
        )
        self._original_hooks = original
        self._hooks = hooks

    @property
    def typed(self) -> bool:
        """Whether automatic keys tell argument types apart."""
        return self._typed

    @property
    def timeout(self) -> float | None:
        """Default seconds a caller waits (``None``: forever)."""
        return self._timeout

    @property
    def orphans(self) -> str:
        """``"cancel"`` or ``"finish"``: what happens to work nobody waits for."""
        return self._orphans

    @property
    def share_for(self) -> float:
        """Seconds an outcome stays reusable after its execution ended."""
        recent = self._recent
        return 0.0 if recent is None else recent.share_for

    def __repr__(self) -> str:
        return (
            f"<AsyncReducer in_flight={len(self)} hooks={self._original_hooks!r}"
            f" typed={self._typed} timeout={self._timeout} orphans={self._orphans!r}>"
        )

    # -- calling -------------------------------------------------------------

    def __call__(
        self,
        coro: Coroutine[Any, Any, T],
        *,
        ident: Hashable | None = None,
        timeout: float | Unset | None = UNSET,
    ) -> Coroutine[Any, Any, T]:
        """Coalesce ``coro`` with concurrent calls of the same key.

        Args:
            coro: a coroutine that has not started; it is closed unused when
                the call joins an execution already in flight.
            ident: the key, any hashable; by default computed from ``coro``'s
                function and arguments.
            timeout: seconds this caller waits before ``TimeoutError``;
                ``None`` waits forever; by default the reducer's timeout.

        Returns:
            A coroutine: awaiting it gives the shared execution's result.

        Raises:
            TypeError: ``coro`` is not a coroutine, ``ident`` is unhashable,
                or (without ``ident``) an argument of ``coro`` is unhashable.
                A call refused for its key (this, or an error raised by the
                key's ``__hash__``) leaves ``coro`` untouched: it is still
                the caller's, who may retry it with ``ident=``.
            ValueError: ``timeout`` is not a positive number or ``None``
                (``coro`` is then closed), or ``coro`` has already run, was
                started or closed.
            RuntimeError: (when awaited) the call was made from inside the
                work of the execution it would join.
        """
        if timeout is UNSET:
            timeout = self._timeout
        elif timeout is not None:
            timeout = self._checked_timeout(coro, timeout)
        # A call refused for its key leaves ``coro`` untouched: it is still
        # the caller's, who may retry it with ident= (as with 1.x).
        key: Hashable
        if ident is None:
            if type(coro) is not CoroutineType:
                self._reject(coro)
            native: Any = coro
            frame = native.cr_frame
            if (
                frame is None
                or native.cr_running
                or (native.cr_suspended if _HAS_CR_SUSPENDED else frame.f_lasti != -1)
            ):
                raise _already_ran()
            try:
                # Inlined auto_key() for the common case (hot path).
                code = native.cr_code
                if self._typed or code.co_flags & _CO_VARKEYWORDS:
                    key = auto_key(coro, self._typed)
                else:
                    key = (AUTO, id(code), *frame.f_locals.values())
                    hash(key)
            except TypeError:
                raise unhashable_error(native.__name__) from None
        else:
            if type(coro) is CoroutineType:
                native = coro
                frame = native.cr_frame
                if (
                    frame is None
                    or native.cr_running
                    or (
                        native.cr_suspended
                        if _HAS_CR_SUSPENDED
                        else frame.f_lasti != -1
                    )
                ):
                    raise _already_ran()
            elif not asyncio.iscoroutine(coro):
                self._reject(coro)
            try:
                hash(ident)
            except TypeError:
                raise TypeError(
                    f"ident must be hashable, got {type(ident).__name__}"
                ) from None
            key = ident
        # _reduced_call(), inlined: this is the hot path.
        call: ReducedCall[T] = _new_call(ReducedCall)
        call._coro = coro
        call._awaited = False
        gen = call._gen = _drive(self, coro, key, ident, timeout)  # type: ignore[assignment]
        call.send = gen.send
        return call

    def _reduced_call(
        self,
        coro: Coroutine[Any, Any, T],
        key: Hashable,
        ident: Hashable | None,
        timeout: float | None,
    ) -> ReducedCall[T]:
        call: ReducedCall[T] = _new_call(ReducedCall)
        call._coro = coro
        call._awaited = False
        gen = call._gen = _drive(self, coro, key, ident, timeout)  # type: ignore[assignment]
        call.send = gen.send
        return call

    @staticmethod
    def _reject(coro: Any) -> None:
        if asyncio.iscoroutine(coro):
            raise TypeError(
                "coro: cannot compute an automatic key for "
                f"{type(coro).__name__} objects; pass ident="
            )
        raise TypeError(f"coro must be a coroutine, got {type(coro).__name__}")

    @staticmethod
    def _checked_timeout(coro: Any, timeout: Any) -> float | None:
        try:
            return check_timeout(timeout)
        except (TypeError, ValueError):
            if asyncio.iscoroutine(coro):
                coro.close()
            raise

    def _flights_for(self, loop: asyncio.AbstractEventLoop) -> _LoopFlights:
        """The in-flight executions of ``loop`` (slow path of the loop cache)."""
        with self._lock:
            known = self._by_loop.get(loop)
            flights = None if known is None else known()
            if known is None or flights is None:
                flights = _LoopFlights()
                flights.loop = loop
                known = self._by_loop[loop] = weakref.ref(flights)
                if not _attach(loop, self, flights):
                    self._pinned[id(flights)] = flights
            if self._pinned:
                self._unpin_closed()
            self._cache = known
        return flights

    def _unpin_closed(self) -> None:
        """Drop the executions of closed loops that take no attributes."""
        for ident, flights in list(self._pinned.items()):
            if flights.loop.is_closed():
                del self._pinned[ident]

    async def _call_factory(
        self,
        fn: Callable[..., Coroutine[Any, Any, T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        key: Hashable,
        timeout: float | None,
    ) -> T:
        """The decorator's call without hooks: like ``ReducedCall.__await__``,
        but the coroutine is created only by the call that starts the work."""
        loop = _get_running_loop()
        flights = self._cache()
        if flights is None or flights.loop is not loop:
            flights = self._flights_for(loop)
        flight = flights.get(key)
        future = loop.create_future()
        recent = self._recent
        if flight is None and recent is not None and recent.reuse(loop, key, future):
            flight = [FINISHED, None, None, 1]
        elif flight is None:
            flights[key] = flight = [future, None, None, 1]
            work = None
            try:
                work = fn(*args, **kwargs)
                if recent is not None:
                    work = recent.remember(loop, key, work)
                flight[TASK] = loop.create_task(execute(flights, key, flight, work))
            except BaseException:
                release(flights, key, flight)
                if work is not None:
                    work.close()  # never started: no "never awaited" warning
                raise
        else:
            running = running_flights()
            if running and _runs(running, flight):
                raise self_await_error(key)
            waiting = flight[FUTURES]
            if type(waiting) is dict:
                waiting[future] = None
            else:  # the second caller: from one future to a dict of them
                flight[FUTURES] = {waiting: None, future: None}
        if timeout is None:
            try:
                return await future  # type: ignore[no-any-return]
            except BaseException:
                leave(self, flights, key, flight, future)
                raise
        timer = loop.call_later(timeout, expire, future)
        try:
            return await future  # type: ignore[no-any-return]
        except BaseException:
            leave(self, flights, key, flight, future)
            raise
        finally:
            timer.cancel()

    # -- introspection -------------------------------------------------------

    def _all_flights(self) -> list[_LoopFlights]:
        """The executions of every loop that is not closed."""
        with self._lock:
            if self._pinned:
                self._unpin_closed()
            refs = [ref for loop, ref in self._by_loop.items() if not loop.is_closed()]
        return [flights for flights in (ref() for ref in refs) if flights is not None]

    def _current_flights(self) -> list[_LoopFlights]:
        """The running loop's executions, or every loop's outside a loop."""
        try:
            loop = _get_running_loop()
        except RuntimeError:
            return self._all_flights()
        with self._lock:
            ref = self._by_loop.get(loop)
        flights = None if ref is None else ref()
        return [] if flights is None else [flights]

    def __len__(self) -> int:
        """Number of keys with an execution in flight, over all event loops
        that are not closed."""
        return sum(len(flights) for flights in self._all_flights())

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` has an execution in flight (on the running loop,
        or on any loop when called outside one)."""
        try:
            return any(key in flights for flights in self._current_flights())
        except TypeError:  # unhashable: cannot be a key
            return False

    def forget(self, key: Hashable) -> bool:
        """Make the next call for ``key`` start a new execution.

        The execution in flight goes on and still serves the callers that
        joined it; only later callers are kept out of it.  An outcome kept
        for ``share_for`` is dropped.  Applies to the running loop (to every
        loop when called outside one).

        Returns:
            Whether an execution of ``key`` was in flight.
        """
        hash(key)
        if self._recent is not None:
            try:
                loop: asyncio.AbstractEventLoop | None = _get_running_loop()
            except RuntimeError:
                loop = None
            self._recent.forget(key, loop)
        found = False
        for flights in self._current_flights():
            flight = flights.pop(key, None)
            found = found or flight is not None
        return found


async_reduce = AsyncReducer()
"""The default reducer: ``await async_reduce(coro)``."""
