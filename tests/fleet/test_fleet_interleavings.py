"""Fleet rules under any interleaving of calls, cancellations, results and
errors, across two reducers standing for two processes (real Redis)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import redis.asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from async_reduce.fleet import RemoteError


class Works:
    """Executions per key that finish when the test says so."""

    def __init__(self) -> None:
        self.running: dict[int, list[tuple[asyncio.Future[None], list[Any]]]] = {}
        self.count: dict[int, int] = {}

    async def work(self, key: int) -> str:
        self.count[key] = self.count.get(key, 0) + 1
        number = self.count[key]
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        outcome: list[Any] = []
        entry = (gate, outcome)
        self.running.setdefault(key, []).append(entry)
        try:
            await gate
        finally:
            self.running[key].remove(entry)
        if outcome and outcome[0] == "error":
            raise LookupError(f"key {key} failed")
        return f"key {key} run {number}"

    def finish(self, key: int, ok: bool) -> None:
        for gate, outcome in self.running.get(key, [])[:1]:
            if not gate.done():
                outcome.append("ok" if ok else "error")
                gate.set_result(None)


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("call"), st.integers(0, 1), st.integers(0, 2)),
        st.tuples(st.just("cancel"), st.integers(0, 20)),
        st.tuples(st.just("finish"), st.integers(0, 2), st.booleans()),
        st.tuples(st.just("yield"), st.integers(1, 3)),
    ),
    max_size=14,
)


@settings(
    max_examples=int(os.environ.get("FLEET_INTERLEAVINGS", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(operations=OPERATIONS)
def test_any_interleaving(redis_server: Any, operations: list[Any]) -> None:
    """Every call ends (result, error or its own cancellation), only ever with
    an outcome of its own key, and no lock or local execution is left behind."""
    asyncio.run(_guarded(redis_server.port, operations))


async def _guarded(port: int, operations: list[Any]) -> None:
    try:
        await asyncio.wait_for(_scenario(port, operations), 20)  # a hang guard only
    except asyncio.TimeoutError:
        raise AssertionError("the scenario hung") from None


async def _scenario(port: int, operations: list[Any]) -> None:
    from async_reduce.contrib.redis_fleet import RedisFleetReducer

    clients = [redis.asyncio.Redis(port=port) for _ in range(3)]
    await clients[2].flushall()
    fleets = [
        RedisFleetReducer(client, "interleavings", lease=2.0) for client in clients[:2]
    ]
    works = Works()
    calls: list[tuple[int, asyncio.Task[str]]] = []
    try:
        for operation in operations:
            if operation[0] == "call":
                _, which, key = operation
                coro = fleets[which](works.work(key), ident=f"key-{key}")
                calls.append((key, asyncio.ensure_future(coro)))
                await asyncio.sleep(0)
            elif operation[0] == "cancel":
                if calls:
                    calls[operation[1] % len(calls)][1].cancel()
            elif operation[0] == "finish":
                works.finish(operation[1], operation[2])
            else:
                await asyncio.sleep(0.005 * operation[1])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10  # a hang guard only
        while not all(task.done() for _, task in calls):
            assert loop.time() < deadline, "a call never ended"
            for key in list(works.running):
                works.finish(key, True)
            await asyncio.sleep(0.01)
        for key, task in calls:
            if task.cancelled():
                continue
            exc = task.exception()
            if exc is None:
                assert task.result().startswith(f"key {key} run ")
            elif isinstance(exc, RemoteError):
                assert exc.message == f"key {key} failed"
            else:
                assert isinstance(exc, LookupError)
                assert str(exc) == f"key {key} failed"
        for fleet in fleets:
            assert len(fleet) == 0
        await asyncio.sleep(0)  # let lease releases run
        for fleet in fleets:
            await fleet.aclose()
        assert await clients[2].keys("async_reduce:*:lock") == []
    finally:
        for fleet in fleets:
            await fleet.aclose()
        for client in clients:
            await client.aclose()
