"""async-reduce 1.x's public module paths import the same objects, silently."""

from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys

import pytest

import async_reduce
from async_reduce import AsyncReducer, async_reduceable
from async_reduce.hooks import (
    BaseHooks,
    DebugHooks,
    MultipleHooks,
    StatisticsDetailHooks,
    StatisticsOverallHooks,
)

# Every public name of 1.x's public modules, with the object it names here.
NAMES_1X = [
    ("async_reduce", "async_reduce", async_reduce.async_reduce),
    ("async_reduce", "async_reduceable", async_reduceable),
    ("async_reduce", "AsyncReducer", AsyncReducer),
    ("async_reduce.async_reducer", "AsyncReducer", AsyncReducer),
    ("async_reduce.async_reducer", "async_reduce", async_reduce.async_reduce),
    ("async_reduce.async_reduceable", "async_reduceable", async_reduceable),
    ("async_reduce.hooks", "DebugHooks", DebugHooks),
    ("async_reduce.hooks", "StatisticsOverallHooks", StatisticsOverallHooks),
    ("async_reduce.hooks", "StatisticsDetailHooks", StatisticsDetailHooks),
    ("async_reduce.hooks.base", "BaseHooks", BaseHooks),
    ("async_reduce.hooks.base", "MultipleHooks", MultipleHooks),
    ("async_reduce.hooks.debug", "DebugHooks", DebugHooks),
    ("async_reduce.hooks.statistics", "StatisticsOverallHooks", StatisticsOverallHooks),
    ("async_reduce.hooks.statistics", "StatisticsDetailHooks", StatisticsDetailHooks),
]


@pytest.mark.parametrize(
    ("module", "name", "expected"),
    NAMES_1X,
    ids=[f"{module}.{name}" for module, name, _ in NAMES_1X],
)
def test_1x_name_imports_the_same_object(
    module: str, name: str, expected: object
) -> None:
    """A name imported from its 1.x module is the object of the 2.x API."""
    assert getattr(importlib.import_module(module), name) is expected


@pytest.mark.parametrize(
    "module", ["async_reduce.async_reducer", "async_reduce.async_reduceable"]
)
def test_alias_modules_are_public_and_documented(module: str) -> None:
    """The alias modules list their names in __all__ and say why they exist."""
    mod = importlib.import_module(module)
    assert mod.__all__
    for name in mod.__all__:
        assert getattr(mod, name) is getattr(async_reduce, name)
    assert "compatibility" in (mod.__doc__ or "")


@pytest.mark.parametrize(
    "statements",
    [
        "from async_reduce.async_reducer import AsyncReducer, async_reduce",
        "from async_reduce.async_reduceable import async_reduceable",
        "import async_reduce.async_reduceable",
        "import async_reduce; import async_reduce.async_reduceable",
        "import async_reduce.hooks.base, async_reduce.hooks.debug,"
        " async_reduce.hooks.statistics",
    ],
)
def test_importing_1x_paths_warns_nothing_and_keeps_the_decorator(
    statements: str,
) -> None:
    """Importing a 1.x path warns nothing and keeps the package's decorator."""
    check = (
        f"{statements}\n"
        "import async_reduce, inspect\n"
        "assert inspect.isfunction(async_reduce.async_reduceable), "
        "async_reduce.async_reduceable\n"
        "from async_reduce import async_reduceable\n"
        "assert callable(async_reduceable)\n"
    )
    subprocess.run([sys.executable, "-W", "error", "-c", check], check=True)


async def test_1x_decorator_path_with_a_reducer() -> None:
    """``@async_reduceable(AsyncReducer())`` through the 1.x paths coalesces calls."""
    from async_reduce.async_reduceable import async_reduceable as decorate
    from async_reduce.async_reducer import AsyncReducer as Reducer

    runs = 0

    @decorate(Reducer())
    async def load(key: str) -> str:
        nonlocal runs
        runs += 1
        return key.upper()

    first, second = load("a"), load("a")
    assert await asyncio.gather(first, second) == ["A", "A"]
    assert runs == 1
