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
then tells the flight it left (:func:`leave`).  When the last waiting caller
has left, the flight is *abandoned*: its key is released at once, so later
callers start a fresh execution, and the work is cancelled unless the reducer
keeps orphans.  A timeout takes the same path, with the caller's future
failing with ``TimeoutError``.

The shared task itself never ends with an ordinary exception: the exception
goes to the callers' futures (each caller retrieves its own), and when no
caller is left it is dropped, after the hooks have seen it, so asyncio never
logs "exception was never retrieved".

The flight record
-----------------

A flight is a plain list, ``[waiting, task, info, future, future, ...]``:
this is the hottest object of the library and a list is built by one
bytecode, where a class instance costs a Python ``__init__`` frame (about
five times the instructions, measured with callgrind).  ``waiting`` counts
callers that have not left (``FINISHED`` once the work has ended), ``task``
is the shared task, ``info`` is a :class:`HookInfo` when the reducer has
hooks (else ``None``), and the futures, one per caller that joined, follow.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Coroutine, Hashable
from typing import TYPE_CHECKING, Any, NamedTuple

from ._events import CallerLeft, ExecutionAbandoned, new_execution_finished
from ._hookerrors import report_hook_error

if TYPE_CHECKING:
    from ._reducer import AsyncReducer

__all__ = [
    "FINISHED",
    "FUTURES",
    "INFO",
    "TASK",
    "WAITING",
    "Flight",
    "HookInfo",
    "execute",
    "execute_with_hooks",
    "expire",
    "leave",
    "new_timeout_error",
    "release",
]

Flight = list  # [waiting, task, info, *futures]; see the module docstring
WAITING = 0
TASK = 1
INFO = 2
FUTURES = 3
FINISHED = -1

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

    Abandons the flight when it was the last one waiting.  Does nothing
    once the work has ended.
    """
    if flight[WAITING] == FINISHED:
        return
    flight[WAITING] -= 1
    waiting: int = flight[WAITING]
    info: HookInfo | None = flight[INFO]
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
            remaining=waiting,
        )
        try:
            hooks.on_caller_left(left)
        except Exception as exc:
            report_hook_error(hooks, "on_caller_left", exc)
    if waiting:
        return
    cancel = reducer._orphans_cancel
    if cancel:
        release(flights, key, flight)
        flight[TASK].cancel()
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


def _settle_error(futures: list[asyncio.Future[Any]], exc: BaseException) -> None:
    """Hand an exception to every caller still waiting."""
    if isinstance(exc, asyncio.CancelledError):
        for future in futures:
            if not future.done():
                future.cancel()
    else:
        for future in futures:
            if not future.done():
                future.set_exception(exc)


async def execute(
    flights: dict[Hashable, Flight[Any]],
    key: Hashable,
    flight: Flight[Any],
    coro: Coroutine[Any, Any, Any],
) -> None:
    """Run the shared work of ``flight``; the coroutine of its task."""
    try:
        result = await coro
    except BaseException as exc:
        release(flights, key, flight)
        flight[WAITING] = FINISHED
        _settle_error(flight[FUTURES:], exc)
        if not isinstance(exc, Exception):
            raise  # cancellation, KeyboardInterrupt, SystemExit
        return
    # release(), inlined: this is the hot path.
    other = flights.pop(key, flight)
    if other is not flight:
        flights[key] = other
    flight[WAITING] = FINISHED
    for future in flight[FUTURES:]:
        if not future.done():
            future.set_result(result)


async def execute_with_hooks(
    reducer: AsyncReducer,
    flights: dict[Hashable, Flight[Any]],
    key: Hashable,
    flight: Flight[Any],
    coro: Coroutine[Any, Any, Any],
) -> None:
    """:func:`execute`, telling the reducer's hooks how the work ended.

    The hooks hear of the outcome before the callers are woken, so
    statistics are up to date when a caller resumes.
    """
    info: HookInfo = flight[INFO]
    hooks = info.hooks
    try:
        result = await coro
    except BaseException as exc:
        release(flights, key, flight)
        flight[WAITING] = FINISHED
        try:
            hooks.on_exception_for(coro, info.ident, exc)
        except Exception as hook_exc:
            report_hook_error(hooks, "on_exception_for", hook_exc)
        if reducer._want_finished or info.hooks is not reducer._hooks:
            cancelled = isinstance(exc, asyncio.CancelledError)
            _tell_finished(
                hooks, key, flight, info, "cancelled" if cancelled else "error", exc
            )
        _settle_error(flight[FUTURES:], exc)
        if not isinstance(exc, Exception):
            raise
        return
    release(flights, key, flight)
    flight[WAITING] = FINISHED
    try:
        hooks.on_result_for(coro, info.ident, result)
    except Exception as hook_exc:
        report_hook_error(hooks, "on_result_for", hook_exc)
    if reducer._want_finished or info.hooks is not reducer._hooks:
        _tell_finished(hooks, key, flight, info, "result", None)
    for future in flight[FUTURES:]:
        if not future.done():
            future.set_result(result)


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
        len(flight) - FUTURES,
        exc,
    )
    try:
        hooks.on_execution_finished(event)
    except Exception as hook_exc:
        report_hook_error(hooks, "on_execution_finished", hook_exc)
