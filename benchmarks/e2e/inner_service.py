"""The inner service: a slow aiohttp server with a capacity limit that counts hits.

It stands in for a database behind a connection limit: every ``GET
/item/{key}`` is counted as it arrives, then waits for one of ``capacity``
slots and holds it for ``latency`` seconds.  ``GET /_hits`` returns the count
(and is not counted itself).

Run with ``python -m benchmarks.e2e.inner_service``; once listening it prints
one JSON line ``{"port": ..., "pid": ...}`` on stdout and serves until SIGTERM
or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal

from aiohttp import web


async def serve(latency: float, capacity: int) -> None:
    """Serve until SIGTERM/SIGINT."""
    slots = asyncio.Semaphore(capacity)
    hits = 0

    async def item(request: web.Request) -> web.Response:
        nonlocal hits
        hits += 1
        key = request.match_info["key"]
        async with slots:
            await asyncio.sleep(latency)
        return web.json_response({"key": key, "value": f"row {key}"})

    async def count(request: web.Request) -> web.Response:
        return web.json_response({"hits": hits})

    app = web.Application()
    app.router.add_get("/item/{key}", item)
    app.router.add_get("/_hits", count)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0, backlog=4096).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        ready = {"port": runner.addresses[0][1], "pid": os.getpid()}
        print(json.dumps(ready), flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(description="slow inner service")
    parser.add_argument("--latency", type=float, default=0.020)
    parser.add_argument("--capacity", type=int, default=32)
    args = parser.parse_args()
    asyncio.run(serve(args.latency, args.capacity))


if __name__ == "__main__":
    main()
