"""The pub/sub side of :mod:`async_reduce.contrib.redis_fleet`.

One connection per event loop, subscribed once to a channel of its own;
announcements arrive there prefixed with their key's digest and are handed
to the local executions waiting on that key.  A dropped connection fails
every wait on it (nothing is re-subscribed silently: messages published
meanwhile would be lost), and the next use opens a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
from collections import deque
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from async_reduce.fleet import CoordinatorError

if TYPE_CHECKING:
    from .redis_fleet import RedisCoordinator

__all__ = ["DIGEST_SIZE", "FAILURES", "Listener", "Subscription", "within"]

T = TypeVar("T")

DIGEST_SIZE = 64

FAILURES = (redis.exceptions.RedisError, OSError, asyncio.TimeoutError)

# ``asyncio.wait_for`` before Python 3.12 returns the result, and drops the
# caller's cancellation, when the awaited operation completes in the same
# loop iteration as the cancellation arrives.  A fleet execution cancelled
# because its callers left would then carry on (lead, run the work, renew the
# lease) with nobody waiting.  Commands are time-limited here instead, in the
# caller's own task: a cancellation always reaches the caller.
if sys.version_info >= (3, 11):

    async def within(awaitable: Awaitable[T], seconds: float) -> T:
        """Await ``awaitable``; ``TimeoutError`` after ``seconds``.  A
        cancellation of the caller is never swallowed."""
        async with asyncio.timeout(seconds):
            return await awaitable

else:  # pragma: no cover - Python 3.10

    async def within(awaitable: Awaitable[T], seconds: float) -> T:
        """Await ``awaitable``; ``TimeoutError`` after ``seconds``.  A
        cancellation of the caller is never swallowed."""
        task = asyncio.current_task()
        assert task is not None
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        handle = asyncio.get_running_loop().call_later(seconds, expire)
        try:
            return await awaitable
        except asyncio.CancelledError:
            if expired:
                raise asyncio.TimeoutError from None
            raise
        finally:
            handle.cancel()


class Subscription:
    """One local execution waiting on a key: its announcements queue up here."""

    __slots__ = ("closed", "digest", "error", "listener", "messages", "waiter")

    def __init__(self, listener: Listener, digest: bytes) -> None:
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


class Listener:
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
        self._waiting: dict[bytes, set[Subscription]] = {}
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
                    # Others waiting were not cancelled themselves: they see
                    # a failed connection, never this caller's cancellation.
                    failure = (
                        exc
                        if isinstance(exc, Exception)
                        else CoordinatorError("connecting was interrupted")
                    )
                    connecting.set_exception(failure)
                    connecting.exception()  # retrieved: others may not wait
                raise
            finally:
                self._connecting = None
                if not connecting.done():
                    connecting.set_result(None)
            return
        await asyncio.shield(connecting)

    async def register(self, digest: bytes) -> Subscription:
        """A subscription to ``digest``'s announcements, once they can arrive."""
        await self._connected()
        subscription = Subscription(self, digest)
        self._waiting.setdefault(digest, set()).add(subscription)
        return subscription

    def remove(self, subscription: Subscription) -> None:
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
                    digest = data[:DIGEST_SIZE]
                    for subscription in list(self._waiting.get(digest, ())):
                        subscription.deliver(data[DIGEST_SIZE:])
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
        with contextlib.suppress(*FAILURES):
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
