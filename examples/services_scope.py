"""Shared services in a program that dies of an exception.

An admin module needs a support library, which needs a database.  Halfway
through, the admin module hits an error and loads an error handler, which
uses the same database.  A client misbehaves: the handler already loaded is
reused.  Then the admin module crashes and takes the program down: the error
handler still logs the crash through the database, then everything stops in
dependency order, and the crash reaches ``main``'s caller as itself::

    .venv/bin/python examples/services_scope.py
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from async_reduce.services import Services


class FatalError(Exception):
    """The error that kills the program."""


class Database:
    """Stands in for a database client (connecting takes a while)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.rows: list[str] = []
        self.open = False

    async def connect(self) -> None:
        await asyncio.sleep(0.05)
        self.open = True

    async def insert(self, row: str) -> None:
        if not self.open:
            raise RuntimeError("the database connection is closed")
        self.rows.append(row)

    async def close(self) -> None:
        self.open = False


@asynccontextmanager
async def database(dsn: str) -> AsyncIterator[Database]:
    db = Database(dsn)
    await db.connect()
    print(f"started database {dsn}")
    try:
        yield db
    finally:
        await db.close()
        print(f"stopped database ({len(db.rows)} rows written)")


@asynccontextmanager
async def support_library(services: Services, dsn: str) -> AsyncIterator[Database]:
    # Used while starting, so the database is a dependency of this service.
    async with services.use(database, dsn) as db:
        print("started support library")
        yield db
        print("stopped support library")


@asynccontextmanager
async def admin_module(services: Services, dsn: str) -> AsyncIterator[Database]:
    async with services.use(support_library, services, dsn) as db:
        print("started admin module")
        yield db
        print("stopped admin module")


class ErrorHandler:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def log(self, message: str) -> None:
        await self.db.insert(f"error: {message}")
        print(f"error handler logged: {message}")


@asynccontextmanager
async def error_handler(services: Services, dsn: str) -> AsyncIterator[ErrorHandler]:
    async with services.use(database, dsn) as db:
        print("started error handler")
        yield ErrorHandler(db)
        print("stopped error handler")


async def main(dsn: str) -> None:
    async with Services() as services:
        try:
            async with services.use(admin_module, services, dsn) as db:
                await db.insert("admin: work")
                try:
                    raise ValueError("unexpected input")
                except ValueError as exc:
                    # Loading the handler is expensive: keep it 60 s.
                    async with services.use(
                        error_handler, services, dsn, linger=60
                    ) as handler:
                        await handler.log(str(exc))
                async with services.use(error_handler, services, dsn) as handler:
                    await handler.log("shady client")
                for line in describe(services):
                    print(line)
                raise FatalError("admin module crashed")
        except FatalError as exc:
            # Nothing was stopped yet: the handler and its database are up.
            async with services.use(error_handler, services, dsn) as handler:
                await handler.log(str(exc))
            raise


def describe(services: Services) -> list[str]:
    lines = []
    for service in services.statistics().services:
        name = service.name.rsplit(":", 1)[-1]
        lines.append(
            f"  {name}: {service.state}, {service.users} users,"
            f" dependents {[d.rsplit(':', 1)[-1] for d in service.dependents]}"
        )
    return lines


if __name__ == "__main__":
    try:
        asyncio.run(main("postgres://db.internal/app"))
    except FatalError as exc:
        print(f"caught FatalError: {exc}")
