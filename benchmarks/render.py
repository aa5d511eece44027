"""Render benchmark results (JSON) into PNG plots and Markdown tables.

``python -m benchmarks.render [--results DIR] [--plots DIR] [--no-readme]``
reads ``e2e.json`` from the results directory and writes:

* ``throughput.png``, ``inner_calls.png``, ``p99.png``, ``cpu.png`` (each
  against concurrency) and ``zipf.png`` (inner calls per request against the
  Zipf exponent) into the plots directory;
* unless ``--no-readme``: the e2e section of ``benchmarks/README.md`` (between
  its ``e2e`` markers) and the Performance table of ``README.md`` (between its
  ``perf-table`` markers).  Nothing outside the markers is touched; a file
  without the markers is left alone and reported.

Figures are never typed by hand: rerun this after every benchmark run.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib import ticker

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
PLOTS = HERE / "plots"
BENCH_README = HERE / "README.md"
ROOT_README = ROOT / "README.md"

LABELS = {
    "none": "no reducer",
    "1.5": "async-reduce 1.5",
    "auto": "async_reduce(coro) (automatic key)",
    "decorator": "@async_reduceable",
    "stats": "with StatisticsOverallHooks",
    "pool": "pool.run (ConnectionPool)",
}
STYLE = {
    "none": {"color": "#7f7f7f", "marker": "o", "linestyle": "--"},
    "1.5": {"color": "#d62728", "marker": "s"},
    "auto": {"color": "#1f77b4", "marker": "^", "linewidth": 2.2},
    "decorator": {"color": "#2ca02c", "marker": "v"},
    "stats": {"color": "#9467bd", "marker": "D"},
    "pool": {"color": "#ff7f0e", "marker": "P"},
}
PLOT_FILES = ("throughput.png", "inner_calls.png", "p99.png", "cpu.png", "zipf.png")


def _series(
    rows: list[dict[str, Any]], x: str, y: str
) -> dict[str, tuple[list[float], list[float]]]:
    out: dict[str, tuple[list[float], list[float]]] = {}
    for row in sorted(rows, key=lambda r: r[x]):
        if row.get(y) is None:
            continue
        xs, ys = out.setdefault(row["variant"], ([], []))
        xs.append(row[x])
        ys.append(row[y])
    return {v: out[v] for v in LABELS if v in out}


def _subtitle(doc: dict[str, Any], *, sweep: bool = False) -> str:
    p = doc["params"]
    traffic = (
        f"concurrency {p['sweep_concurrency']}" if sweep else f"Zipf s={p['zipf_s']:g}"
    )
    return (
        f"{traffic}, {p['keys']} keys; inner service {p['latency'] * 1000:g} ms, "
        f"{p['capacity']} at a time; {doc['machine']['cpu_count']} cores, "
        f"{p['loop']} loop"
    )


def _plot(
    doc: dict[str, Any],
    path: Path,
    *,
    rows: list[dict[str, Any]],
    x: str,
    y: str,
    scale: float,
    title: str,
    ylabel: str,
    xlabel: str,
    logx: bool,
    logy: bool = False,
    sweep: bool = False,
) -> None:
    fig, ax = plt.subplots(figsize=(7.0, 4.4), dpi=110)
    for variant, (xs, ys) in _series(rows, x, y).items():
        ax.plot(
            xs,
            [v * scale for v in ys],
            label=LABELS[variant],
            markersize=6,
            **STYLE[variant],  # type: ignore[arg-type]
        )
    if logx:
        ax.set_xscale("log")
        ticks = sorted({r[x] for r in rows})
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:g}" for t in ticks])
        ax.minorticks_off()
    if logy:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_locator(ticker.NullLocator())
    else:
        ax.set_ylim(bottom=0)
    ax.set_title(f"{title}\n", fontsize=12)
    ax.text(
        0.5,
        1.015,
        _subtitle(doc, sweep=sweep),
        transform=ax.transAxes,
        ha="center",
        fontsize=8.5,
        color="#555555",
    )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.35)
    ax.legend(fontsize=8, framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_e2e(doc: dict[str, Any], plots: Path) -> list[Path]:
    """Write the e2e plots; return their paths."""
    plots.mkdir(parents=True, exist_ok=True)
    grid = doc["results"]["grid"]
    common: dict[str, Any] = {
        "x": "concurrency",
        "xlabel": "concurrent clients",
        "logx": True,
    }
    specs: list[tuple[str, dict[str, Any]]] = [
        (
            "throughput.png",
            {
                "y": "rps",
                "scale": 1.0,
                "title": "Throughput of the front service",
                "ylabel": "requests per second",
            },
        ),
        (
            "inner_calls.png",
            {
                "y": "inner_calls_per_request",
                "scale": 1.0,
                "title": "Inner-service calls per request (lower is better)",
                "ylabel": "inner calls / request",
            },
        ),
        (
            "p99.png",
            {
                "y": "p99",
                "scale": 1000.0,
                "title": "p99 latency seen by clients (lower is better)",
                "ylabel": "p99 latency, ms (log scale)",
                "logy": True,
            },
        ),
        (
            "cpu.png",
            {
                "y": "cpu_per_1000",
                "scale": 1.0,
                "title": "Front-service CPU per 1,000 requests (lower is better)",
                "ylabel": "CPU seconds / 1,000 requests",
            },
        ),
    ]
    written = []
    for name, spec in specs:
        _plot(doc, plots / name, rows=grid, **common, **spec)
        written.append(plots / name)
    sweep = doc["results"]["zipf_sweep"]
    if sweep:
        _plot(
            doc,
            plots / "zipf.png",
            rows=sweep,
            x="zipf_s",
            y="inner_calls_per_request",
            scale=1.0,
            title="Inner-service calls per request vs key skew (lower is better)",
            ylabel="inner calls / request",
            xlabel="Zipf exponent s (higher = hotter keys)",
            logx=False,
            sweep=True,
        )
        written.append(plots / "zipf.png")
    return written


# --- tables -------------------------------------------------------------------


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:,.0f}"


def _num(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def _grid_table(doc: dict[str, Any], concurrency: int) -> list[str]:
    rows = {
        r["variant"]: r
        for r in doc["results"]["grid"]
        if r["concurrency"] == concurrency
    }
    legacy = rows.get("1.5")
    lines = [
        "| variant | req/s | p50 ms | p99 ms | max ms | inner calls / request "
        "| front CPU s / 1k req | front peak RSS MB |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for variant, info in doc["variants"].items():
        row = rows.get(variant)
        if row is None:
            if not info["available"]:
                lines.append(f"| {LABELS[variant]} | n/a" + " | n/a" * 7 + " |")
            continue
        rps = _num(row["rps"], ",.0f")
        if legacy and variant not in ("1.5", "none") and legacy["rps"]:
            rps += f" ({row['rps'] / legacy['rps']:.2f}x)"
        lines.append(
            f"| {LABELS[variant]} | {rps} | {_ms(row['p50'])} | {_ms(row['p99'])} "
            f"| {_ms(row['max'])} | {_num(row['inner_calls_per_request'], '.3f')} "
            f"| {_num(row['cpu_per_1000'], '.3f')} | {row['peak_rss'] / 2**20:.0f} |"
        )
    return lines


def _spread_table(doc: dict[str, Any], concurrency: int) -> list[str]:
    """Median and (min - max) over rounds, to judge the noise of the ratios."""
    rows = [
        r
        for r in doc["results"]["grid"]
        if r["concurrency"] == concurrency and r.get("rps_range")
    ]
    if not rows:
        return []
    fields = (
        ("rps", "req/s", ",.0f"),
        ("inner_calls_per_request", "inner calls / request", ".3f"),
        ("cpu_per_1000", "front CPU s / 1k req", ".3f"),
    )
    lines = [
        "| variant | " + " | ".join(title for _, title, _ in fields) + " |",
        "|---|" + "--:|" * len(fields),
    ]
    order = {v: i for i, v in enumerate(LABELS)}
    for row in sorted(rows, key=lambda r: order[r["variant"]]):
        cells = []
        for field, _, fmt in fields:
            low, high = row[f"{field}_range"]
            cells.append(
                f"{format(row[field], fmt)} ({format(low, fmt)} - {format(high, fmt)})"
            )
        lines.append(f"| {LABELS[row['variant']]} | " + " | ".join(cells) + " |")
    return lines


def _sweep_table(doc: dict[str, Any]) -> list[str]:
    sweep = doc["results"]["zipf_sweep"]
    if not sweep:
        return []
    exponents = sorted({r["zipf_s"] for r in sweep})
    variants = [v for v in LABELS if any(r["variant"] == v for r in sweep)]
    cell = {(r["variant"], r["zipf_s"]): r for r in sweep}
    lines = [
        "| Zipf s | " + " | ".join(LABELS[v] for v in variants) + " |",
        "|--:|" + "--:|" * len(variants),
    ]
    for s in exponents:
        values = [
            _num(cell[(v, s)]["inner_calls_per_request"], ".3f")
            if (v, s) in cell
            else "n/a"
            for v in variants
        ]
        lines.append(f"| {s:g} | " + " | ".join(values) + " |")
    return lines


def _verdict(met: bool | None) -> str:
    return "n/a" if met is None else ("met" if met else "not met")


def _targets(doc: dict[str, Any]) -> list[str]:
    t = doc["results"]["targets"]
    lines = [
        f"Targets at concurrency {t['concurrency']} (this project = automatic key):"
    ]
    lines.append("")
    calls = t.get("inner_calls_per_request")
    if calls:
        lines.append(
            f"- inner calls per request no higher than 1.5's: "
            f"{calls['ours']:.3f} vs {calls['1.5']:.3f}, {_verdict(calls['met'])}"
        )
    tp = t.get("throughput")
    if tp and tp["ratio"] is not None:
        lines.append(
            f"- throughput at least 1.5's: {tp['ratio']:.2f}x, {_verdict(tp['met'])}"
        )
    cpu = t.get("cpu_per_request")
    if cpu and cpu["ratio"] is not None:
        lines.append(
            f"- front CPU per request lower than 1.5's: {cpu['ratio']:.2f}x, "
            f"{_verdict(cpu['met'])}"
        )
    p99 = t.get("p99_vs_no_reducer")
    if p99 and p99["ratio"] is not None:
        lines.append(
            f"- p99 below no reducer's: {p99['ours_ms']:,.0f} ms vs "
            f"{p99['none_ms']:,.0f} ms, {p99['ratio']:.1f}x lower"
        )
    return lines


def _provenance(doc: dict[str, Any]) -> str:
    m, v = doc["machine"], doc["versions"]
    legacy = v.get("async-reduce (1.5 venv)")
    parts = [
        f"Measured {doc['date'][:10]} on {m['cpu_count']} cores, "
        f"{m['implementation']} {m['python']}, aiohttp {v.get('aiohttp')}",
        f"this project {v.get('ours')}",
    ]
    if legacy:
        parts.append(f"async-reduce {legacy}")
    return ", ".join(parts) + "."


def perf_table(doc: dict[str, Any], image_dir: str) -> str:
    """The README's Performance block: headline table and plots."""
    p = doc["params"]
    top = max(p["concurrency"])
    lines = [
        f"An aiohttp service whose handler fetches from an inner service "
        f"({p['latency'] * 1000:g} ms a call, {p['capacity']} calls at a time), "
        f"{top:,} concurrent clients, keys drawn from a Zipf distribution "
        f"(s = {p['zipf_s']:g}) over {p['keys']:,} keys. Medians of "
        f"{p['rounds']} rounds; generated by `make bench` from "
        f"`benchmarks/results/e2e.json`.",
        "",
        *_grid_table(doc, top),
        "",
        _provenance(doc),
        "",
        f"![Throughput]({image_dir}/throughput.png) "
        f"![Inner calls per request]({image_dir}/inner_calls.png)",
        f"![p99 latency]({image_dir}/p99.png) "
        f"![Inner calls per request vs Zipf exponent]({image_dir}/zipf.png)",
    ]
    return "\n".join(lines)


