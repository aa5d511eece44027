"""One shared execution ("flight") and the callers waiting on it.

Design notes
============

A flight owns one task running the shared work, wrapped by :func:`execute`.
Each caller waits on a future of its own.  When the work ends, ``execute``
releases the key and then, still inside the task's last step, settles every
waiting caller's future: all callers wake in the very next event-loop
iteration, exactly as if they had awaited the task itself.  There is no
callback or future in between, and so no extra loop hop, which is most of
async-reduce 1.x's overhead.

Because no caller awaits the shared task, cancelling a caller cancels only
that caller's future; the shared work never sees it.  The caller's coroutine
then tells the flight it left (:func:`leave`), which forgets the caller's
future at once: nothing of a caller that left (its future, its
``TimeoutError``, the frames in that error's traceback) stays reachable from
the execution, so memory follows the callers still waiting.  When the last
waiting caller has left, the flight is *abandoned*: its key is released at
once, so later callers start a fresh execution, and the work is cancelled
unless the reducer keeps orphans.  A timeout takes the same path, with the
caller's future failing with ``TimeoutError``.

The shared task never ends with an exception asyncio would log: the
exception goes to the callers' futures, one copy per caller (see
:mod:`._copies`), and when no caller is left it is dropped, after the hooks
have seen it.  Only cancellation, ``KeyboardInterrupt`` and ``SystemExit``
end the task itself, as asyncio expects of them.

While the work runs, its context (and so every task it spawns) carries the
flights it is running (:data:`running_flights`): a call from there that
would join one of them would wait for itself, and fails instead.

The flight record
-----------------

A flight is a plain list, ``[futures, task, info, callers]``: this is the
hottest object of the library and a list is built by one bytecode, where a
class instance costs a Python ``__init__`` frame (about five times the
instructions, measured with callgrind).  ``futures`` is a dict whose keys are
the futures of the callers still waiting, in the order they came (just the
leader's future while it is the only caller, the common case, which spares a
dict; ``None`` once the work has ended), ``task`` is the shared task, ``info`` is a
:class:`HookInfo` when the reducer has hooks (else ``None``), and ``callers``
counts every caller that joined (kept with hooks only).  Build one with
:func:`new_flight` where speed does not matter.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Coroutine, Hashable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NamedTuple

from ._copies import copier
from ._events import CallerLeft, ExecutionAbandoned, new_execution_finished
from ._hookerrors import report_hook_error

if TYPE_CHECKING:
    from ._reducer import AsyncReducer

__all__ = [
    "CALLERS",
    "FINISHED",
    "FUTURES",
    "INFO",
    "TASK",
    "Flight",
    "HookInfo",
    "execute",
    "execute_with_hooks",
    "expire",
    "leave",
    "new_flight",
    "new_timeout_error",
    "release",
    "running_flights",
    "self_await_error",
]

Flight = list  # [futures, task, info, callers]; see the module docstring
FINISHED = None  # futures of a flight whose work has ended
FUTURES = 0
TASK = 1
INFO = 2
CALLERS = 3

_running: ContextVar[tuple[Flight[Any], ...]] = ContextVar(
    "async_reduce_running", default=()
)
running_flights = _running.get
"""The flights whose work the current context runs (outermost first)."""
_set_running = _running.set

if sys.version_info >= (3, 11):

    def new_timeout_error() -> TimeoutError:
        return TimeoutError("async_reduce: the caller's timeout elapsed")

else:  # pragma: no cover - Python 3.10

    class _TimeoutError(asyncio.TimeoutError, TimeoutError):
        """Both ``TimeoutError``s: on 3.10 ``asyncio.TimeoutError`` is separate."""

    def new_timeout_error() -> TimeoutError:
        return _TimeoutError("async_reduce: the caller's timeout elapsed")


def expire(future: asyncio.Future[Any]) -> None:
    """A caller's timeout elapsed: fail its future (if still pending)."""
    if not future.done():
        future.set_exception(new_timeout_error())


