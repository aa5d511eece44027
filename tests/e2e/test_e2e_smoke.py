"""Smoke test of the end-to-end benchmark harness, at tiny size.

It runs the real harness (inner service, front services, load generator, each
its own process on 127.0.0.1) once for the module and checks that its JSON is
well-formed and its counters add up.  It never looks at speed.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from benchmarks import render
from benchmarks.e2e import TINY, run

STATS = re.compile(r"Stats\(total=(\d+), executed=(\d+), reduced=(\d+), errors=(\d+)\)")


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One tiny run, written to disk and read back as JSON."""
    path = tmp_path_factory.mktemp("e2e") / "e2e.json"
    path.write_text(json.dumps(asyncio.run(run(TINY))))
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def all_points(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Every measured point, grid and Zipf sweep."""
    results = document["results"]
    points: list[dict[str, Any]] = results["points"] + results["sweep_points"]
    return points


def test_document_has_the_agreed_shape(document: dict[str, Any]) -> None:
    """The JSON names the benchmark, machine, versions, params and every point."""
    assert document["benchmark"] == "e2e"
    assert document["machine"]["cpu_count"] >= 1
    assert document["versions"]["aiohttp"]
    assert document["params"]["keys"] == TINY.keys
    assert all(info["available"] for info in document["variants"].values())
    grid = {(r["variant"], r["concurrency"]) for r in document["results"]["grid"]}
    assert grid == {(v, c) for v in TINY.variants for c in TINY.concurrency}
    sweep = {(r["variant"], r["zipf_s"]) for r in document["results"]["zipf_sweep"]}
    assert sweep == {(v, s) for v in TINY.sweep_variants for s in TINY.sweep_exponents}
    assert len(all_points(document)) == TINY.planned_points()


def test_every_request_sent_is_answered_and_served(document: dict[str, Any]) -> None:
    """Requests sent == answered by the client == served by the front, none failed."""
    for point in all_points(document):
        assert point["sent"] > 0
        assert point["failed"] == 0
        assert point["front_failed"] == 0
        assert point["ok"] == point["sent"]
        assert point["served"] == point["sent"]


def test_inner_calls_never_exceed_requests(document: dict[str, Any]) -> None:
    """Coalescing never adds inner calls; without a reducer there is one each."""
    for point in all_points(document):
        assert 1 <= point["inner_calls"] <= point["sent"]
        if point["variant"] == "none":
            assert point["inner_calls"] == point["sent"]


def test_figures_are_present_and_positive(document: dict[str, Any]) -> None:
    """Every summary row carries throughput, latencies, CPU and peak RSS."""
    for row in document["results"]["grid"]:
        assert row["rps"] > 0
        assert 0 < row["p50"] <= row["p99"] <= row["max"]
        assert row["cpu_per_1000"] >= 0
        assert row["peak_rss"] > 0


def test_statistics_hooks_count_every_request(document: dict[str, Any]) -> None:
    """StatisticsOverallHooks in the front saw every request it served."""
    stats_points = [p for p in all_points(document) if p["variant"] == "stats"]
    assert stats_points
    for point in stats_points:
        match = STATS.fullmatch(point["statistics"])
        assert match is not None, point["statistics"]
        total, executed, reduced, errors = map(int, match.groups())
        assert total == point["served_total"]
        assert executed + reduced == total
        assert errors == 0


def test_render_writes_every_plot(document: dict[str, Any], tmp_path: Path) -> None:
    """The renderer turns the JSON into every PNG plot."""
    (tmp_path / "e2e.json").write_text(json.dumps(document))
    written = render.render(tmp_path, tmp_path / "plots", update_readmes=False)
    assert {p.name for p in written} == set(render.PLOT_FILES)
    for path in written:
        assert path.read_bytes().startswith(b"\x89PNG")


def test_render_replaces_only_between_markers(tmp_path: Path) -> None:
    """Generated text goes between the markers; the rest of the file is kept."""
    path = tmp_path / "README.md"
    path.write_text("a\n<!-- x:start -->\nold\n<!-- x:end -->\nb\n")
    assert render.replace_between(path, "x", "new")
    assert path.read_text() == "a\n<!-- x:start -->\nnew\n<!-- x:end -->\nb\n"
    assert not render.replace_between(path, "y", "new")
