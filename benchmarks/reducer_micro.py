"""Per-call cost and per-key memory of the reducer, against async-reduce 1.5.

Run::

    .venv/bin/python -m benchmarks.reducer_micro [--quick] [--json PATH]
        [--only SCENARIO,...]

Both sides run the same pyperf script (``benchmarks/_micro_worker.py``): this
project from ``.venv``, async-reduce 1.5 from ``.venv-legacy`` (same import
name, so its own interpreter).  The two interpreters take turns, round after
round, so machine noise falls on both; all figures are medians over every
value of every round.  Floors (the same work without any reducer) run in both
interpreters and are pooled.

Scenarios (``--only``): lead_auto, lead_ident, join_100, join_100_decorator,
memory, hooks.  The work coroutine suspends once (``await asyncio.sleep(0)``).
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

WORKER = Path(__file__).resolve().parent / "_micro_worker.py"
OURS, LEGACY = "ours", "1.5"

SCENARIOS = (
    "lead_auto",
    "lead_ident",
    "join_100",
    "join_100_decorator",
    "memory",
    "hooks",
)
FLOOR_OF = {
    "lead_auto": "floor_lead",
    "lead_ident": "floor_lead",
    "join_100": "floor_join",
    "join_100_decorator": "floor_join",
}
HOOKED = {
    "hooks_statistics": "StatisticsOverallHooks",
    "hooks_prometheus": "PrometheusHooks",
}
HOOK_LIMIT = {"hooks_statistics": 0.15, "hooks_prometheus": 0.50}
LEAD_FLOOR_LIMIT = 1.15
OVERHEAD_LIMIT = 0.3
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
    rounds=10,
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


def _plan(chosen: list[str]) -> tuple[list[str], list[str]]:
    """pyperf benchmarks to run in (ours, 1.5)."""
    shared: list[str] = []
    for s in chosen:
        if s in FLOOR_OF:
            shared += [s, FLOOR_OF[s]]
    ours = list(shared)
    if "hooks" in chosen:
        ours += ["lead_auto", *HOOKED]
    order = [*FLOOR_OF, "floor_lead", "floor_join", *HOOKED]
    return (
        sorted(set(ours), key=order.index),
        sorted(set(shared), key=order.index),
    )


def _med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _fmt_ns(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1e9:,.0f}"


def _fmt_x(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def measure(
    p: Params, chosen: list[str], ours_python: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run everything; return (results, info) ready for JSON."""
    legacy = legacy_python()
    pythons = {OURS: ours_python, LEGACY: legacy}
    ours_benches, legacy_benches = _plan(chosen)
    skipped: dict[str, str] = {}
    info: dict[str, Any] = {
        "implementations": {
            side: _worker_json(py, "--probe")["implementation"]
            for side, py in pythons.items()
        },
        "legacy_version": legacy_version(),
    }
    hooked = [b for b in ours_benches if b in HOOKED]
    if hooked:
        probe = _worker_json(ours_python, "--probe", "--scenarios", ",".join(hooked))
        for bench in hooked:
            if bench in probe:
                skipped[bench] = probe[bench]
        ours_benches = [b for b in ours_benches if b not in skipped]
    info["skipped"] = skipped

    plan = {OURS: ours_benches, LEGACY: legacy_benches}
    calls: dict[str, int] = {}
    for side, benches in plan.items():
        if benches:
            found = _worker_json(
                pythons[side],
                "--calibrate",
                str(p.value_seconds),
                "--scenarios",
                ",".join(benches),
            )
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
        for r in range(p.rounds if ours_benches or legacy_benches else 0):
            spent = time.perf_counter() - started
            if r and spent + spent / r > p.round_budget:
                print(f"  time budget reached after {r} rounds", file=sys.stderr)
                break
            for side in (OURS, LEGACY):
                if not plan[side]:
                    continue
                out = Path(tmp) / f"{side}-{r}.json"
                got = _pyperf_values(
                    pythons[side],
                    info["implementations"][side],
                    plan[side],
                    calls,
                    p,
                    out,
                )
                for bench, vals in got.items():
                    values[side][bench] += vals
            rounds_done = r + 1
            print(f"  round {r + 1}/{p.rounds} done", file=sys.stderr)
    info["rounds_done"] = rounds_done

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
            checks = {"overhead_ratio<=0.3": row["overhead_ratio"] <= OVERHEAD_LIMIT}
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
                limit = HOOK_LIMIT[bench]
                entry["targets"] = {
                    f"overhead<={limit:.0%}": _verdict(entry["overhead"] <= limit)
                }
            hooks[bench] = entry
        results["hooks"] = hooks
    return results


