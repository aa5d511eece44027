"""The front service under test: an aiohttp server that fetches from the inner one.

Run as a script, never imported from the ``benchmarks`` package: the harness
starts it with this project's interpreter for most variants and with
async-reduce 1.5's (``.venv-legacy``) for the ``1.5`` variant.  Run as a script,
its own directory heads ``sys.path``, so the legacy interpreter cannot import
this checkout's ``async_reduce`` by accident.  For the same reason it uses only
the API that 1.5 shares with this project (``AsyncReducer(hooks=...)``,
``reducer(coro)``, ``@async_reduceable()``, ``StatisticsOverallHooks``); only
the ``pool`` variant reaches for ``async_reduce.pool``.

Routes: ``GET /item/{key}`` fetches the item from the inner service (through
the variant's coalescing, if any) and returns its bytes; ``GET /_stats`` returns
how many item requests were served and failed, and the statistics hooks' text.

Protocol with the harness: once listening, it prints one JSON line
``{"port": ..., "pid": ..., "async_reduce": VERSION}`` on stdout; SIGTERM or
SIGINT makes it close its sessions and exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.metadata
import json
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

VARIANTS = ("none", "auto", "decorator", "stats", "pool")

Fetch = Callable[[str], Awaitable[bytes]]


class Inner:
    """Client of the inner service: one shared session, ``capacity`` connections."""

    def __init__(self, base_url: str, capacity: int) -> None:
        self.base_url = base_url
        # Like a database client pool sized to the database's capacity.
        self.session = ClientSession(
            connector=TCPConnector(limit=capacity),
            timeout=ClientTimeout(total=120),
        )

    async def fetch(self, key: str) -> bytes:
        """Fetch one item; raises on any non-200 answer."""
        async with self.session.get(f"{self.base_url}/item/{key}") as response:
            response.raise_for_status()
            return await response.read()

    async def close(self) -> None:
        """Close the session."""
        await self.session.close()


class SessionStrategy:
    """Pool strategy whose connections are one-connection aiohttp sessions."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    async def create_connection(self) -> ClientSession:
        return ClientSession(
            connector=TCPConnector(limit=1),
            timeout=ClientTimeout(total=120),
        )

    def connection_is_closed(self, conn: ClientSession) -> bool:
        return conn.closed

    async def close_connection(self, conn: ClientSession) -> None:
        await conn.close()

    async def check_connection(self, conn: ClientSession) -> bool:
        return not conn.closed


async def fetch_on(conn: ClientSession, base_url: str, key: str) -> bytes:
    """Fetch one item on a pooled session."""
    async with conn.get(f"{base_url}/item/{key}") as response:
        response.raise_for_status()
        return await response.read()


async def build(
    variant: str, inner_url: str, capacity: int
) -> tuple[Fetch, Callable[[], Any], Callable[[], Awaitable[None]]]:
    """Return (fetch, statistics text, close) for ``variant``."""
    inner = Inner(inner_url, capacity)
    try:
        return await _build(variant, inner, inner_url, capacity)
    except BaseException:
        await inner.close()
        raise


async def _build(
    variant: str, inner: Inner, inner_url: str, capacity: int
) -> tuple[Fetch, Callable[[], Any], Callable[[], Awaitable[None]]]:
    if variant == "none":
        return inner.fetch, lambda: None, inner.close

    from async_reduce import AsyncReducer, async_reduce, async_reduceable

    if variant == "auto":

        async def auto(key: str) -> bytes:
            return await async_reduce(inner.fetch(key))

        return auto, lambda: None, inner.close

    if variant == "decorator":
        reduced = async_reduceable()(Inner.fetch)

        async def decorated(key: str) -> bytes:
            return await reduced(inner, key)

        return decorated, lambda: None, inner.close

    if variant == "stats":
        from async_reduce.hooks import StatisticsOverallHooks

        stats = StatisticsOverallHooks()
        reducer = AsyncReducer(hooks=stats)

        async def with_stats(key: str) -> bytes:
            return await reducer(inner.fetch(key))

        return with_stats, lambda: str(stats), inner.close

    if variant == "pool":
        # Looked up at run time: the pool is newer than the 1.x API this
        # script otherwise keeps to.
        pool_cls: Any = importlib.import_module("async_reduce.pool").ConnectionPool
        await inner.close()
        pool: Any = pool_cls(SessionStrategy(inner_url), max_size=capacity)

        async def pooled(key: str) -> bytes:
            result: bytes = await pool.run(fetch_on, inner_url, key)
            return result

        return pooled, lambda: None, pool.close

    raise ValueError(f"variant: unknown {variant!r}; expected one of {VARIANTS}")


def version() -> str | None:
    """The installed async-reduce version, or None if it is not installed."""
    try:
        return importlib.metadata.version("async-reduce")
    except importlib.metadata.PackageNotFoundError:
        return None


async def serve(variant: str, inner_url: str, capacity: int, port: int) -> None:
    """Serve until SIGTERM/SIGINT."""
    fetch, statistics, close = await build(variant, inner_url, capacity)
    counters = {"served": 0, "failed": 0}

    async def item(request: web.Request) -> web.Response:
        try:
            body = await fetch(request.match_info["key"])
        except Exception:
            counters["failed"] += 1
            raise
        counters["served"] += 1
        return web.Response(body=body, content_type="application/json")

    async def stats(request: web.Request) -> web.Response:
        # process_time() is this process's CPU clock (ns resolution); the
        # harness also reads the coarser /proc figure through psutil.
        return web.json_response(
            {**counters, "cpu": time.process_time(), "statistics": statistics()}
        )

    app = web.Application()
    app.router.add_get("/item/{key}", item)
    app.router.add_get("/_stats", stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096)
        await site.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        ready = {
            "port": runner.addresses[0][1],
            "pid": os.getpid(),
            "async_reduce": version(),
        }
        print(json.dumps(ready), flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()
        await close()


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    parser.add_argument("--inner-url", required=True)
    parser.add_argument("--capacity", type=int, default=32)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args(argv)
    coro = serve(args.variant, args.inner_url, args.capacity, args.port)
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(coro)
    else:
        asyncio.run(coro)


if __name__ == "__main__":
    main()
