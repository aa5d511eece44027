"""Cost of using a running shared service on a request path.

Run::

    .venv/bin/python -m benchmarks.services_bench [--quick] [--json PATH]

One call is one use and release of a service that is already running (kept
up by another holder, so no call starts or stops it), the way a request
handler asks for "the database" every time.  Measured in the same run:

Every variant runs in an event loop of its own, set up afresh for each
repeat, so that no variant's leftovers slow another.

* ``floor``: an ``AsyncExitStack`` keeps one instance open for the program;
  a call awaits a coroutine returning it (the cheapest way to hand a running
  instance to a caller);
* ``use``: ``async with services.use(factory, dsn) as svc`` (this project);
* ``use_named``: the same with ``name=`` (no argument binding);
* ``acquire``: ``svc = await services.acquire(factory, dsn)`` then
  ``services.release(svc)``;
* ``asyncscope_service``: asyncscope 0.12, ``await scope.service(name,
  proc)`` then ``scope.release(...)`` from the main scope;
* ``asyncscope_using``: asyncscope 0.12, ``async with scope.using_scope():
  await scope.service(name, proc)`` (its context-manager form).

asyncscope runs in a virtual environment of its own, ``.venv-asyncscope``
(created on first use with ``pip install 'asyncscope==0.12.*'``): its wheel
installs a top-level ``tests`` package that would shadow this project's tests
in the main venv.  Its variants run in a process started from that venv for
each repeat (``--peer-only``), alternating with ours; without network access
to create the venv they are left out and the run says so.  Each figure is the
median per-call time over several repeats.  A full run takes about
20 seconds, ``--quick`` about 3.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

DSN = "postgres://db.internal/app"
ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = ROOT / ".venv-asyncscope"
PEER_REQUIREMENT = "asyncscope==0.12.*"
PEER_VARIANTS = ("asyncscope_service", "asyncscope_using")
OURS = ("floor", "use", "use_named", "acquire")


class Client:
    """The service object (its setup and teardown cost nothing here)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn


@asynccontextmanager
async def database(dsn: str) -> AsyncIterator[Client]:
    yield Client(dsn)


Call = Callable[[], Awaitable[Any]]


async def timed(call: Call, calls: int) -> float:
    """Seconds per call of ``calls`` sequential calls."""
    gc.collect()
    began = time.perf_counter()
    for _ in range(calls):
        await call()
    return (time.perf_counter() - began) / calls


async def setup(name: str, stack: AsyncExitStack) -> Call:
    """Set up variant ``name`` (its service running) and return its call."""
    if name == "floor":
        singleton = await stack.enter_async_context(database(DSN))

        async def get_singleton() -> Client:
            return singleton

        async def floor() -> None:
            await get_singleton()

        return floor
    if name.startswith("asyncscope"):
        return await setup_asyncscope(name, stack)
    from async_reduce.services import Services

    services = await stack.enter_async_context(Services())
    await services.acquire(database, DSN)  # keeps it running
    await services.acquire(database, DSN, name="db")

    async def use() -> None:
        async with services.use(database, DSN):
            pass

    async def use_named() -> None:
        async with services.use(database, DSN, name="db"):
            pass

    async def acquire() -> None:
        services.release(await services.acquire(database, DSN))

    calls: dict[str, Call] = {"use": use, "use_named": use_named, "acquire": acquire}
    return calls[name]


async def setup_asyncscope(name: str, stack: AsyncExitStack) -> Call:
    import asyncscope

    scope = asyncscope.scope

    async def proc(dsn: str) -> None:
        scope.register(Client(dsn))
        await scope.no_more_dependents()

    await stack.enter_async_context(asyncscope.main_scope("bench"))
    await scope.service("db", proc, DSN)  # keeps it running
    db_scope = scope.lookup_scope("db")

    async def asyncscope_service() -> None:
        await scope.service("db", proc, DSN)
        scope.release(db_scope)

    async def asyncscope_using() -> None:
        async with scope.using_scope():
            await scope.service("db", proc, DSN)

    calls: dict[str, Call] = {
        "asyncscope_service": asyncscope_service,
        "asyncscope_using": asyncscope_using,
    }
    return calls[name]


