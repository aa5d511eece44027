"""Tables of ``benchmarks.reducer_micro`` results: terminal text and README markdown.

The README section is generated from a results document (the JSON the
benchmark writes), never typed by hand; only the text between the
``reducer-micro`` markers of ``benchmarks/README.md`` is replaced.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

OURS, LEGACY = "ours", "1.5"
FLOOR_OF = {
    "lead_auto": "floor_lead",
    "lead_ident": "floor_lead",
    "join_100": "floor_join",
    "join_100_decorator": "floor_join",
    "lead_gather": "floor_lead_gather",
    "join_gather": "floor_join",
}
"""Timed scenarios and the floor benchmark each is compared with."""
HOOKED = {
    "hooks_base": "BaseHooks",
    "hooks_statistics": "StatisticsOverallHooks",
    "hooks_prometheus": "PrometheusHooks",
}
"""Hook benchmarks (lead_auto with these hooks, this project only).

``BaseHooks`` (every method a no-op) has no target: it shows what the
reducer's hook dispatch costs by itself.
"""

README = Path(__file__).resolve().parent / "README.md"
START, END = "<!-- reducer-micro:start -->", "<!-- reducer-micro:end -->"


def fmt_ns(seconds: float | None) -> str:
    """Seconds as whole nanoseconds with thousands separators."""
    return "n/a" if seconds is None else f"{seconds * 1e9:,.0f}"


def fmt_x(x: float | None, digits: int = 2) -> str:
    """A ratio with ``digits`` decimals."""
    return "n/a" if x is None else f"{x:.{digits}f}"


def fmt_bytes(x: float | None) -> str:
    """Whole bytes with thousands separators."""
    return "n/a" if x is None else f"{x:,.0f}"


def _targets(entry: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in entry.get("targets", {}).items())


def text_table(results: dict[str, Any]) -> str:
    """The terminal report of one run's results."""
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
            lines.append(
                f"{s:<20} {fmt_ns(r['floor']):>8} {fmt_ns(r[OURS]):>8} "
                f"{fmt_ns(r[LEGACY]):>8} {fmt_x(r.get('ours_over_floor')):>8} "
                f"{fmt_x(r.get('legacy_over_floor')):>8} "
                f"{fmt_x(r.get('overhead_ratio'), 3):>9}  {_targets(r)}"
            )
    if "memory" in results:
        m = results["memory"]
        verdicts = m.get("targets", {})
        lines += [
            "",
            "bytes per in-flight key (medians, tracemalloc)",
            f"  floor {fmt_bytes(m['floor'])}  ours {fmt_bytes(m[OURS])}  "
            f"1.5 {fmt_bytes(m[LEGACY])}",
            f"  total:       ours/1.5 {fmt_x(m.get('ours_over_legacy')):>5}  "
            f"target <= 0.5: {verdicts.get('ours<=0.5x_1.5', 'n/a')}",
            f"  above floor: ours/1.5 {fmt_x(m.get('overhead_ratio'), 3):>5}  "
            f"target <= 0.5: {verdicts.get('above_floor_ours<=0.5x_1.5', 'n/a')}",
        ]
    if "hooks" in results:
        h = results["hooks"]
        lines += ["", "hooks on lead_auto, ours only (ns per call, medians)"]
        lines.append(f"  {'no hooks':<24} {fmt_ns(h['no_hooks']):>8}")
        for bench in HOOKED:
            e = h[bench]
            if "skipped" in e:
                lines.append(f"  {e['class']:<24} {'n/a':>8}  ({e['skipped']})")
                continue
            ovh = e.get("overhead")
            pct = "n/a" if ovh is None else f"{ovh:+.1%}"
            row = f"  {e['class']:<24} {fmt_ns(e['cost']):>8}  {pct:>7}  {_targets(e)}"
            lines.append(row.rstrip())
    return "\n".join(lines)


def _us(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1e6:.2f}"


def _md_verdicts(entry: dict[str, Any]) -> str:
    return "; ".join(f"{v} ({k})" for k, v in entry.get("targets", {}).items())


def _para(text: str) -> str:
    """Wrap prose at 80 columns without breaking inside a `code span`."""
    parts = text.split("`")
    for i in range(1, len(parts), 2):
        parts[i] = parts[i].replace(" ", "\0")
    wrapped = textwrap.fill(
        "`".join(parts), 80, break_long_words=False, break_on_hyphens=False
    )
    return wrapped.replace("\0", " ")


