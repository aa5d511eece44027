"""Coalescing across processes: Redis commands and follower latency per burst.

One burst: 4 worker processes each make 50 concurrent identical calls of a
function whose work takes 100 ms, on a key no burst used before.  Variants,
interleaved round by round on the same machine and Redis:

* ``fleet``: ``RedisFleetReducer`` (this project): local coalescing, one
  leader per key elected in Redis, followers told by pub/sub.
* ``cashews_lock``: cashews' ``@cache(ttl=..., lock=True)``: local
  coalescing (its thunder protection), a Redis lock, and followers that poll
  the lock (``SET NX`` + ``PING``) until the leader releases it, then read
  the cached result.
* ``local_only``: a per-process ``AsyncReducer`` (no Redis): the floor for
  latency, and 4 executions instead of 1.

Measured per burst, on a Redis server used by nothing else: executions
(counted on a second Redis server that only the harness uses), commands from
``INFO commandstats`` (reset before the burst; commands run inside Lua
scripts are counted there too), of which sent by clients (from ``MONITOR``
in one extra burst per variant, where commands run by scripts are marked
``lua``), and each follower's *added latency*: the time from the end of the
leader's work to the moment the follower had the result (both clocks are the
same machine's ``time.time()``).  Followers are the callers in the processes
that did not run the work.

Usage::

    python -m benchmarks.fleet_bench [--quick] [--json PATH] [--readme]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
README = HERE / "README.md"
START, END = "<!-- fleet-bench:start -->", "<!-- fleet-bench:end -->"
PROCESSES = 4
CALLS = 50
WORK = 0.1
VARIANTS = ("fleet", "cashews_lock", "local_only")


# -- worker process -----------------------------------------------------------


async def _worker(variant: str, coord_port: int, book_port: int, index: int) -> None:
    import redis.asyncio

    book = redis.asyncio.Redis(port=book_port)
    executed = 0
    ended = 0.0

    async def work(run: str) -> dict[str, str]:
        nonlocal executed, ended
        executed += 1
        await book.incr(f"executions:{run}")
        await asyncio.sleep(WORK)
        ended = time.time()
        return {"run": run}

    call: Any
    if variant == "fleet":
        from async_reduce import async_reduceable
        from async_reduce.contrib.redis_fleet import RedisFleetReducer

        fleet = RedisFleetReducer(redis.asyncio.Redis(port=coord_port), "bench")
        call = async_reduceable(fleet)(work)
    elif variant == "cashews_lock":
        from cashews import Cache

        cache = Cache()
        cache.setup(f"redis://127.0.0.1:{coord_port}/0")
        call = cache(ttl="10m", lock=True)(work)
    else:
        from async_reduce import async_reduceable

        call = async_reduceable()(work)

    async def timed(run: str) -> float:
        await call(run)
        return time.time()

    while True:
        _, raw = await book.blpop([f"cmd:{variant}:{index}"])
        run = raw.decode()
        if run == "stop":
            break
        executed = 0
        done = await asyncio.gather(*(timed(run) for _ in range(CALLS)))
        report = {"index": index, "executed": executed, "done": done, "end": ended}
        await book.rpush(f"report:{run}", json.dumps(report))


# -- harness --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _redis_server() -> Iterator[int]:
    """A redis-server on a free port of 127.0.0.1, without persistence."""
    executable = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = _free_port()
    with tempfile.TemporaryDirectory() as workdir:
        proc = subprocess.Popen(
            [
                *(executable, "--port", str(port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", workdir),
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            import redis

            client = redis.Redis(port=port)
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            client.close()
            yield port
        finally:
            proc.terminate()
            proc.wait()


def _commandstats(client: Any) -> dict[str, int]:
    stats = client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(value["calls"])
        for name, value in stats.items()
        if name.removeprefix("cmdstat_") not in ("info", "config", "monitor")
    }


def _burst(
    variant: str,
    run: str,
    coord: Any,
    book: Any,
    monitor: bool = False,
) -> dict[str, Any]:
    coord.config_resetstat()
    lines: list[str] = []
    if monitor:
        watcher = coord.monitor()
        watcher.__enter__()
    for index in range(PROCESSES):
        book.rpush(f"cmd:{variant}:{index}", run)
    reports = []
    for _ in range(PROCESSES):
        item = book.blpop([f"report:{run}"], timeout=120)
        assert item is not None, f"{variant}: a worker did not report"
        reports.append(json.loads(item[1]))
    if monitor:
        # MONITOR lines arrive as the server runs commands; the burst is over.
        connection = watcher.connection
        while connection.can_read(timeout=0.2):
            response = connection.read_response()
            text = response.decode() if isinstance(response, bytes) else str(response)
            lines.append(text)
        watcher.__exit__(None, None, None)
    stats = _commandstats(coord)
    executions = int(book.get(f"executions:{run}") or 0)
    ends = [report["end"] for report in reports if report["executed"]]
    end = min(ends) if ends else float("nan")
    follower_delays = [
        (done - end) * 1000
        for report in reports
        if report["executed"] == 0
        for done in report["done"]
    ]
    # Callers served by their own process's execution (local coalescing only).
    local_delays = [
        (done - report["end"]) * 1000
        for report in reports
        if report["executed"]
        for done in report["done"]
    ]
    result: dict[str, Any] = {
        "executions": executions,
        "commands": sum(stats.values()),
        "by_command": stats,
        "follower_added_ms": follower_delays,
        "local_added_ms": local_delays,
    }
    if monitor:
        commands = [line for line in lines if '"' in line]
        lua = sum(1 for line in commands if "lua]" in line)
        result["monitored"] = len(commands)
        result["client_commands"] = len(commands) - lua
    return result


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(rounds: int) -> dict[str, Any]:
    import redis

    results: dict[str, Any] = {v: {"bursts": []} for v in VARIANTS}
    with _redis_server() as coord_port, _redis_server() as book_port:
        coord = redis.Redis(port=coord_port)
        book = redis.Redis(port=book_port)
        workers = []
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        for variant in VARIANTS:
            for index in range(PROCESSES):
                workers.append(
                    subprocess.Popen(
                        [
                            *(sys.executable, "-m", "benchmarks.fleet_bench"),
                            *("--worker", variant, str(coord_port), str(book_port)),
                            str(index),
                        ],
                        env=env,
                        cwd=ROOT,
                    )
                )
        try:
            for variant in VARIANTS:  # warm-up: connections, scripts, imports
                _burst(variant, f"warm-{variant}", coord, book)
                split = _burst(variant, f"monitor-{variant}", coord, book, True)
                results[variant]["monitored"] = split
            for number in range(rounds):
                for variant in VARIANTS:
                    burst = _burst(variant, f"{variant}-{number}", coord, book)
                    results[variant]["bursts"].append(burst)
        finally:
            for variant in VARIANTS:
                for index in range(PROCESSES):
                    book.rpush(f"cmd:{variant}:{index}", "stop")
            for worker in workers:
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
            coord.close()
            book.close()
    for data in results.values():
        bursts = data["bursts"]
        delays = [d for burst in bursts for d in burst["follower_added_ms"]]
        local = [d for burst in bursts for d in burst["local_added_ms"]]
        data["summary"] = {
            "bursts": len(bursts),
            "executions_median": statistics.median(b["executions"] for b in bursts),
            "commands_median": statistics.median(b["commands"] for b in bursts),
            "client_commands": data["monitored"].get("client_commands"),
            "follower_added_ms_p50": _percentile(delays, 0.5),
            "follower_added_ms_p99": _percentile(delays, 0.99),
            "local_added_ms_p50": _percentile(local, 0.5),
            "local_added_ms_p99": _percentile(local, 0.99),
        }
    return results


def table(results: dict[str, Any]) -> str:
    rows = [
        "| variant | executions | Redis commands (commandstats) | sent by clients"
        " | follower added p50 / p99 | leader's own callers p50 / p99 |",
        "|---|---|---|---|---|---|",
    ]
    for variant in VARIANTS:
        s = results[variant]["summary"]
        client = s["client_commands"]
        rows.append(
            f"| `{variant}` | {s['executions_median']:g} | {s['commands_median']:g}"
            f" | {client if client is not None else '-'}"
            f" | {_ms(s['follower_added_ms_p50'])} / {_ms(s['follower_added_ms_p99'])}"
            f" | {_ms(s['local_added_ms_p50'])} / {_ms(s['local_added_ms_p99'])} |"
        )
    return "\n".join(rows)


def _ms(value: float) -> str:
    return "-" if value != value else f"{value:.2f} ms"


def readme_section(results: dict[str, Any], rounds: int) -> str:
    load = results["fleet"].get("load_average", float("nan"))
    fleet = results["fleet"]["summary"]
    cashews = results["cashews_lock"]["summary"]
    ratio = cashews["commands_median"] / max(fleet["commands_median"], 1)
    return f"""{START}
