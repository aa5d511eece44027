"""Every Python block of README.md runs as written.

pytest-examples finds the blocks (fences tagged ``python`` or ``py``); each
one is written to a file and run by a fresh interpreter with warnings as
errors, as a reader who pastes it into a file would run it.  pytest-examples'
own runner executes blocks inside the test process, where what a block leaves
behind (metrics in prometheus_client's default registry, hooks set on the
module-level reducer, ``sys.modules["__main__"]``) would leak into the other
tests; a separate process keeps every block honest and every test isolated.

Each block is also checked by ruff's pyflakes rules, which catch what a run
can miss: a name used only inside a function the block never calls, an
import nobody uses.

A block fenced as ``pycon`` is a ``python -m asyncio`` session: its ``>>>``
and ``...`` lines are fed to that REPL (so ``await`` works at the prompt),
which must print no traceback and, in order, every output line the block
shows (``...`` in a shown line stands for any text).

A block that needs a Redis server reads its address from ``REDIS_URL``
(defaulting to ``redis://127.0.0.1:6379`` for the reader); here it gets a
real redis-server started on a free port of 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pytest_examples import CodeExample, find_examples
from pytest_redis import factories
from ruff.__main__ import find_ruff_bin

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
EXAMPLES = list(find_examples(README))
RUFF = find_ruff_bin()

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
HAVE_REDIS = os.access(REDIS_SERVER, os.X_OK)

if HAVE_REDIS:
    readme_redis_proc = factories.redis_proc(executable=REDIS_SERVER, port=None)


def _redis_url(request: pytest.FixtureRequest) -> str:
    if not HAVE_REDIS:
        reason = (
            f"redis-server not found (looked for {REDIS_SERVER}); install it "
            "(Debian: apt-get install redis-server) to run the README's Redis blocks"
        )
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {reason}", pytrace=False)
        pytest.skip(reason)
    proc: Any = request.getfixturevalue("readme_redis_proc")
    return f"redis://{proc.host}:{proc.port}/0"


def _block_id(example: CodeExample) -> str:
    return f"README.md:{example.start_line}"


def test_readme_has_python_blocks() -> None:
    """The blocks are found: the quick start is among them."""
    assert len(EXAMPLES) >= 3
    assert any("async_reduce(" in example.source for example in EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES, ids=_block_id)
def test_readme_block_names_are_defined(example: CodeExample) -> None:
    """A Python block of README.md passes ruff's pyflakes rules (no undefined name)."""
    session = example.prefix.startswith("pycon")
    source = _session(example.source)[0] if session else example.source
    done = subprocess.run(
        [
            RUFF,
            "check",
            "--isolated",
            "--select",
            "F",
            "--ignore",
            # an unused local is fine in an example; a session awaits at the prompt
            "F841,F704" if session else "F841",
            "--output-format",
            "concise",
            "--stdin-filename",
            f"README.md:{example.start_line}.py",
            "-",
        ],
        input=source,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, (
        f"README.md block at line {example.start_line}:\n{done.stdout}{done.stderr}"
    )


def _session(source: str) -> tuple[str, list[str]]:
    """The input lines and the shown output lines of a REPL session."""
    lines: list[str] = []
    shown: list[str] = []
    continued = False
    for line in source.splitlines():
        if line.startswith(">>>"):
            if continued:
                lines.append("")  # ends the compound statement, as at the prompt
            lines.append(line[4:])
            continued = False
        elif line.startswith("...") and lines:
            lines.append(line[4:])
            continued = True
        elif line.strip():
            shown.append(line.strip())
    if continued:
        lines.append("")
    return "\n".join(lines) + "\n", shown


def _check_session(source: str, env: dict[str, str], cwd: Path) -> str | None:
    """Run a ``python -m asyncio`` session; what is wrong with it, or None."""
    lines, shown = _session(source)
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "asyncio"],
        input=lines,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,  # a hang guard only
        check=False,
    )
    if done.returncode != 0 or "Traceback (most recent call last)" in done.stderr:
        return f"the session failed (exit {done.returncode}):\n{done.stderr}"
    printed = [
        line.strip()
        for line in re.sub(r"(>>> |\.\.\. )", "", done.stdout).splitlines()
        if line.strip()
    ]
    position = 0
    for line in shown:
        pattern = re.compile(".*".join(map(re.escape, line.split("..."))))
        while position < len(printed) and not pattern.fullmatch(printed[position]):
            position += 1
        if position == len(printed):
            return f"the session did not print {line!r}; it printed:\n{done.stdout}"
        position += 1
    return None


def test_session_check_can_fail(tmp_path: Path) -> None:
    """The session check fails on a traceback or on output that differs."""
    env = dict(os.environ)
    ok = ">>> import asyncio\n>>> await asyncio.sleep(0, result=2)\n2\n"
    assert _check_session(ok, env, tmp_path) is None
    assert _check_session(">>> 1 / 0\n", env, tmp_path)
    assert _check_session(">>> 1 + 1\n3\n", env, tmp_path)


@pytest.mark.parametrize("example", EXAMPLES, ids=_block_id)
def test_readme_block_runs(
    example: CodeExample, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A Python block of README.md runs to its end in a fresh interpreter."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "REDIS_URL"))
    }
    if "REDIS_URL" in example.source:
        env["REDIS_URL"] = _redis_url(request)
    if example.prefix.startswith("pycon"):
        problem = _check_session(example.source, env, tmp_path)
        assert problem is None, (
            f"README.md block at line {example.start_line}: {problem}"
        )
        return
    script = tmp_path / f"readme_{example.start_line}.py"
    script.write_text(example.source, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,  # a hang guard only
        check=False,
    )
    assert done.returncode == 0, (
        f"README.md block at line {example.start_line} failed "
        f"(exit {done.returncode}):\n{done.stderr}"
    )