def markdown(doc: dict[str, Any]) -> str:
    """The README section (without markers) for one results document."""
    results, params, info = doc["results"], doc["params"], doc["info"]
    machine = doc["machine"]
    out: list[str] = [
        "## Reducer micro-benchmark (`reducer_micro`)",
        "",
        _para(
            "Per-call cost and per-key memory of this reducer against async-reduce "
            "1.5 from PyPI. The two share an import name, so 1.5 runs in its own "
            "virtual environment (`.venv-legacy`, made by `benchmarks/_legacy.py`); "
            "both run the same pyperf script (`benchmarks/_micro_worker.py`), in "
            "rounds that alternate between the two interpreters so that machine "
            "noise falls on both. Every figure is the median of all values of all "
            "rounds. The work coroutine suspends once (`await asyncio.sleep(0)`), "
            "as real I/O does."
        ),
        "",
        "| scenario | what one call is | floor (same work, no reducer) |",
        "|---|---|---|",
        "| `lead_auto` | `await reducer(work(i))`, a new key each call | "
        "`await asyncio.create_task(work(i))` |",
        "| `lead_ident` | `await reducer(work(i), ident=i)` (int idents: 1.5 "
        "annotates `str` but takes any hashable) | as above |",
        "| `join_100` | one of 100 gathered caller coroutines doing "
        "`await reducer(work(k))` on one key (one leads, 99 join) | one "
        "`create_task(work(k))` awaited by 100 gathered coroutines |",
        "| `join_100_decorator` | the same through `@async_reduceable()` | as above |",
        "| `lead_gather` | 1.x's pattern `await gather(*[reducer(work(k)) for k "
        "in keys])`, 100 new keys per gather: a task drives each object the "
        "reducer returns | 100 gathered coroutines, each awaiting its own "
        "`create_task(work(k))` |",
        "| `join_gather` | the same on one key: "
        "`await gather(*[reducer(work(k)) for _ in range(100)])` (one leads, "
        "99 join) | as for `join_100` |",
        "| memory | tracemalloc bytes per key while 10,000 callers with "
        "distinct keys are suspended in the work | 10,000 callers each awaiting "
        "its own `create_task`'d work |",
        "| hooks | `lead_auto`, this project only, with "
        "`StatisticsOverallHooks()` or `PrometheusHooks(registry=<fresh "
        "CollectorRegistry>)`; no-op `BaseHooks()` shows the cost of hook "
        "dispatch alone | `lead_auto` without hooks |",
        "",
        _para(
            "Floors run in both interpreters and are pooled. *Overhead ours vs "
            "1.5* is `(ours - floor) / (1.5 - floor)`: the share of 1.5's cost "
            "above the floor that this reducer still pays."
        ),
        "",
        "Reproduce (writes this section too):",
        "",
        "```sh",
        ".venv/bin/python -m benchmarks.reducer_micro "
        "--json benchmarks/results/reducer_micro.json --readme",
        "```",
        "",
        _para(
            "`--quick` for a rough figure in about 15 s, `--only "
            "lead_auto,join_100` for a subset. A full run takes about 2.5 "
            "minutes on 2 cores."
        ),
        "",
        f"### Results ({doc['date'][:10]})",
        "",
        _para(
            f"{machine['platform']}, {machine['cpu_count']} CPUs, Python "
            f"{machine['python']}; this project at {info.get('commit', '?')}, "
            f"async-reduce {info.get('legacy_version', '?')}. "
            f"{info.get('rounds_done', params['rounds'])} rounds of "
            f"{params['processes']} pyperf process per scenario and side, "
            f"{params['warmups']} warm-up and {params['values']} values of about "
            f"{params['value_seconds']} s each per process"
            + (" (`--quick`: rough)." if params.get("quick") else ".")
        ),
        "",
    ]
    timed = [s for s in FLOOR_OF if s in results]
    if timed:
        out += [
            "| µs per call | floor | ours | 1.5 | ours / floor | 1.5 / floor "
            "| overhead ours vs 1.5 | targets |",
            "|---|--:|--:|--:|--:|--:|--:|---|",
        ]
        for s in timed:
            r = results[s]
            out.append(
                f"| `{s}` | {_us(r['floor'])} | {_us(r[OURS])} | {_us(r[LEGACY])} "
                f"| {fmt_x(r.get('ours_over_floor'))} "
                f"| {fmt_x(r.get('legacy_over_floor'))} "
                f"| {fmt_x(r.get('overhead_ratio'), 3)} | {_md_verdicts(r)} |"
            )
        out.append("")
    if "memory" in results:
        m = results["memory"]
        out += [
            "| bytes per in-flight key | floor | ours | 1.5 | ours / 1.5 "
            "| above floor, ours vs 1.5 | targets |",
            "|---|--:|--:|--:|--:|--:|---|",
            f"| memory | {fmt_bytes(m['floor'])} | {fmt_bytes(m[OURS])} "
            f"| {fmt_bytes(m[LEGACY])} | {fmt_x(m.get('ours_over_legacy'))} "
            f"| {fmt_x(m.get('overhead_ratio'), 3)} | {_md_verdicts(m)} |",
            "",
            _para(
                "The floor alone (a caller task plus a work task) is more than "
                "half of 1.5's total, so no design that keeps both can meet the "
                "total target; the share above the floor is judged as well."
            ),
            "",
        ]
    if "hooks" in results:
        h = results["hooks"]
        out += [
            "| hooks on `lead_auto` | µs per call | above no hooks | target |",
            "|---|--:|--:|---|",
            f"| none | {_us(h['no_hooks'])} | | |",
        ]
        for bench in HOOKED:
            e = h[bench]
            ovh = e.get("overhead")
            pct = "n/a" if ovh is None else f"{ovh:+.1%}"
            out.append(
                f"| `{e['class']}` | {_us(e.get('cost'))} | {pct} "
                f"| {_md_verdicts(e) or ('n/a' if 'skipped' in e else '')} |"
            )
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def write_readme(doc: dict[str, Any], readme: Path = README) -> None:
    """Replace the reducer-micro section of ``readme`` with ``doc``'s tables."""
    text = readme.read_text()
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{readme}: no {START} ... {END} markers")
    section = f"{START}\n{markdown(doc)}{END}"
    readme.write_text(text[:start] + section + text[end + len(END) :])
