"""The fleet reducer: coalescing in this process first, then across the fleet."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import secrets
import sys
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, TypeVar

from .._keys import make_binder
from .._location import function_location
from .._reducer import AsyncReducer
from .._validate import UNSET, Unset, check_bool
from ._breaker import Breaker
from ._codec import Codec, codec_for
from ._errors import FleetUnavailable
from ._events import FleetEvent, FleetEventKind
from ._keys import KeyBuilder
from ._messages import Messages
from ._protocol import (
    Coordinator,
    CoordinatorError,
    Session,
)
from ._work import FleetWork

__all__ = ["FleetReducer"]

T = TypeVar("T")

logger = logging.getLogger("async_reduce.fleet")

DEFAULT_MAX_RESULT_BYTES = 1024 * 1024
# A follower claims again this long after the lease it saw would have expired
# (the leader renews a third of the lease ahead, so a live leader is seen).
_EXPIRY_MARGIN = 0.05


if sys.version_info >= (3, 11):

    def _cancel_swallowed() -> bool:
        """Whether this task was asked to cancel and the request was lost.

        A store client may drop a cancellation (``asyncio.wait_for`` before
        Python 3.12 returns the result instead when both happen in the same
        loop iteration); the request still shows in ``Task.cancelling()``,
        which ``asyncio.timeout`` and task groups reset when they handle
        their own.
        """
        task = asyncio.current_task()
        return task is not None and task.cancelling() > 0

else:  # pragma: no cover - Python 3.10 (no Task.cancelling)

    def _cancel_swallowed() -> bool:
        return False


def _check_cancelled() -> None:
    """Raise the ``CancelledError`` a store call dropped (see above)."""
    if _cancel_swallowed():
        raise asyncio.CancelledError


def _positive(value: Any, name: str, *, zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{name} must be a number of seconds, got {type(value).__name__}"
        )
    if (
        not (value >= 0 if zero else value > 0)
        or value != value
        or value == float("inf")
    ):
        bound = ">= 0" if zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


class FleetReducer:
    """A reducer whose executions are shared by every process of a fleet.

    Calls coalesce in this process first, exactly as with
    :class:`~async_reduce.AsyncReducer` (which runs inside); only the one
    local execution of a key talks to the coordinator.  There, one process
    per key wins the election and runs the work (the *leader*); the others
    wait for its announced outcome without polling.  Keys are fleet keys
    (see :mod:`async_reduce.fleet`): built from the namespace, the
    function's ``module:qualname`` and its arguments, or from an explicit
    ``ident`` (``str`` or ``bytes``).

    Usable wherever a reducer is: ``await fleet(coro)``,
    ``await fleet(coro, ident="user:42")`` and ``@async_reduceable(fleet)``.

    Semantics inside a process (cancellation, timeouts, orphans, hooks,
    per-loop isolation) are those of the local reducer.  Across processes:

    * The leader keeps its lease alive while it works.  If its process dies
      or loses the store, the lease expires and one follower takes over.
      When every local caller of a leader leaves (``orphans="cancel"``), it
      cancels the work, releases the lease and says so, and a follower takes
      over at once.
    * The result reaches followers through ``codec``; a result that does not
      survive the codec unchanged, or whose encoding is larger than
      ``max_result_bytes``, is never truncated: the leader's callers get it
      and the followers run the work themselves.
    * An exception reaches followers as :class:`RemoteError` (type name and
      message); with ``share_errors=False`` they run the work themselves.
    * If the coordinator fails, the call runs the work in this process
      (``on_unavailable="fallback"``, the default) or raises
      :class:`FleetUnavailable` (``"raise"``); a breaker then skips the
      store for a while (``retry_after``) before trying it again.

    Args:
        coordinator: the store the fleet shares (for Redis:
            :class:`async_reduce.contrib.redis_fleet.RedisFleetReducer` builds
            it from a client).
        namespace: keeps fleets apart; part of every key.
        hooks, typed, timeout, orphans: as for
            :class:`~async_reduce.AsyncReducer`; the hooks also receive
            :class:`FleetEvent` through ``on_fleet_event``.
        lease: seconds a leader's lease lasts without renewal; renewed every
            third of it.  Followers of a dead leader wait at most this long.
        share_for: seconds an outcome stays reusable after it was produced
            (0: only callers that arrived while it ran share it).
        share_errors: whether followers receive the leader's exception.
        codec: ``"json"`` (default), ``"pickle"`` (requires ``secret``) or a
            :class:`Codec`.
        secret: bytes signing every message (HMAC-SHA256); required by
            codecs that can run code while loading.
        max_result_bytes: largest encoded result shared (default 1 MiB).
        on_unavailable: ``"fallback"`` or ``"raise"``.
        retry_after: ``(first, cap)``: after the store failed, calls skip it
            for ``first`` seconds, then one call probes it; each failed probe
            doubles the pause, up to ``cap``.

    .. versionadded:: 2.0
    """

    def __init__(
        self,
        coordinator: Coordinator,
        namespace: str,
        *,
        hooks: Any = None,
        typed: bool = False,
        timeout: float | None = None,
        orphans: str = "cancel",
        lease: float = 10.0,
        share_for: float = 0.0,
        share_errors: bool = True,
        codec: Any = "json",
        secret: bytes | None = None,
        max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
        on_unavailable: str = "fallback",
        retry_after: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        if not isinstance(coordinator, Coordinator):
            raise TypeError(
                f"coordinator must be a Coordinator, got {type(coordinator).__name__}"
            )
        if not isinstance(namespace, str) or not namespace:
            raise TypeError(f"namespace must be a non-empty str, got {namespace!r}")
        if "{" in namespace or "}" in namespace:
            raise ValueError("namespace must not contain '{' or '}' (hash tags)")
        self._local = AsyncReducer(
            hooks, typed=typed, timeout=timeout, orphans=orphans, share_for=share_for
        )
        self._coordinator = coordinator
        self._namespace = namespace
        self._keys = KeyBuilder(namespace)
        self._lease = _positive(lease, "lease")
        self._share_for = _positive(share_for, "share_for", zero=True)
        self._share_errors = check_bool(share_errors, "share_errors")
        self._codec: Codec = codec_for(codec)
        if secret is not None and (not isinstance(secret, bytes) or len(secret) < 16):
            raise ValueError("secret must be bytes of length 16 or more")
        if self._codec.needs_secret and secret is None:
            raise ValueError(
                f"codec {self._codec!r} can run code while loading: pass secret= so"
                " that every message is signed and verified before it is loaded"
            )
        if isinstance(max_result_bytes, bool) or not isinstance(max_result_bytes, int):
            raise TypeError("max_result_bytes must be an int")
        if max_result_bytes < 0:
            raise ValueError(f"max_result_bytes must be >= 0, got {max_result_bytes}")
        self._messages = Messages(self._codec, secret, max_result_bytes)
        if on_unavailable not in ("fallback", "raise"):
            raise ValueError(
                f"on_unavailable must be 'fallback' or 'raise', got {on_unavailable!r}"
            )
        self._raise_unavailable = on_unavailable == "raise"
        if (
            not isinstance(retry_after, tuple)
            or len(retry_after) != 2
            or not all(isinstance(v, (int, float)) for v in retry_after)
        ):
            raise TypeError("retry_after must be a tuple (first, cap) of seconds")
        first = _positive(retry_after[0], "retry_after[0]")
        cap = _positive(retry_after[1], "retry_after[1]")
        if cap < first:
            raise ValueError("retry_after: the cap must not be below the first delay")
        self._breaker = Breaker(first, cap)
        self._tasks: set[asyncio.Task[Any]] = set()
        hooks_method = getattr(hooks, "on_fleet_event", None)
        self._event_hook: Callable[[FleetEvent], None] | None = (
            hooks_method if callable(hooks_method) else None
        )

    # -- configuration -------------------------------------------------------

    @property
    def namespace(self) -> str:
        """The namespace every key of this reducer lives in."""
        return self._namespace

    @property
    def local(self) -> AsyncReducer:
        """The reducer coalescing this process's calls."""
        return self._local

    @property
    def coordinator(self) -> Coordinator:
        """The store the fleet shares."""
        return self._coordinator

    @property
    def typed(self) -> bool:
        """Whether keys tell argument types apart."""
        return self._local.typed

    @property
    def hooks(self) -> Any:
        """The hooks object given at construction."""
        return self._local.hooks

    @property
    def timeout(self) -> float | None:
        """Default seconds a caller waits."""
        return self._local.timeout

    @property
    def share_for(self) -> float:
        """Seconds an outcome stays reusable after it was produced."""
        return self._share_for

    def __repr__(self) -> str:
        return (
            f"<FleetReducer namespace={self._namespace!r} {self._coordinator!r}"
            f" breaker={'closed' if self._breaker.closed else 'open'}>"
        )

    def __len__(self) -> int:
        """Keys with a local execution in flight."""
        return len(self._local)

    # -- calling -------------------------------------------------------------

    def key_for(self, coro: Coroutine[Any, Any, Any]) -> str:
        """The hex digest of ``coro``'s fleet key (``coro`` is not consumed)."""
        return self._keys.for_coroutine(coro, self.typed)

    def __call__(
        self,
        coro: Coroutine[Any, Any, T],
        *,
        ident: str | bytes | None = None,
        timeout: float | Unset | None = UNSET,
    ) -> Coroutine[Any, Any, T]:
        """Coalesce ``coro`` with identical calls in this process and the fleet.

        Args:
            coro: a coroutine that has not started.
            ident: the key (``str`` or ``bytes``, taken as given); by default
                built from ``coro``'s function and arguments.
            timeout: seconds this caller waits, as for ``AsyncReducer``.

        Raises:
            TypeError: ``coro`` is not a coroutine, ``ident`` is not str or
                bytes, or an argument has no stable encoding (the message
                names it).
        """
        if not asyncio.iscoroutine(coro):
            raise TypeError(f"coro must be a coroutine, got {type(coro).__name__}")
        try:
            if ident is None:
                digest = self.key_for(coro)
            else:
                digest = self._keys.for_ident(ident)
        except BaseException:
            coro.close()
            raise
        work = FleetWork(functools.partial(self._run, digest), coro, None)
        return self._local(work, ident=digest, timeout=timeout)

    def __async_reduceable__(
        self,
        fn: Callable[..., Coroutine[Any, Any, Any]],
        *,
        typed: bool | None,
        key: Callable[..., Hashable] | None,
        timeout: float | Unset | None,
    ) -> Any:
        """Decorate ``fn`` for :func:`async_reduce.async_reduceable`."""
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(
                "async_reduceable decorates coroutine functions (async def),"
                f" got {fn!r}"
            )
        typed = self.typed if typed is None else check_bool(typed, "typed")
        location = function_location(fn)
        names = tuple(inspect.signature(fn, follow_wrapped=False).parameters)
        binder = make_binder(fn, False)
        keys = self._keys
        user_key = key
        start = self._run
        local = self._local

        def digest_of(*args: Any, **kwargs: Any) -> str:
            if user_key is None:
                return keys.for_call(
                    location, zip(names, binder(*args, **kwargs), strict=False), typed
                )
            return keys.for_call(
                location, (("key=", user_key(*args, **kwargs)),), typed
            )

        @functools.wraps(fn)
        async def reduced(*args: Any, **kwargs: Any) -> Any:
            digest = digest_of(*args, **kwargs)
            work: FleetWork[Any] = FleetWork(
                functools.partial(start, digest),
                None,
                functools.partial(fn, *args, **kwargs),
                fn,
            )
            return await local(work, ident=digest, timeout=timeout)

        wrapper: Any = reduced
        wrapper.key = digest_of
        wrapper.reducer = self
        return wrapper

    # -- the coordinated execution -------------------------------------------

    def _emit(self, kind: FleetEventKind, digest: str, reason: str = "") -> None:
        hook = self._event_hook
        if hook is None:
            return
        try:
            hook(FleetEvent(kind, self._namespace, digest[:16], reason))
        except Exception:
            logger.exception("on_fleet_event hook raised")

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _unavailable(
        self, digest: str, work: FleetWork[T], exc: CoordinatorError | None, reason: str
    ) -> T:
        if exc is not None and self._breaker.failed():
            self._emit("breaker_opened", "", type(exc).__name__)
        self._emit("fallback", digest, reason)
        if self._raise_unavailable:
            work.discard()
            raise FleetUnavailable(
                f"the fleet's coordinator is unavailable ({reason})"
            ) from exc
        return await work.take()

    def _succeeded(self) -> None:
        if self._breaker.succeeded():
            self._emit("breaker_closed", "")

    async def _run(self, digest: str, work: FleetWork[T]) -> T:
        """One local execution of key ``digest``: lead, follow, or fall back.

        However it ends (cancelled included), the caller's coroutine is
        either run or closed, and the session is closed.
        """
        try:
            if not self._breaker.allow():
                return await self._unavailable(digest, work, None, "breaker_open")
            try:
                session = await self._coordinator.session(digest)
            except CoordinatorError as exc:
                return await self._unavailable(digest, work, exc, "unavailable")
            sessions = [session]
            try:
                _check_cancelled()
                return await self._coordinate(digest, work, sessions)
            finally:
                sessions[-1].close()
        finally:
            work.discard()

    async def _coordinate(
        self, digest: str, work: FleetWork[T], sessions: list[Session]
    ) -> T:
        accept: set[str] = set()
        joined = False
        takeover = False
        resubscribed = False
        while True:
            session = sessions[-1]
            token = secrets.token_hex(16)
            try:
                claim = await session.claim(
                    token, self._lease, self._share_for, frozenset(accept)
                )
                # Every local caller may have left meanwhile: then the work
                # must not start (and a lease just taken is freed below).
                _check_cancelled()
            except CoordinatorError as exc:
                # The claim may have taken the lease before it failed: free
                # it (the script only deletes the lock if ``token`` holds it).
                self._spawn(self._release(session, token, digest))
                return await self._unavailable(digest, work, exc, "unavailable")
            except BaseException:
                self._spawn(self._release(session, token, digest))
                raise
            self._succeeded()
            if claim.role == "outcome":
                if not accept:
                    self._emit("reused", digest)
                return await self._deliver(digest, claim.outcome, work)
            if claim.role == "leader":
                self._emit("takeover" if takeover else "leader", digest)
                return await self._lead(digest, work, session, token)
            accept.add(claim.token)
            if not joined:
                joined = True
                self._emit("remote_join", digest)
            try:
                data = await session.wait(max(claim.remaining, 0.0) + _EXPIRY_MARGIN)
                _check_cancelled()
            except CoordinatorError as exc:
                # Announcements may have been missed: listen again (once)
                # and claim, which reads the stored outcome.
                if resubscribed:
                    return await self._unavailable(
                        digest, work, exc, "subscription_lost"
                    )
                resubscribed = True
                session.close()
                try:
                    sessions.append(await self._coordinator.session(digest))
                except CoordinatorError as exc2:
                    return await self._unavailable(digest, work, exc2, "unavailable")
                _check_cancelled()
                continue
            if data is None:
                takeover = True  # the lease may have expired: claim again
                continue
            if self._messages.read(digest, data).kind == "abandoned":
                takeover = True
                continue
            return await self._deliver(digest, data, work)

    async def _deliver(self, digest: str, data: bytes, work: FleetWork[T]) -> T:
        """Give this process's callers what another process produced."""
        read = self._messages.read(digest, data)
        if read.kind == "result":
            work.discard()
            value: T = read.value
            return value
        if read.kind == "error":
            if self._share_errors:
                work.discard()
                raise read.value
            self._emit("run_locally", digest, "error")
        elif read.kind == "rejected":
            self._emit("rejected", digest, read.reason)
        else:
            self._emit("run_locally", digest, "unshared")
        return await work.take()

    async def _lead(
        self, digest: str, work: FleetWork[T], session: Session, token: str
    ) -> T:
        session.close()  # a leader needs no announcements
        renewing = self._spawn(self._keep_lease(digest, session, token))
        try:
            result = await work.take()
        except Exception as exc:
            renewing.cancel()
            await self._finish(session, token, self._messages.error(digest, token, exc))
            raise
        except BaseException:
            # Cancelled (every local caller left) or interrupted: free the
            # lease now so that a follower takes over without waiting for it.
            renewing.cancel()
            self._spawn(self._release(session, token, digest))
            raise
        renewing.cancel()
        message, unshared = self._messages.result(digest, token, result)
        if unshared:
            self._emit("unshared", digest, unshared)
        await self._finish(session, token, message)
        return result

    async def _finish(self, session: Session, token: str, message: bytes) -> None:
        """Write and announce the outcome; a cancellation does not cut it short."""
        task = self._spawn(self._finish_quietly(session, token, message))
        await asyncio.shield(task)

    async def _finish_quietly(
        self, session: Session, token: str, message: bytes
    ) -> None:
        try:
            await session.finish(token, message, self._share_for)
        except CoordinatorError as exc:
            if self._breaker.failed():
                self._emit("breaker_opened", "", type(exc).__name__)

    async def _release(self, session: Session, token: str, digest: str) -> None:
        with contextlib.suppress(CoordinatorError):
            await session.release(token, self._messages.abandoned(digest, token))

    async def _keep_lease(self, digest: str, session: Session, token: str) -> None:
        interval = self._lease / 3
        while True:
            await asyncio.sleep(interval)
            try:
                held = await session.renew(token, self._lease)
            except CoordinatorError:
                held = True  # the lease may lapse; followers will take over
            if _cancel_swallowed():
                return  # stopped (the work ended) while renewing
            if not held:
                self._emit("lease_lost", digest)
                return

    async def aclose(self) -> None:
        """Let pending lease releases and announcements of the running event
        loop finish, then close the coordinator's connections for it."""
        loop = asyncio.get_running_loop()
        pending = [task for task in self._tasks if task.get_loop() is loop]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        await self._coordinator.aclose()
