"""What the statistics hooks report for a burst of concurrent calls.

A reducer with ``StatisticsOverallHooks() & StatisticsDetailHooks()`` serves
a burst of 1,000 concurrent calls to two simulated backends over a handful of
keys: some calls fail, some give up on a timeout, a few are cancelled.  The
example then prints the 1.x-style ``str()`` of both hooks and the figures
added in 2.0 (fan-in, coalescing ratio, latency percentiles).

Run it with ``.venv/bin/python examples/statistics_example.py``; it takes
about a second and needs nothing but this package.
"""

from __future__ import annotations

import asyncio
import random

from async_reduce import AsyncReducer
from async_reduce.hooks import (
    LatencySummary,
    StatisticsDetailHooks,
    StatisticsOverallHooks,
)

CALLS = 1000
USERS = 8
SEED = 7


async def fetch_user(user_id: int) -> dict[str, object]:
    """A slow lookup; user 0 does not exist."""
    await asyncio.sleep(random.uniform(0.02, 0.06))
    if user_id == 0:
        raise LookupError(f"no user {user_id}")
    return {"id": user_id, "name": f"user-{user_id}"}


async def fetch_orders(user_id: int) -> list[int]:
    """A slower lookup that some callers will not wait for."""
    await asyncio.sleep(random.uniform(0.05, 0.15))
    return [user_id * 10 + n for n in range(3)]


def latency_line(summary: LatencySummary) -> str:
    """One line of latency figures, in milliseconds."""
    return (
        f"n={summary.count} p50={summary.p50 * 1e3:.1f}ms "
        f"p90={summary.p90 * 1e3:.1f}ms p99={summary.p99 * 1e3:.1f}ms "
        f"max={summary.max * 1e3:.1f}ms"
    )


async def main() -> None:
    random.seed(SEED)
    overall = StatisticsOverallHooks()
    detail = StatisticsDetailHooks()
    reducer = AsyncReducer(hooks=overall & detail)

    async def one_call(n: int) -> None:
        user_id = random.randrange(USERS)
        # Arrivals spread over ~0.3 s, so executions overlap partly.
        await asyncio.sleep(random.uniform(0, 0.3))
        try:
            if n % 4 == 0:
                await reducer(fetch_orders(user_id), timeout=0.1)
            else:
                await reducer(fetch_user(user_id))
        except (LookupError, TimeoutError):
            pass

    tasks = [asyncio.create_task(one_call(n)) for n in range(CALLS)]
    # Cancel a few callers part-way, as a client disconnecting would.
    await asyncio.sleep(0.15)
    for task in tasks[::97]:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    print("1.x-compatible output")
    print("---------------------")
    print(overall)
    print(detail, end="")
    print()
    snap = overall.snapshot()
    print("Added in 2.0 (overall)")
    print("----------------------")
    print(f"calls {snap.total}, executions {snap.started}, joined {snap.reduced}")
    print(f"coalescing ratio {snap.coalescing_ratio:.1%} of calls joined")
    print(f"fan-in: mean {snap.fan_in_mean:.1f}, max {snap.fan_in_max} callers")
    print(
        f"executions ended by an exception {snap.errors} (cancellations included),"
        f" in flight now {snap.in_flight}"
    )
    print(
        f"callers cancelled {snap.cancelled}, timed out {snap.timeouts}; "
        f"executions orphaned {snap.orphaned}"
    )
    print(f"execution latency: {latency_line(snap.latency)}")
    print()
    print("Per location")
    print("------------")
    for location, figures in detail.snapshot().locations.items():
        print(
            f"{location}: {figures.total} calls, {figures.started} executions, "
            f"fan-in {figures.fan_in_mean:.1f}, {latency_line(figures.latency)}"
        )


if __name__ == "__main__":
    asyncio.run(main())