def self_await_error(key: Hashable) -> RuntimeError:
    """The error of a call made from inside the execution it would join."""
    return RuntimeError(
        f"async_reduce: the work of key {key!r} awaits its own key (directly or"
        " from a task it started); it would wait for itself forever. Call the"
        " work without the reducer there, or use another key."
    )


class HookInfo(NamedTuple):
    """What the hooks need to know about a flight (only built with hooks).

    Build it with ``tuple.__new__(HookInfo, (...))``: the named-tuple
    ``__new__`` is a Python frame, this is one C call.
    """

    coro: Coroutine[Any, Any, Any]
    ident: Hashable
    location: str
    started: float
    hooks: Any
    """The hooks the execution started with; it finishes with them.  The
    reducer's ``_want_*`` flags describe its current hooks: an execution
    whose hooks were replaced since it started builds every event (for hooks
    that do not want one, the call is a no-op)."""


def new_flight(
    future: asyncio.Future[Any], info: HookInfo | None = None
) -> Flight[Any]:
    """A flight whose only caller so far waits on ``future``."""
    return [future, None, info, 1]


def release(flights: dict[Hashable, Flight[Any]], key: Hashable, flight: Any) -> None:
    """Release ``key``, unless it already maps to a newer flight."""
    other = flights.pop(key, flight)
    if other is not flight:
        flights[key] = other


def leave(
    reducer: AsyncReducer,
    flights: dict[Hashable, Flight[Any]],
    key: Hashable,
    flight: Flight[Any],
    future: asyncio.Future[Any],
    since: float = 0.0,
) -> None:
    """A waiting caller left early (its future was cancelled or timed out).

    Forgets the caller's future, and abandons the flight when it was the
    last one waiting.  Does nothing once the work has ended.  A hook raising
    a ``BaseException`` here still leaves the flight consistent.
    """
    futures = flight[FUTURES]
    if futures is None:
        return
    if type(futures) is dict:
        futures.pop(future, None)
        remaining = len(futures)
    else:  # the only caller left
        flight[FUTURES] = {}
        remaining = 0
    info: HookInfo | None = flight[INFO]
    try:
        if (
            info is not None
            and since  # the caller went through the hooks when it came
            and (reducer._want_left or info.hooks is not reducer._hooks)
        ):
            hooks = info.hooks
            left = CallerLeft(
                key=key,
                ident=info.ident,
                location=info.location,
                reason="cancelled" if future.cancelled() else "timeout",
                waited=time.perf_counter() - since,
                remaining=remaining,
            )
            try:
                hooks.on_caller_left(left)
            except Exception as exc:
                report_hook_error(hooks, "on_caller_left", exc)
    finally:
        if not remaining:
            _abandon(reducer, flights, key, flight, info)


def _abandon(
    reducer: AsyncReducer,
    flights: dict[Hashable, Flight[Any]],
    key: Hashable,
    flight: Flight[Any],
    info: HookInfo | None,
) -> None:
    """The last waiting caller left: release the key and cancel the work
    (unless orphans finish)."""
    cancel = reducer._orphans_cancel
    if cancel:
        release(flights, key, flight)
        task: asyncio.Task[None] | None = flight[TASK]
        if task is not None and not task.get_loop().is_closed():
            task.cancel()
    if info is not None and (
        reducer._want_abandoned or info.hooks is not reducer._hooks
    ):
        hooks = info.hooks
        abandoned = ExecutionAbandoned(
            key=key,
            ident=info.ident,
            location=info.location,
            cancelled=cancel,
            duration=time.perf_counter() - info.started,
        )
        try:
            hooks.on_execution_abandoned(abandoned)
        except Exception as exc:
            report_hook_error(hooks, "on_execution_abandoned", exc)


def _closed_from_outside(flight: Flight[Any]) -> bool:
    """A ``GeneratorExit`` reached :func:`execute`: is its coroutine being
    closed (garbage-collected), rather than the work raising it in a step?"""
    task: asyncio.Task[None] | None = flight[TASK]
    if task is None:  # first step of an eager task: the work raised it
        return False
    return asyncio.current_task(task.get_loop()) is not task


