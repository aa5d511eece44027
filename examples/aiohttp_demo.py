"""What coalescing buys an aiohttp service: the same burst, without and with it.

Two real aiohttp servers run on 127.0.0.1 (ports picked by the OS):

* the *inner service* stands in for a database: every request takes 50 ms and
  at most 10 run at a time (like a connection limit); it counts its hits;
* the *front service* answers ``/plain/{key}`` and ``/reduced/{key}``; both
  fetch the item from the inner service through an aiohttp client, the second
  through ``AsyncReducer``, so concurrent requests for one key share one
  inner call.

A client sends the same bounded burst to each route (500 requests over 5 keys,
100 at a time) and the demo prints, per route, the inner-service calls and the
latency seen by the client, then the reducer's ``StatisticsOverallHooks``.

Run it with ``make demo`` (or ``.venv/bin/python examples/aiohttp_demo.py``).
Only the API shared with async-reduce 1.x is used, so it runs with 1.5 too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from async_reduce import AsyncReducer
from async_reduce.hooks import StatisticsOverallHooks

HOST = "127.0.0.1"
INNER_LATENCY = 0.05  # seconds per inner request
INNER_CAPACITY = 10  # inner requests served at a time
REQUESTS = 500
KEYS = 5
CONCURRENCY = 100

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HITS = web.AppKey("hits", list)
SESSION = web.AppKey("session", ClientSession)
INNER_URL = web.AppKey("inner_url", str)
REDUCER = web.AppKey("reducer", AsyncReducer)


# --- the inner service: slow, limited, counting ------------------------------


def make_inner_app() -> web.Application:
    """Build the inner service; ``app[HITS]`` records one entry per request."""
    capacity = asyncio.Semaphore(INNER_CAPACITY)

    async def item(request: web.Request) -> web.Response:
        key = request.match_info["key"]
        request.app[HITS].append(key)
        async with capacity:
            await asyncio.sleep(INNER_LATENCY)
        return web.json_response({"key": key, "value": f"value of {key}"})

    app = web.Application()
    app[HITS] = []
    app.router.add_get("/item/{key}", item)
    return app


# --- the front service --------------------------------------------------------


async def fetch_item(session: ClientSession, inner_url: str, key: str) -> Any:
    """Fetch one item from the inner service."""
    async with session.get(f"{inner_url}/item/{key}") as response:
        response.raise_for_status()
        return await response.json()


async def plain(request: web.Request) -> web.Response:
    """Every request makes its own inner call."""
    app = request.app
    item = await fetch_item(app[SESSION], app[INNER_URL], request.match_info["key"])
    return web.json_response(item)


async def reduced(request: web.Request) -> web.Response:
    """Concurrent requests for one key share one inner call.

    The automatic key is ``fetch_item`` plus its arguments, so requests for
    different keys never share a result.
    """
    app = request.app
    coro = fetch_item(app[SESSION], app[INNER_URL], request.match_info["key"])
    item = await app[REDUCER](coro)
    return web.json_response(item)


def make_front_app(inner_url: str, reducer: AsyncReducer) -> web.Application:
    """Build the front service; its client session lives as long as the app."""

    async def client_session(app: web.Application) -> Any:
        # No connection limit of our own: the inner service's capacity is the
        # only bottleneck, as with a database pool sized to the database.
        async with ClientSession(connector=TCPConnector(limit=0)) as session:
            app[SESSION] = session
            yield

    app = web.Application()
    app[INNER_URL] = inner_url
    app[REDUCER] = reducer
    app.cleanup_ctx.append(client_session)
    app.router.add_get("/plain/{key}", plain)
    app.router.add_get("/reduced/{key}", reduced)
    return app


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Start ``app`` on a free loopback port; return its runner and base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://{HOST}:{port}"


# --- the load -----------------------------------------------------------------


async def burst(session: ClientSession, url: str) -> list[float]:
    """Send REQUESTS requests over KEYS keys, CONCURRENCY at a time.

    Returns the latency of every request in seconds.
    """
    latencies: list[float] = []
    queue: asyncio.Queue[str] = asyncio.Queue()
    for i in range(REQUESTS):
        queue.put_nowait(f"key-{i % KEYS}")

    async def worker() -> None:
        while not queue.empty():
            key = queue.get_nowait()
            start = time.perf_counter()
            async with session.get(f"{url}/{key}") as response:
                response.raise_for_status()
                await response.read()
            latencies.append(time.perf_counter() - start)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of ``values`` (``fraction`` in 0..1)."""
    ordered = sorted(values)
    rank = max(1, round(fraction * len(ordered)))
    return ordered[rank - 1]


async def main() -> None:
    """Run both bursts and print the comparison."""
    stats = StatisticsOverallHooks()
    reducer = AsyncReducer(hooks=stats)

    inner_app = make_inner_app()
    inner_runner, inner_url = await serve(inner_app)
    front_runner, front_url = await serve(make_front_app(inner_url, reducer))
    rows = []
    try:
        connector = TCPConnector(limit=CONCURRENCY)
        timeout = ClientTimeout(total=30)
        async with ClientSession(connector=connector, timeout=timeout) as client:
            for variant in ("plain", "reduced"):
                hits = inner_app[HITS]
                hits_before = len(hits)
                latencies = await burst(client, f"{front_url}/{variant}")
                rows.append(
                    (
                        "no reducer" if variant == "plain" else "async_reduce",
                        len(latencies),
                        len(hits) - hits_before,
                        percentile(latencies, 0.50) * 1000,
                        percentile(latencies, 0.99) * 1000,
                    )
                )
    finally:
        await front_runner.cleanup()
        await inner_runner.cleanup()

    print(
        f"{REQUESTS} requests over {KEYS} keys, {CONCURRENCY} at a time; inner "
        f"service: {INNER_LATENCY * 1000:.0f} ms a request, "
        f"{INNER_CAPACITY} at a time\n"
    )
    header = ("variant", "requests", "inner calls", "p50 ms", "p99 ms")
    print(f"{header[0]:<14}{header[1]:>10}{header[2]:>13}{header[3]:>9}{header[4]:>9}")
    for name, requests, calls, p50, p99 in rows:
        print(f"{name:<14}{requests:>10}{calls:>13}{p50:>9.1f}{p99:>9.1f}")
    print(f"\nStatisticsOverallHooks: {stats}")


if __name__ == "__main__":
    asyncio.run(main())
