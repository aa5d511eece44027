"""``python -m benchmarks.e2e [--quick] [--json PATH] [--loop uvloop]``."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

from ._harness import FULL, QUICK, VARIANT_LABELS, Config, run


def table(document: dict[str, Any]) -> str:
    """The human-readable summary of a run."""
    lines = []
    head = (
        f"{'variant':<30}{'conc':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'max ms':>9}{'inner/req':>11}{'CPU s/1k':>10}{'RSS MB':>8}"
    )
    lines.append(head)
    for row in document["results"]["grid"]:
        lines.append(
            f"{VARIANT_LABELS[row['variant']]:<30}{row['concurrency']:>6}"
            f"{row['rps']:>9.0f}{row['p50'] * 1000:>9.1f}{row['p99'] * 1000:>9.1f}"
            f"{row['max'] * 1000:>9.1f}{row['inner_calls_per_request']:>11.3f}"
            f"{row['cpu_per_1000']:>10.3f}{row['peak_rss'] / 2**20:>8.1f}"
        )
    lines.append("")
    lines.append(f"{'variant':<30}{'zipf s':>8}{'inner/req':>11}")
    for row in document["results"]["zipf_sweep"]:
        lines.append(
            f"{VARIANT_LABELS[row['variant']]:<30}{row['zipf_s']:>8.2f}"
            f"{row['inner_calls_per_request']:>11.3f}"
        )
    for name, info in document["variants"].items():
        if not info["available"]:
            lines.append(f"n/a: {name}: {info['note']}")
    lines.append("")
    lines.append("targets: " + json.dumps(document["results"]["targets"], indent=1))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark, print the table, write the JSON if asked."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.e2e")
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args(argv)
    config: Config = dataclasses.replace(QUICK if args.quick else FULL, loop=args.loop)
    document = asyncio.run(run(config))
    print(table(document))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=1) + "\n")


if __name__ == "__main__":
    main()
