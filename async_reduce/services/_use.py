"""``services.use(...)``: the async context manager holding one service."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._entry import RUNNING, ServiceEntry
from ._errors import ServiceBroken
from ._lifecycle import current_start

if TYPE_CHECKING:
    from ._scope import Services

__all__ = ["ServiceUse"]

T = TypeVar("T")


class ServiceUse(Generic[T]):
    """What :meth:`Services.use` returns: ``async with`` it to hold the service.

    Generic over the service's type (what the factory's context manager
    gives), so ``async with services.use(database, dsn) as db`` types ``db``.

    Entering waits for the service (starting it if need be) and gives the
    service object; leaving releases the hold, without waiting for a
    teardown.  One object holds at most one service at a time; it can be
    entered again after it was left.
    """

    __slots__ = (
        "_args",
        "_cancel",
        "_entry",
        "_factory",
        "_key",
        "_kwargs",
        "_linger",
        "_name",
        "_scope",
        "_task",
    )

    def __init__(
        self,
        scope: Services,
        key: Hashable,
        name: str,
        factory: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        linger: float | None,
        cancel: bool,
    ) -> None:
        self._scope = scope
        self._key = key
        self._name = name
        self._factory = factory
        self._args = args
        self._kwargs = kwargs
        self._linger = linger
        self._cancel = cancel
        self._entry: ServiceEntry | None = None
        self._task: asyncio.Task[Any] | None = None

    def __repr__(self) -> str:
        held = "holding" if self._entry is not None else "not holding"
        return f"<ServiceUse of {self._name} ({held})>"

    async def __aenter__(self) -> T:
        if self._entry is not None:
            raise RuntimeError(f"this use() of {self._name} is already entered")
        scope = self._scope
        entry = scope._registry.get(self._key)
        if (
            entry is not None
            and entry.state is RUNNING
            and self._linger is None
            and current_start.get() is None
        ):
            entry.users += 1  # the common case, inlined: a running service
        else:
            entry = scope._try_take(self._key, self._linger)
            if entry is None:
                entry = await scope._acquire_slow(self)
        self._entry = entry
        if self._cancel:
            task = asyncio.current_task()
            if task is not None:
                entry.watchers.append(task)
                self._task = task
        instance: T = entry.instance
        return instance

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        entry = self._entry
        if entry is None:
            return
        self._entry = None
        entry.users -= 1
        cancelled_by_us = False
        task = self._task
        if task is not None:
            self._task = None
            entry.watchers.remove(task)
            if task in entry.cancelled_watchers:
                entry.cancelled_watchers.remove(task)
                cancelled_by_us = True
        if entry.state is RUNNING and not entry.users:
            self._scope._maybe_idle(entry)
        failure = entry.cause()
        if failure is None:
            return
        if cancelled_by_us:
            assert task is not None
            uncancel = getattr(task, "uncancel", None)  # Python 3.11+
            if uncancel is not None and uncancel() > 0:
                return  # cancelled by someone else too: let that through
            if exc_type is not None and not issubclass(
                exc_type, asyncio.CancelledError
            ):
                return  # the block's own error
        elif exc_type is not None:
            return
        raise ServiceBroken(entry.name) from failure
