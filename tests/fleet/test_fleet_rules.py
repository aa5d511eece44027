"""Fleet rules checked with several reducers in one test process.

Each reducer has its own Redis client and pub/sub connection, as a process
would; the multi-process tests are in test_fleet_processes.py.
"""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import pytest
import redis.asyncio

from async_reduce.contrib.redis_fleet import RedisCoordinator
from async_reduce.fleet import (
    Claim,
    Coordinator,
    FleetReducer,
    FleetUnavailable,
    RemoteError,
    Session,
)

RUNS: dict[str, int] = {}
GATES: dict[str, asyncio.Event] = {}


async def gated(name: str, value: Any = 1) -> Any:
    """Counts runs of ``name``; waits for GATES[name] when one is set."""
    RUNS[name] = RUNS.get(name, 0) + 1
    gate = GATES.get(name)
    if gate is not None:
        await gate.wait()
    return value


async def failing(name: str) -> None:
    RUNS[name] = RUNS.get(name, 0) + 1
    gate = GATES.get(name)
    if gate is not None:
        await gate.wait()
    raise LookupError(f"{name} failed")


@pytest.fixture(autouse=True)
def _fresh() -> None:
    RUNS.clear()
    GATES.clear()


async def _lead_then_follow(a: Any, b: Any, coro_a: Any, coro_b: Any) -> Any:
    """Start a's call, wait until it leads, start b's, wait until it follows."""
    first = asyncio.ensure_future(coro_a)
    await a.hooks.wait_for("leader")
    second = asyncio.ensure_future(coro_b)
    await b.hooks.wait_for("remote_join")
    return first, second


async def test_share_errors_off(redis_server: Any, make_fleet: Any) -> None:
    """share_errors=False: a follower runs the work itself after the leader's error."""
    a = make_fleet(redis_server)
    b = make_fleet(redis_server, share_errors=False)
    GATES["e"] = asyncio.Event()
    first, second = await _lead_then_follow(a, b, a(failing("e")), b(failing("e")))
    GATES["e"].set()
    with pytest.raises(LookupError):
        await first
    with pytest.raises(LookupError):  # its own error, not a RemoteError
        await second
    assert RUNS["e"] == 2
    assert b.hooks.kinds()["run_locally"] == 1


async def test_remote_error_carries_type_and_message(
    redis_server: Any, make_fleet: Any
) -> None:
    """Followers get RemoteError with the qualified type name and message."""
    a, b = make_fleet(redis_server), make_fleet(redis_server)
    GATES["e"] = asyncio.Event()
    first, second = await _lead_then_follow(a, b, a(failing("e")), b(failing("e")))
    GATES["e"].set()
    with pytest.raises(LookupError):
        await first
    with pytest.raises(RemoteError) as info:
        await second
    assert (info.value.type_name, info.value.message) == ("LookupError", "e failed")
    assert RUNS["e"] == 1


async def test_too_large_result_is_not_shared(
    redis_server: Any, make_fleet: Any
) -> None:
    """Above max_result_bytes: the leader's callers get the result, followers
    run the work themselves; nothing is truncated."""
    a = make_fleet(redis_server, max_result_bytes=100)
    b = make_fleet(redis_server, max_result_bytes=100)
    GATES["big"] = asyncio.Event()
    big = "x" * 1000
    first, second = await _lead_then_follow(
        a, b, a(gated("big", big)), b(gated("big", big))
    )
    GATES["big"].set()
    assert await first == big
    assert await second == big
    assert RUNS["big"] == 2
    assert a.hooks.kinds()["unshared"] == 1
    assert b.hooks.kinds()["run_locally"] == 1


async def test_json_unfaithful_result_is_not_shared(
    redis_server: Any, make_fleet: Any
) -> None:
    """A result JSON would change (a tuple) is never handed over changed."""
    a, b = make_fleet(redis_server), make_fleet(redis_server)
    GATES["t"] = asyncio.Event()
    first, second = await _lead_then_follow(
        a, b, a(gated("t", (1, 2))), b(gated("t", (1, 2)))
    )
    GATES["t"].set()
    assert await first == (1, 2)
    assert await second == (1, 2)
    assert a.hooks.events[-1].reason == "not_encodable"


