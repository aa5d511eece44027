"""Redis connections for :class:`async_reduce.pool.ConnectionPool`.

Requires the ``redis`` extra (``pip install 'async-reduce[redis]'``), which
brings ``redis.asyncio`` (redis-py 5 or later).

Each pooled connection is a :class:`redis.asyncio.Redis` client bound to a
single socket (``single_connection_client=True``), so the pool, not the
client, decides how many sockets are open::

    from async_reduce.contrib.redis import RedisStrategy
    from async_reduce.pool import ConnectionPool

    pool = ConnectionPool(RedisStrategy(host="127.0.0.1", port=6379), max_size=10)
    async with pool:
        async with pool.get_connection() as redis:
            await redis.set("key", "value")

.. versionadded:: 2.0
"""

from __future__ import annotations

from typing import Any

try:
    import redis.asyncio
except ImportError as exc:
    raise ImportError(
        "async_reduce.contrib.redis needs redis (redis-py 5 or later); "
        "install it with: pip install 'async-reduce[redis]'",
        name="redis",
    ) from exc

from async_reduce.pool import ConnectionStrategy

__all__ = ["RedisStrategy"]

_RESERVED = ("connection_pool", "single_connection_client")


class RedisStrategy(ConnectionStrategy[redis.asyncio.Redis]):
    """Opens, tests and closes single-socket ``redis.asyncio.Redis`` clients.

    * ``create_connection`` builds a client with the keyword arguments given
      here and connects it, so a refused connection fails the acquire (and
      starts the pool's outage protection) instead of the first command.
    * ``connection_is_closed`` is true once the client's socket was dropped
      (redis-py drops it after a connection error, for example when the
      server restarted), so the pool replaces such clients.
    * ``check_connection`` sends ``PING``; the pool calls it only for clients
      idle longer than its ``check_after``.
    * ``close_connection`` closes the client and its socket.

    redis-py retries failed commands by itself (its ``retry`` argument);
    while the server is down each command then takes that long to fail.
    Pass ``retry=None`` or a shorter :class:`redis.asyncio.retry.Retry` to fail
    fast and leave reconnecting to the pool.

    Args:
        **kwargs: arguments of :class:`redis.asyncio.Redis` (``host``,
            ``port``, ``db``, ``password``, ``decode_responses``, timeouts,
            ...), except ``connection_pool`` and
            ``single_connection_client``, which this strategy sets.

    Raises:
        TypeError: ``connection_pool`` or ``single_connection_client`` given.

    .. versionadded:: 2.0
    """

    def __init__(self, **kwargs: Any) -> None:
        self._url: str | None = None
        self._kwargs = self._checked(kwargs)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisStrategy:
        """A strategy for ``url`` (``redis://``, ``rediss://`` or ``unix://``).

        Extra keyword arguments are as for :meth:`redis.asyncio.Redis.from_url`.
        """
        if not isinstance(url, str):
            raise TypeError(f"url must be a str, got {type(url).__name__}")
        strategy = cls(**kwargs)
        strategy._url = url
        return strategy

    @staticmethod
    def _checked(kwargs: dict[str, Any]) -> dict[str, Any]:
        for name in _RESERVED:
            if name in kwargs:
                raise TypeError(
                    f"RedisStrategy sets {name} itself: each pooled connection is "
                    "a client with one socket"
                )
        return kwargs

    def __repr__(self) -> str:
        where = self._url or (
            f"{self._kwargs.get('host', 'localhost')}:{self._kwargs.get('port', 6379)}"
        )
        return f"<RedisStrategy {where}>"

    async def create_connection(self) -> redis.asyncio.Redis:
        """Open a single-socket client and connect it."""
        if self._url is None:
            client = redis.asyncio.Redis(**self._kwargs, single_connection_client=True)
        else:
            client = redis.asyncio.Redis.from_url(
                self._url, **self._kwargs, single_connection_client=True
            )
        try:
            await client.initialize()
        except BaseException:
            await client.aclose()
            raise
        return client

    def connection_is_closed(self, conn: redis.asyncio.Redis) -> bool:
        """True once the client's socket is gone."""
        socket = conn.connection
        return socket is None or not socket.is_connected

    async def check_connection(self, conn: redis.asyncio.Redis) -> bool:
        """``PING`` the server."""
        return bool(await conn.ping())

    async def close_connection(self, conn: redis.asyncio.Redis) -> None:
        """Close the client and its socket."""
        await conn.aclose()
