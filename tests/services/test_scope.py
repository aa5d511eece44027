"""Rules 1 and 2: the scope owns its services; use(), acquire(), release()."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from services_helpers import Lab, settle

from async_reduce import AsyncReducer
from async_reduce.services import (
    ServiceNotHeld,
    Services,
    ServicesClosed,
    ServiceUse,
)


async def test_scope_exit_stops_every_service(lab: Lab) -> None:
    """Leaving the scope stops every service still held or running."""
    a, b = lab.factory("a"), lab.factory("b")
    async with Services() as services:
        await services.acquire(a, services)
        await services.acquire(b, services)
        assert lab.order("up") == ["a", "b"]
        assert lab.order("down") == []
    assert sorted(lab.order("down")) == ["a", "b"]
    assert services.statistics().services == ()
    assert services.statistics().state == "closed"


async def test_scope_exit_stops_most_recent_first(lab: Lab) -> None:
    """Independent services stop in reverse order of starting (like AsyncExitStack)."""
    names = ["a", "b", "c", "d"]
    factories = [lab.factory(name) for name in names]
    async with Services() as services:
        for factory in factories:
            await services.acquire(factory, services)
    assert lab.order("down") == names[::-1]


async def test_scope_exit_stops_dependents_before_dependencies(lab: Lab) -> None:
    """A service started before its dependent (a later use) still stops after it."""
    db = lab.factory("db")
    support = lab.factory("support", uses=(db,))
    other = lab.factory("other")
    async with Services() as services:
        await services.acquire(db, services)
        await services.acquire(other, services)
        await services.acquire(support, services)
    down = lab.order("down")
    assert down.index("support") < down.index("db")
    assert len(down) == 3


async def test_failing_stop_is_logged_and_others_still_stop(
    lab: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    """A teardown error is logged and does not prevent the other stops."""
    a = lab.factory("a")
    bad = lab.factory("bad", stop_error=OSError("disk gone"))
    c = lab.factory("c")
    with caplog.at_level(logging.ERROR, logger="async_reduce.services"):
        async with Services() as services:
            for factory in (a, bad, c):
                await services.acquire(factory, services)
    assert lab.order("down") == ["c", "bad", "a"]
    assert any("disk gone" in (r.exc_text or "") for r in caplog.records)
    assert any("bad" in r.getMessage() for r in caplog.records)


async def test_use_gives_the_running_instance_to_every_user(lab: Lab) -> None:
    """Uses with equal factory and arguments share one instance."""
    db = lab.factory("db")
    async with Services() as services, services.use(db, services) as one:
        async with services.use(db, services) as two:
            assert one is two
        assert lab.starts == {"db": 1}


async def test_identity_binds_arguments_to_the_signature() -> None:
    """f(1, b=2), f(1, 2), f(1) (b defaults to 2) are one service, f(1, 3) not."""
    made: list[tuple[int, int]] = []

    @asynccontextmanager
    async def factory(a: int, b: int = 2) -> AsyncIterator[tuple[int, int]]:
        made.append((a, b))
        yield (a, b)

    async with Services() as services:
        first = await services.acquire(factory, 1, b=2)
        assert await services.acquire(factory, 1, 2) is first
        assert await services.acquire(factory, 1) is first
        assert await services.acquire(factory, a=1) is first
        other = await services.acquire(factory, 1, 3)
        assert other is not first
        assert made == [(1, 2), (1, 3)]


async def test_identity_compares_arguments_by_equality() -> None:
    """Equal arguments (1 and 1.0, equal tuples) identify the same service,
    hash collisions (-1 and -2) do not."""
    made: list[Any] = []

    @asynccontextmanager
    async def factory(value: Any) -> AsyncIterator[list[Any]]:
        made.append(value)
        yield [value]

    async with Services() as services:
        assert await services.acquire(factory, 1) is await services.acquire(
            factory, 1.0
        )
        assert await services.acquire(factory, (1, "a")) is await services.acquire(
            factory, (1, "a")
        )
        assert await services.acquire(factory, -1) is not await services.acquire(
            factory, -2
        )
    assert made == [1, (1, "a"), -1, -2]


async def test_explicit_name_identifies_the_service() -> None:
    """name= replaces factory and arguments as the identity."""
    made: list[str] = []

    def make(tag: str) -> Any:
        @asynccontextmanager
        async def factory(*args: Any) -> AsyncIterator[str]:
            made.append(tag)
            yield tag

        return factory

    async with Services() as services:
        one = await services.acquire(make("first"), [1, 2], name="shared")
        two = await services.acquire(make("second"), name="shared")
        assert one == two == "first"
        assert made == ["first"]
        stats = services.statistics().services
        assert [s.name for s in stats] == ["shared"]


async def test_acquire_release_stops_on_last_release(lab: Lab) -> None:
    """A service acquired twice stops after the second release, not the first."""
    db = lab.factory("db")
    async with Services() as services:
        one = await services.acquire(db, services)
        two = await services.acquire(db, services)
        services.release(one)
        await settle()
        assert lab.order("down") == []
        services.release(two)
        await lab.down("db")
        assert lab.order("down") == ["db"]


@pytest.mark.parametrize("how", ["never acquired", "released twice", "use block"])
async def test_release_without_a_hold_is_an_error_that_changes_nothing(
    lab: Lab, how: str
) -> None:
    """Releasing what is not held raises ServiceNotHeld; holds and state stay."""
    db = lab.factory("db")
    async with Services() as services:
        held = await services.acquire(db, services)
        if how == "never acquired":
            target: Any = object()
        elif how == "released twice":
            await services.acquire(db, services)
            services.release(held)
            services.release(held)
            target = held
        else:
            services.release(held)
            target = None
        async with services.use(db, services) as in_block:
            before = services.statistics().services
            with pytest.raises(ServiceNotHeld):
                services.release(target if target is not None else in_block)
            assert services.statistics().services == before
            assert in_block.up
        if how == "never acquired":
            assert held.up
            services.release(held)


async def test_use_outside_an_open_scope_raises(lab: Lab) -> None:
    """Before entering and after leaving the scope, use() raises ServicesClosed."""
    db = lab.factory("db")
    services = Services()
    with pytest.raises(ServicesClosed):
        await services.acquire(db, services)
    async with services:
        pass
    with pytest.raises(ServicesClosed):
        async with services.use(db, services):
            pass
    assert lab.log == []


async def test_scope_is_entered_once() -> None:
    """A Services scope cannot be entered twice."""
    services = Services()
    async with services:
        with pytest.raises(RuntimeError):
            await services.__aenter__()
    with pytest.raises(RuntimeError):
        await services.__aenter__()


def test_bad_arguments_are_named() -> None:
    """Wrong arguments raise TypeError/ValueError at the call, naming them."""

    @asynccontextmanager
    async def factory(dsn: str) -> AsyncIterator[str]:
        yield dsn

    with pytest.raises(ValueError, match="linger"):
        Services(linger=-1)
    with pytest.raises(TypeError, match="linger"):
        Services(linger="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="reducer"):
        Services(reducer=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="reducer or hooks"):
        Services(reducer=AsyncReducer(), hooks=object())
    with pytest.raises(ValueError, match="share_for"):
        Services(reducer=AsyncReducer(share_for=1.0))
    services = Services()
    with pytest.raises(TypeError, match="factory"):
        services.use(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="name"):
        services.use(factory, "x", name=["unhashable"])
    with pytest.raises(TypeError, match="unhashable"):
        services.use(factory, ["x"])
    with pytest.raises(TypeError, match="dsn"):
        services.use(factory)
    with pytest.raises(TypeError, match="unexpected"):
        services.use(factory, "x", port=1)
    with pytest.raises(ValueError, match="linger"):
        services.use(factory, "x", linger=float("inf"))
    with pytest.raises(TypeError, match="cancel_on_failure"):
        services.use(factory, "x", cancel_on_failure=1)  # type: ignore[arg-type]
    assert isinstance(services.use(factory, "x"), ServiceUse)


async def test_factory_not_returning_a_context_manager_is_a_type_error() -> None:
    """A factory returning something else fails the start with TypeError."""

    async def not_a_factory() -> int:
        return 1

    async with Services() as services:
        with pytest.raises(TypeError, match="async context manager"):
            await services.acquire(not_a_factory)
        assert services.statistics().services == ()


async def test_class_returning_an_async_context_manager_is_a_factory() -> None:
    """Any callable returning an async context manager is a factory."""

    class Client:
        def __init__(self, url: str) -> None:
            self.url = url
            self.open = False

        async def __aenter__(self) -> Client:
            self.open = True
            return self

        async def __aexit__(self, *exc: object) -> None:
            self.open = False

    async with Services() as services:
        async with services.use(Client, "http://a") as client:
            assert client.open
            assert client.url == "http://a"
        await settle()
        assert not client.open


async def test_use_from_another_event_loop_raises() -> None:
    """A scope bound to one loop refuses to start services from another."""
    services = Services()

    @asynccontextmanager
    async def factory() -> AsyncIterator[int]:
        yield 1

    async with services:
        errors: list[BaseException] = []

        def other_loop() -> None:
            async def use() -> None:
                try:
                    await services.acquire(factory)
                except RuntimeError as exc:
                    errors.append(exc)

            asyncio.run(use())

        await asyncio.to_thread(other_loop)
    assert len(errors) == 1
    assert "another event loop" in str(errors[0])


async def test_use_object_holds_one_service_at_a_time(lab: Lab) -> None:
    """A use() object cannot be entered twice at once; after leaving it can
    be entered again."""
    db = lab.factory("db")
    async with Services() as services:
        use = services.use(db, services)
        async with use:
            with pytest.raises(RuntimeError, match="already entered"):
                await use.__aenter__()
        async with use as again:
            assert again.up


async def test_release_from_another_task(lab: Lab) -> None:
    """A hold taken by acquire() in one task can be released by another."""
    db = lab.factory("db")
    async with Services() as services:
        instance = await asyncio.create_task(services.acquire(db, services))
        services.release(instance)
        await lab.down("db")


async def test_services_yielding_one_object_are_released_separately() -> None:
    """Two services whose factories yield the very same object: each
    release() drops one hold, the last acquired first; nothing is lost."""
    shared = object()
    stopped: list[str] = []

    @asynccontextmanager
    async def factory(tag: str) -> AsyncIterator[object]:
        yield shared
        stopped.append(tag)

    async with Services() as services:
        assert await services.acquire(factory, "a") is shared
        assert await services.acquire(factory, "b") is shared
        services.release(shared)
        await settle()
        assert stopped == ["b"]
        services.release(shared)
        await settle()
        assert stopped == ["b", "a"]
        with pytest.raises(ServiceNotHeld):
            services.release(shared)


async def test_aclose_is_idempotent(lab: Lab) -> None:
    """aclose() stops everything once; calling it again does nothing."""
    db = lab.factory("db")
    services = Services()
    async with services:
        await services.acquire(db, services)
        await services.aclose()
        assert lab.order("down") == ["db"]
        await services.aclose()
    assert lab.order("down") == ["db"]


async def test_async_generator_function_is_a_factory() -> None:
    """A plain async generator function (setup, yield, teardown, as aiohttp's
    cleanup_ctx takes) works as a factory, without @asynccontextmanager."""
    log: list[str] = []

    async def session(url: str) -> AsyncIterator[str]:
        log.append("open")
        yield f"session to {url}"
        log.append("close")

    async with Services() as services:
        async with (
            services.use(session, "http://a") as one,
            services.use(session, url="http://a") as two,
        ):
            assert one is two == "session to http://a"
        await settle()
        assert log == ["open", "close"]