async def test_pickle_needs_secret(redis_server: Any, make_fleet: Any) -> None:
    """codec='pickle' without secret= is refused at construction."""
    with pytest.raises(ValueError, match="secret"):
        make_fleet(redis_server, codec="pickle")


async def test_pickle_with_secret_shares_any_picklable(
    redis_server: Any, make_fleet: Any
) -> None:
    """With pickle and a secret, tuples and other picklable results are shared."""
    secret = b"0123456789abcdef"
    a = make_fleet(redis_server, codec="pickle", secret=secret)
    b = make_fleet(redis_server, codec="pickle", secret=secret)
    GATES["p"] = asyncio.Event()
    first, second = await _lead_then_follow(
        a, b, a(gated("p", (1, {2}))), b(gated("p", (1, {2})))
    )
    GATES["p"].set()
    assert await first == await second == (1, {2})
    assert RUNS["p"] == 1


EXPLOITED: list[str] = []


def _exploit() -> str:
    EXPLOITED.append("ran")
    return "pwned"


class _Evil:
    def __reduce__(self) -> Any:
        return (_exploit, ())


async def test_tampered_pickle_is_never_unpickled(
    redis_server: Any, make_fleet: Any
) -> None:
    """An outcome written to Redis without the secret is rejected before
    unpickling, and so is a signed outcome copied from another key."""
    secret = b"0123456789abcdef"
    a = make_fleet(redis_server, codec="pickle", secret=secret, share_for=60)
    b = make_fleet(redis_server, codec="pickle", secret=secret, share_for=60)
    assert await a(gated("src", "genuine"), ident="src") == "genuine"
    client = redis.asyncio.Redis(port=redis_server.port)
    try:
        src_key = f"async_reduce:{{{a._keys.for_ident('src')}}}:out"
        dst_key = f"async_reduce:{{{a._keys.for_ident('dst')}}}:out"
        stored = await client.get(src_key)
        assert stored is not None
        assert b"genuine" in stored
        # A signed outcome moved to another key does not verify there.
        await client.set(dst_key, stored)
        assert await b(gated("dst", "own"), ident="dst") == "own"
        # A forged outcome with an evil pickle and a made-up signature.
        forged = stored[:13] + b"r" + b"f" * 32 + b"\0" * 32 + pickle.dumps(_Evil())
        forged_key = f"async_reduce:{{{a._keys.for_ident('forged')}}}:out"
        await client.set(forged_key, forged)
        assert await b(gated("forged", "own"), ident="forged") == "own"
    finally:
        await client.aclose()
    assert EXPLOITED == []
    assert b.hooks.kinds()["rejected"] == 2


async def test_foreign_namespace_never_read(redis_server: Any, make_fleet: Any) -> None:
    """Reducers of two namespaces never share an outcome, even when reusable."""
    a = make_fleet(redis_server, "one", share_for=60)
    b = make_fleet(redis_server, "two", share_for=60)
    assert await a(gated("n", "from one")) == "from one"
    assert await b(gated("n", "from two")) == "from two"
    assert RUNS["n"] == 2
    assert b.hooks.kinds()["reused"] == 0


async def test_leader_callers_cancelled_followers_take_over(
    redis_server: Any, make_fleet: Any
) -> None:
    """All callers of the leader cancelled: a follower takes over at once,
    well before the lease would expire."""
    a = make_fleet(redis_server, lease=60)
    b = make_fleet(redis_server, lease=60)
    GATES["c"] = asyncio.Event()
    first, second = await _lead_then_follow(a, b, a(gated("c")), b(gated("c")))
    loop = asyncio.get_running_loop()
    started = loop.time()
    first.cancel()
    await b.hooks.wait_for("takeover")
    assert loop.time() - started < 30  # the lease is 60 s
    GATES["c"].set()
    assert await second == 1
    with pytest.raises(asyncio.CancelledError):
        await first