def e2e_section(doc: dict[str, Any]) -> str:
    """The e2e section of ``benchmarks/README.md``."""
    p = doc["params"]
    lines = [
        "## End-to-end: an aiohttp service behind the reducer",
        "",
        "Reproduce: `make bench` (everything) or "
        "`.venv/bin/python -m benchmarks.e2e --json benchmarks/results/e2e.json` "
        "then `.venv/bin/python -m benchmarks.render`.",
        "",
        f"Setup: a front service (aiohttp server, one process per variant) "
        f"answers `GET /item/{{key}}` by fetching the item from an inner "
        f"service (aiohttp server, {p['latency'] * 1000:g} ms a request, "
        f"{p['capacity']} requests at a time, like a database behind a "
        f"connection limit; the front's client holds {p['capacity']} "
        f"connections to it). A load generator in its own process keeps a "
        f"fixed number of requests in flight, with keys drawn from a Zipf "
        f"distribution (s = {p['zipf_s']:g}, {p['keys']:,} keys, seed "
        f"{p['seed']}; the hottest key is "
        f"{p['top_key_share'] * 100:.0f}% of requests). Each point sends at "
        f"most {p['requests']:,} requests and starts none after "
        f"{p['time_limit']:g} s, after a warm-up that opens the connections. "
        f"Variants are measured in turn, in a rotated order each round; "
        f"figures are medians of {p['rounds']} rounds. CPU and peak RSS are "
        f"the front process's alone (psutil, `/proc`). All processes share "
        f"the machine's cores, so throughput is the whole system's.",
        "",
        _provenance(doc),
        "",
    ]
    for concurrency in sorted(p["concurrency"]):
        lines += [f"### {concurrency:,} concurrent clients", ""]
        lines += _grid_table(doc, concurrency)
        lines.append("")
    top = max(p["concurrency"])
    spread = _spread_table(doc, top)
    if spread:
        lines += [
            f"### Round-to-round spread at {top:,} concurrent clients",
            "",
            f"Median (lowest - highest) over the {p['rounds']} rounds: differences "
            f"smaller than the spread are noise of this shared machine.",
            "",
            *spread,
            "",
        ]
    lines += [
        f"### Inner calls per request against the Zipf exponent "
        f"({p['sweep_concurrency']:,} concurrent clients)",
        "",
        f"Medians of {p['sweep_rounds']} rounds of {p['sweep_time_limit']:g} s.",
        "",
        *_sweep_table(doc),
        "",
        *_targets(doc),
        "",
    ]
    notes = [
        f"- {LABELS[v]}: {info['note']}"
        for v, info in doc["variants"].items()
        if info["note"]
    ]
    if notes:
        lines += ["Not measured:", "", *notes, ""]
    for name in PLOT_FILES:
        lines.append(f"![{name[:-4]}](plots/{name})")
    return "\n".join(lines)


