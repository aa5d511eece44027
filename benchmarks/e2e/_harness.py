"""The end-to-end harness: inner service, front services, load generator.

Process layout (every service its own process, so the front's CPU and memory
are measured alone and the load generator never shares its interpreter):

* one inner service (``inner_service``) for the whole run;
* one load generator (``loadgen``) for the whole run, holding one warmed-up
  client session per front service;
* per concurrency level, one front service (``front_service.py``) per variant,
  all started before the level and stopped after it, so each one's peak RSS
  belongs to that level alone.

Variants of one level are measured in turn, in a rotated order each round, so
drifts of the machine spread over all of them.  Every point records the
requests the client sent and got answered, the front's count of served
requests, the inner service's hits and the front's CPU seconds, each as the
difference across the measured run (warm-up excluded).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import importlib.metadata
import os
import platform
import statistics
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aiohttp import ClientSession

from ._procs import Child, ChildFailed
from ._zipf import top_share

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
FRONT_SCRIPT = HERE / "front_service.py"

LEGACY = "1.5"
OURS = "auto"
VARIANTS = ("none", LEGACY, "auto", "decorator", "stats", "pool")
VARIANT_LABELS = {
    "none": "no reducer",
    LEGACY: "async-reduce 1.5",
    "auto": "async_reduce (automatic key)",
    "decorator": "@async_reduceable",
    "stats": "with StatisticsOverallHooks",
    "pool": "pool.run (ConnectionPool)",
}

Progress = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class Config:
    """Parameters of one e2e run (all recorded in the results)."""

    concurrency: tuple[int, ...] = (10, 100, 1000)
    variants: tuple[str, ...] = VARIANTS
    rounds: int = 7
    requests: int = 20_000
    time_limit: float = 1.0
    zipf_s: float = 1.1
    keys: int = 1000
    seed: int = 20_240_601
    latency: float = 0.020
    capacity: int = 32
    sweep_exponents: tuple[float, ...] = (0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4)
    sweep_concurrency: int = 1000
    sweep_variants: tuple[str, ...] = ("none", LEGACY, OURS)
    sweep_rounds: int = 2
    sweep_time_limit: float = 0.8
    loop: str = "asyncio"

    def __post_init__(self) -> None:
        unknown = set(self.variants) | set(self.sweep_variants)
        unknown -= set(VARIANTS)
        if unknown:
            raise ValueError(f"variants: unknown {sorted(unknown)}")
        if self.loop not in ("asyncio", "uvloop"):
            raise ValueError(f"loop: expected 'asyncio' or 'uvloop', got {self.loop!r}")
        if self.rounds < 1 or self.sweep_rounds < 1:
            raise ValueError("rounds: must be >= 1")
        if any(c < 1 for c in (*self.concurrency, self.sweep_concurrency)):
            raise ValueError("concurrency: every level must be >= 1")

    def planned_points(self) -> int:
        """How many measurements the run makes (for a progress bar)."""
        grid = len(self.concurrency) * len(self.variants) * self.rounds
        sweep = len(self.sweep_exponents) * len(self.sweep_variants)
        return grid + sweep * self.sweep_rounds


FULL = Config()
QUICK = Config(
    rounds=1,
    requests=6_000,
    time_limit=0.7,
    sweep_exponents=(0.8, 1.1, 1.4),
    sweep_rounds=1,
    sweep_time_limit=0.6,
)
TINY = Config(
    concurrency=(4, 16),
    variants=("none", "auto", "decorator", "stats", "pool"),
    rounds=1,
    requests=60,
    time_limit=5.0,
    keys=20,
    latency=0.005,
    capacity=4,
    sweep_exponents=(1.1,),
    sweep_concurrency=16,
    sweep_variants=("none", "auto"),
    sweep_rounds=1,
    sweep_time_limit=5.0,
)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
    }


class Run:
    """One e2e run: owns the child processes and the collected points."""

    def __init__(self, config: Config, progress: Progress | None = None) -> None:
        self.config = config
        self.progress = progress or (lambda _label: None)
        self.pythons: dict[str, str] = {}
        self.notes: dict[str, str] = {}
        self.versions: dict[str, str | None] = {}
        self.points: list[dict[str, Any]] = []
        self.sweep: list[dict[str, Any]] = []
        self._session: ClientSession | None = None
        self._inner: Child | None = None
        self._loadgen: Child | None = None

    # --- set-up ---------------------------------------------------------------

    async def _resolve_pythons(self) -> None:
        """Find the interpreter of every variant; note why one is n/a."""
        wanted = set(self.config.variants) | set(self.config.sweep_variants)
        for variant in wanted:
            self.pythons[variant] = sys.executable
        if LEGACY in wanted:
            try:
                python = await asyncio.to_thread(_legacy_python, self.config.loop)
            except Exception as exc:
                del self.pythons[LEGACY]
                self.notes[LEGACY] = f"legacy venv unavailable: {exc}"
            else:
                self.pythons[LEGACY] = python
        if "pool" in wanted:
            try:
                importlib.import_module("async_reduce.pool").ConnectionPool  # noqa: B018
            except (ImportError, AttributeError) as exc:
                del self.pythons["pool"]
                self.notes["pool"] = f"async_reduce.pool not available ({exc})"

    async def __aenter__(self) -> Run:
        try:
            await self._resolve_pythons()
            self._session = ClientSession()
            self._inner = await Child.start(
                "inner service",
                [
                    sys.executable,
                    "-m",
                    "benchmarks.e2e.inner_service",
                    f"--latency={self.config.latency}",
                    f"--capacity={self.config.capacity}",
                ],
                cwd=ROOT,
            )
            self._loadgen = await Child.start(
                "load generator",
                [sys.executable, "-m", "benchmarks.e2e.loadgen"],
                cwd=ROOT,
                stdin=True,
                ready_line=False,
            )
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for child in (self._loadgen, self._inner):
            if child is not None:
                await child.stop()
        self._loadgen = self._inner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- measurements ----------------------------------------------------------

    @property
    def inner_url(self) -> str:
        assert self._inner is not None
        return f"http://127.0.0.1:{self._inner.ready['port']}"

    async def _get(self, url: str) -> dict[str, Any]:
        assert self._session is not None
        async with self._session.get(url) as response:
            response.raise_for_status()
            answer: dict[str, Any] = await response.json()
            return answer

    async def _start_fronts(self, variants: Iterable[str]) -> dict[str, Child]:
        fronts: dict[str, Child] = {}
        try:
            for variant in variants:
                if variant not in self.pythons:
                    continue
                env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
                try:
                    fronts[variant] = await Child.start(
                        f"front service ({variant})",
                        [
                            self.pythons[variant],
                            str(FRONT_SCRIPT),
                            f"--variant={'auto' if variant == LEGACY else variant}",
                            f"--inner-url={self.inner_url}",
                            f"--capacity={self.config.capacity}",
                            f"--loop={self.config.loop}",
                        ],
                        cwd=HERE,
                        env=env,
                    )
                except ChildFailed as exc:
                    # A variant that cannot start is reported n/a, not fatal.
                    last = [ln for ln in str(exc).splitlines() if ln.strip()][-1]
                    self.notes[variant] = f"front service failed to start: {last}"
                    del self.pythons[variant]
                    continue
                version = fronts[variant].ready.get("async_reduce")
                label = "async-reduce (1.5 venv)" if variant == LEGACY else "ours"
                if variant != "none":
                    self.versions[label] = version
        except BaseException:
            await _stop_all(fronts)
            raise
        return fronts

    async def _measure(
        self,
        front: Child,
        ident: str,
        *,
        concurrency: int,
        zipf_s: float,
        time_limit: float,
    ) -> dict[str, Any]:
        assert self._loadgen is not None
        front_url = f"http://127.0.0.1:{front.ready['port']}"
        hits_before = (await self._get(f"{self.inner_url}/_hits"))["hits"]
        stats_before = await self._get(f"{front_url}/_stats")
        cpu_before = front.cpu_seconds()
        load_cpu_before = self._loadgen.cpu_seconds()
        assert self._inner is not None
        inner_cpu_before = self._inner.cpu_seconds()
        load = await self._loadgen.ask(
            {
                "op": "run",
                "id": ident,
                "requests": self.config.requests,
                "time_limit": time_limit,
                "zipf_s": zipf_s,
                "keys": self.config.keys,
                "seed": self.config.seed,
            },
            timeout=time_limit + 300,
        )
        cpu_psutil = front.cpu_seconds() - cpu_before
        load_cpu = self._loadgen.cpu_seconds() - load_cpu_before
        inner_cpu = self._inner.cpu_seconds() - inner_cpu_before
        front_stats = await self._get(f"{front_url}/_stats")
        hits = (await self._get(f"{self.inner_url}/_hits"))["hits"] - hits_before
        # The front's own CPU clock is exact; psutil's /proc figure counts in
        # clock ticks (10 ms), so it is kept as a cross-check only.
        cpu = front_stats["cpu"] - stats_before["cpu"]
        ok = load["ok"]
        return {
            **load,
            "concurrency": concurrency,
            "zipf_s": zipf_s,
            "served": front_stats["served"] - stats_before["served"],
            "served_total": front_stats["served"],
            "front_failed": front_stats["failed"] - stats_before["failed"],
            "statistics": front_stats["statistics"],
            "inner_calls": hits,
            "inner_calls_per_request": hits / ok if ok else None,
            "cpu_seconds": cpu,
            "cpu_per_1000": cpu / ok * 1000 if ok else None,
            "cpu_seconds_psutil": cpu_psutil,
            # Where the rest of the machine went (the front is not alone on it).
            "loadgen_cpu_seconds": load_cpu,
            "inner_cpu_seconds": inner_cpu,
        }

    async def _level(
        self,
        variants: Sequence[str],
        concurrency: int,
        zipf_s: float,
        rounds: int,
        time_limit: float,
        rotate: int,
    ) -> list[dict[str, Any]]:
        """Measure ``variants`` at one concurrency and exponent, interleaved."""
        assert self._loadgen is not None
        fronts = await self._start_fronts(variants)
        points: list[dict[str, Any]] = []
        try:
            for variant, front in fronts.items():
                await self._loadgen.ask(
                    {
                        "op": "open",
                        "id": variant,
                        "url": f"http://127.0.0.1:{front.ready['port']}",
                        "concurrency": concurrency,
                    },
                    timeout=300,
                )
            order = list(fronts)
            for round_ in range(rounds):
                shift = (round_ + rotate) % len(order) if order else 0
                for variant in order[shift:] + order[:shift]:
                    point = await self._measure(
                        fronts[variant],
                        variant,
                        concurrency=concurrency,
                        zipf_s=zipf_s,
                        time_limit=time_limit,
                    )
                    point.update(variant=variant, round=round_)
                    points.append(point)
                    self.progress(f"{variant} c={concurrency} s={zipf_s}")
            for variant, front in fronts.items():
                rss = front.peak_rss()
                for point in points:
                    if point["variant"] == variant:
                        point["peak_rss"] = rss
                await self._loadgen.ask({"op": "close", "id": variant}, timeout=60)
        finally:
            await _stop_all(fronts)
        # Points of variants that could not start still count for progress.
        missing = [v for v in variants if v not in fronts]
        for _ in range(len(missing) * rounds):
            self.progress("n/a")
        return points

    async def grid(self) -> None:
        """Every variant at every concurrency level, Zipf exponent as configured."""
        cfg = self.config
        for index, concurrency in enumerate(cfg.concurrency):
            self.points += await self._level(
                cfg.variants, concurrency, cfg.zipf_s, cfg.rounds, cfg.time_limit, index
            )

    async def zipf_sweep(self) -> None:
        """Inner calls per request against the Zipf exponent."""
        cfg = self.config
        for index, zipf_s in enumerate(cfg.sweep_exponents):
            self.sweep += await self._level(
                cfg.sweep_variants,
                cfg.sweep_concurrency,
                zipf_s,
                cfg.sweep_rounds,
                cfg.sweep_time_limit,
                index,
            )

    def report(self) -> dict[str, Any]:
        """The JSON document of the run."""
        cfg = self.config
        versions = {
            "ours": _version("async-reduce"),
            "aiohttp": _version("aiohttp"),
            "psutil": _version("psutil"),
        }
        if cfg.loop == "uvloop":
            versions["uvloop"] = _version("uvloop")
        versions.update(self.versions)
        variants = {
            v: {
                "label": VARIANT_LABELS[v],
                "available": v in self.pythons,
                "note": self.notes.get(v),
            }
            for v in VARIANTS
            if v in cfg.variants or v in cfg.sweep_variants
        }
        grid = summarise(self.points, ("variant", "concurrency"))
        sweep = summarise(self.sweep, ("variant", "zipf_s"))
        return {
            "benchmark": "e2e",
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_info(),
            "versions": versions,
            "params": {
                **dataclasses.asdict(cfg),
                "top_key_share": top_share(s=cfg.zipf_s, keys=cfg.keys),
            },
            "variants": variants,
            "results": {
                "grid": grid,
                "zipf_sweep": sweep,
                "targets": targets(grid, max(cfg.concurrency)),
                "points": self.points,
                "sweep_points": self.sweep,
            },
        }


async def _stop_all(children: dict[str, Child]) -> None:
    for child in children.values():
        with contextlib.suppress(Exception):
            await child.stop()


def _legacy_python(loop: str) -> str:
    """The 1.5 venv's interpreter, with uvloop in it when the run needs it."""
    import subprocess

    from benchmarks._legacy import legacy_python

    python = legacy_python()
    if loop == "uvloop":
        probe = subprocess.run([python, "-c", "import uvloop"], capture_output=True)
        if probe.returncode != 0:
            subprocess.run(
                [python, "-m", "pip", "install", "-q", "uvloop>=0.19"],
                check=True,
                capture_output=True,
            )
    return python


