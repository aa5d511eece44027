"""examples/pool_redis.py runs against a real redis-server and says what holds."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool_redis.py"


async def test_pool_redis_example_prints_what_holds(
    redis_flushed: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """The example's claims hold: identical reads coalesce, no more sockets
    than burst_limit are opened, at most max_size stay open after the burst."""
    monkeypatch.setenv(
        "REDIS_URL", f"redis://{redis_flushed.host}:{redis_flushed.port}/0"
    )
    spec = importlib.util.spec_from_file_location("pool_redis_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    await module.main()
    out = capsys.readouterr().out
    assert "200 reads, 5 distinct values" in out
    found = re.search(
        r"pool: (\d+) sockets opened in all, never more than burst_limit (\d+) "
        r"at once; (\d+) open after the burst \(max_size (\d+)\)",
        out,
    )
    assert found, out
    opened, burst_limit, open_after, max_size = map(int, found.groups())
    assert 1 <= opened <= burst_limit
    assert open_after <= max_size
    assert "5 executions" in out