def replace_between(path: Path, marker: str, body: str) -> bool:
    """Replace the text between ``<!-- marker:start/end -->``; False if absent."""
    if not path.exists():
        return False
    text = path.read_text()
    pattern = re.compile(
        rf"(<!-- {re.escape(marker)}:start -->\n).*?(<!-- {re.escape(marker)}:end -->)",
        re.DOTALL,
    )
    if not pattern.search(text):
        return False
    new = pattern.sub(lambda m: m.group(1) + body.rstrip() + "\n" + m.group(2), text)
    if new != text:
        path.write_text(new)
    return True


def render(results: Path, plots: Path, *, update_readmes: bool) -> list[Path]:
    """Render everything renderable from ``results``; return what was written."""
    written: list[Path] = []
    e2e = results / "e2e.json"
    if not e2e.exists():
        return written
    doc = json.loads(e2e.read_text())
    written += plot_e2e(doc, plots)
    if update_readmes:
        if replace_between(BENCH_README, "e2e", e2e_section(doc)):
            written.append(BENCH_README)
        if replace_between(
            ROOT_README, "perf-table", perf_table(doc, "benchmarks/plots")
        ):
            written.append(ROOT_README)
        else:
            print(f"{ROOT_README}: no perf-table markers, table not written")
    return written


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and render."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.render", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--plots", type=Path, default=PLOTS)
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args(argv)
    for path in render(args.results, args.plots, update_readmes=not args.no_readme):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
