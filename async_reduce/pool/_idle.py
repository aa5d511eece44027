"""A live view of a pool's idle connections, shaped like an ``asyncio.Queue``."""

from __future__ import annotations

from typing import Any

__all__ = ["IdleConnections"]


class IdleConnections:
    """The idle connections of a pool, read live (``pool.available``).

    asyncio-connection-pool keeps its idle connections in an
    ``asyncio.Queue`` named ``available``, and its users read it with
    ``qsize()`` and ``empty()``; this view answers the same questions from
    the pool's own state.  It is read-only: connections are taken and given
    back only through the pool.
    """

    __slots__ = ("_pool",)

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    def qsize(self) -> int:
        """How many connections are idle now."""
        return len(self._pool._idle)

    def empty(self) -> bool:
        """``True`` when no connection is idle."""
        return not self._pool._idle

    def full(self) -> bool:
        """``True`` when ``max_size`` connections or more are idle."""
        return bool(len(self._pool._idle) >= self._pool._max_size)

    @property
    def maxsize(self) -> int:
        """The pool's ``max_size``, as the queue's bound in asyncio-connection-pool."""
        return self._pool._max_size  # type: ignore[no-any-return]

    def __len__(self) -> int:
        return len(self._pool._idle)

    def __repr__(self) -> str:
        return f"<idle connections of {self._pool!r}: {len(self._pool._idle)}>"