class _PausedClaims(Coordinator):
    """Holds every claim until ``go`` is set (forces an interleaving)."""

    def __init__(self, inner: Coordinator) -> None:
        self.inner = inner
        self.subscribed = asyncio.Event()
        self.go = asyncio.Event()

    async def session(self, digest: str) -> Session:
        session = await self.inner.session(digest)
        self.subscribed.set()
        outer = self

        class Paused(Session):
            async def claim(self, *args: Any) -> Claim:
                await outer.go.wait()
                return await session.claim(*args)

            async def wait(self, timeout: float) -> bytes | None:
                return await session.wait(timeout)

            async def renew(self, token: str, lease: float) -> bool:
                return await session.renew(token, lease)

            async def finish(self, token: str, message: bytes, keep: float) -> bool:
                return await session.finish(token, message, keep)

            async def release(self, token: str, message: bytes) -> bool:
                return await session.release(token, message)

            def close(self) -> None:
                session.close()

        return Paused()

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_outcome_published_between_subscribe_and_read(
    redis_server: Any, make_fleet: Any
) -> None:
    """The race of rule 3 forced: the outcome is announced after a caller
    subscribed and before it reads; the caller takes it, no second run."""
    from tests.fleet.conftest import Events

    a = make_fleet(redis_server)
    client = redis.asyncio.Redis(port=redis_server.port)
    paused = _PausedClaims(RedisCoordinator(client))
    b = FleetReducer(paused, "tests", hooks=Events())
    try:
        GATES["r"] = asyncio.Event()
        first = asyncio.ensure_future(a(gated("r", "once")))
        await a.hooks.wait_for("leader")
        second = asyncio.ensure_future(b(gated("r", "once")))
        await paused.subscribed.wait()
        GATES["r"].set()
        assert await first == "once"  # announced and stored; b not yet read
        paused.go.set()
        assert await second == "once"
        assert RUNS["r"] == 1
        assert b.hooks.kinds()["leader"] == 0
    finally:
        await b.aclose()
        await client.aclose()


async def test_share_for_reuses_a_recent_outcome(
    redis_server: Any, make_fleet: Any
) -> None:
    """share_for: a call just after an execution ended reuses its outcome;
    with the default 0 it runs again."""
    a = make_fleet(redis_server, share_for=60)
    b = make_fleet(redis_server, share_for=60)
    assert await a(gated("s", "v")) == "v"
    assert await b(gated("s", "v")) == "v"
    assert RUNS["s"] == 1
    assert b.hooks.kinds()["reused"] == 1
    c = make_fleet(redis_server, namespace="other")
    assert await c(gated("s0", "v")) == "v"
    await asyncio.sleep(0.2)  # older than the subscribe-to-read margin
    assert await c(gated("s0", "v")) == "v"
    assert RUNS["s0"] == 2


async def test_lease_renewed_while_working(redis_server: Any, make_fleet: Any) -> None:
    """Work longer than the lease: renewals keep followers from taking over."""
    a = make_fleet(redis_server, lease=0.3)
    b = make_fleet(redis_server, lease=0.3)
    GATES["l"] = asyncio.Event()
    first, second = await _lead_then_follow(a, b, a(gated("l")), b(gated("l")))
    await asyncio.sleep(1.0)  # three leases
    GATES["l"].set()
    assert await first == await second == 1
    assert RUNS["l"] == 1
    assert b.hooks.kinds()["takeover"] == 0


async def test_unencodable_argument_names_it(
    redis_server: Any, make_fleet: Any
) -> None:
    """An argument with no stable encoding raises TypeError at the call,
    naming it and pointing to key=/ident=; ident must be str or bytes."""
    a = make_fleet(redis_server)
    with pytest.raises(TypeError, match=r"'value'.*key=.*ident="):
        a(gated("u", object()))
    with pytest.raises(TypeError, match="ident must be str or bytes"):
        a(gated("u"), ident=42)  # type: ignore[arg-type]
    assert "u" not in RUNS


