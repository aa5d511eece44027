"""One execution for a whole fleet: 3 worker processes, 1 Redis.

Needs a redis-server on 127.0.0.1:6379 (override with ``REDIS_URL``), for
example one of these::

    redis-server --port 6379 --save ''   # Debian: apt-get install redis-server
    docker run --rm -p 6379:6379 redis:7

then::

    .venv/bin/python examples/fleet_workers.py

Each of 3 worker processes makes 20 concurrent calls of ``build_report(7)``
at the same moment.  The report takes half a second to build and counts its
executions in Redis, outside the processes.  Every process coalesces its own
calls; the fleet reducer then lets one process build the report and hands the
result to the others through Redis.  It prints calls against executions.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from typing import Any

import redis.asyncio

from async_reduce import async_reduceable
from async_reduce.contrib.redis_fleet import RedisFleetReducer
from async_reduce.hooks import StatisticsOverallHooks

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
PROCESSES = 3
CALLS = 20
COUNTER = "examples:fleet_workers:executions"


async def worker(barrier: Any, results: Any) -> None:
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    stats = StatisticsOverallHooks()
    fleet = RedisFleetReducer(client, "examples", hooks=stats)

    @async_reduceable(fleet)
    async def build_report(report_id: int) -> dict[str, Any]:
        await client.incr(COUNTER)  # counted outside every process
        await asyncio.sleep(0.5)  # the expensive part
        return {"report": report_id, "built_by": os.getpid()}

    await asyncio.to_thread(barrier.wait)  # every process starts at once
    reports = await asyncio.gather(*(build_report(7) for _ in range(CALLS)))
    results.put((os.getpid(), reports[0]["built_by"], dict(stats.snapshot().fleet)))
    await fleet.aclose()
    await client.aclose()


def run_worker(barrier: Any, results: Any) -> None:
    asyncio.run(worker(barrier, results))


async def reset_counter() -> None:
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    await client.delete(COUNTER)
    await client.aclose()


async def read_counter() -> int:
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    value = await client.get(COUNTER)
    await client.aclose()
    return int(value or 0)


def main() -> None:
    asyncio.run(reset_counter())
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(target=run_worker, args=(barrier, results))
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        pid, built_by, events = results.get(timeout=60)
        print(f"process {pid}: {CALLS} calls, report built by {built_by}, {events}")
    for process in processes:
        process.join()
    executions = asyncio.run(read_counter())
    print(f"calls: {PROCESSES * CALLS}, executions: {executions}")


if __name__ == "__main__":
    main()
