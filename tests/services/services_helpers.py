"""Factories that record what happens to the services they make."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from async_reduce.hooks import BaseHooks
from async_reduce.services import ServiceEvent, Services


class Instance:
    """A service object: which factory made it, and whether it is still up."""

    def __init__(self, name: str, number: int, deps: tuple[Any, ...]) -> None:
        self.name = name
        self.number = number
        self.deps = deps
        self.up = True

    def __repr__(self) -> str:
        return f"<{self.name}#{self.number} {'up' if self.up else 'down'}>"


class Lab:
    """Builds factories and keeps one log of their starts and stops."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self.starts: dict[str, int] = {}
        self.stops: dict[str, int] = {}
        self.alive: dict[str, list[Instance]] = {}
        self._changed: asyncio.Event | None = None

    def note(self, what: str, name: str) -> None:
        self.log.append((what, name))
        if self._changed is not None:
            self._changed.set()

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds, re-checking after each log entry."""
        while not predicate():
            self._changed = changed = asyncio.Event()
            await changed.wait()

    async def down(self, name: str, count: int = 1) -> None:
        """Wait until ``name`` was torn down ``count`` times."""
        await self.until(lambda: self.order("down").count(name) >= count)

    def factory(
        self,
        name: str,
        *,
        uses: tuple[Callable[..., Any], ...] = (),
        start_gate: asyncio.Event | None = None,
        start_error: BaseException | None = None,
        stop_error: BaseException | None = None,
        stop_gate: asyncio.Event | None = None,
    ) -> Callable[[Services], Any]:
        """A factory taking the scope; its start uses ``uses`` (each called
        with the scope) and holds them until its teardown."""
        lab = self

        @asynccontextmanager
        async def factory(services: Services) -> AsyncIterator[Instance]:
            lab.note("starting", name)
            held = []
            try:
                for dep in uses:
                    held.append(await services.acquire(dep, services))
                if start_gate is not None:
                    await start_gate.wait()
                if start_error is not None:
                    raise start_error
            except BaseException:
                for dep_instance in held:
                    services.release(dep_instance)
                lab.note("start failed", name)
                raise
            number = lab.starts.get(name, 0) + 1
            lab.starts[name] = number
            instance = Instance(name, number, tuple(held))
            for dep_instance in held:
                assert dep_instance.up, f"{name} got a stopped dependency"
            lab.alive.setdefault(name, []).append(instance)
            lab.note("up", name)
            try:
                yield instance
            finally:
                for dep_instance in held:
                    assert dep_instance.up, f"{dep_instance} stopped before {name}"
                lab.note("down", name)
                instance.up = False
                lab.alive[name].remove(instance)
                lab.stops[name] = lab.stops.get(name, 0) + 1
                for dep_instance in held:
                    services.release(dep_instance)
                if stop_gate is not None:
                    await stop_gate.wait()
                if stop_error is not None:
                    raise stop_error

        factory.__qualname__ = name
        factory.__wrapped__.__qualname__ = name  # type: ignore[attr-defined]
        return factory

    def order(self, kind: str) -> list[str]:
        return [name for what, name in self.log if what == kind]


class EventRecorder(BaseHooks):
    """Hooks keeping every service event."""

    def __init__(self) -> None:
        self.events: list[ServiceEvent] = []
        self._changed: asyncio.Event | None = None

    def on_service_event(self, event: ServiceEvent) -> None:
        self.events.append(event)
        if self._changed is not None:
            self._changed.set()

    async def wait_count(self, kind: type[Any], count: int) -> None:
        """Wait until ``count`` events of type ``kind`` arrived."""
        while sum(isinstance(event, kind) for event in self.events) < count:
            self._changed = changed = asyncio.Event()
            await changed.wait()

    async def wait_for(self, kind: type[Any]) -> Any:
        """The first event of type ``kind``, waiting for it if need be."""
        while True:
            for event in self.events:
                if isinstance(event, kind):
                    return event
            self._changed = changed = asyncio.Event()
            await changed.wait()

    def kinds(self) -> list[tuple[str, str]]:
        return [(type(event).__name__, event.name) for event in self.events]


async def settle(rounds: int = 10) -> None:
    """Let every ready callback run (loop iterations, no wall clock)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class Supervised:
    """A service running a background task; :meth:`fail` makes that task
    raise, which cancels the task that owns the service (as a task group
    does), so the service fails while in use."""

    def __init__(self, lab: Lab, name: str) -> None:
        self.lab = lab
        self.name = name
        self.trigger = asyncio.Event()
        self.error = RuntimeError(f"{name}: background task died")

    def fail(self) -> None:
        self.trigger.set()

    def factory(self, *, uses: tuple[Callable[..., Any], ...] = ()) -> Any:
        supervised = self
        lab = self.lab
        name = self.name

        @asynccontextmanager
        async def factory(services: Services) -> AsyncIterator[Instance]:
            owner = asyncio.current_task()
            assert owner is not None
            held = [await services.acquire(dep, services) for dep in uses]

            async def background() -> None:
                await supervised.trigger.wait()
                raise supervised.error

            def on_done(task: asyncio.Task[None]) -> None:
                if not task.cancelled() and task.exception() is not None:
                    owner.cancel()

            task = asyncio.create_task(background())
            task.add_done_callback(on_done)
            number = lab.starts.get(name, 0) + 1
            lab.starts[name] = number
            instance = Instance(name, number, tuple(held))
            lab.note("up", name)
            try:
                yield instance
            except asyncio.CancelledError:
                if task.done() and not task.cancelled() and task.exception():
                    raise supervised.error from None
                raise
            finally:
                for dep_instance in held:
                    assert dep_instance.up, f"{dep_instance} stopped before {name}"
                instance.up = False
                lab.note("down", name)
                task.cancel()
                for dep_instance in held:
                    services.release(dep_instance)

        factory.__qualname__ = name
        factory.__wrapped__.__qualname__ = name  # type: ignore[attr-defined]
        return factory
