"""examples/fleet_workers.py runs as documented against a real Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).parents[2] / "examples" / "fleet_workers.py"


def test_example_three_workers_one_execution(redis_server: Any) -> None:
    """The example's 3 worker processes x 20 calls make 1 execution."""
    env = dict(os.environ, REDIS_URL=f"redis://127.0.0.1:{redis_server.port}/0")
    done = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard only
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "calls: 60, executions: 1"
