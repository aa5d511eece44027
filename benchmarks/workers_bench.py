"""Worker pool costs and scheduling, against asyncio.to_thread and
loop.run_in_executor.

Run::

    .venv/bin/python -m benchmarks.workers_bench [--quick] [--json PATH]

Peers, each with 4 threads, in the same run: ``executor`` is
``loop.run_in_executor`` on a ``ThreadPoolExecutor(4)`` (the floor: the
cheapest way to run a blocking call from asyncio); ``to_thread`` is
``asyncio.to_thread`` with a ``ThreadPoolExecutor(4)`` as the loop's default
executor (it also copies the context, as the pool does); ``ours`` is
``WorkerPool(4)`` (coalescing on, arguments all distinct unless said
otherwise) and ``ours_nc`` the same with ``coalesce=False``.

* ``sequential``: microseconds per call of a trivial function, one caller
  awaiting one call at a time (a thread hand-off and back per call); the
  peers take turns every 250 calls and the ratio to the floor is the median
  of the per-turn ratios, so load changes on a shared machine fall on all.
* ``queued``: microseconds per call when 10,000 calls are queued at once
  (``gather``), so throughput with a deep queue; two rounds per peer in
  mirrored orders, the ratio being the median of the per-round ratios.
* ``priority``: 2,000 low-priority calls of 1 ms are queued on the 4
  threads, then a high-priority call is made every 5 ms while the backlog
  drains; the wait of each (from the call to its start on a thread), p50
  and p99.  Peers have no priorities.
* ``zipf``: 64 clients make calls with keys drawn from a Zipf law (s = 1.1,
  1,000 keys) to a 1 ms function; executions run and wall time.

Every figure is the median of the repeats, peers alternating within each
repeat.  Targets (ours within 1.3x of the floor per call, ahead of it on the
Zipf workload, priority p99 <= 10 ms) print as PASS/FAIL and never change the
exit status.  A full run takes about a minute on 2 cores, ``--quick`` about
15 seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import datetime
import gc
import itertools
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from itertools import accumulate
from pathlib import Path
from typing import Any

from async_reduce.workers import WorkerPool

THREADS = 4
FULL = {"repeats": 5, "sequential": 6_000, "queued": 10_000, "zipf": 6_000}
QUICK = {"repeats": 2, "sequential": 2_000, "queued": 10_000, "zipf": 2_000}
BLOCK = 250  # calls per peer turn in the one-at-a-time measurement
BACKLOG = 2_000
PROBE_EVERY = 0.005
PROBES = 60
ZIPF_KEYS = 1_000
ZIPF_S = 1.1
ZIPF_CLIENTS = 64
PEERS = ("executor", "to_thread", "ours", "ours_nc")
TARGETS = {"per_call": 1.3, "priority_p99_ms": 10.0}

Call = Callable[..., Awaitable[Any]]


def trivial(x: int) -> int:
    return x


def sleep_1ms(x: int) -> int:
    time.sleep(0.001)
    return x


class Peer:
    """One way of running blocking calls, set up and torn down per repeat."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.executor: concurrent.futures.ThreadPoolExecutor | None = None
        self.pool: WorkerPool | None = None

    async def __aenter__(self) -> Call:
        loop = asyncio.get_running_loop()
        if self.name.startswith("ours"):
            pool = self.pool = WorkerPool(THREADS, coalesce=self.name == "ours")

            async def ours(fn: Any, *args: Any, priority: int = 0) -> Any:
                return await pool.run(fn, *args, priority=priority)

            call: Call = ours
        else:
            executor = self.executor = concurrent.futures.ThreadPoolExecutor(THREADS)
            if self.name == "executor":

                async def in_executor(fn: Any, *args: Any, priority: int = 0) -> Any:
                    return await loop.run_in_executor(executor, fn, *args)

                call = in_executor
            else:
                loop.set_default_executor(executor)

                async def to_thread(fn: Any, *args: Any, priority: int = 0) -> Any:
                    return await asyncio.to_thread(fn, *args)

                call = to_thread
        await asyncio.gather(*(call(trivial, -i) for i in range(THREADS * 4)))
        return call

    async def __aexit__(self, *exc: object) -> None:
        if self.pool is not None:
            await self.pool.shutdown()
        if self.executor is not None:
            self.executor.shutdown(wait=True)


