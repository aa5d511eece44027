"""The pyperf script behind ``benchmarks.reducer_micro``; one copy serves both sides.

It imports ``async_reduce`` from whatever interpreter runs it, so the same file
measures this project (``.venv``) and async-reduce 1.5 (``.venv-legacy``).  It is
run as a script, never as ``benchmarks._micro_worker``: as a script its own
directory, not the repository root, heads ``sys.path``, so the legacy
interpreter cannot pick up this checkout's package by accident.  Only the API
the two versions share is used: ``AsyncReducer(hooks=...)``,
``reducer(coro, ident=...)`` and ``@async_reduceable()``.

Modes:

* pyperf mode (default): ``--scenarios a,b --calls a=N,b=M`` plus pyperf's own
  options.  Every benchmark value is the mean cost of one call over ``N`` calls
  (pyperf ``inner_loops``), so the orchestrator passes ``--loops 1``.
* ``--calibrate SECONDS``: print, as JSON, how many calls of each scenario fit
  in SECONDS here.
* ``--memory reducer|floor``: print, as JSON, the bytes traced by tracemalloc
  per key while ``--keys`` callers with distinct keys are all suspended in the
  work.
* ``--probe [--scenarios ...]``: print which async_reduce this interpreter
  imports, and why any of the given scenarios cannot be built here.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import importlib.metadata
import itertools
import json
import sys
import time
import tracemalloc
from collections.abc import Callable, Coroutine
from typing import Any

from async_reduce import AsyncReducer, async_reduceable

CALLERS_PER_KEY = 100
"""Concurrent callers per key in the ``join_*`` scenarios."""

# Keys are never reused within a process, so every leading call really leads.
# They start at 1: async-reduce 1.5 treats a falsy ident as "no ident".  Integer
# idents are fine for 1.5 although it annotates them as str (a dict key).
_next_key = itertools.count(1).__next__

Timer = Callable[[int], Coroutine[Any, Any, float]]
"""``timer(calls)`` performs ``calls`` calls and returns the seconds they took."""


async def work(i: int) -> int:
    """The shared work: suspends once, as real I/O does, then returns."""
    await asyncio.sleep(0)
    return i


@async_reduceable()
async def work_decorated(i: int) -> int:
    """``work`` behind the reducing decorator (default reducer)."""
    await asyncio.sleep(0)
    return i


def _groups(calls: int) -> int:
    return max(1, calls // CALLERS_PER_KEY)


def lead_timer(reducer: Any, *, explicit_ident: bool) -> Timer:
    """Sequential calls, each with a key nobody else holds (a leading call)."""

    async def timer(calls: int) -> float:
        first = _next_key()
        keys = range(first, first + calls)
        for _ in range(calls):
            _next_key()
        now = time.perf_counter
        if explicit_ident:
            start = now()
            for k in keys:
                await reducer(work(k), ident=k)
        else:
            start = now()
            for k in keys:
                await reducer(work(k))
        return now() - start

    return timer


async def floor_lead(calls: int) -> float:
    """Sequential ``await create_task(work(k))``: the cheapest leading call."""
    first = _next_key()
    keys = range(first, first + calls)
    for _ in range(calls):
        _next_key()
    create_task = asyncio.get_running_loop().create_task
    now = time.perf_counter
    start = now()
    for k in keys:
        await create_task(work(k))
    return now() - start


def join_timer(reducer: Any, *, decorated: bool) -> Timer:
    """Per key, ``CALLERS_PER_KEY`` callers gathered at once: one leads.

    Each caller is a coroutine awaiting the reducer, as a request handler
    does (and as the floor's callers await the shared task).
    """

    async def caller(k: int) -> int:
        result: int = await reducer(work(k))
        return result

    async def timer(calls: int) -> float:
        gather = asyncio.gather
        group = range(CALLERS_PER_KEY)
        now = time.perf_counter
        start = now()
        for _ in range(_groups(calls)):
            k = _next_key()
            if decorated:
                await gather(*[work_decorated(k) for _ in group])
            else:
                await gather(*[caller(k) for _ in group])
        return now() - start

    return timer


def gather_timer(reducer: Any, *, joining: bool) -> Timer:
    """1.x's calling pattern: ``await gather(*[reducer(work(k)) ...])``.

    ``gather`` wraps each object the reducer returns in a task, so the task
    drives it directly (no caller coroutine).  Groups of ``CALLERS_PER_KEY``
    calls: all on one key (one leads, the rest join), or each on its own key
    (every call leads).
    """

    async def timer(calls: int) -> float:
        gather = asyncio.gather
        group = range(CALLERS_PER_KEY)
        now = time.perf_counter
        start = now()
        for _ in range(_groups(calls)):
            if joining:
                k = _next_key()
                await gather(*[reducer(work(k)) for _ in group])
            else:
                await gather(*[reducer(work(_next_key())) for _ in group])
        return now() - start

    return timer


async def _await_task(task: asyncio.Task[int]) -> int:
    return await task


async def floor_lead_gather(calls: int) -> float:
    """Groups of ``CALLERS_PER_KEY`` gathered coroutines, each awaiting a task
    of its own: the cheapest way to run that many distinct works at once."""
    gather = asyncio.gather
    create_task = asyncio.get_running_loop().create_task
    group = range(CALLERS_PER_KEY)
    now = time.perf_counter
    start = now()
    for _ in range(_groups(calls)):
        await gather(*[_await_task(create_task(work(_next_key()))) for _ in group])
    return now() - start


async def floor_join(calls: int) -> float:
    """Per key, one task and ``CALLERS_PER_KEY`` gathered callers awaiting it."""
    gather = asyncio.gather
    create_task = asyncio.get_running_loop().create_task
    group = range(CALLERS_PER_KEY)
    now = time.perf_counter
    start = now()
    for _ in range(_groups(calls)):
        task = create_task(work(_next_key()))
        await gather(*[_await_task(task) for _ in group])
    return now() - start


def _load(module: str, name: str) -> Any:
    """``module.name``, or ImportError if it is not there (yet)."""
    found = getattr(importlib.import_module(module), name, None)
    if found is None:
        raise ImportError(f"cannot import name {name!r} from {module!r}")
    return found


def _statistics_hooks() -> Any:
    return _load("async_reduce.hooks", "StatisticsOverallHooks")()


def _prometheus_hooks() -> Any:
    hooks = _load("async_reduce.contrib.prometheus", "PrometheusHooks")
    registry = _load("prometheus_client", "CollectorRegistry")()
    return hooks(registry=registry)


def make_timer(scenario: str) -> Timer:
    """Build the timer of ``scenario``; raises ImportError for a missing hook."""
    if scenario == "lead_auto":
        return lead_timer(AsyncReducer(None), explicit_ident=False)
    if scenario == "lead_ident":
        return lead_timer(AsyncReducer(None), explicit_ident=True)
    if scenario == "join_100":
        return join_timer(AsyncReducer(None), decorated=False)
    if scenario == "join_100_decorator":
        return join_timer(None, decorated=True)
    if scenario == "lead_gather":
        return gather_timer(AsyncReducer(None), joining=False)
    if scenario == "join_gather":
        return gather_timer(AsyncReducer(None), joining=True)
    if scenario == "floor_lead_gather":
        return floor_lead_gather
    if scenario == "floor_lead":
        return floor_lead
    if scenario == "floor_join":
        return floor_join
    if scenario == "hooks_base":
        hooks = _load("async_reduce.hooks.base", "BaseHooks")()
        return lead_timer(AsyncReducer(hooks), explicit_ident=False)
    if scenario == "hooks_statistics":
        return lead_timer(AsyncReducer(_statistics_hooks()), explicit_ident=False)
    if scenario == "hooks_prometheus":
        return lead_timer(AsyncReducer(_prometheus_hooks()), explicit_ident=False)
    raise ValueError(f"unknown scenario {scenario!r}")


def implementation() -> str:
    """``"<version> <path>"`` of the async_reduce this interpreter imports."""
    import async_reduce

    try:
        version = importlib.metadata.version("async-reduce")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return f"{version} {async_reduce.__file__}"


# -- memory ------------------------------------------------------------------

_gate: asyncio.Event
_all_in: asyncio.Event
_inside = 0
_expected = 0


async def parked_work(i: int) -> int:
    """Work that stays suspended until the gate opens (one key per caller)."""
    global _inside
    _inside += 1
    if _inside == _expected:
        _all_in.set()
    await _gate.wait()
    return i


async def _park(kind: str, keys: int, reducer: Any) -> int:
    """Run ``keys`` callers; return traced bytes while all are parked."""
    global _gate, _all_in, _inside, _expected
    _gate, _all_in = asyncio.Event(), asyncio.Event()
    _inside, _expected = 0, keys
    create_task = asyncio.get_running_loop().create_task

    async def via_reducer(i: int) -> int:
        return int(await reducer(parked_work(i)))

    async def via_task(i: int) -> int:
        return await create_task(parked_work(i))

    caller = via_reducer if kind == "reducer" else via_task
    first = _next_key()
    for _ in range(keys):
        _next_key()
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    tasks = [create_task(caller(k)) for k in range(first, first + keys)]
    await _all_in.wait()
    gc.collect()
    during = tracemalloc.get_traced_memory()[0]
    _gate.set()
    await asyncio.gather(*tasks)
    del tasks
    return during - before


async def memory(kind: str, keys: int) -> float:
    """Bytes per in-flight key for ``kind`` (``reducer`` or ``floor``)."""
    reducer = AsyncReducer(None)
    tracemalloc.start()
    await _park(kind, 100, reducer)  # warm caches so one-off allocations drop out
    traced = await _park(kind, keys, reducer)
    tracemalloc.stop()
    return traced / keys


# -- modes -------------------------------------------------------------------


def calibrate(scenarios: list[str], seconds: float) -> dict[str, int]:
    """Calls of each scenario that take about ``seconds`` on this machine."""
    loop = asyncio.new_event_loop()
    found: dict[str, int] = {}
    try:
        for scenario in scenarios:
            timer = make_timer(scenario)
            calls = CALLERS_PER_KEY
            loop.run_until_complete(timer(calls))
            while True:
                took = loop.run_until_complete(timer(calls))
                if took >= seconds / 4 or calls >= 10_000_000:
                    break
                calls *= 2
            found[scenario] = max(1, round(calls * seconds / max(took, 1e-9)))
    finally:
        loop.close()
    return found


def pyperf_mode(argv: list[str]) -> None:
    import pyperf  # type: ignore[import-untyped]

    def forward(cmd: list[str], args: argparse.Namespace) -> None:
        cmd.extend(["--scenarios", args.scenarios, "--calls", args.calls])

    runner = pyperf.Runner(loops=1, add_cmdline_args=forward)
    runner.argparser.add_argument("--scenarios", required=True)
    runner.argparser.add_argument("--calls", required=True)
    args = runner.parse_args(argv)
    calls = {name: int(n) for name, n in (p.split("=") for p in args.calls.split(","))}
    loop = asyncio.new_event_loop()
    impl = implementation()
    for scenario in args.scenarios.split(","):
        timer = make_timer(scenario)
        n = calls[scenario]

        def time_func(loops: int, timer: Timer = timer, n: int = n) -> float:
            return sum(loop.run_until_complete(timer(n)) for _ in range(loops))

        runner.bench_time_func(
            scenario,
            time_func,
            inner_loops=n,
            metadata={"async_reduce": impl, "unit_note": "seconds per call"},
        )


def main() -> None:
    argv = sys.argv[1:]
    if argv and argv[0] in ("--calibrate", "--memory", "--probe"):
        parser = argparse.ArgumentParser()
        parser.add_argument("--calibrate", type=float)
        parser.add_argument("--memory", choices=("reducer", "floor"))
        parser.add_argument("--probe", action="store_true")
        parser.add_argument("--scenarios", default="")
        parser.add_argument("--keys", type=int, default=10_000)
        args = parser.parse_args(argv)
        if args.probe:
            out: dict[str, Any] = {"implementation": implementation()}
            for scenario in filter(None, args.scenarios.split(",")):
                try:
                    make_timer(scenario)
                except ImportError as exc:
                    out[scenario] = f"{type(exc).__name__}: {exc}"
            print(json.dumps(out))
        elif args.calibrate is not None:
            found = calibrate(args.scenarios.split(","), args.calibrate)
            print(json.dumps(found))
        else:
            loop = asyncio.new_event_loop()
            per_key = loop.run_until_complete(memory(args.memory, args.keys))
            loop.close()
            print(json.dumps({"bytes_per_key": per_key}))
        return
    pyperf_mode(argv)


if __name__ == "__main__":
    main()
