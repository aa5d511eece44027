"""Per-call cost and per-key memory of the reducer, against async-reduce 1.5.

Run::

    .venv/bin/python -m benchmarks.reducer_micro [--quick] [--json PATH]
        [--only SCENARIO,...] [--readme]
    .venv/bin/python -m benchmarks.reducer_micro --readme-from PATH

Both sides run the same pyperf script (``benchmarks/_micro_worker.py``): this
project from ``.venv``, async-reduce 1.5 from ``.venv-legacy`` (same import
name, so its own interpreter).  The two interpreters take turns, round after
round, so machine noise falls on both; all figures are medians over every
value of every round.  Floors (the same work without any reducer) run in both
interpreters and are pooled.

Scenarios (``--only``): lead_auto, lead_ident, join_100, join_100_decorator,
lead_gather, join_gather (1.x's ``gather(*[reducer(f(x)) ...])``), memory,
hooks.  The work coroutine suspends once (``await asyncio.sleep(0)``).
Targets are printed as PASS/FAIL; they never change the exit status.
``--readme`` (or ``--readme-from`` a saved ``--json`` file) rewrites the
``reducer-micro`` section of ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks._legacy import ROOT, legacy_python, legacy_version
from benchmarks._micro_report import (
    FLOOR_OF,
    HOOKED,
    LEGACY,
    OURS,
    text_table,
    write_readme,
)

WORKER = Path(__file__).resolve().parent / "_micro_worker.py"

SCENARIOS = (
    "lead_auto",
    "lead_ident",
    "join_100",
    "join_100_decorator",
    "lead_gather",
    "join_gather",
    "memory",
    "hooks",
)
HOOK_LIMIT = {"hooks_statistics": 0.15, "hooks_prometheus": 0.50}
LEAD_FLOOR_LIMIT = 1.15
OVERHEAD_LIMIT = 0.3
GATHER_LIMIT = 0.4
"""1.x's own pattern, a task driving each call (``gather(*[reducer(f(x))])``)."""
MEMORY_LIMIT = 0.5


@dataclass(frozen=True)
class Params:
    """How much to measure; ``quick`` and full presets below."""

    rounds: int
    processes: int
    values: int
    warmups: int
    value_seconds: float
    memory_keys: int
    memory_reps: int
    round_budget: float
    """Seconds all rounds may take: on a loaded machine, fewer rounds run."""


FULL = Params(
    rounds=14,
    processes=1,
    values=3,
    warmups=1,
    value_seconds=0.1,
    memory_keys=10_000,
    memory_reps=3,
    round_budget=170.0,
)
QUICK = Params(
    rounds=2,
    processes=1,
    values=2,
    warmups=1,
    value_seconds=0.04,
    memory_keys=10_000,
    memory_reps=1,
    round_budget=20.0,
)


def _run(cmd: list[str]) -> str:
    """Run a worker command outside the checkout; return its stdout."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        cmd, capture_output=True, text=True, cwd=tempfile.gettempdir(), env=env
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"worker failed: {shlex.join(cmd)}")
    return done.stdout


def _commit() -> str:
    """Short commit of the checkout, naming any locally edited async_reduce files."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        )
        return done.stdout

    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    dirty = git("status", "--porcelain", "--", "async_reduce").splitlines()
    if not dirty:
        return head
    paths = sorted({line[3:].removeprefix("async_reduce/") for line in dirty})
    shown = ", ".join(paths[:4]) + (", ..." if len(paths) > 4 else "")
    return f"{head} + local changes to {shown}"


def _worker_json(python: str, *args: str) -> Any:
    return json.loads(_run([python, str(WORKER), *args]).splitlines()[-1])


def _pyperf_values(
    python: str,
    expected_impl: str,
    scenarios: list[str],
    calls: dict[str, int],
    p: Params,
    out: Path,
) -> dict[str, list[float]]:
    """One pyperf invocation; return seconds per call for each scenario."""
    import pyperf  # type: ignore[import-untyped]

    _run(
        [
            python,
            str(WORKER),
            "--scenarios",
            ",".join(scenarios),
            "--calls",
            ",".join(f"{s}={calls[s]}" for s in scenarios),
            "--processes",
            str(p.processes),
            "--values",
            str(p.values),
            "--warmups",
            str(p.warmups),
            "--loops",
            "1",
            "--quiet",
            "--output",
            str(out),
        ]
    )
    suite = pyperf.BenchmarkSuite.load(str(out))
    found: dict[str, list[float]] = {}
    for bench in suite.get_benchmarks():
        impl = bench.get_metadata().get("async_reduce")
        if impl != expected_impl:
            raise SystemExit(
                f"{bench.get_name()}: pyperf workers of {python} imported "
                f"{impl!r}, expected {expected_impl!r}"
            )
        found[bench.get_name()] = list(bench.get_values())
    return found


