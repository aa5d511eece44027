"""A fleet process for the multi-process tests (run as a script).

``burst``: make ``--calls`` concurrent identical calls through a
RedisFleetReducer, report each fleet role it takes on the Redis list
``test:<run>:ready`` and print the results as one JSON line.  The work counts
its executions with INCR (outside any process) and, for the first execution
only, blocks until the test pushes to ``test:<run>:release``.

``serve``: read pickled batches of arguments from stdin (one base64 line
each), call the fleet for all of them at once and print the pickled results.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import pickle
import sys
from collections import Counter
from typing import Any

import redis.asyncio

from async_reduce.contrib.redis_fleet import RedisFleetReducer
from async_reduce.hooks import BaseHooks

COUNTER: redis.asyncio.Redis | None = None


async def blocking_work(run: str) -> dict[str, Any]:
    """Counts executions; the first blocks until released."""
    assert COUNTER is not None
    n = await COUNTER.incr(f"test:{run}:executions")
    if n == 1:
        await COUNTER.blpop([f"test:{run}:release"], timeout=0)
    return {"run": run, "value": 42}


def describe(value: Any) -> Any:
    """A form of ``value`` equal in every process for equal values."""
    if isinstance(value, float):
        return "nan" if value != value else repr(value + 0.0)
    if isinstance(value, (frozenset, set)):
        return ["set", sorted(json.dumps(describe(item)) for item in value)]
    if isinstance(value, tuple):
        return ["tuple", [describe(item) for item in value]]
    if isinstance(value, bytes):
        return ["bytes", value.hex()]
    return [type(value).__name__, repr(value)]


async def echo_work(value: Any) -> str:
    """Describes its argument, after a short pause so that calls overlap."""
    await asyncio.sleep(0.02)
    return json.dumps(describe(value))


class Reporter(BaseHooks):
    def __init__(self, client: redis.asyncio.Redis, run: str) -> None:
        self.client = client
        self.run = run
        self.kinds: Counter[str] = Counter()
        self.tasks: set[asyncio.Task[Any]] = set()

    def on_fleet_event(self, event: Any) -> None:
        self.kinds[event.kind] += 1
        if event.kind in ("leader", "takeover", "remote_join"):
            note = f"{os.getpid()}:{event.kind}"
            task = asyncio.ensure_future(
                self.client.rpush(f"test:{self.run}:ready", note)
            )
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)


async def burst(args: argparse.Namespace) -> None:
    global COUNTER
    COUNTER = redis.asyncio.Redis(port=args.port)
    reporter = Reporter(redis.asyncio.Redis(port=args.port), args.run)
    fleet = RedisFleetReducer(
        redis.asyncio.Redis(port=args.port),
        "proc-tests",
        hooks=reporter,
        lease=args.lease,
    )
    results = await asyncio.gather(
        *(fleet(blocking_work(args.run)) for _ in range(args.calls)),
        return_exceptions=True,
    )
    await fleet.aclose()
    print(
        json.dumps(
            {
                "pid": os.getpid(),
                "results": [r if isinstance(r, dict) else repr(r) for r in results],
                "kinds": dict(reporter.kinds),
            }
        ),
        flush=True,
    )


async def serve(args: argparse.Namespace) -> None:
    fleet = RedisFleetReducer(
        redis.asyncio.Redis(port=args.port), "proc-tests", typed=True
    )
    loop = asyncio.get_running_loop()
    print("ready", flush=True)
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line.strip():
            break
        values = pickle.loads(base64.b64decode(line))
        results = await asyncio.gather(*(fleet(echo_work(v)) for v in values))
        print(base64.b64encode(pickle.dumps(results)).decode(), flush=True)
    await fleet.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["burst", "serve"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--run", default="run")
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--lease", type=float, default=10.0)
    args = parser.parse_args()
    asyncio.run(burst(args) if args.mode == "burst" else serve(args))


if __name__ == "__main__":
    main()