## Coalescing across processes (`fleet_bench`)

One burst: {PROCESSES} processes x {CALLS} concurrent identical calls,
{WORK * 1000:.0f} ms of work, a key no burst used before; {rounds} bursts per
variant, interleaved, after one warm-up burst each. `fleet` is
`RedisFleetReducer`; `cashews_lock` is cashews {_cashews_version()}
`@cache(ttl="10m", lock=True)` on the same Redis; `local_only` is a
per-process `AsyncReducer` (no Redis; the latency floor, and one execution
per process). Commands are medians per burst from `INFO commandstats`
(commands run inside Lua scripts included); "sent by clients" comes from
`MONITOR` during one extra burst. Follower added latency is the time from the
end of the leader's work to each follower's result, over all followers of all
bursts (callers in the processes that did not run the work); the last column
is the same for the callers in the process that ran it. The machine (2 cores)
was shared with other jobs while this ran.

{table(results)}

cashews' followers poll the lock while the work runs, so its command count
grows with the work's duration; the fleet's does not ({ratio:.0f}x fewer
commands here): 4 claims and 1 finish, the rest are the commands those Lua
scripts run. A follower's added latency is the finish script's round trip
plus waking its process, which on this shared 2-core machine (load average
{load:.1f} when the run started) costs milliseconds; one process alone
measures about 0.07 ms per script round trip here. Reproduce (writes this
section too):

