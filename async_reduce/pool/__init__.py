"""A fair, burstable, cancellation-safe connection pool backed by the reducer.

::

    from async_reduce.pool import ConnectionPool
    from async_reduce.contrib.redis import RedisStrategy

    async def get(redis, key):
        return await redis.get(key)

    pool = ConnectionPool(RedisStrategy(host="127.0.0.1"), max_size=10)
    async with pool:
        async with pool.get_connection() as redis:
            await redis.set("greeting", "hello")
        # concurrent identical calls run once, on one connection:
        value = await pool.run(get, "greeting")

The function passed to ``run`` is part of the key: pass the same function
object each time (a ``lambda`` or a function defined inside the caller is a
new object per call, so its calls never coalesce).

See :class:`ConnectionPool` for the full contract.
"""

from ._errors import PoolClosed, PoolError, PoolTimeout
from ._pool import ConnectionPool
from ._stats import PoolStatistics
from ._strategy import ConnectionStrategy, LegacyConnectionStrategy

__all__ = [
    "ConnectionPool",
    "ConnectionStrategy",
    "LegacyConnectionStrategy",
    "PoolClosed",
    "PoolError",
    "PoolStatistics",
    "PoolTimeout",
]