_MEDIANS = (
    "rps",
    "p50",
    "p99",
    "max",
    "mean",
    "inner_calls_per_request",
    "cpu_per_1000",
)


def summarise(
    points: list[dict[str, Any]], by: tuple[str, str]
) -> list[dict[str, Any]]:
    """Per group: medians (and ranges) over rounds, totals, max of peak RSS."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for point in points:
        groups.setdefault(tuple(point[k] for k in by), []).append(point)
    rows = []
    for key, group in groups.items():
        row: dict[str, Any] = dict(zip(by, key, strict=True))
        row["rounds"] = len(group)
        for field in _MEDIANS:
            values = [p[field] for p in group if p.get(field) is not None]
            row[field] = statistics.median(values) if values else None
            row[f"{field}_range"] = [min(values), max(values)] if values else None
        for field in ("sent", "ok", "failed", "served", "inner_calls"):
            row[field] = sum(p[field] for p in group)
        row["cpu_seconds"] = sum(p["cpu_seconds"] for p in group)
        row["peak_rss"] = max(p.get("peak_rss", 0) for p in group)
        rows.append(row)
    return rows


def targets(grid: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    """The issue's targets at ``concurrency``: ours against 1.5 and no reducer.

    A target whose figures are missing (variant n/a, no request answered) is
    left out.
    """
    at = {r["variant"]: r for r in grid if r["concurrency"] == concurrency}
    ours, legacy, none = at.get(OURS, {}), at.get(LEGACY, {}), at.get("none", {})
    out: dict[str, Any] = {"concurrency": concurrency, "variant": OURS}

    def both(row: dict[str, Any], other: dict[str, Any], field: str) -> bool:
        return row.get(field) is not None and bool(other.get(field))

    field = "inner_calls_per_request"
    if both(ours, legacy, field):
        out[field] = {
            "ours": ours[field],
            "1.5": legacy[field],
            "ratio": ours[field] / legacy[field],
            "met": ours[field] <= legacy[field],
        }
    if both(ours, legacy, "rps"):
        out["throughput"] = {
            "ratio": ours["rps"] / legacy["rps"],
            "met": ours["rps"] >= legacy["rps"],
        }
    if both(ours, legacy, "cpu_per_1000"):
        out["cpu_per_request"] = {
            "ratio": ours["cpu_per_1000"] / legacy["cpu_per_1000"],
            "met": ours["cpu_per_1000"] < legacy["cpu_per_1000"],
        }
    if both(none, ours, "p99"):
        out["p99_vs_no_reducer"] = {
            "ratio": none["p99"] / ours["p99"],
            "ours_ms": ours["p99"] * 1000,
            "none_ms": none["p99"] * 1000,
        }
    return out


async def run(config: Config, progress: Progress | None = None) -> dict[str, Any]:
    """Run the whole e2e benchmark and return its JSON document."""
    async with Run(config, progress) as e2e:
        await e2e.grid()
        await e2e.zipf_sweep()
        return e2e.report()
