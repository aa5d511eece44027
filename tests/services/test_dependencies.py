"""Rule 5: dependencies and cycles."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from services_helpers import Lab, settle

from async_reduce.services import ServiceCycleError, Services


async def test_dependencies_of_a_start_are_recorded(lab: Lab) -> None:
    """Services used by a factory during its start are its dependencies."""
    db = lab.factory("db")
    cache = lab.factory("cache")
    app = lab.factory("app", uses=(db, cache))
    async with Services() as services:
        await services.acquire(app, services)
        by_name = {s.name.split(":")[-1]: s for s in services.statistics().services}
        assert [d.split(":")[-1] for d in by_name["app"].dependencies] == [
            "db",
            "cache",
        ]
        assert [d.split(":")[-1] for d in by_name["db"].dependents] == ["app"]


async def test_dependency_stays_up_while_a_dependent_is_up(lab: Lab) -> None:
    """A dependency whose own users all left stays up until its dependent is
    down, then stops after it, even if the factory released it early."""

    @asynccontextmanager
    async def db() -> AsyncIterator[str]:
        lab.log.append(("up", "db"))
        yield "db"
        lab.log.append(("down", "db"))

    @asynccontextmanager
    async def app(services: Services) -> AsyncIterator[str]:
        # Uses db during its start and releases it at once.
        async with services.use(db):
            pass
        lab.log.append(("up", "app"))
        yield "app"
        lab.log.append(("down", "app"))

    async with Services() as services:
        async with services.use(db):
            async with services.use(app, services):
                pass
            await settle()
        await settle()
        assert lab.order("down") == ["app", "db"]


async def test_dependency_used_in_a_task_of_the_start_is_recorded() -> None:
    """Uses from tasks created by the factory during its start count too."""
    order: list[str] = []

    @asynccontextmanager
    async def leaf(name: str) -> AsyncIterator[str]:
        yield name
        order.append(name)

    @asynccontextmanager
    async def root(services: Services) -> AsyncIterator[str]:
        _a, _b = await asyncio.gather(
            services.acquire(leaf, "a"), services.acquire(leaf, "b")
        )
        yield "root"
        order.append("root")

    async with Services() as services:
        await services.acquire(root, services)
        root_stats = [s for s in services.statistics().services if "root" in s.name]
        assert len(root_stats[0].dependencies) == 2
    assert order[0] == "root"


async def test_uses_after_the_start_are_not_dependencies(lab: Lab) -> None:
    """A task the factory created during its start that uses another service
    after the start holds it as any user does: no dependency is recorded."""
    db = lab.factory("db")
    go = asyncio.Event()
    got: list[Any] = []
    done = asyncio.Event()

    @asynccontextmanager
    async def app(services: Services) -> AsyncIterator[str]:
        async def background() -> None:
            await go.wait()
            got.append(await services.acquire(db, services))
            done.set()

        task = asyncio.create_task(background())
        yield "app"
        await task

    async with Services() as services:
        await services.acquire(app, services)
        go.set()
        await done.wait()
        stats = {short(s.name): s for s in services.statistics().services}
        assert stats["app"].dependencies == ()
        assert stats["db"].dependents == ()
        assert stats["db"].users == 1


def short(name: str) -> str:
    """``module:outer.<locals>.name`` -> ``name``."""
    return name.rsplit(":", 1)[-1].rsplit(".", 1)[-1]


def _cyclic(services_names: list[str]) -> dict[str, Any]:
    """Factories each using the next one (the last uses the first)."""
    factories: dict[str, Any] = {}
    for index, name in enumerate(services_names):
        following = services_names[(index + 1) % len(services_names)]

        def make(name: str = name, following: str = following) -> Any:
            @asynccontextmanager
            async def factory(services: Services) -> AsyncIterator[str]:
                async with services.use(factories[following], services):
                    yield name

            factory.__wrapped__.__qualname__ = name  # type: ignore[attr-defined]
            return factory

        factories[name] = make()
    return factories


@pytest.mark.parametrize("names", [["a"], ["a", "b"], ["a", "b", "c"]])
async def test_start_cycle_raises_naming_the_cycle(names: list[str]) -> None:
    """A start that would wait for itself (directly or through others) raises
    ServiceCycleError naming the cycle, instead of hanging."""
    factories = _cyclic(names)
    async with Services() as services:
        with pytest.raises(ServiceCycleError) as caught:
            await asyncio.wait_for(services.acquire(factories["a"], services), 10)
        cycle = [name.split(":")[-1] for name in caught.value.cycle]
        assert cycle[0] == cycle[-1]
        assert sorted(set(cycle)) == sorted(names)
        assert len(cycle) == len(names) + 1
        for name in names:
            assert name in str(caught.value)
        assert services.statistics().services == ()


async def test_self_use_by_name_is_a_cycle() -> None:
    """A start using its own name is a cycle of one."""

    @asynccontextmanager
    async def selfish(services: Services) -> AsyncIterator[int]:
        async with services.use(selfish, services, name="me"):
            yield 1

    async with Services() as services:
        with pytest.raises(ServiceCycleError, match="me -> me"):
            await asyncio.wait_for(services.acquire(selfish, services, name="me"), 10)


async def test_shared_dependency_is_not_a_cycle(lab: Lab) -> None:
    """Two services starting at once on one dependency (a diamond) is no cycle."""
    gate = asyncio.Event()
    db = lab.factory("db", start_gate=gate)
    left = lab.factory("left", uses=(db,))
    right = lab.factory("right", uses=(db,))
    top = lab.factory("top", uses=(left, right))
    async with Services() as services:
        task = asyncio.create_task(services.acquire(top, services))
        other = asyncio.create_task(services.acquire(right, services))
        await settle()
        gate.set()
        assert (await task).up
        assert (await other).up
        assert lab.starts == {"db": 1, "left": 1, "right": 1, "top": 1}
    down = lab.order("down")
    assert down.index("top") < down.index("left") < down.index("db")
    assert down.index("right") < down.index("db")
