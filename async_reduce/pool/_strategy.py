"""What the pool needs to know about a kind of connection."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["ConnectionStrategy", "LegacyConnectionStrategy", "StrategyCalls"]

C = TypeVar("C")


class ConnectionStrategy(ABC, Generic[C]):
    """How to open, test and close one kind of connection.

    Subclass it and implement the three abstract methods; override
    :meth:`check_connection` to add an active liveness check.  The pool calls
    these methods only from the event loop it is bound to, never concurrently
    for the same connection.

    A strategy written for asyncio-connection-pool 1.x (a ``make_connection``
    method instead of ``create_connection``) is accepted by the pool as is; it
    need not derive from this class.  A subclass of this class may define
    ``make_connection`` instead of ``create_connection`` too (code written
    against asyncio-connection-pool's ``ConnectionStrategy`` then only changes
    its import); ``close_connection`` may be a plain function there.

    .. versionadded:: 2.0
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # asyncio-connection-pool's name for create_connection: a subclass
        # defining only make_connection is complete.
        make = getattr(cls, "make_connection", None)
        create = getattr(cls, "create_connection", None)
        if make is not None and getattr(create, "__isabstractmethod__", False):
            cls.create_connection = make  # type: ignore[method-assign]

    @abstractmethod
    async def create_connection(self) -> C:
        """Open and return a new connection.

        An exception raised here reaches the caller of ``acquire`` that is
        first in line, and frees the slot.  The call is cancelled if the pool
        is closed meanwhile, or after the pool's ``connect_timeout`` (then the
        caller gets a ``TimeoutError``).  At most ``max_connecting`` calls run
        at once.  It must return a new connection each time: one the pool
        already holds is refused with a ``RuntimeError`` (plain values such
        as ``None`` or numbers excepted).
        """

    @abstractmethod
    def connection_is_closed(self, conn: C) -> bool:
        """Return ``True`` if ``conn`` can no longer be used.

        Called, without awaiting, on each fresh connection and each time a
        connection is handed out or returned, so it must be cheap (a flag,
        not I/O).  An exception counts as ``True``.
        """

    @abstractmethod
    async def close_connection(self, conn: C) -> None:
        """Close ``conn``.

        The pool has already stopped counting the connection when this runs;
        an exception is logged and otherwise ignored.
        """

    async def check_connection(self, conn: C) -> bool:
        """Actively test ``conn`` (for example a ``PING``); ``True`` if usable.

        Called on checkout only when the connection has been idle longer than
        the pool's ``check_after``.  Returning ``False``, raising or taking
        longer than the pool's ``check_timeout`` closes the connection and the
        pool tries another; :meth:`ConnectionPool.close` cancels the check.
        If the caller is cancelled during the check, the connection is
        closed, since its protocol state is unknown.  The default returns
        ``True`` without any I/O.
        """
        return True


class LegacyConnectionStrategy(Protocol[C]):
    """The strategy interface of asyncio-connection-pool 1.x, also accepted."""

    async def make_connection(self) -> C:
        """Open and return a new connection."""

    def connection_is_closed(self, conn: C) -> bool:
        """Return ``True`` if ``conn`` can no longer be used."""

    def close_connection(self, conn: C) -> Any:
        """Close ``conn`` (a coroutine function or a plain function)."""


def _required(strategy: object, names: tuple[str, ...]) -> Callable[..., Any]:
    for name in names:
        method = getattr(strategy, name, None)
        if method is not None:
            if not callable(method):
                raise TypeError(f"strategy.{name} must be callable, got {method!r}")
            return method  # type: ignore[no-any-return]
    raise TypeError(
        f"strategy must provide {' or '.join(names)}() "
        f"(see async_reduce.pool.ConnectionStrategy), got {strategy!r}"
    )


class StrategyCalls(Generic[C]):
    """The strategy's methods, looked up once and adapted to one calling form."""

    __slots__ = ("_close", "check", "create", "create_name", "is_closed", "strategy")

    def __init__(self, strategy: ConnectionStrategy[C] | LegacyConnectionStrategy[C]):
        if isinstance(strategy, type):
            raise TypeError(
                f"strategy must be an instance, not the class {strategy.__qualname__}"
            )
        self.strategy = strategy
        self.create: Callable[[], Awaitable[C]] = _required(
            strategy, ("create_connection", "make_connection")
        )
        # For error messages: "RedisStrategy.create_connection()".
        self.create_name = (
            f"{type(strategy).__qualname__}."
            f"{getattr(self.create, '__name__', 'create_connection')}()"
        )
        self.is_closed: Callable[[C], bool] = _required(
            strategy, ("connection_is_closed",)
        )
        self._close: Callable[[C], Any] = _required(strategy, ("close_connection",))
        check = getattr(type(strategy), "check_connection", None)
        # The inherited default does no I/O: skip the await altogether.
        self.check: Callable[[C], Coroutine[Any, Any, bool]] | None = (
            None
            if check is None or check is ConnectionStrategy.check_connection
            else strategy.check_connection  # type: ignore[union-attr]
        )

    async def close(self, conn: C) -> None:
        """Close ``conn``, awaiting the strategy's result if it is awaitable."""
        result = self._close(conn)
        if inspect.isawaitable(result):
            await result
