"""The observability examples run unattended and print what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(*args: str) -> str:
    """Run an example script with warnings as errors; return its output."""
    done = subprocess.run(
        [sys.executable, "-W", "error", *args],
        cwd=EXAMPLES.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_statistics_example() -> None:
    """The statistics example prints the 1.x lines and the 2.0 figures."""
    output = run_example(str(EXAMPLES / "statistics_example.py"))
    assert output.splitlines()[2].startswith("Stats(total=")
    assert "Top total:\n\t__main__:fetch_user: " in output
    assert "coalescing ratio" in output
    assert "execution latency: n=" in output


def test_metrics_service_self_test() -> None:
    """The metrics service serves a burst, scrapes /metrics once and exits."""
    output = run_example(str(EXAMPLES / "metrics_service.py"), "--self-test")
    assert "served 200 requests (160 ok, 40 not found)" in output
    assert 'async_reduce_calls_total{location="__main__:load_user"} 200.0' in output
    assert 'async_reduce_in_flight{location="__main__:load_user"} 0.0' in output
