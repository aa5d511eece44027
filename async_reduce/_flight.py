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
then tells the flight it left (:meth:`Flight.leave`).  When the last waiting
caller has left, the flight is *abandoned*: its key is released at once, so
later callers start a fresh execution, and the work is cancelled unless the
reducer keeps orphans.  A timeout takes the same path, with the caller's
future failing with ``TimeoutError``.

The shared task itself never ends with an ordinary exception: the exception
goes to the callers' futures (each caller retrieves its own), and when no
caller is left it is dropped, after the hooks have seen it, so asyncio never
logs "exception was never retrieved".
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Coroutine, Hashable
from typing import TYPE_CHECKING, Any

from ._events import CallerLeft, ExecutionAbandoned, ExecutionFinished
from ._hookerrors import report_hook_error

if TYPE_CHECKING:
    from ._reducer import AsyncReducer

__all__ = ["Flight", "execute", "execute_with_hooks", "expire", "new_timeout_error"]

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


class Flight:
    """The shared execution of one key on one event loop.

    ``futures`` holds one future per caller that joined (``None`` once the
    work has ended); ``waiting`` counts the callers that have not left.  The
    remaining slots are filled only when the reducer has hooks.
    """

    __slots__ = (
        "coro",
        "flights",
        "futures",
        "ident",
        "key",
        "location",
        "reducer",
        "started",
        "task",
        "waiting",
    )

    task: asyncio.Task[None]
    coro: Coroutine[Any, Any, Any]
    ident: Hashable
    location: str
    started: float

    def __init__(
        self,
        reducer: AsyncReducer,
        flights: dict[Hashable, Flight],
        key: Hashable,
        future: asyncio.Future[Any],
    ) -> None:
        self.reducer = reducer
        self.flights = flights
        self.key = key
        # The caller that creates a flight is its first waiter.
        self.futures: list[asyncio.Future[Any]] | None = [future]
        self.waiting = 1

    def __repr__(self) -> str:
        state = "running" if self.futures is not None else "done"
        return f"<Flight key={self.key!r} {state} waiting={self.waiting}>"

    def unregister(self) -> None:
        """Release this flight's key, unless it already maps to a newer flight."""
        flights = self.flights
        other = flights.pop(self.key, self)
        if other is not self:
            flights[self.key] = other

    def leave(self, future: asyncio.Future[Any], waited_since: float) -> None:
        """A waiting caller left early (its future was cancelled or timed out).

        Abandons the flight when it was the last one waiting.  Does nothing
        once the work has ended.
        """
        if self.futures is None:
            return
        self.waiting -= 1
        reducer = self.reducer
        hooks = reducer._hooks
        if hooks is not None:
            left = CallerLeft(
                key=self.key,
                ident=self.ident,
                location=self.location,
                reason="cancelled" if future.cancelled() else "timeout",
                waited=time.perf_counter() - waited_since,
                remaining=self.waiting,
            )
            try:
                hooks.on_caller_left(left)
            except Exception as exc:
                report_hook_error(hooks, "on_caller_left", exc)
        if self.waiting:
            return
        cancel = reducer._orphans_cancel
        if cancel:
            self.unregister()
            self.task.cancel()
        if hooks is not None:
            abandoned = ExecutionAbandoned(
                key=self.key,
                ident=self.ident,
                location=self.location,
                cancelled=cancel,
                duration=time.perf_counter() - self.started,
            )
            try:
                hooks.on_execution_abandoned(abandoned)
            except Exception as exc:
                report_hook_error(hooks, "on_execution_abandoned", exc)


def _settle(
    futures: list[asyncio.Future[Any]], result: Any, exc: BaseException | None
) -> None:
    """Hand the outcome to every caller still waiting."""
    if exc is None:
        for future in futures:
            if not future.done():
                future.set_result(result)
    elif isinstance(exc, asyncio.CancelledError):
        for future in futures:
            if not future.done():
                future.cancel()
    else:
        for future in futures:
            if not future.done():
                future.set_exception(exc)


async def execute(flight: Flight, coro: Coroutine[Any, Any, Any]) -> None:
    """Run the shared work of ``flight``; the coroutine of its task."""
    try:
        result = await coro
    except BaseException as exc:
        flight.unregister()
        futures = flight.futures
        flight.futures = None
        assert futures is not None
        _settle(futures, None, exc)
        if not isinstance(exc, Exception):
            raise  # cancellation, KeyboardInterrupt, SystemExit
        return
    flight.unregister()
    futures = flight.futures
    flight.futures = None
    assert futures is not None
    for future in futures:
        if not future.done():
            future.set_result(result)


async def execute_with_hooks(flight: Flight, coro: Coroutine[Any, Any, Any]) -> None:
    """:func:`execute`, telling the reducer's hooks how the work ended."""
    hooks = flight.reducer._hooks
    try:
        result = await coro
    except BaseException as exc:
        flight.unregister()
        futures = flight.futures
        flight.futures = None
        assert futures is not None
        try:
            hooks.on_exception_for(coro, flight.ident, exc)
        except Exception as hook_exc:
            report_hook_error(hooks, "on_exception_for", hook_exc)
        outcome = "cancelled" if isinstance(exc, asyncio.CancelledError) else "error"
        _tell_finished(flight, len(futures), outcome, exc)
        _settle(futures, None, exc)
        if not isinstance(exc, Exception):
            raise
        return
    flight.unregister()
    futures = flight.futures
    flight.futures = None
    assert futures is not None
    try:
        hooks.on_result_for(coro, flight.ident, result)
    except Exception as hook_exc:
        report_hook_error(hooks, "on_result_for", hook_exc)
    _tell_finished(flight, len(futures), "result", None)
    _settle(futures, result, None)


def _tell_finished(
    flight: Flight, callers: int, outcome: Any, exc: BaseException | None
) -> None:
    hooks = flight.reducer._hooks
    event = ExecutionFinished(
        key=flight.key,
        ident=flight.ident,
        location=flight.location,
        outcome=outcome,
        duration=time.perf_counter() - flight.started,
        callers=callers,
        exception=exc,
    )
    try:
        hooks.on_execution_finished(event)
    except Exception as hook_exc:
        report_hook_error(hooks, "on_execution_finished", hook_exc)
