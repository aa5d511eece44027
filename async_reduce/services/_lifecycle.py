"""The task that owns one service: enter its context manager, keep it, exit it.

A context manager must be exited by the task that entered it (task groups,
``asyncio.timeout`` and cancel scopes depend on that), so every service runs
in a task of its own that the scope holds: it enters the factory's context
manager, hands the service to the start that waits for it, waits for the stop
signal, stops the services that depend on it, and exits the context manager.
All decisions (who is told, what is stopped, what is registered) are taken
synchronously by the scope; this task only does the I/O.

While the start runs, the task's context says whose start it is, so that
``use`` calls made by the factory record dependencies (tasks the factory
creates meanwhile inherit that context, as ``asyncio`` copies it).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from ._entry import BROKEN, STOPPING, ServiceEntry

if TYPE_CHECKING:
    from ._state import ScopeState

__all__ = ["current_start", "run_service"]

current_start: ContextVar[ServiceEntry | None] = ContextVar(
    "async_reduce_services_current_start", default=None
)

perf_counter = time.perf_counter


def _enter_exit(cm: Any, factory: Callable[..., Any]) -> tuple[Any, Any]:
    """The bound ``__aenter__``/``__aexit__`` of what the factory returned
    (an async generator, as aiohttp's ``cleanup_ctx`` takes, is entered as
    ``asynccontextmanager`` would)."""
    if inspect.isasyncgen(cm):
        generator = cm
        cm = asynccontextmanager(lambda: generator)()
    kind = type(cm)
    enter = getattr(kind, "__aenter__", None)
    leave = getattr(kind, "__aexit__", None)
    if enter is None or leave is None:
        if asyncio.iscoroutine(cm):
            cm.close()
        raise TypeError(
            f"service factory {factory!r} returned {kind.__name__}, not an async"
            " context manager or async generator (write it with"
            " @contextlib.asynccontextmanager)"
        )
    return enter.__get__(cm), leave.__get__(cm)


async def _absorb_cancel() -> None:
    """Swallow a cancellation requested while the task could not receive it
    (it was finishing a step), so that it does not hit the teardown."""
    try:
        await asyncio.sleep(0)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        uncancel = getattr(task, "uncancel", None)
        if uncancel is not None:
            uncancel()


async def _wait_all(futures: list[asyncio.Future[None]]) -> BaseException | None:
    """Wait for every future; a cancellation meanwhile is returned, not raised
    (the scope forwards one during its exit; the waiting goes on)."""
    cancelled: BaseException | None = None
    pending = [future for future in futures if not future.done()]
    while pending:
        try:
            await asyncio.wait(pending)
        except asyncio.CancelledError as exc:
            cancelled = exc
        pending = [future for future in pending if not future.done()]
    return cancelled


async def run_service(
    scope: ScopeState,
    entry: ServiceEntry,
    factory: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    started: asyncio.Future[ServiceEntry],
) -> None:
    """The coroutine of a service's task (see the module docstring)."""
    current_start.set(entry)
    try:
        cm = factory(*args, **kwargs)
        enter, leave = _enter_exit(cm, factory)
        instance = await enter()
    except BaseException as exc:
        error = exc
        if isinstance(exc, asyncio.CancelledError) and entry.abort_error is not None:
            error = entry.abort_error
        scope._on_start_failed(entry, error)
        if not started.done():
            if isinstance(error, asyncio.CancelledError):
                started.cancel()
            else:
                started.set_exception(error)
        if error is exc and not isinstance(exc, Exception):
            raise  # an abandoned start's cancellation, KeyboardInterrupt...
        return

    entry.entered = True
    if entry.abort_error is not None or started.done():
        # Aborted (scope exit) or abandoned (nobody waits) just as the enter
        # completed: the cancellation meant for the enter is still pending.
        # Nobody gets this instance: it is torn down at once.
        aborted = entry.abort_error
        if aborted is None:
            entry.abort_error = asyncio.CancelledError()  # no second abort
        await _absorb_cancel()
        scope._on_started(entry, instance)
        scope._request_stop(entry, "released" if aborted is None else "scope_exit")
        if aborted is not None and not started.done():
            started.set_exception(aborted)
    else:
        scope._on_started(entry, instance)
        started.set_result(entry)
    exit_exc: BaseException | None = None
    try:
        await entry.stop_signal
    except BaseException as exc:
        exit_exc = exc
        if entry.state is not STOPPING:
            # Cancelled from inside (a task group of the service whose task
            # failed) or from outside while in use: the service is broken.
            scope._on_failed(entry, exc)
    # Dependents first: a dependency outlives every dependent.
    cancelled = await _wait_all(scope._stop_dependents(entry))
    if cancelled is not None and exit_exc is None:
        exit_exc = cancelled

    began = perf_counter()
    teardown_error: BaseException | None = None
    try:
        if exit_exc is None:
            await leave(None, None, None)
        else:
            await leave(type(exit_exc), exit_exc, exit_exc.__traceback__)
    except BaseException as exc:
        if exc is not exit_exc:
            teardown_error = exc
    if entry.state is BROKEN:
        # What the exit raised is the failure itself (a task group's error).
        scope._on_broken_exit(entry, teardown_error)
        teardown_error = None
    scope._on_stopped(entry, perf_counter() - began, teardown_error)
    if teardown_error is not None and not isinstance(
        teardown_error, (Exception, asyncio.CancelledError)
    ):
        raise teardown_error  # KeyboardInterrupt, SystemExit
