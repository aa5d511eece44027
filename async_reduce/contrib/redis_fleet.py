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
import contextlib
import secrets
import time
import weakref
from collections import deque
from typing import Any

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from async_reduce.fleet import (
    Claim,
    Coordinator,
    CoordinatorError,
    FleetReducer,
    Session,
)

__all__ = ["RedisCoordinator", "RedisFleetReducer"]

# KEYS: lock, out, followers.
# ARGV: token, lease_ms, share_ms, since_ms, channel, grace_ms, accepted...
# The stored outcome is the server time it was produced (13 digits, ms) then
# the message.  It is taken when younger than share_ms, produced less than
# since_ms ago (after this caller arrived), or by an accepted token.
# Returns {role, token, remaining_ms, message}; role 2: outcome, 1: leader,
# 0: follower of token (its channel now among the followers).
_CLAIM = """
local out = redis.call('GET', KEYS[2])
if out then
  local message = string.sub(out, 14)
  local producer = string.sub(message, 2, 33)
  local now = redis.call('TIME')
  local stamp = tonumber(string.sub(out, 1, 13))
  local age = now[1] * 1000 + math.floor(now[2] / 1000) - stamp
  local ok = age < tonumber(ARGV[3]) or age <= tonumber(ARGV[4])
  if not ok then
    for i = 7, #ARGV do
      if ARGV[i] == producer then ok = true break end
    end
  end
  if ok then return {2, producer, 0, message} end
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, ARGV[1], 0, ''}
end
local remaining = redis.call('PTTL', KEYS[1])
redis.call('SADD', KEYS[3], ARGV[5])
redis.call('PEXPIRE', KEYS[3], math.max(remaining, 0) + tonumber(ARGV[6]))
return {0, redis.call('GET', KEYS[1]) or '', remaining, ''}
"""

