"""Redis coordination for :class:`async_reduce.fleet.FleetReducer`.

Requires the ``redis`` extra (``pip install 'async-reduce[redis]'``)::

    import redis.asyncio
    from async_reduce import async_reduceable
    from async_reduce.contrib.redis_fleet import RedisFleetReducer

    fleet = RedisFleetReducer(redis.asyncio.Redis(), "my-service")

    @async_reduceable(fleet)
    async def fetch_user(user_id: int) -> dict: ...

What it keeps in Redis, per key (all under one hash tag, the key's digest, so
every script is valid on Redis Cluster)::

    {prefix}:{<digest>}:lock        the leader's token, SET NX PX <lease>
    {prefix}:{<digest>}:out         the last outcome, kept share_for + grace
    {prefix}:{<digest>}:followers   the channels of the processes waiting

Each process (per event loop) has one pub/sub connection, subscribed once to
a channel of its own, ``{prefix}:proc:<random>``; announcements for every key
it waits on arrive there, prefixed with the key's digest.  Because that
subscription is in effect before the process reads anything, a follower
needs no subscription per key, and the race between subscribing and reading
cannot happen: one script, run once per local execution of a key, reads the
stored outcome if the caller may take it (produced within ``share_for``, or
after this caller arrived, or by the leader it follows), or else takes the
lock (this process leads), or else adds the process's channel to the key's
followers and returns the holder's token and remaining lease.  The leader
renews the lock by token and ends with one script that, only if no other
token holds the lock, stores the outcome, publishes it to every follower's
channel, and deletes the lock and the followers.  Followers get the outcome
in the announcement itself: a leader makes 2 round trips beyond its work
(claim, finish), a follower 1 (claim).  Outcome ages are measured with the
Redis server's clock (``TIME``), never across machines.  Commands have a
time limit (``timeout``); any Redis error or timeout is reported to the
fleet reducer, which then runs the work locally.

The pub/sub connection is this module's own, made from the client's
connection settings with redis-py's retries off: redis-py's ``PubSub``
re-subscribes silently after a reconnect, and messages published in between
are lost; here a dropped connection fails every wait on it, and each waiter
claims again on a new connection, which registers it again and reads the
stored outcome.

.. versionadded:: 2.0
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any

try:
    import redis.asyncio
except ImportError as exc:
    raise ImportError(
        "async_reduce.contrib.redis_fleet needs redis (redis-py 5 or later); "
        "install it with: pip install 'async-reduce[redis]'",
        name="redis",
    ) from exc

from async_reduce.fleet import (
    Claim,
    Coordinator,
    CoordinatorError,
    FleetReducer,
    Session,
)

from . import _redis_fleet_scripts as scripts
from ._redis_fleet_listener import FAILURES, Listener, Subscription, within

__all__ = ["RedisCoordinator", "RedisFleetReducer"]

# Outcome stamps are whole milliseconds: allow for that rounding.
_SINCE_MARGIN = 0.001


class _RedisSession(Session):
    __slots__ = (
        "_channel",
        "_coordinator",
        "_digest",
        "_followers",
        "_lock",
        "_out",
        "_started",
        "_subscription",
    )

    def __init__(
        self,
        coordinator: RedisCoordinator,
        digest: str,
        subscription: Subscription,
        channel: bytes,
        started: float,
    ) -> None:
        self._coordinator = coordinator
        self._started = started
        base = f"{coordinator.prefix}:{{{digest}}}"
        self._lock = f"{base}:lock"
        self._out = f"{base}:out"
        self._followers = f"{base}:followers"
        self._digest = digest.encode("ascii")
        self._channel = channel
        self._subscription = subscription

    async def _script(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        coordinator = self._coordinator
        try:
            return await within(
                script(keys=keys, args=args, client=coordinator.client),
                coordinator.timeout,
            )
        except FAILURES as exc:
            raise CoordinatorError(f"redis: {type(exc).__name__}") from exc

    async def claim(
        self, token: str, lease: float, share_for: float, accept: frozenset[str]
    ) -> Claim:
        if self._subscription.error is not None:
            raise CoordinatorError("the pub/sub connection was lost")
        # An outcome produced since this local execution began was produced
        # while its callers were waiting: they take it.
        since = time.monotonic() - self._started + _SINCE_MARGIN
        coordinator = self._coordinator
        role, holder, remaining, outcome = await self._script(
            coordinator.claim_script,
            [self._lock, self._out, self._followers],
            [
                token,
                max(1, int(lease * 1000)),
                int(share_for * 1000),
                int(since * 1000),
                self._channel,
                int(coordinator.grace * 1000),
                *accept,
            ],
        )
        holder = holder.decode("ascii") if isinstance(holder, bytes) else str(holder)
        if role == 2:
            return Claim("outcome", holder, 0.0, outcome)
        if role == 1 or holder == token:
            # (holder == token: redis-py retried a claim that had succeeded.)
            return Claim("leader", token)
        remaining = lease * 1000 if remaining is None or remaining <= 0 else remaining
        return Claim("follower", holder, remaining / 1000)

    async def wait(self, timeout: float) -> bytes | None:
        return await self._subscription.get(timeout)

    async def renew(self, token: str, lease: float) -> bool:
        return bool(
            await self._script(
                self._coordinator.renew_script,
                [self._lock],
                [token, max(1, int(lease * 1000))],
            )
        )

    async def finish(self, token: str, message: bytes, keep: float) -> bool:
        keep_ms = int((keep + self._coordinator.grace) * 1000)
        return bool(
            await self._script(
                self._coordinator.finish_script,
                [self._lock, self._out, self._followers],
                [token, message, keep_ms, self._digest],
            )
        )

    async def release(self, token: str, message: bytes) -> bool:
        return bool(
            await self._script(
                self._coordinator.release_script,
                [self._lock, self._followers],
                [token, message, self._digest],
            )
        )

    def close(self) -> None:
        self._subscription.close()


class RedisCoordinator(Coordinator):
    """Coordinates a fleet through one Redis server (or cluster node set).

    Args:
        client: a ``redis.asyncio.Redis`` for commands; the pub/sub
            connection is made from its connection settings.
        prefix: first part of every Redis key and channel.
        timeout: seconds any Redis step may take (connecting included)
            before the call falls back to local work.
        grace: seconds an outcome is kept beyond ``share_for``, for the
            followers of the execution that produced it (after a lost
            pub/sub connection or a missed announcement).

    .. versionadded:: 2.0
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        prefix: str = "async_reduce",
        timeout: float = 0.5,
        grace: float = 5.0,
    ) -> None:
        if not isinstance(client, redis.asyncio.Redis):
            raise TypeError(
                f"client must be a redis.asyncio.Redis, got {type(client).__name__}"
            )
        if not isinstance(prefix, str) or "{" in prefix or "}" in prefix:
            raise ValueError("prefix must be a str without '{' or '}'")
        for name, value in (("timeout", timeout), ("grace", grace)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number of seconds")
            if not 0 < value < float("inf"):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        self.client = client
        self.prefix = prefix
        self.timeout = float(timeout)
        self.grace = float(grace)
        self.claim_script = client.register_script(scripts.CLAIM)
        self.renew_script = client.register_script(scripts.RENEW)
        self.finish_script = client.register_script(scripts.FINISH)
        self.release_script = client.register_script(scripts.RELEASE)
        self._listeners: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, Listener
        ] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"<RedisCoordinator prefix={self.prefix!r} timeout={self.timeout}>"

    def _listener(self) -> Listener:
        loop = asyncio.get_running_loop()
        listener = self._listeners.get(loop)
        if listener is None:
            listener = self._listeners[loop] = Listener(self)
        return listener

    async def session(self, digest: str) -> Session:
        started = time.monotonic()
        listener = self._listener()
        try:
            subscription = await within(
                listener.register(digest.encode("ascii")), self.timeout
            )
        except FAILURES as exc:
            raise CoordinatorError(f"redis: {type(exc).__name__}") from exc
        return _RedisSession(self, digest, subscription, listener.channel, started)

    async def aclose(self) -> None:
        """Close the pub/sub connection of the running event loop."""
        listener = self._listeners.pop(asyncio.get_running_loop(), None)
        if listener is not None:
            await listener.aclose()


class RedisFleetReducer(FleetReducer):
    """A :class:`~async_reduce.fleet.FleetReducer` over Redis: a reducer with a
    Redis client and a namespace.

    Args:
        client: a ``redis.asyncio.Redis``.
        namespace: keeps fleets apart; part of every key.
        prefix, redis_timeout, grace: as ``prefix``, ``timeout`` and
            ``grace`` of :class:`RedisCoordinator`.
        **options: the options of :class:`~async_reduce.fleet.FleetReducer`
            (``hooks``, ``lease``, ``share_for``, ``codec``, ``secret``, ...).

    .. versionadded:: 2.0
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        namespace: str,
        *,
        prefix: str = "async_reduce",
        redis_timeout: float = 0.5,
        grace: float = 5.0,
        **options: Any,
    ) -> None:
        coordinator = RedisCoordinator(
            client, prefix=prefix, timeout=redis_timeout, grace=grace
        )
        super().__init__(coordinator, namespace, **options)
