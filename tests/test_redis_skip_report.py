"""The session rules of tests/conftest.py, run on a throwaway suite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")
SUITE = '''
import pytest

def test_needs_redis():
    pytest.skip("redis-server not found (looked for /nowhere)")

def test_other_skip():
    pytest.skip("something else")

def test_runs():
    pass
'''


def run_suite(tmp_path: Path, ci: str) -> subprocess.CompletedProcess[str]:
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_suite.py").write_text(SUITE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_redis_skips_are_counted_with_their_reason(tmp_path: Path) -> None:
    """Without CI, Redis skips pass but the run ends saying how many and why."""
    done = run_suite(tmp_path, ci="")
    assert done.returncode == 0, done.stdout
    assert "1 tests that need a real redis-server were SKIPPED" in done.stdout
    assert "redis-server not found (looked for /nowhere)" in done.stdout
    assert "1 passed, 2 skipped" in done.stdout


@pytest.mark.parametrize("ci", ["true", "1"])
def test_redis_skips_fail_under_ci(tmp_path: Path, ci: str) -> None:
    """With CI set, a skipped Redis test is a failure; other skips stay skips."""
    done = run_suite(tmp_path, ci=ci)
    assert done.returncode == 1, done.stdout
    assert "CI is set, so Redis tests may not skip" in done.stdout
    assert "1 failed, 1 passed, 1 skipped" in done.stdout