def _fail(flight: Flight[Any], waiting: Any, exc: BaseException) -> bool:
    """Hand the work's exception to every caller still waiting.

    Returns whether the task must end with ``exc`` itself (cancellation,
    ``KeyboardInterrupt``, ``SystemExit``, or the task being closed); any
    other exception is only the callers', so asyncio never logs it.
    """
    futures = waiting if type(waiting) is dict else (waiting,)
    if isinstance(exc, asyncio.CancelledError):
        for future in futures:
            if not future.done():
                future.cancel()
        return True
    if isinstance(exc, GeneratorExit) and _closed_from_outside(flight):
        task: asyncio.Task[None] = flight[TASK]
        if not task.get_loop().is_closed():
            for future in futures:
                if not future.done():
                    future.cancel()
        return True
    make_copy = None
    for future in futures:
        if not future.done():
            if make_copy is None:
                make_copy = copier(exc)
            future.set_exception(make_copy())
    return isinstance(exc, (KeyboardInterrupt, SystemExit))


async def execute(
    flights: dict[Hashable, Flight[Any]],
    key: Hashable,
    flight: Flight[Any],
    coro: Coroutine[Any, Any, Any],
) -> None:
    """Run the shared work of ``flight``; the coroutine of its task."""
    _set_running((*running_flights(), flight))
    try:
        result = await coro
    except BaseException as exc:
        release(flights, key, flight)
        futures = flight[FUTURES]
        flight[FUTURES] = None
        if _fail(flight, futures, exc):
            raise
        return
    # release(), inlined: this is the hot path.
    other = flights.pop(key, flight)
    if other is not flight:
        flights[key] = other
    futures = flight[FUTURES]
    flight[FUTURES] = None
    if type(futures) is dict:
        for future in futures:
            if not future.done():
                future.set_result(result)
    elif not futures.done():
        futures.set_result(result)


async def execute_with_hooks(
    reducer: AsyncReducer,
    flights: dict[Hashable, Flight[Any]],
    key: Hashable,
    flight: Flight[Any],
    coro: Coroutine[Any, Any, Any],
) -> None:
    """:func:`execute`, telling the execution's hooks how the work ended.

    The hooks hear of the outcome before the callers are woken, so
    statistics are up to date when a caller resumes.  The callers are woken
    even when a hook raises a ``BaseException`` (which then ends the task).
    """
    _set_running((*running_flights(), flight))
    info: HookInfo = flight[INFO]
    hooks = info.hooks
    try:
        result = await coro
    except BaseException as exc:
        release(flights, key, flight)
        futures = flight[FUTURES]
        flight[FUTURES] = None
        reraise = True
        try:
            try:
                hooks.on_exception_for(coro, info.ident, exc)
            except Exception as hook_exc:
                report_hook_error(hooks, "on_exception_for", hook_exc)
            if reducer._want_finished or hooks is not reducer._hooks:
                cancelled = isinstance(exc, asyncio.CancelledError)
                _tell_finished(
                    hooks, key, flight, info, "cancelled" if cancelled else "error", exc
                )
        finally:
            reraise = _fail(flight, futures, exc)
        if reraise:
            raise
        return
    release(flights, key, flight)
    futures = flight[FUTURES]
    flight[FUTURES] = None
    try:
        try:
            hooks.on_result_for(coro, info.ident, result)
        except Exception as hook_exc:
            report_hook_error(hooks, "on_result_for", hook_exc)
        if reducer._want_finished or hooks is not reducer._hooks:
            _tell_finished(hooks, key, flight, info, "result", None)
    finally:
        if type(futures) is dict:
            for future in futures:
                if not future.done():
                    future.set_result(result)
        elif not futures.done():
            futures.set_result(result)


def _tell_finished(
    hooks: Any,
    key: Hashable,
    flight: Flight[Any],
    info: HookInfo,
    outcome: Any,
    exc: BaseException | None,
) -> None:
    event = new_execution_finished(
        key,
        info.ident,
        info.location,
        outcome,
        time.perf_counter() - info.started,
        flight[CALLERS],
        exc,
    )
    try:
        hooks.on_execution_finished(event)
    except Exception as hook_exc:
        report_hook_error(hooks, "on_execution_finished", hook_exc)
