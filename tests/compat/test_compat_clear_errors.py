"""Clear errors: a sync function under bare @async_reduceable, a missing extra."""

from __future__ import annotations

import functools
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from async_reduce import AsyncReducer, async_reduceable


def plain(x: int) -> int:
    return x


class Plain:
    def method(self) -> None:
        return None


@pytest.mark.parametrize(
    ("target", "name"),
    [
        (plain, "plain"),
        (lambda: None, "<lambda>"),
        (Plain().method, "Plain.method"),
        (functools.partial(plain, 1), "functools.partial"),
        (len, "len"),
    ],
)
def test_bare_decorator_on_a_sync_function_asks_for_async_def(
    target: Callable[..., Any], name: str
) -> None:
    """Bare @async_reduceable on a sync function asks for async def, naming it."""
    with pytest.raises(TypeError) as raised:
        async_reduceable(target)
    message = str(raised.value)
    assert "async def" in message
    assert name in message
    assert "must be an AsyncReducer" not in message


def test_reducer_class_instead_of_instance() -> None:
    """Passing the AsyncReducer class, not an instance, says to instantiate it."""
    with pytest.raises(TypeError, match=r"AsyncReducer instance.*AsyncReducer\(\)"):
        async_reduceable(AsyncReducer)


def test_other_reducer_values_still_name_the_argument() -> None:
    """A value that is no reducer and no function names the reducer argument."""
    with pytest.raises(TypeError, match="reducer must be an AsyncReducer, got int"):
        async_reduceable(3)


@pytest.mark.parametrize(
    ("module", "missing", "extra"),
    [
        ("async_reduce.contrib.redis", "redis", "redis"),
        ("async_reduce.contrib.prometheus", "prometheus_client", "prometheus"),
        ("async_reduce.contrib.opentelemetry", "opentelemetry", "otel"),
    ],
)
def test_integration_without_its_package_names_the_extra(
    module: str, missing: str, extra: str
) -> None:
    """An integration without its package names the extra that installs it."""
    script = (
        "import sys\n"
        f"sys.modules[{missing!r}] = None  # as if not installed\n"
        "try:\n"
        f"    import {module}\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "    print(exc.name)\n"
        "else:\n"
        "    raise SystemExit('imported without its package')\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        capture_output=True,
        text=True,
        check=True,
    )
    message, name = done.stdout.splitlines()
    assert f"pip install 'async-reduce[{extra}]'" in message
    assert module in message
    assert name == missing