async def test_redis_down_falls_back(make_fleet: Any) -> None:
    """No Redis: the call runs locally within the timeout, the breaker opens
    and later calls skip Redis; on_unavailable='raise' raises instead."""

    class Nowhere:
        host, port = "127.0.0.1", 1

    a = make_fleet(Nowhere(), redis_timeout=0.2)
    assert await a(gated("d", "local")) == "local"
    assert await a(gated("d", "local")) == "local"
    assert [e.reason for e in a.hooks.events if e.kind == "fallback"] == [
        "unavailable",
        "breaker_open",
    ]
    assert a.hooks.kinds()["breaker_opened"] == 1
    strict = make_fleet(Nowhere(), redis_timeout=0.2, on_unavailable="raise")
    with pytest.raises(FleetUnavailable):
        await strict(gated("d"))


async def test_redis_restart_mid_flight(
    restartable_redis_server: Any, make_fleet: Any
) -> None:
    """redis-server stopped mid-flight and restarted: every call is answered,
    fallbacks are counted, coordination resumes."""
    server = restartable_redis_server
    a = make_fleet(server, retry_after=(0.05, 0.2), redis_timeout=0.3)
    b = make_fleet(server, retry_after=(0.05, 0.2), redis_timeout=0.3)
    GATES["x"] = asyncio.Event()
    first, second = await _lead_then_follow(a, b, a(gated("x")), b(gated("x")))
    await asyncio.to_thread(server.stop)
    await b.hooks.wait_for("fallback")
    GATES["x"].set()
    assert await first == await second == 1
    assert RUNS["x"] == 2  # b ran it itself
    await asyncio.to_thread(server.start)
    GATES.pop("x")
    GATES["y"] = asyncio.Event()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while not a.hooks.kinds()["leader"] >= 2:  # until a leads again
        assert loop.time() < deadline, a.hooks.events
        assert await a(gated("probe")) == 1
        await asyncio.sleep(0.05)
    first, second = await _lead_then_follow(a, b, a(gated("y")), b(gated("y")))
    GATES["y"].set()
    assert await first == await second == 1
    assert RUNS["y"] == 1


async def test_lost_lease_never_overwrites_newer_leader(
    redis_server: Any, make_fleet: Any
) -> None:
    """A leader whose lease was taken over reports lease_lost, and its outcome
    never replaces the new leader's."""
    a = make_fleet(redis_server, lease=0.3)
    b = make_fleet(redis_server, lease=0.3)
    GATES["old"] = asyncio.Event()
    GATES["new"] = asyncio.Event()
    first = asyncio.ensure_future(a(gated("old", "A"), ident="lease"))
    await a.hooks.wait_for("leader")
    client = redis.asyncio.Redis(port=redis_server.port)
    try:
        lock = f"async_reduce:{{{a._keys.for_ident('lease')}}}:lock"
        assert await client.delete(lock) == 1  # as if the lease had expired
        second = asyncio.ensure_future(b(gated("new", "B"), ident="lease"))
        await b.hooks.wait_for("leader")
        await a.hooks.wait_for("lease_lost")
        GATES["old"].set()
        assert await first == "A"  # its own callers still get its result
        out = f"async_reduce:{{{a._keys.for_ident('lease')}}}:out"
        assert await client.get(out) is None  # nothing written over b's lease
        GATES["new"].set()
        assert await second == "B"
        stored = await client.get(out)
        assert stored is not None
        assert stored.endswith(b'"B"')
    finally:
        await client.aclose()


async def test_slow_redis_falls_back_within_the_timeout(
    redis_server: Any, make_fleet: Any
) -> None:
    """Redis paused (slow, not down): the call falls back after redis_timeout
    instead of waiting for Redis."""
    a = make_fleet(redis_server, redis_timeout=0.2)
    assert await a(gated("warm", 0)) == 0  # connections made
    client = redis.asyncio.Redis(port=redis_server.port)
    try:
        await client.execute_command("CLIENT", "PAUSE", "4000", "ALL")
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await a(gated("slow", "local")) == "local"
        assert loop.time() - started < 3.5  # before the pause ends
        assert a.hooks.kinds()["fallback"] == 1
    finally:
        await client.execute_command("CLIENT", "UNPAUSE")
        await client.aclose()