def render(results: dict[str, Any]) -> str:
    """The human table."""
    lines: list[str] = []
    timed = [s for s in FLOOR_OF if s in results]
    if timed:
        head = (
            f"{'scenario':<20} {'floor':>8} {'ours':>8} {'1.5':>8} "
            f"{'ours/fl':>8} {'1.5/fl':>8} {'ovh o/1.5':>9}  targets"
        )
        lines += ["ns per call (medians)", head, "-" * len(head)]
        for s in timed:
            r = results[s]
            targets = ", ".join(f"{k} {v}" for k, v in r.get("targets", {}).items())
            lines.append(
                f"{s:<20} {_fmt_ns(r['floor']):>8} {_fmt_ns(r[OURS]):>8} "
                f"{_fmt_ns(r[LEGACY]):>8} {_fmt_x(r.get('ours_over_floor')):>8} "
                f"{_fmt_x(r.get('legacy_over_floor')):>8} "
                f"{_fmt_x(r.get('overhead_ratio')):>9}  {targets}"
            )
    if "memory" in results:
        m = results["memory"]

        def b(x: float | None) -> str:
            return "n/a" if x is None else f"{x:,.0f}"

        verdicts = m.get("targets", {})
        lines += [
            "",
            "bytes per in-flight key (medians, tracemalloc, 10,000 keys)",
            f"  floor {b(m['floor'])}  ours {b(m[OURS])}  1.5 {b(m[LEGACY])}",
            f"  total:       ours/1.5 {_fmt_x(m.get('ours_over_legacy')):>5}  "
            f"target <= 0.5: {verdicts.get('ours<=0.5x_1.5', 'n/a')}",
            f"  above floor: ours/1.5 {_fmt_x(m.get('overhead_ratio')):>5}  "
            f"target <= 0.5: {verdicts.get('above_floor_ours<=0.5x_1.5', 'n/a')}",
        ]
    if "hooks" in results:
        h = results["hooks"]
        lines += ["", "hooks on lead_auto, ours only (ns per call, medians)"]
        lines.append(f"  no hooks                 {_fmt_ns(h['no_hooks']):>8}")
        for bench in HOOKED:
            e = h[bench]
            if "skipped" in e:
                lines.append(
                    f"  {e['class']:<24} {'n/a':>8}  (skipped: {e['skipped']})"
                )
                continue
            ovh = e.get("overhead")
            targets = ", ".join(f"{k} {v}" for k, v in e.get("targets", {}).items())
            pct = "n/a" if ovh is None else f"{ovh:+.1%}"
            lines.append(
                f"  {e['class']:<24} {_fmt_ns(e['cost']):>8}  {pct:>7}  {targets}"
            )
    return "\n".join(lines)


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
        "--ours-python",
        default=sys.executable,
        help="interpreter for this project's side (default: the running one)",
    )
    args = parser.parse_args(argv)
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
    print(render(results))
    print(f"\n{info['implementations'][OURS]}  vs  {info['implementations'][LEGACY]}")
    print(f"took {elapsed:.0f} s; reproduce: {command}")
    if args.json:
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
        path = Path(args.json)
        if not path.is_absolute():
            path = Path.cwd() / path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    main()