def _parse_only(text: str | None) -> list[str]:
    if not text:
        return list(SCENARIOS)
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        raise SystemExit(
            f"--only: unknown scenario(s) {', '.join(unknown)}; "
            f"choose from {', '.join(SCENARIOS)}"
        )
    return [s for s in SCENARIOS if s in chosen]


Group = dict[str, list[str]]
"""pyperf benchmarks of one invocation, per side; sides alternate per group."""


def _plan(chosen: list[str]) -> list[Group]:
    """The groups to run each round: leading calls, then joining calls.

    A scenario and its floor share a group, so they are measured seconds apart;
    the hook benchmarks ride with the leading group on this project's side.
    """
    groups: list[Group] = []
    for scenarios, floor in (
        (("lead_auto", "lead_ident"), "floor_lead"),
        (("join_100", "join_100_decorator", "join_gather"), "floor_join"),
        (("lead_gather",), "floor_lead_gather"),
    ):
        shared = [s for s in scenarios if s in chosen]
        ours = list(shared)
        if floor == "floor_lead" and "hooks" in chosen:
            ours = ["lead_auto", *(s for s in ours if s != "lead_auto"), *HOOKED]
        if ours:
            floors = [floor] if shared else []
            groups.append({OURS: ours + floors, LEGACY: shared + floors})
    return groups