# KEYS: lock.  ARGV: token, lease_ms.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: lock, out, followers.  ARGV: token, message, keep_ms, digest.
_FINISH = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
local now = redis.call('TIME')
local stamp = string.format('%013d', now[1] * 1000 + math.floor(now[2] / 1000))
redis.call('SET', KEYS[2], stamp .. ARGV[2], 'PX', ARGV[3])
if holder then redis.call('DEL', KEYS[1]) end
for _, channel in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  redis.call('PUBLISH', channel, ARGV[4] .. ARGV[2])
end
redis.call('DEL', KEYS[3])
return 1
"""

# KEYS: lock, followers.  ARGV: token, message, digest.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  for _, channel in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    redis.call('PUBLISH', channel, ARGV[3] .. ARGV[2])
  end
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""

_SINCE_MARGIN = 0.05
_DIGEST_SIZE = 64

_FAILURES = (redis.exceptions.RedisError, OSError, asyncio.TimeoutError)


class _Subscription:
    """One local execution waiting on a key: its announcements queue up here."""

    __slots__ = ("closed", "digest", "error", "listener", "messages", "waiter")

    def __init__(self, listener: _Listener, digest: bytes) -> None:
        self.listener = listener
        self.digest = digest
        self.messages: deque[bytes] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.error: BaseException | None = None
        self.closed = False

    def deliver(self, data: bytes) -> None:
        self.messages.append(data)
        self._wake()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self, timeout: float) -> bytes | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.messages:
            if self.error is not None:
                raise CoordinatorError(
                    "the pub/sub connection was lost"
                ) from self.error
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            self.waiter = loop.create_future()
            handle = loop.call_later(remaining, self._wake)
            try:
                await self.waiter
            finally:
                handle.cancel()
                self.waiter = None
        return self.messages.popleft()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.listener.remove(self)


class _Listener:
    """The pub/sub connection of one event loop, shared by every key.

    It is subscribed to one channel of its own; announcements arrive there
    prefixed with their key's digest and go to the subscriptions waiting on
    that key.
    """

    def __init__(self, coordinator: RedisCoordinator) -> None:
        self._coordinator = coordinator
        self._client: redis.asyncio.Redis | None = None
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._connecting: asyncio.Future[None] | None = None
        self._waiting: dict[bytes, set[_Subscription]] = {}
        self._confirmed: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.channel = b""

    async def _connect(self) -> None:
        source = self._coordinator.client.connection_pool
        kwargs = dict(source.connection_kwargs)
        kwargs["retry"] = Retry(NoBackoff(), 0)
        kwargs["socket_connect_timeout"] = self._coordinator.timeout
        kwargs.pop("socket_timeout", None)
        pool = redis.asyncio.ConnectionPool(
            connection_class=source.connection_class, max_connections=1, **kwargs
        )
        client = redis.asyncio.Redis(connection_pool=pool)
        pubsub = client.pubsub()
        channel = f"{self._coordinator.prefix}:proc:{secrets.token_hex(16)}".encode()
        loop = asyncio.get_running_loop()
        confirmed = self._confirmed = loop.create_future()
        try:
            await pubsub.subscribe(channel)
            self._pubsub = pubsub
            self._client = client
            self.channel = channel
            self._reader = loop.create_task(self._read(pubsub))
            # Announcements are only sure to arrive once this is confirmed.
            await confirmed
        except BaseException:
            if self._pubsub is pubsub:
                self._broken(pubsub, CoordinatorError("connecting failed"))
            else:
                await pubsub.aclose()
                await client.aclose()
            raise

    async def _connected(self) -> None:
        if self._pubsub is not None and self._connecting is None:
            return
        connecting = self._connecting
        if connecting is None:
            loop = asyncio.get_running_loop()
            connecting = self._connecting = loop.create_future()
            try:
                await self._connect()
            except BaseException as exc:
                if not connecting.done():
                    connecting.set_exception(exc)
                    connecting.exception()  # retrieved: others may not wait
                raise
            finally:
                self._connecting = None
                if not connecting.done():
                    connecting.set_result(None)
            return
        await asyncio.shield(connecting)

    async def register(self, digest: bytes) -> _Subscription:
        """A subscription to ``digest``'s announcements, once they can arrive."""
        await self._connected()
        subscription = _Subscription(self, digest)
        self._waiting.setdefault(digest, set()).add(subscription)
        return subscription

    def remove(self, subscription: _Subscription) -> None:
        subscribers = self._waiting.get(subscription.digest)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._waiting[subscription.digest]

    async def _read(self, pubsub: Any) -> None:
        try:
            while True:
                message = await pubsub.get_message(timeout=None)
                if message is None:
                    continue
                kind = message["type"]
                if kind == "message":
                    data: bytes = message["data"]
                    digest = data[:_DIGEST_SIZE]
                    for subscription in list(self._waiting.get(digest, ())):
                        subscription.deliver(data[_DIGEST_SIZE:])
                elif kind == "subscribe":
                    confirmed = self._confirmed
                    if confirmed is not None and not confirmed.done():
                        confirmed.set_result(None)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._broken(pubsub, exc)

    def _broken(self, pubsub: Any, exc: BaseException) -> None:
        """Fail every wait on the connection and forget it."""
        if self._pubsub is not pubsub:
            return
        self._pubsub = None
        self.channel = b""
        client, self._client = self._client, None
        waiting, self._waiting = self._waiting, {}
        for subscriptions in waiting.values():
            for subscription in subscriptions:
                subscription.fail(exc)
        confirmed = self._confirmed
        if confirmed is not None and not confirmed.done():
            confirmed.set_exception(CoordinatorError("the pub/sub connection was lost"))
            confirmed.exception()
        task = asyncio.get_running_loop().create_task(self._close(pubsub, client))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _close(pubsub: Any, client: redis.asyncio.Redis | None) -> None:
        with contextlib.suppress(*_FAILURES):
            await pubsub.aclose()
            if client is not None:
                await client.aclose()

    async def aclose(self) -> None:
        reader = self._reader
        pubsub = self._pubsub
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        if pubsub is not None:
            self._broken(pubsub, CoordinatorError("the coordinator was closed"))
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


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
        subscription: _Subscription,
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
            return await asyncio.wait_for(
                script(keys=keys, args=args, client=coordinator.client),
                coordinator.timeout,
            )
        except _FAILURES as exc:
            raise CoordinatorError(f"redis: {type(exc).__name__}") from exc

    async def claim(
        self, token: str, lease: float, share_for: float, accept: frozenset[str]
    ) -> Claim:
        if self._subscription.error is not None:
            raise CoordinatorError("the pub/sub connection was lost")
        # Anything produced since this caller arrived (with a margin for the
        # trip of this command) was produced while it was waiting.
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
        self.claim_script = client.register_script(_CLAIM)
        self.renew_script = client.register_script(_RENEW)
        self.finish_script = client.register_script(_FINISH)
        self.release_script = client.register_script(_RELEASE)
        self._listeners: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, _Listener
        ] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"<RedisCoordinator prefix={self.prefix!r} timeout={self.timeout}>"

    def _listener(self) -> _Listener:
        loop = asyncio.get_running_loop()
        listener = self._listeners.get(loop)
        if listener is None:
            listener = self._listeners[loop] = _Listener(self)
        return listener

    async def session(self, digest: str) -> Session:
        started = time.monotonic()
        listener = self._listener()
        try:
            subscription = await asyncio.wait_for(
                listener.register(digest.encode("ascii")), self.timeout
            )
        except _FAILURES as exc:
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