def peer_python() -> str | None:
    """The interpreter of the asyncscope venv, created on first use; ``None``
    when it cannot be created."""
    python = PEER_VENV / "bin" / "python"
    stamp = PEER_VENV / ".installed"
    if stamp.exists() and stamp.read_text() == PEER_REQUIREMENT:
        return str(python)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", PEER_REQUIREMENT],
            check=True,
            timeout=600,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"asyncscope left out: its venv could not be made ({exc})")
        return None
    stamp.write_text(PEER_REQUIREMENT)
    return str(python)


async def run_variant(name: str, calls: int) -> float:
    """One repeat of one variant, in an event loop of its own."""
    async with AsyncExitStack() as stack:
        call = await setup(name, stack)
        await timed(call, max(calls // 10, 100))  # warm-up
        return await timed(call, calls)


def peer_repeat(python: str, calls: int) -> dict[str, float]:
    """One repeat of the asyncscope variants, in the asyncscope venv."""
    done = subprocess.run(
        [python, "-m", "benchmarks.services_bench", "--peer-only", str(calls)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(calls: int, repeats: int) -> dict[str, list[float]]:
    python = peer_python()
    names = list(OURS) + (list(PEER_VARIANTS) if python else [])
    samples: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeats):
        for name in OURS:
            samples[name].append(asyncio.run(run_variant(name, calls)))
        if python is not None:
            for name, value in peer_repeat(python, calls).items():
                samples[name].append(value)
    return samples


def report(samples: dict[str, list[float]]) -> dict[str, Any]:
    medians = {name: statistics.median(values) for name, values in samples.items()}
    floor = medians["floor"]
    rows = {}
    for name, median in medians.items():
        rows[name] = {
            "median_us": median * 1e6,
            "min_us": min(samples[name]) * 1e6,
            "max_us": max(samples[name]) * 1e6,
            "vs_floor": median / floor,
        }
    for peer in ("asyncscope_service", "asyncscope_using"):
        if peer in medians:
            for ours in ("use", "acquire"):
                rows[ours][f"{peer}_over_ours"] = medians[peer] / medians[ours]
    return rows


def table(rows: dict[str, Any]) -> str:
    lines = [
        "| variant | median µs/call | range µs | x floor |",
        "|---|---:|---:|---:|",
    ]
    for name, row in rows.items():
        lines.append(
            f"| `{name}` | {row['median_us']:.2f} |"
            f" {row['min_us']:.2f}-{row['max_us']:.2f} | {row['vs_floor']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument(
        "--peer-only", type=int, metavar="CALLS", help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.peer_only is not None:  # inside the asyncscope venv
        figures = {
            name: asyncio.run(run_variant(name, args.peer_only))
            for name in PEER_VARIANTS
        }
        print(json.dumps(figures))
        return 0
    calls, repeats = (2_000, 3) if args.quick else (20_000, 9)
    samples = measure(calls, repeats)
    rows = report(samples)
    print(table(rows))
    for ours in ("use", "acquire"):
        for peer in ("asyncscope_service", "asyncscope_using"):
            key = f"{peer}_over_ours"
            if key in rows[ours]:
                print(f"{peer} / {ours}: {rows[ours][key]:.1f}x")
    if args.json is not None:
        peer_version = None
        if "asyncscope_service" in rows:
            peer_version = subprocess.run(
                [
                    str(PEER_VENV / "bin" / "python"),
                    "-c",
                    "import importlib.metadata as m; print(m.version('asyncscope'))",
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        document = {
            "benchmark": "services_bench",
            "date": datetime.date.today().isoformat(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "calls_per_repeat": calls,
            "repeats": repeats,
            "asyncscope": peer_version,
            "rows": rows,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