class Service:
    async def lookup(self, user_id: int) -> int:
        return user_id


async def test_hooks_see_the_callers_function(
    redis_server: Any, make_fleet: Any
) -> None:
    """Statistics hooks on a fleet reducer count calls under the caller's
    function, for reducer(coro) and for the decorator."""
    from async_reduce import async_reduceable
    from async_reduce.hooks import StatisticsDetailHooks

    stats = StatisticsDetailHooks()
    a = make_fleet(redis_server, hooks=stats)
    assert await a(gated("h", 5)) == 5
    decorated = async_reduceable(a, key=lambda self, user_id: user_id)(Service.lookup)
    assert await decorated(Service(), 7) == 7
    locations = set(stats.snapshot().locations)
    assert f"{__name__}:gated" in locations
    assert f"{__name__}:Service.lookup" in locations


async def test_follower_timeout_leaves_others_waiting(
    redis_server: Any, make_fleet: Any
) -> None:
    """A follower's caller that times out gets TimeoutError; the other callers
    of its process and the leader are unaffected."""
    a, b = make_fleet(redis_server), make_fleet(redis_server)
    GATES["t"] = asyncio.Event()
    first, patient = await _lead_then_follow(a, b, a(gated("t")), b(gated("t")))
    with pytest.raises(TimeoutError):
        await b(gated("t"), timeout=0.05)
    GATES["t"].set()
    assert await first == await patient == 1
    assert RUNS["t"] == 1


async def test_orphans_finish_keeps_serving_followers(
    redis_server: Any, make_fleet: Any
) -> None:
    """orphans='finish': the leader's callers all leave, its work goes on and
    its outcome still reaches the followers; nobody takes over."""
    a = make_fleet(redis_server, orphans="finish")
    b = make_fleet(redis_server)
    GATES["o"] = asyncio.Event()
    first, second = await _lead_then_follow(a, b, a(gated("o")), b(gated("o")))
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    GATES["o"].set()
    assert await second == 1
    assert RUNS["o"] == 1
    assert b.hooks.kinds()["takeover"] == 0


class _SlowReplies(_PausedClaims):
    """Claims run in Redis at once, but their replies are held until ``go``."""

    async def session(self, digest: str) -> Session:
        session = await self.inner.session(digest)
        outer = self

        class Slow(Session):
            async def claim(self, *args: Any) -> Claim:
                claim = await session.claim(*args)
                outer.subscribed.set()  # the claim has run in Redis
                await outer.go.wait()
                return claim

            async def wait(self, timeout: float) -> bytes | None:
                return await session.wait(timeout)

            async def renew(self, token: str, lease: float) -> bool:
                return await session.renew(token, lease)

            async def finish(self, token: str, message: bytes, keep: float) -> bool:
                return await session.finish(token, message, keep)

            async def release(self, token: str, message: bytes) -> bool:
                return await session.release(token, message)

            def close(self) -> None:
                session.close()

        return Slow()


async def test_cancelled_during_claim_frees_the_lease(redis_server: Any) -> None:
    """A caller cancelled after its claim took the lease, before the reply,
    leaves no lock behind: the next caller leads at once."""
    from tests.fleet.conftest import Events

    client = redis.asyncio.Redis(port=redis_server.port)
    slow = _SlowReplies(RedisCoordinator(client))
    a = FleetReducer(slow, "tests", hooks=Events(), lease=60)
    try:
        call = asyncio.ensure_future(a(gated("claim"), ident="claim"))
        await slow.subscribed.wait()
        lock = f"async_reduce:{{{a._keys.for_ident('claim')}}}:lock"
        assert await client.exists(lock) == 1  # the claim took the lease
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await a.aclose()  # lets the background release finish
        assert await client.exists(lock) == 0
        assert "claim" not in RUNS
    finally:
        await a.aclose()
        await client.aclose()