```sh
.venv/bin/python -m benchmarks.fleet_bench --readme \\
    --json benchmarks/results/fleet_bench.json
```
{END}"""


def _cashews_version() -> str:
    from importlib.metadata import version

    return version("cashews")


def write_readme(section: str) -> None:
    text = README.read_text(encoding="utf-8")
    if START in text:
        head, rest = text.split(START, 1)
        tail = rest.split(END, 1)[1]
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    README.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.fleet_bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="3 bursts per variant")
    parser.add_argument("--json", metavar="PATH", help="write results as JSON")
    parser.add_argument(
        "--readme",
        action="store_true",
        help="write the section of benchmarks/README.md",
    )
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        variant, coord_port, book_port, index = args.worker
        asyncio.run(_worker(variant, int(coord_port), int(book_port), int(index)))
        return
    rounds = 3 if args.quick else 15
    started = time.monotonic()
    load = os.getloadavg()[0]
    results = measure(rounds)
    results["fleet"]["load_average"] = load
    print(table(results))
    print(f"took {time.monotonic() - started:.0f} s")
    if args.json:
        payload = {
            "rounds": rounds,
            "processes": PROCESSES,
            "calls": CALLS,
            "work_s": WORK,
            "variants": results,
        }
        Path(args.json).write_text(json.dumps(payload, indent=1) + "\n")
    if args.readme:
        write_readme(readme_section(results, rounds))


if __name__ == "__main__":
    main()