async def sequential(call: Call, n: int) -> float:
    """Microseconds per call, one call at a time."""
    start = time.perf_counter()
    for i in range(n):
        await call(trivial, i)
    return (time.perf_counter() - start) / n * 1e6


async def queued(call: Call, n: int) -> float:
    """Microseconds per call with ``n`` calls queued at once."""
    start = time.perf_counter()
    await asyncio.gather(*(call(trivial, i) for i in range(n)))
    return (time.perf_counter() - start) / n * 1e6


async def priority(call: Call) -> dict[str, float]:
    """Waits (ms) of high-priority calls made while a backlog drains."""
    loop = asyncio.get_running_loop()
    backlog = [loop.create_task(call(sleep_1ms, i, priority=0)) for i in range(BACKLOG)]
    await asyncio.sleep(0.02)  # let the backlog queue up
    started: dict[int, float] = {}

    def mark(i: int) -> int:
        started[i] = time.perf_counter()
        return i

    probes = []
    made: dict[int, float] = {}
    for i in range(PROBES):
        made[i] = time.perf_counter()
        probes.append(loop.create_task(call(mark, BACKLOG + i, priority=10)))
        await asyncio.sleep(PROBE_EVERY)
    await asyncio.gather(*probes, *backlog)
    waits = sorted((started[BACKLOG + i] - made[i]) * 1e3 for i in range(PROBES))
    return {
        "p50_ms": statistics.median(waits),
        "p99_ms": waits[min(len(waits) - 1, round(0.99 * (len(waits) - 1)))],
        "max_ms": waits[-1],
    }


def zipf_keys(n: int, seed: int = 7) -> list[int]:
    weights = list(accumulate(1 / (k**ZIPF_S) for k in range(1, ZIPF_KEYS + 1)))
    rng = random.Random(seed)
    return rng.choices(range(ZIPF_KEYS), cum_weights=weights, k=n)


async def zipf(call: Call, n: int) -> dict[str, float]:
    """Executions and wall time of ``n`` Zipf-keyed calls from 64 clients."""
    keys = zipf_keys(n)
    executions = itertools.count()  # next() is atomic: safe from 4 threads

    def work(key: int) -> int:
        next(executions)
        time.sleep(0.001)
        return key

    position = 0

    async def client() -> None:
        nonlocal position
        while position < n:
            key = keys[position]
            position += 1
            assert await call(work, key) == key

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(ZIPF_CLIENTS)))
    seconds = time.perf_counter() - start
    return {"executions": next(executions), "seconds": seconds}


