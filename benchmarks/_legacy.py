"""A private virtual environment holding async-reduce 1.5, the predecessor.

async-reduce 1.5 has the same import name as this project, so it cannot share
an interpreter with it: every benchmark that compares against it runs it in
processes started from this venv.  The venv lives in ``.venv-legacy`` at the
repository root (git-ignored) and is created on first use.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LEGACY_VENV = ROOT / ".venv-legacy"
LEGACY_REQUIREMENTS = (
    "async-reduce==1.5",
    "pyperf>=2.6",
    "aiohttp>=3.9",
    "psutil>=5.9",
)
_STAMP = LEGACY_VENV / ".installed"


def legacy_python() -> str:
    """Return the interpreter of the 1.5 venv, creating the venv if needed."""
    python = LEGACY_VENV / "bin" / "python"
    wanted = "\n".join(LEGACY_REQUIREMENTS)
    if not _STAMP.exists() or _STAMP.read_text() != wanted:
        subprocess.run([sys.executable, "-m", "venv", str(LEGACY_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *LEGACY_REQUIREMENTS],
            check=True,
        )
        _STAMP.write_text(wanted)
    return str(python)


def legacy_version() -> str:
    """Return the installed version of the legacy async-reduce."""
    out = subprocess.run(
        [
            legacy_python(),
            "-c",
            "import importlib.metadata as m; print(m.version('async-reduce'))",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()
