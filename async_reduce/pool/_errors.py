"""Exceptions raised by :class:`~async_reduce.pool.ConnectionPool`."""

from __future__ import annotations

import asyncio
import sys

__all__ = ["PoolClosed", "PoolError", "PoolTimeout"]


class PoolError(Exception):
    """Base class of the errors the pool raises itself.

    Errors raised by the strategy (for example a refused connection) reach the
    caller unchanged and do not derive from this class.

    .. versionadded:: 2.0
    """


if sys.version_info >= (3, 11):
    _TimeoutBase: tuple[type[Exception], ...] = (TimeoutError,)
else:  # pragma: no cover - Python 3.10, where asyncio's TimeoutError is separate
    _TimeoutBase = (asyncio.TimeoutError, TimeoutError)


class PoolTimeout(PoolError, *_TimeoutBase):  # type: ignore[misc]
    """No connection became available within the acquire timeout.

    A :class:`TimeoutError` (on Python 3.10 also an
    :class:`asyncio.TimeoutError`), so ``except TimeoutError`` catches it.  The message
    and the attributes describe the pool at the moment the caller gave up.
    During a backend outage ``__cause__`` is the last error raised by the
    strategy's ``create_connection``.

    Attributes:
        waited: seconds the caller waited.
        size: connections open or being opened.
        in_use: connections lent out.
        waiting: other callers still waiting.
        creating: connections being opened (counted in ``size``), so that a
            creation that hangs shows as such.

    .. versionadded:: 2.0
    """

    def __init__(
        self, waited: float, size: int, in_use: int, waiting: int, creating: int = 0
    ) -> None:
        super().__init__(
            f"no connection available after {waited:.3f}s (size={size}, "
            f"in_use={in_use}, waiting={waiting}, creating={creating})"
        )
        self.waited = waited
        self.size = size
        self.in_use = in_use
        self.waiting = waiting
        self.creating = creating

    def __reduce__(
        self,
    ) -> tuple[type[PoolTimeout], tuple[float, int, int, int, int]]:
        return (
            type(self),
            (self.waited, self.size, self.in_use, self.waiting, self.creating),
        )


class PoolClosed(PoolError):
    """The pool was closed before or while the caller waited for a connection.

    .. versionadded:: 2.0
    """
