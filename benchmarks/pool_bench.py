"""Connection pool throughput and fairness, against asyncio-connection-pool.

Run::

    .venv/bin/python -m benchmarks.pool_bench [--quick] [--json PATH] [--readme]

Measures, for this project's ``ConnectionPool``, asyncio-connection-pool 1.1.1
(ACP) and a bare ``asyncio.Queue`` pool (the floor), in the same run:

* ``uncontended``: acquire+release cycles per CPU second by one task, with an
  idle connection always available (the fast path);
* ``contended``: cycles per CPU second of 100 tasks on 10 connections, each task
  holding its connection across one suspension;
* ``fairness``: max/min acquisitions across 10 tasks looping acquire /
  suspend / release on a pool of one connection;
* ``cold_start``: milliseconds to serve 100 concurrent callers (each holding
  its connection for a 1 ms query) from an empty pool of 10, against a
  backend that takes 5 ms to connect: ours with the default
  ``max_connecting`` (2) and with ``max_connecting=10``, and ACP.

Every figure is the median of several repeats; repeats alternate between the
peers so that machine noise falls on all of them.  Targets (ours >= 3x ACP
uncontended, >= 1.5x ACP contended, fairness <= 1.5) print as PASS/FAIL and
never change the exit status.  ``--readme`` rewrites the ``pool`` section of
``benchmarks/README.md``.  A full run takes about a minute on 2 cores;
``--quick`` about 10 seconds.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from benchmarks._pool_report import markdown_section, text_report, write_readme
from benchmarks._pool_workloads import (
    COLD_START_PEERS,
    cold_start,
    contended,
    fairness,
    uncontended,
)

ROOT = Path(__file__).resolve().parent.parent

FULL = {"repeats": 9, "uncontended": 200_000, "contended": 50_000, "fairness": 20_000}
QUICK = {"repeats": 3, "uncontended": 50_000, "contended": 20_000, "fairness": 5_000}

THROUGHPUT_PEERS = ("queue", "ours", "ours_manual", "acp")
FAIRNESS_PEERS = ("queue", "ours", "acp")

TARGETS = {
    "uncontended": 3.0,  # ours / acp, at least
    "contended": 1.5,  # ours / acp, at least
    "fairness": 1.5,  # max / min, at most
}


def _measure(fn: Any, *args: Any) -> Any:
    gc.collect()
    return fn(*args)


def run(params: dict[str, int], progress: bool = True) -> dict[str, Any]:
    """Run every scenario; return the results document."""
    results: dict[str, Any] = {
        "uncontended": {p: [] for p in THROUGHPUT_PEERS},
        "contended": {p: [] for p in THROUGHPUT_PEERS},
        "fairness": {p: [] for p in FAIRNESS_PEERS},
        "cold_start": {p: [] for p in COLD_START_PEERS},
    }
    started = time.monotonic()
    for repeat in range(params["repeats"]):
        # Alternate the order of the peers from one repeat to the next.
        order = THROUGHPUT_PEERS if repeat % 2 == 0 else THROUGHPUT_PEERS[::-1]
        for peer in order:
            results["uncontended"][peer].append(
                _measure(uncontended, peer, params["uncontended"])
            )
            results["contended"][peer].append(
                _measure(contended, peer, params["contended"])
            )
        if progress:
            print(
                f"  repeat {repeat + 1}/{params['repeats']} "
                f"({time.monotonic() - started:.0f} s)",
                file=sys.stderr,
            )
    for _ in range(max(3, params["repeats"] // 3)):
        for peer in FAIRNESS_PEERS:
            results["fairness"][peer].append(
                _measure(fairness, peer, params["fairness"])
            )
    for repeat in range(params["repeats"]):
        peers = list(COLD_START_PEERS)
        for peer in peers if repeat % 2 == 0 else peers[::-1]:
            results["cold_start"][peer].append(_measure(cold_start, peer))
    return summarize(results)


def _fairness_ratio(counts: list[int]) -> float | None:
    """max / min acquisitions; ``None`` when some task got none at all."""
    return None if min(counts) == 0 else max(counts) / min(counts)


def summarize(raw: dict[str, Any]) -> dict[str, Any]:
    """Medians, ratios and target verdicts from the raw measurements."""
    summary: dict[str, Any] = {"raw": raw}
    for scenario in ("uncontended", "contended"):
        medians = {peer: statistics.median(v) for peer, v in raw[scenario].items()}
        ratio = medians["ours"] / medians["acp"]
        summary[scenario] = {
            "unit": "cycles per CPU second",
            "median": medians,
            "ours_vs_acp": ratio,
            "ours_vs_floor": medians["ours"] / medians["queue"],
            "target": f"ours >= {TARGETS[scenario]}x ACP",
            "pass": ratio >= TARGETS[scenario],
        }
    ratios: dict[str, Any] = {}
    spreads: dict[str, Any] = {}
    for peer, runs in raw["fairness"].items():
        per_run = [_fairness_ratio(counts) for counts in runs]
        # A run in which some task never got the connection counts as worst.
        finite = sorted(r if r is not None else float("inf") for r in per_run)
        median = finite[len(finite) // 2]
        ratios[peer] = None if median == float("inf") else median
        spreads[peer] = {
            "max": max(max(c) for c in runs),
            "min": min(min(c) for c in runs),
        }
    cold: dict[str, Any] = {}
    for peer, runs in raw.get("cold_start", {}).items():
        cold[peer] = {
            "ms": statistics.median(r["seconds"] for r in runs) * 1000,
            "ms_range": [
                min(r["seconds"] for r in runs) * 1000,
                max(r["seconds"] for r in runs) * 1000,
            ],
            "opened": statistics.median(r["opened"] for r in runs),
            "most_in_flight": max(r["most_in_flight"] for r in runs),
        }
    if cold:
        summary["cold_start"] = {
            "unit": "ms to serve 100 callers from an empty pool of 10 "
            "(5 ms connect, 1 ms query)",
            "median": cold,
        }
    ours = ratios["ours"]
    summary["fairness"] = {
        "unit": "max/min acquisitions per task (lower is fairer; "
        "None: some task got none)",
        "median": ratios,
        "spread": spreads,
        "target": f"ours <= {TARGETS['fairness']}",
        "pass": ours is not None and ours <= TARGETS["fairness"],
    }
    return summary


def _git_head() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git(
        "status",
        "--porcelain",
        "--",
        "async_reduce/pool",
        "benchmarks/pool_bench.py",
        "benchmarks/_pool_workloads.py",
    )
    return head + (" + local changes" if dirty else "")


def document(
    params: dict[str, int], quick: bool, summary: dict[str, Any]
) -> dict[str, Any]:
    """The JSON document of a run."""
    return {
        "benchmark": "pool_bench",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
        },
        "params": {
            **params,
            "quick": quick,
            "contended_tasks": 100,
            "contended_connections": 10,
            "fairness_tasks": 10,
            "project": _git_head(),
            "asyncio_connection_pool": version("asyncio-connection-pool"),
        },
        "results": summary,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pool_bench")
    parser.add_argument("--quick", action="store_true", help="rough run, ~10 s")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument(
        "--readme",
        action="store_true",
        help="rewrite the pool section of benchmarks/README.md",
    )
    args = parser.parse_args(argv)
    params = QUICK if args.quick else FULL
    started = time.monotonic()
    doc = document(params, args.quick, run(params))
    doc["params"]["seconds"] = round(time.monotonic() - started, 1)
    print(text_report(doc))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    if args.readme:
        write_readme(ROOT / "benchmarks" / "README.md", markdown_section(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
