"""Fleet rules with real processes on loopback, killed with real signals."""

from __future__ import annotations

import base64
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PROC = str(Path(__file__).with_name("fleet_proc.py"))
ROOT = str(Path(__file__).parents[2])


def _spawn(*args: str, stdin: Any = None) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.Popen(
        [sys.executable, PROC, *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def _reap(procs: Any) -> None:
    for p in procs:
        p.kill()
        p.wait()
        if p.stdout is not None:
            p.stdout.close()
        if p.stdin is not None:
            p.stdin.close()


def _wait_ready(client: redis.Redis, run: str, count: int) -> list[str]:
    """Block until ``count`` processes reported their fleet role (hang guard)."""
    notes: list[str] = []
    deadline = time.monotonic() + 60
    while len(notes) < count:
        assert time.monotonic() < deadline, f"only {notes} reported"
        item = client.blpop([f"test:{run}:ready"], timeout=1)
        if item is not None:
            notes.append(item[1].decode())
    return notes


def test_four_processes_one_execution(redis_server: Any) -> None:
    """4 processes x 50 concurrent identical calls: exactly 1 execution."""
    client = redis.Redis(port=redis_server.port)
    procs = [_spawn("burst", "--port", str(redis_server.port)) for _ in range(4)]
    try:
        notes = _wait_ready(client, "run", 4)
        assert sorted(note.split(":")[1] for note in notes) == [
            "leader",
            "remote_join",
            "remote_join",
            "remote_join",
        ]
        client.rpush("test:run:release", "go")
        outputs = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
        executions = int(client.get("test:run:executions"))
    finally:
        _reap(procs)
        client.close()
    assert executions == 1
    for output in outputs:
        assert output["results"] == [{"run": "run", "value": 42}] * 50


def test_leader_killed_mid_work(redis_server: Any) -> None:
    """SIGKILL of the leader's process: another takes over after the lease;
    every surviving caller is answered; at most 2 executions."""
    client = redis.Redis(port=redis_server.port)
    lease = 1.0
    procs = {}
    for _ in range(3):
        p = _spawn("burst", "--port", str(redis_server.port), "--lease", str(lease))
        procs[p.pid] = p
    try:
        notes = _wait_ready(client, "run", 3)
        leader = next(int(n.split(":")[0]) for n in notes if n.endswith(":leader"))
        killed_at = time.monotonic()
        os.kill(leader, signal.SIGKILL)
        procs[leader].wait()
        takeover = _wait_ready(client, "run", 1)
        took = time.monotonic() - killed_at
        assert takeover[0].endswith(":takeover")
        outputs = [
            json.loads(p.communicate(timeout=60)[0])
            for pid, p in procs.items()
            if pid != leader
        ]
        executions = int(client.get("test:run:executions"))
    finally:
        _reap(procs.values())
        client.close()
    # Within the lease plus a margin for a loaded machine.
    assert took < lease + 5.0
    assert executions == 2
    for output in outputs:
        assert output["results"] == [{"run": "run", "value": 42}] * 50


VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=True, width=16)
    | st.text(max_size=3)
    | st.binary(max_size=3),
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
    max_leaves=5,
)


@pytest.fixture
def two_servers(redis_server: Any) -> Any:
    procs = [
        _spawn("serve", "--port", str(redis_server.port), stdin=subprocess.PIPE)
        for _ in range(2)
    ]
    for p in procs:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready"
    yield procs
    for p in procs:
        assert p.stdin is not None
        p.stdin.close()
        p.wait(timeout=30)
    _reap(procs)


def _ask(procs: list[subprocess.Popen[str]], batches: list[list[Any]]) -> list[Any]:
    for p, batch in zip(procs, batches, strict=True):
        assert p.stdin is not None
        p.stdin.write(base64.b64encode(pickle.dumps(batch)).decode() + "\n")
        p.stdin.flush()
    answers = []
    for p in procs:
        assert p.stdout is not None
        answers.append(pickle.loads(base64.b64decode(p.stdout.readline())))
    return answers


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(values=st.lists(VALUES, min_size=1, max_size=6), seed=st.randoms())
def test_different_arguments_never_share(
    two_servers: Any, values: Any, seed: Any
) -> None:
    """Across 2 processes, each call gets the outcome of its own arguments
    (typed keys; calls overlap, so equal arguments do share)."""
    from fleet_proc import describe

    other = list(values)
    seed.shuffle(other)
    answers = _ask(two_servers, [values, other])
    for batch, answer in zip([values, other], answers, strict=True):
        assert answer == [json.dumps(describe(v)) for v in batch]