async def sequential_blocks(
    calls: dict[str, Call], n: int, order: tuple[str, ...]
) -> dict[str, dict[str, float]]:
    """µs per call one at a time, peers taking turns every ``BLOCK`` calls;
    the ratio to the floor is the median of the per-block ratios, so a change
    of machine load falls on every peer alike."""
    times: dict[str, list[float]] = {name: [] for name in order}
    for block in range(max(1, n // BLOCK)):
        for name in order if block % 2 == 0 else tuple(reversed(order)):
            call = calls[name]
            start = time.perf_counter()
            for i in range(BLOCK):
                await call(trivial, i)
            times[name].append((time.perf_counter() - start) / BLOCK * 1e6)
    floor = times["executor"]
    return {
        name: {
            "us": statistics.median(values),
            "ratio": statistics.median(
                v / f for v, f in zip(values, floor, strict=True)
            ),
        }
        for name, values in times.items()
    }


async def one_repeat(sizes: dict[str, int], order: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {name: {} for name in order}
    gc.collect()
    async with contextlib.AsyncExitStack() as stack:
        calls = {name: await stack.enter_async_context(Peer(name)) for name in order}
        blocks = await sequential_blocks(calls, sizes["sequential"], order)
        # Two rounds of 10,000 queued calls per peer, in mirrored orders.
        deep: dict[str, list[float]] = {name: [] for name in order}
        for turn in (order, tuple(reversed(order))):
            for name in turn:
                gc.collect()
                deep[name].append(await queued(calls[name], sizes["queued"]))
    for name in order:
        out[name]["sequential_us"] = blocks[name]["us"]
        out[name]["sequential_ratio"] = blocks[name]["ratio"]
        out[name]["queued_us"] = statistics.median(deep[name])
        out[name]["queued_ratio"] = statistics.median(
            v / f for v, f in zip(deep[name], deep["executor"], strict=True)
        )
    for name in order:
        if name in ("executor", "ours"):
            async with Peer(name) as call:
                out[name]["priority"] = await priority(call)
            async with Peer(name) as call:
                out[name]["zipf"] = await zipf(call, sizes["zipf"])
    return out


def median_of(runs: list[dict[str, Any]], *path: str) -> float:
    values = []
    for run in runs:
        value: Any = run
        for part in path:
            value = value[part]
        values.append(float(value))
    return statistics.median(values)


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for name in PEERS:
        table[name] = {
            "sequential_us": median_of(runs, name, "sequential_us"),
            "sequential_ratio": median_of(runs, name, "sequential_ratio"),
            "queued_us": median_of(runs, name, "queued_us"),
            "queued_ratio": median_of(runs, name, "queued_ratio"),
        }
    for name in ("executor", "ours"):
        for key in ("p50_ms", "p99_ms", "max_ms"):
            table[name]["priority_" + key] = median_of(runs, name, "priority", key)
        table[name]["zipf_executions"] = median_of(runs, name, "zipf", "executions")
        table[name]["zipf_seconds"] = median_of(runs, name, "zipf", "seconds")
    floor = table["executor"]
    table["ours"]["zipf_time_ratio"] = (
        table["ours"]["zipf_seconds"] / floor["zipf_seconds"]
    )
    return table


def report(table: dict[str, Any]) -> str:
    header = f"{'peer':<10} {'sequential us':>14} {'x floor':>8}"
    lines = [header + f" {'queued us':>10} {'x floor':>8}"]
    for name in PEERS:
        row = table[name]
        lines.append(
            f"{name:<10} {row['sequential_us']:>14.1f} {row['sequential_ratio']:>8.2f}"
            f" {row['queued_us']:>10.1f} {row['queued_ratio']:>8.2f}"
        )
    lines.append("")
    for name in ("executor", "ours"):
        row = table[name]
        lines.append(
            f"{name:<10} priority wait p50 {row['priority_p50_ms']:.1f} ms,"
            f" p99 {row['priority_p99_ms']:.1f} ms; zipf executions"
            f" {row['zipf_executions']:.0f} in {row['zipf_seconds']:.2f} s"
        )
    ours = table["ours"]
    worst = max(ours["sequential_ratio"], ours["queued_ratio"])
    p99_ok = ours["priority_p99_ms"] <= TARGETS["priority_p99_ms"]
    lines += [
        "",
        f"per call within {TARGETS['per_call']}x of the floor: "
        f"{'PASS' if worst <= TARGETS['per_call'] else 'FAIL'} (worst {worst:.2f}x)",
        f"priority p99 <= {TARGETS['priority_p99_ms']} ms: "
        f"{'PASS' if p99_ok else 'FAIL'}",
        f"ahead of the floor on Zipf: "
        f"{'PASS' if ours['zipf_time_ratio'] < 1 else 'FAIL'}"
        f" ({ours['zipf_time_ratio']:.2f}x its time)",
    ]
    return "\n".join(lines)


async def run(sizes: dict[str, int]) -> list[dict[str, Any]]:
    runs = []
    for index in range(sizes["repeats"]):
        order = PEERS if index % 2 == 0 else tuple(reversed(PEERS))
        runs.append(await one_repeat(sizes, order))
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.workers_bench")
    parser.add_argument("--quick", action="store_true", help="rough run, ~15 s")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    runs = asyncio.run(run(sizes))
    table = summarize(runs)
    print(report(table))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "date": datetime.date.today().isoformat(),
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "quick": args.quick,
                    "sizes": sizes,
                    "threads": THREADS,
                    "summary": table,
                    "runs": runs,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
