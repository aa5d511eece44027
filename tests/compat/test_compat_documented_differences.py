"""The differences from 1.x that README's migration section states hold as
stated, and its install lines install this version with extras that exist."""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import re
import shlex
from pathlib import Path

import pytest

from async_reduce import AsyncReducer, async_reduceable
from async_reduce.hooks import BaseHooks, MultipleHooks

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _migration_section() -> str:
    start = README.index("## Migrating from 1.x")
    return README[start : README.index("\n## ", start + 1)]


async def test_falsy_ident_is_a_key() -> None:
    """``ident=""`` and ``ident=0`` are keys of their own, not "automatic"."""
    reducer = AsyncReducer()

    async def value(x: int) -> int:
        await asyncio.sleep(0)
        return x

    results = await asyncio.gather(
        reducer(value(1), ident=""),
        reducer(value(2), ident=""),
        reducer(value(3), ident=0),
        reducer(value(4)),
    )
    assert results == [1, 1, 3, 4]


async def test_call_is_an_abc_coroutine_not_a_native_one() -> None:
    """What ``reducer(coro)`` returns passes asyncio.iscoroutine, not inspect's."""
    reducer = AsyncReducer()

    async def value() -> int:
        return 1

    call = reducer(value())
    assert asyncio.iscoroutine(call)
    assert not inspect.iscoroutine(call)
    assert await asyncio.wait_for(call, timeout=60) == 1


def test_and_returns_a_new_multiple_hooks() -> None:
    """``m1 & m2`` is a new MultipleHooks; neither operand changes."""
    first, second = BaseHooks(), BaseHooks()
    m1, m2 = MultipleHooks(first), MultipleHooks(second)
    combined = m1 & m2
    assert combined is not m1
    assert combined.hooks_list == [first, second]
    assert m1.hooks_list == [first]
    assert m2.hooks_list == [second]


def test_decorator_needs_an_async_reducer() -> None:
    """``@async_reduceable(x)`` with a plain callable as reducer raises TypeError."""

    class NotAReducer:
        def __call__(self, coro: object) -> object:
            return coro

    with pytest.raises(TypeError, match="reducer must be an AsyncReducer"):
        async_reduceable(NotAReducer())  # type: ignore[call-overload]


def test_migration_section_names_what_1x_tests_still_fail() -> None:
    """The migration section names the 1.x behaviours kept out on purpose."""
    section = _migration_section()
    assert "test_multiple_and_multiple" in section
    assert "async_reduce.aux" in section
    assert "async_reduce.async_reducer" in section


def _install_lines() -> list[list[str]]:
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", README, flags=re.S):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("pip install"):
                lines.append(shlex.split(line)[2:])
    return lines


def test_install_lines_install_this_version_with_real_extras() -> None:
    """README install lines name a checkout or ``>=2`` (not 1.5) and real extras."""
    extras = set(
        importlib.metadata.metadata("async-reduce").get_all("Provides-Extra") or ()
    )
    assert {"redis", "prometheus", "otel"} <= extras
    lines = _install_lines()
    assert lines, "README has no pip install line"
    for args in lines:
        target = next(arg for arg in args if not arg.startswith("-"))
        match = re.fullmatch(
            r"(?P<what>[^\[]+)(\[(?P<extras>[^\]]*)\])?(?P<rest>.*)", target
        )
        assert match, target
        what, rest = match["what"], match["rest"]
        assert what.startswith(("/", ".")) or rest.startswith(">=2"), target
        for extra in filter(None, (match["extras"] or "").split(",")):
            assert extra in extras, f"{target}: no extra {extra!r} in the package"
