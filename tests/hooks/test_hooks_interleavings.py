"""Hook figures stay consistent under any interleaving of calls, cancels and ends."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from virtual_clock import run_virtual

from async_reduce import AsyncReducer
from async_reduce.contrib.prometheus import PrometheusHooks
from async_reduce.hooks import (
    BaseHooks,
    ExecutionFinished,
    StatisticsDetailHooks,
    StatisticsOverallHooks,
)

KEYS = 3


@dataclass
class Gate:
    """Holds the executions of one key until released, as a result or an error."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    fail: bool = False


async def job(gates: dict[int, Gate], key: int) -> int:
    """Shared work: waits for the key's gate current when it started."""
    gate = gates[key]
    await gate.event.wait()
    if gate.fail:
        raise LookupError(key)
    return key


# Steps: ("call", key, timeout), ("cancel", index), ("end", key, fail),
# ("yield",) for one loop iteration, ("wait",) for time to pass (timeouts fire).
steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("call"),
            st.integers(0, KEYS - 1),
            st.sampled_from([None, None, 0.001]),
        ),
        st.tuples(st.just("cancel"), st.integers(0, 30)),
        st.tuples(st.just("end"), st.integers(0, KEYS - 1), st.booleans()),
        st.tuples(st.just("yield")),
        st.tuples(st.just("wait")),
    ),
    max_size=30,
)


class Settled(BaseHooks):
    """Sets ``idle`` whenever no execution is running."""

    def __init__(self) -> None:
        self.running = 0
        self.idle = asyncio.Event()
        self.idle.set()

    def on_executing_for(self, coro: Any, ident: Any) -> None:
        self.running += 1
        self.idle.clear()

    def on_execution_finished(self, event: ExecutionFinished) -> None:
        self.running -= 1
        if not self.running:
            self.idle.set()


async def drive(
    program: list[tuple[Any, ...]], reducer: AsyncReducer, settled: Settled
) -> None:
    """Run ``program`` against ``reducer``, then end every execution."""
    gates = {key: Gate() for key in range(KEYS)}
    tasks: list[asyncio.Task[int]] = []
    coros = []
    for step in program:
        if step[0] == "call":
            _, key, timeout = step
            coro = job(gates, key)
            coros.append(coro)
            tasks.append(asyncio.create_task(reducer(coro, ident=key, timeout=timeout)))
        elif step[0] == "cancel" and tasks:
            tasks[step[1] % len(tasks)].cancel()
        elif step[0] == "end":
            _, key, fail = step
            gates[key].fail = fail
            gates[key].event.set()
            gates[key] = Gate()
        elif step[0] == "yield":
            await asyncio.sleep(0)
        elif step[0] == "wait":
            await asyncio.sleep(0.002)
    for gate in gates.values():
        gate.event.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    # Abandoned executions end in their own tasks, after their callers left.
    await settled.idle.wait()
    # A caller cancelled before its task first ran never reaches the reducer,
    # and its coroutine is never awaited; close them all (a no-op for the rest).
    for coro in coros:
        coro.close()


@settings(max_examples=200, deadline=None)
@given(steps)
def test_figures_consistent(program: list[tuple[Any, ...]]) -> None:
    """Counts add up, nothing stays in flight, and all three hooks agree."""
    overall = StatisticsOverallHooks()
    detail = StatisticsDetailHooks()
    registry = CollectorRegistry()
    settled = Settled()
    reducer = AsyncReducer(hooks=overall & detail & PrometheusHooks(registry) & settled)
    run_virtual(drive(program, reducer, settled))  # timeouts replay exactly
    assert len(reducer) == 0

    snap = overall.snapshot()
    assert snap.total == snap.started + snap.reduced
    assert snap.in_flight == 0
    assert snap.finished == snap.started
    assert snap.succeeded + snap.errors == snap.finished
    assert round(snap.fan_in_mean * snap.finished) == snap.total
    assert snap.orphaned <= snap.finished
    assert snap.cancelled + snap.timeouts <= snap.total

    locations = detail.snapshot().locations
    if snap.total == 0:
        assert not locations
        return
    [(location, figures)] = locations.items()
    assert (figures.total, figures.started, figures.reduced) == (
        snap.total,
        snap.started,
        snap.reduced,
    )
    assert (figures.cancelled, figures.timeouts, figures.orphaned) == (
        snap.cancelled,
        snap.timeouts,
        snap.orphaned,
    )
    assert figures.in_flight == 0

    def sample(name: str) -> float:
        return registry.get_sample_value(name, {"location": location}) or 0.0

    assert sample("async_reduce_calls_total") == snap.total
    assert sample("async_reduce_executions_total") == snap.started
    assert sample("async_reduce_joins_total") == snap.reduced
    assert sample("async_reduce_cancellations_total") == snap.cancelled
    assert sample("async_reduce_timeouts_total") == snap.timeouts
    assert sample("async_reduce_abandoned_total") == snap.orphaned
    assert sample("async_reduce_in_flight") == 0
    assert sample("async_reduce_execution_callers_sum") == snap.total
    assert sample("async_reduce_execution_seconds_count") == snap.latency.count