def _med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def measure(
    p: Params, chosen: list[str], ours_python: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run everything; return (results, info) ready for JSON."""
    legacy = legacy_python()
    pythons = {OURS: ours_python, LEGACY: legacy}
    groups = _plan(chosen)
    skipped: dict[str, str] = {}
    info: dict[str, Any] = {
        "implementations": {
            side: _worker_json(py, "--probe")["implementation"]
            for side, py in pythons.items()
        },
        "legacy_version": legacy_version(),
        "commit": _commit(),
    }
    hooked = [b for g in groups for b in g[OURS] if b in HOOKED]
    if hooked:
        probe = _worker_json(ours_python, "--probe", "--scenarios", ",".join(hooked))
        skipped = {b: probe[b] for b in hooked if b in probe}
        for g in groups:
            g[OURS] = [b for b in g[OURS] if b not in skipped]
    info["skipped"] = skipped

    calls: dict[str, int] = {}
    for side, python in pythons.items():
        benches = [b for g in groups for b in g[side]]
        if benches:
            found = _worker_json(
                python,
                "--calibrate",
                str(p.value_seconds),
                "--scenarios",
                ",".join(benches),
            )
            # Both sides make the same calls: as many as the slower side fits.
            for bench, n in found.items():
                calls[bench] = min(calls.get(bench, n), n)
    info["calls_per_value"] = calls

    values: dict[str, dict[str, list[float]]] = {
        OURS: defaultdict(list),
        LEGACY: defaultdict(list),
    }
    started = time.perf_counter()
    rounds_done = 0
    with tempfile.TemporaryDirectory(prefix="reducer_micro-") as tmp:
        for r in range(p.rounds if groups else 0):
            spent = time.perf_counter() - started
            if r and spent + spent / r > p.round_budget:
                print(f"  time budget reached after {r} rounds", file=sys.stderr)
                break
            # ABBA: who goes first flips every round, so a steady drift in
            # machine speed falls on both sides alike.
            order = (OURS, LEGACY) if r % 2 == 0 else (LEGACY, OURS)
            for gi, group in enumerate(groups):
                for side in order:
                    if not group[side]:
                        continue
                    got = _pyperf_values(
                        pythons[side],
                        info["implementations"][side],
                        group[side],
                        calls,
                        p,
                        Path(tmp) / f"{r}-{gi}-{side}.json",
                    )
                    for bench, vals in got.items():
                        values[side][bench] += vals
            rounds_done = r + 1
            print(f"  round {r + 1}/{p.rounds} done", file=sys.stderr)
    info["rounds_done"] = rounds_done
    info["values"] = {side: dict(v) for side, v in values.items()}

    memory: dict[str, dict[str, list[float]]] = {
        OURS: defaultdict(list),
        LEGACY: defaultdict(list),
    }
    if "memory" in chosen:
        for _ in range(p.memory_reps):
            for kind in ("reducer", "floor"):
                for side in (OURS, LEGACY):
                    got = _worker_json(
                        pythons[side],
                        "--memory",
                        kind,
                        "--keys",
                        str(p.memory_keys),
                    )
                    memory[side][kind].append(got["bytes_per_key"])
        print("  memory done", file=sys.stderr)

    return _summarise(chosen, values, memory, skipped), info


def _summarise(
    chosen: list[str],
    values: dict[str, dict[str, list[float]]],
    memory: dict[str, dict[str, list[float]]],
    skipped: dict[str, str],
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for s in chosen:
        if s not in FLOOR_OF:
            continue
        f = FLOOR_OF[s]
        floor = _med(values[OURS][f] + values[LEGACY][f])
        ours, old = _med(values[OURS][s]), _med(values[LEGACY][s])
        row: dict[str, Any] = {
            "unit": "seconds per call",
            "floor": floor,
            "floor_by_side": {
                OURS: _med(values[OURS][f]),
                LEGACY: _med(values[LEGACY][f]),
            },
            OURS: ours,
            LEGACY: old,
            "samples": {OURS: len(values[OURS][s]), LEGACY: len(values[LEGACY][s])},
        }
        if floor and ours and old:
            row["ours_over_floor"] = ours / floor
            row["legacy_over_floor"] = old / floor
            row["overhead_ratio"] = (ours - floor) / (old - floor)
            if s in ("lead_gather", "join_gather"):
                checks = {"overhead_ratio<=0.4": row["overhead_ratio"] <= GATHER_LIMIT}
            else:
                checks = {
                    "overhead_ratio<=0.3": row["overhead_ratio"] <= OVERHEAD_LIMIT
                }
            if s == "lead_auto":
                checks["ours<=1.15x_floor"] = row["ours_over_floor"] <= LEAD_FLOOR_LIMIT
            row["targets"] = {k: _verdict(v) for k, v in checks.items()}
        results[s] = row
    if "memory" in chosen:
        floor = _med(memory[OURS]["floor"] + memory[LEGACY]["floor"])
        ours = _med(memory[OURS]["reducer"])
        old = _med(memory[LEGACY]["reducer"])
        row = {
            "unit": "bytes per in-flight key",
            "floor": floor,
            OURS: ours,
            LEGACY: old,
        }
        if floor is not None and ours is not None and old is not None:
            row["ours_over_legacy"] = ours / old
            row["overhead_ratio"] = (ours - floor) / (old - floor)
            # The floor alone is over half of 1.5's total, so the total ratio
            # cannot reach the limit; the share above the floor is what a
            # reducer controls, and is judged too.
            row["targets"] = {
                "ours<=0.5x_1.5": _verdict(ours / old <= MEMORY_LIMIT),
                "above_floor_ours<=0.5x_1.5": _verdict(
                    row["overhead_ratio"] <= MEMORY_LIMIT
                ),
            }
        results["memory"] = row
    if "hooks" in chosen:
        base = _med(values[OURS]["lead_auto"])
        hooks: dict[str, Any] = {"unit": "seconds per call", "no_hooks": base}
        for bench, cls in HOOKED.items():
            cost = _med(values[OURS][bench])
            entry: dict[str, Any] = {"class": cls, "cost": cost}
            if bench in skipped:
                entry["skipped"] = skipped[bench]
            elif cost is not None and base:
                entry["overhead"] = cost / base - 1
                limit = HOOK_LIMIT.get(bench)
                if limit is not None:
                    entry["targets"] = {
                        f"overhead<={limit:.0%}": _verdict(entry["overhead"] <= limit)
                    }
            hooks[bench] = entry
        results["hooks"] = hooks
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.reducer_micro", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="a short, rough run")
    parser.add_argument("--json", metavar="PATH", help="write results as JSON")
    parser.add_argument(
        "--only", metavar="SCENARIO,...", help=f"subset of {', '.join(SCENARIOS)}"
    )
    parser.add_argument(
        "--readme",
        action="store_true",
        help="write this run's tables into benchmarks/README.md (its section only)",
    )
    parser.add_argument(
        "--readme-from",
        metavar="JSON",
        help="measure nothing: write the README section from a saved --json file",
    )
    parser.add_argument(
        "--ours-python",
        default=sys.executable,
        help="interpreter for this project's side (default: the running one)",
    )
    args = parser.parse_args(argv)
    if args.readme_from:
        write_readme(json.loads(Path(args.readme_from).read_text()))
        print("wrote the reducer-micro section of benchmarks/README.md")
        return
    chosen = _parse_only(args.only)
    p = QUICK if args.quick else FULL
    command = shlex.join(
        [
            ".venv/bin/python",
            "-m",
            "benchmarks.reducer_micro",
            *(argv if argv is not None else sys.argv[1:]),
        ]
    )
    print(f"reproduce: {command}", flush=True)
    started = time.perf_counter()
    # abspath, not resolve(): a venv's python is a symlink that must stay one.
    results, info = measure(p, chosen, os.path.abspath(args.ours_python))
    elapsed = time.perf_counter() - started
    print(text_table(results))
    print(f"\n{info['implementations'][OURS]}  vs  {info['implementations'][LEGACY]}")
    print(f"took {elapsed:.0f} s; reproduce: {command}")
    doc = {
        "benchmark": "reducer_micro",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
        },
        "command": command,
        "params": {**asdict(p), "quick": args.quick, "scenarios": chosen},
        "info": info,
        "elapsed_seconds": round(elapsed, 1),
        "results": results,
    }
    if args.readme:
        write_readme(doc)
        print("wrote the reducer-micro section of benchmarks/README.md")
    if args.json:
        path = Path(args.json)
        if not path.is_absolute():
            path = Path.cwd() / path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    main()
