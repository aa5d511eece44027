"""Rule 7: program death; the seed scenario end to end."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from services_helpers import Lab, settle

from async_reduce.services import Services

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "services_scope.py"


class Fatal(Exception):
    """The error that kills the program."""


class Death(BaseException):
    """A BaseException that is neither cancellation nor interrupt."""


async def die_in_scope(factory: object, error: BaseException) -> None:
    """Hold ``factory``'s service in a scope whose block raises ``error``."""
    async with Services() as services:
        await services.acquire(factory, services)  # type: ignore[arg-type]
        raise error


async def test_original_exception_propagates_as_itself(lab: Lab) -> None:
    """The block's exception leaves the scope as itself, not wrapped, after
    every service was stopped."""
    db = lab.factory("db")
    error = Fatal("boom")
    with pytest.raises(Fatal) as caught:
        await die_in_scope(db, error)
    assert caught.value is error
    assert lab.order("down") == ["db"]


async def test_base_exception_propagates_as_itself(lab: Lab) -> None:
    """A BaseException ending the block propagates unchanged too."""
    db = lab.factory("db")
    error = Death()
    with pytest.raises(Death) as caught:
        await die_in_scope(db, error)
    assert caught.value is error
    assert lab.order("down") == ["db"]


async def test_teardown_errors_never_replace_the_original(
    lab: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    """A teardown raising while the scope exits with an error is logged;
    the original error propagates, and other services still stop."""
    db = lab.factory("db")
    bad = lab.factory("bad", uses=(db,), stop_error=RuntimeError("teardown"))
    error = Fatal("original")
    with (
        caplog.at_level(logging.ERROR, logger="async_reduce.services"),
        pytest.raises(Fatal) as caught,
    ):
        await die_in_scope(bad, error)
    assert caught.value is error
    assert lab.order("down") == ["bad", "db"]
    assert any("teardown" in (r.exc_text or "") for r in caplog.records)


async def test_error_from_use_is_the_factorys_error_itself(lab: Lab) -> None:
    """A start failing deep in a dependency chain raises that error (its type
    and args, not a wrapper) in the user."""
    error = ConnectionError("no route")
    db = lab.factory("db", start_error=error)
    app = lab.factory("app", uses=(db,))
    top = lab.factory("top", uses=(app,))
    async with Services() as services:
        with pytest.raises(ConnectionError) as caught:
            await services.acquire(top, services)
        # The reducer hands each caller a copy of its own: same type and args.
        assert type(caught.value) is ConnectionError
        assert caught.value.args == error.args
        assert services.statistics().services == ()


async def test_cancelling_the_exit_still_stops_everything(lab: Lab) -> None:
    """Cancelling the exiting task interrupts the teardown in progress; the
    remaining services are still stopped; CancelledError propagates."""
    gate = asyncio.Event()
    db = lab.factory("db")
    slow = lab.factory("slow", uses=(db,), stop_gate=gate)
    services = Services()

    async def program() -> None:
        async with services:
            await services.acquire(slow, services)

    task = asyncio.create_task(program())
    await lab.until(lambda: "slow" in lab.order("down"))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert lab.order("down") == ["slow", "db"]
    assert services.statistics().services == ()
    assert services.statistics().state == "closed"


# -- the seed's scenario --------------------------------------------------------


class Database:
    """An in-memory database with a connection that can be closed."""

    def __init__(self) -> None:
        self.rows: list[str] = []
        self.connected = False

    async def insert(self, row: str) -> None:
        assert self.connected, "database used after it was closed"
        await asyncio.sleep(0)
        self.rows.append(row)


async def test_seed_scenario_error_handler_logs_through_the_shared_database() -> None:
    """Admin module -> support library -> database; an error handler shares
    the database; a fatal error in admin is logged by the handler through the
    same database; then everything stops in dependency order and the fatal
    error reaches the caller as itself."""
    backend = Database()
    events: list[str] = []

    @asynccontextmanager
    async def database() -> AsyncIterator[Database]:
        backend.connected = True
        events.append("database up")
        yield backend
        backend.connected = False
        events.append("database down")

    @asynccontextmanager
    async def support_library(services: Services) -> AsyncIterator[Database]:
        async with services.use(database) as db:
            events.append("support up")
            yield db
            events.append("support down")

    @asynccontextmanager
    async def admin_module(services: Services) -> AsyncIterator[Database]:
        async with services.use(support_library, services) as lib:
            events.append("admin up")
            yield lib
            events.append("admin down")

    @asynccontextmanager
    async def error_handler(services: Services) -> AsyncIterator[Database]:
        async with services.use(database) as db:
            events.append("handler up")
            yield db
            await db.insert("handler closing")
            events.append("handler down")

    fatal = Fatal("server died")

    async def program() -> None:
        async with Services() as services:
            try:
                async with services.use(admin_module, services) as admin:
                    await admin.insert("admin work")
                    try:
                        raise ValueError("bad input")  # halfway through
                    except ValueError as exc:
                        # The handler is loaded only now, reuses the database
                        # and is kept a while: loading it is expensive.
                        async with services.use(
                            error_handler, services, linger=60
                        ) as handler:
                            await handler.insert(f"error: {exc}")
                # A client misbehaves: the handler is reused, not reloaded,
                # although the admin module (its first user) is gone.
                async with services.use(error_handler, services) as handler:
                    await handler.insert("shady client")
                raise fatal
            except Fatal as exc:
                async with services.use(error_handler, services) as handler:
                    await handler.insert(f"fatal: {exc}")
                raise

    with pytest.raises(Fatal) as caught:
        await program()
    assert caught.value is fatal
    assert backend.rows == [
        "admin work",
        "error: bad input",
        "shady client",
        "fatal: server died",
        "handler closing",
    ]
    assert events.count("database up") == 1
    assert events.count("handler up") == 1
    assert events.index("admin down") < events.index("support down")
    assert events.index("support down") < events.index("handler down")
    assert events.index("handler down") < events.index("database down")
    assert events[-1] == "database down"


async def test_handler_inside_the_block_runs_before_any_stop(lab: Lab) -> None:
    """Nothing is stopped while the block's except clause runs."""
    db = lab.factory("db")

    async def program(services: Services) -> None:
        try:
            await services.acquire(db, services)
            raise Fatal("x")
        except Fatal:
            await settle()
            assert lab.order("down") == []
            raise

    with pytest.raises(Fatal):
        async with Services() as services:
            await program(services)
    assert lab.order("down") == ["db"]


def test_seed_example_runs() -> None:
    """examples/services_scope.py runs and shows the handler's log and the
    stop order."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "error handler logged: admin module crashed" in out
    assert out.index("stopped admin") < out.index("stopped support")
    assert out.index("stopped support") < out.index("stopped database")
    assert "caught FatalError: admin module crashed" in out
