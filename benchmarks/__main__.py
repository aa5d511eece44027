"""Run every benchmark, then render plots and tables: ``make bench``.

``python -m benchmarks`` runs, in order, every benchmark module of this
package (``reducer_micro`` and ``pool_bench`` first, then any other public
module, each as a subprocess with ``--json``, and ``--readme`` in a full run
when the module offers it), then the end-to-end benchmark
(``benchmarks.e2e``), then ``benchmarks.render``.  A full run writes
``benchmarks/results/*.json``, ``benchmarks/plots/*.png``, the e2e section of
``benchmarks/README.md`` and the Performance table of ``README.md``; it fits
in 10 minutes on a 2-core machine.

``--loop uvloop`` runs the front services on uvloop and writes
``e2e-uvloop.json`` beside the default loop's ``e2e.json`` (which alone feeds
the plots and tables).  ``--quick`` (``make bench-quick``) runs every module
with ``--quick`` in under 2 minutes and writes to ``benchmarks/.work/quick/``
instead, so a quick run never replaces committed figures; ``--out DIR``
sends a full run's files elsewhere, ``--no-readme`` leaves the READMEs
alone.  A module that fails is reported and the others still run; the exit
status is then 1.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import pkgutil
import sys
import time
from pathlib import Path

from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]

from . import render
from .e2e import FULL, QUICK, run

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FIRST = ("reducer_micro", "pool_bench")
NOT_MODULES = {"e2e", "render"}
# Seconds a module may take before it is stopped: far above its budget, only
# there so that a hung benchmark cannot hang `make bench`.
MODULE_TIMEOUT = {False: 900.0, True: 300.0}


def benchmark_modules() -> list[str]:
    """Public benchmark modules of this package, the known ones first."""
    found = {
        info.name
        for info in pkgutil.iter_modules([str(HERE)])
        if not info.name.startswith("_") and info.name not in NOT_MODULES
    }
    return [m for m in FIRST if m in found] + sorted(found - set(FIRST))


async def supports_readme(name: str) -> bool:
    """Whether the module can rewrite its own section of benchmarks/README.md."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        f"benchmarks.{name}",
        "--help",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await proc.communicate()
    return proc.returncode == 0 and b"--readme" in out


async def run_module(
    name: str, json_path: Path, quick: bool, readme: bool, log: Path, bar: tqdm
) -> bool:
    """Run one benchmark module as a subprocess; return whether it succeeded."""
    argv = [sys.executable, "-m", f"benchmarks.{name}", "--json", str(json_path)]
    if quick:
        argv.append("--quick")
    elif readme and await supports_readme(name):
        argv.append("--readme")
    started = time.monotonic()
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=ROOT, stdout=out, stderr=asyncio.subprocess.STDOUT
        )
        waiting = asyncio.ensure_future(proc.wait())
        try:
            while not waiting.done():
                elapsed = time.monotonic() - started
                if elapsed > MODULE_TIMEOUT[quick]:
                    proc.kill()
                    await waiting
                    bar.write(f"{name}: stopped after {elapsed:.0f} s")
                    return False
                bar.set_postfix_str(f"{name} {elapsed:.0f} s")
                await asyncio.wait([waiting], timeout=1.0)
        finally:
            if not waiting.done():
                proc.kill()
                await waiting
    ok = proc.returncode == 0
    if not ok:
        bar.write(f"{name}: exit status {proc.returncode}; output in {log}")
    return ok


async def main_async(args: argparse.Namespace) -> int:
    """Run everything; return the exit status."""
    default_out = HERE / ".work" / "quick" if args.quick else HERE
    out = args.out.resolve() if args.out else default_out
    # READMEs link the committed plots: only a full run into them may rewrite.
    readme = not args.quick and not args.no_readme and out == HERE
    results, plots, logs = out / "results", out / "plots", HERE / ".work" / "logs"
    for directory in (results, plots, logs):
        directory.mkdir(parents=True, exist_ok=True)

    modules = [m for m in benchmark_modules() if m not in args.skip]
    config = dataclasses.replace(QUICK if args.quick else FULL, loop=args.loop)
    run_e2e = "e2e" not in args.skip
    total = len(modules) + (config.planned_points() if run_e2e else 0) + 1
    failed: list[str] = []
    missing = [m for m in FIRST if m not in benchmark_modules()]

    with tqdm(total=total, unit="step", dynamic_ncols=True) as bar:
        for name in missing:
            bar.write(f"{name}: not present, skipped")
        for name in modules:
            bar.set_description(name)
            log = logs / f"{name}.log"
            json_path = results / f"{name}.json"
            if await run_module(name, json_path, args.quick, readme, log, bar):
                bar.write(f"{name}: done ({results / (name + '.json')})")
            else:
                failed.append(name)
            bar.update()

        if run_e2e:
            bar.set_description("e2e")

            def step(label: str) -> None:
                bar.set_postfix_str(label)
                bar.update()

            try:
                document = await run(config, step)
            except Exception as exc:
                bar.write(f"e2e: failed: {exc}")
                failed.append("e2e")
            else:
                # Only the default loop's figures feed the committed plots.
                name = "e2e.json" if args.loop == "asyncio" else "e2e-uvloop.json"
                path = results / name
                path.write_text(json.dumps(document, indent=1) + "\n")
                bar.write(f"e2e: done ({path})")

        bar.set_description("render")
        written = render.render(results, plots, update_readmes=readme)
        bar.update()
    for path in written:
        print(f"wrote {path}")
    for name in modules:
        log = logs / f"{name}.log"
        if log.exists():
            print(f"\n=== {name} ===\n{log.read_text(errors='replace').rstrip()}")
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="reduced run, under 2 minutes"
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="NAME",
        help="leave out a benchmark (module name, or e2e); repeatable",
    )
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write results/ and plots/ under DIR (READMEs are then left alone)",
    )
    parser.add_argument(
        "--no-readme", action="store_true", help="leave every README untouched"
    )
    args = parser.parse_args(argv)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
