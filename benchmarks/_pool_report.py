"""Tables for ``pool_bench``: the terminal report and the README section."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

__all__ = ["markdown_section", "text_report", "write_readme"]

NAMES = {
    "queue": "asyncio.Queue pool (floor)",
    "ours": "ours, get_connection()",
    "ours_manual": "ours, acquire()/release()",
    "acp": "asyncio-connection-pool 1.1.1",
}
START, END = "<!-- pool:start -->", "<!-- pool:end -->"
COLD_NAMES = {
    "ours": "ours, max_connecting=2 (default)",
    "ours_max_connecting": "ours, max_connecting=10 (= max_size)",
    "acp": "asyncio-connection-pool 1.1.1",
}


def _cold_rows(doc: dict[str, Any]) -> list[list[str]]:
    cold = doc["results"].get("cold_start")
    if not cold:
        return []
    rows = [["", "ms to serve all (median)", "range ms", "opened", "attempts at once"]]
    for peer, name in COLD_NAMES.items():
        figures = cold["median"][peer]
        low, high = figures["ms_range"]
        rows.append(
            [
                name,
                f"{figures['ms']:.1f}",
                f"{low:.1f} - {high:.1f}",
                f"{figures['opened']:.0f}",
                f"{figures['most_in_flight']:.0f}",
            ]
        )
    return rows


def _k(rate: float) -> str:
    return f"{rate / 1000:,.0f}k"


def _ratio(value: float | None) -> str:
    return "∞ (a task got none)" if value is None else f"{value:.2f}"


def _verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def _rows(doc: dict[str, Any]) -> list[list[str]]:
    results = doc["results"]
    rows = [["", "uncontended", "contended (100 tasks, 10 conns)", "fairness max/min"]]
    for peer, name in NAMES.items():
        fair = results["fairness"]["median"].get(peer, "n/a")
        rows.append(
            [
                name,
                _k(results["uncontended"]["median"][peer]),
                _k(results["contended"]["median"][peer]),
                "—" if fair == "n/a" else _ratio(fair),
            ]
        )
    rows.append(
        [
            "ours / ACP",
            f"{results['uncontended']['ours_vs_acp']:.2f}x",
            f"{results['contended']['ours_vs_acp']:.2f}x",
            "",
        ]
    )
    rows.append(
        [
            "ours / floor",
            f"{results['uncontended']['ours_vs_floor']:.2f}x",
            f"{results['contended']['ours_vs_floor']:.2f}x",
            "",
        ]
    )
    rows.append(
        [
            "target",
            f"{results['uncontended']['target']}: "
            + _verdict(results["uncontended"]["pass"]),
            f"{results['contended']['target']}: "
            + _verdict(results["contended"]["pass"]),
            f"{results['fairness']['target']}: "
            + _verdict(results["fairness"]["pass"]),
        ]
    )
    return rows


def text_report(doc: dict[str, Any]) -> str:
    """A plain-text table for the terminal."""
    rows = _rows(doc)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        f"pool_bench {doc['date']} on {doc['machine']['platform']}, "
        f"{doc['machine']['cpu_count']} CPUs, Python {doc['machine']['python']}"
        + (" (--quick: rough)" if doc["params"]["quick"] else ""),
        "acquire+release cycles per CPU second (median); fairness: max/min "
        "acquisitions per task",
    ]
    for row in rows:
        lines.append(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
        )
    spread = doc["results"]["fairness"]["spread"]
    lines.append(
        "fairness extremes: "
        + ", ".join(f"{p} max {s['max']} / min {s['min']}" for p, s in spread.items())
    )
    cold = _cold_rows(doc)
    if cold:
        lines.append("cold start: 100 callers, empty pool of 10, 5 ms connect")
        widths = [max(len(row[i]) for row in cold) for i in range(len(cold[0]))]
        for row in cold:
            lines.append(
                "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
            )
    return "\n".join(lines)


def markdown_section(doc: dict[str, Any]) -> str:
    """The ``pool`` section of benchmarks/README.md."""
    rows = _rows(doc)
    table = ["| " + " | ".join(rows[0]) + " |", "|---|--:|--:|--:|"]
    table += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    params = doc["params"]
    machine = doc["machine"]
    spread = doc["results"]["fairness"]["spread"]
    return "\n".join(
        [
            START,
            "## Connection pool (`pool_bench`)",
            "",
            "Acquire+release cycles per CPU second (`time.process_time` of the",
            "benchmark process, so that other work on a shared machine does not",
            "count) of `async_reduce.pool.ConnectionPool`",
            "against asyncio-connection-pool 1.1.1 (ACP) and a bare `asyncio.Queue`",
            "pool (the floor: no health check, no limits, no fairness), in the same",
            "run, all lending the same in-memory object:",
            "",
            "- *uncontended*: one task, an idle connection always available;",
            "- *contended*: 100 tasks on 10 connections, each holding its",
            "  connection across one `await asyncio.sleep(0)`;",
            "- *fairness*: 10 tasks looping acquire / `sleep(0)` / release on a",
            f"  pool of one connection until {params['fairness']:,} acquisitions;",
            "  max/min acquisitions per task.",
            "",
            f"Every figure is the median of {params['repeats']} repeats (fairness:",
            f"of {max(3, params['repeats'] // 3)}), the peers alternating from one "
            "repeat to the next.",
            "ACP and the floor let a releasing task take the connection back at",
            "once, ahead of the tasks already waiting: that makes them fast under",
            "contention and unfair; this pool hands the connection to the first",
            "waiter, and still matches the floor. The machine may be shared with",
            "other work while this runs: absolute rates move from run to run,",
            "the ratios within one run much less.",
            "",
            "Reproduce (writes this section too):",
            "",
            "```sh",
            ".venv/bin/python -m benchmarks.pool_bench --json "
            "benchmarks/results/pool_bench.json --readme",
            "```",
            "",
            f"`--quick` for a rough figure in about 10 s. This run took "
            f"{params.get('seconds', '?')} s.",
            "",
            f"### Results ({doc['date'][:10]})",
            "",
            f"{machine['platform']}, {machine['cpu_count']} CPUs, Python "
            f"{machine['python']}; this project at {params['project']}, "
            f"asyncio-connection-pool {params['asyncio_connection_pool']}"
            + (" (`--quick`: rough)." if params["quick"] else "."),
            "",
            *table,
            "",
            "Fairness extremes over all runs (acquisitions of the luckiest and the",
            "unluckiest task):",
            "",
            *(f"- {NAMES[p]}: {s['max']:,} / {s['min']:,}" for p, s in spread.items()),
            *_cold_section(doc),
            END,
        ]
    )


def _cold_section(doc: dict[str, Any]) -> list[str]:
    rows = _cold_rows(doc)
    if not rows:
        return []
    table = ["| " + " | ".join(rows[0]) + " |", "|---|--:|--:|--:|--:|"]
    table += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return [
        "",
        "### Cold start: `max_connecting`",
        "",
        "100 concurrent callers on an empty pool of `max_size=10`, against a",
        "backend that takes 5 ms to connect; each caller holds its connection",
        "for a 1 ms query (`asyncio.sleep`). Milliseconds until the last caller",
        "was served, median of the repeats (and their range), connections",
        "opened, and the most connection attempts in flight at once. The",
        "default `max_connecting=2` opens the 10 connections two at a time",
        "(about 5 rounds of 5 ms) while the first ones already serve the",
        "crowd; `max_connecting=10` opens them all in one round, as ACP does.",
        "The limit costs that much at a cold start and spares a backend",
        "that is restarting, or down, a storm of connection attempts.",
        "",
        *table,
    ]


def write_readme(path: Path, section: str) -> None:
    """Replace the text between the pool markers of ``path``."""
    text = path.read_text()
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{path}: markers {START} ... {END} not found")
    path.write_text(pattern.sub(lambda _: section, text, count=1))
