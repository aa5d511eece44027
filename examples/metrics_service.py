"""An aiohttp service that coalesces lookups and exposes /metrics for Prometheus.

``GET /user/{id}`` looks a user up in a simulated slow store through a
reduced function: concurrent requests for one id share one lookup.
``GET /metrics`` serves the ``PrometheusHooks`` metrics of that reducer in the
Prometheus text format.

Usage::

    python examples/metrics_service.py              # serve on 127.0.0.1:8080
    python examples/metrics_service.py --port 9000
    python examples/metrics_service.py --self-test  # a burst, one scrape, exit

``--self-test`` starts the service on a free loopback port, sends a burst of
concurrent requests with an aiohttp client, scrapes ``/metrics`` once, prints
the ``async_reduce`` lines of the scrape and exits; it needs no network
access beyond 127.0.0.1 and finishes in about a second.

Needs ``pip install 'async-reduce[prometheus]' aiohttp``.
"""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import ClientSession, web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from async_reduce import AsyncReducer, async_reduceable
from async_reduce.contrib.prometheus import PrometheusHooks

HOST = "127.0.0.1"
STORE_LATENCY = 0.05  # seconds per lookup in the simulated store

REGISTRY = web.AppKey("registry", CollectorRegistry)

# One registry and one hooks object for the whole process; a real service
# would usually keep prometheus_client's default REGISTRY instead.
registry = CollectorRegistry()
reducer = AsyncReducer(hooks=PrometheusHooks(registry), timeout=2.0)


@async_reduceable(reducer)
async def load_user(user_id: int) -> dict[str, object]:
    """The slow lookup every concurrent request for one id shares."""
    await asyncio.sleep(STORE_LATENCY)
    if user_id == 0:
        raise LookupError("user 0 does not exist")
    return {"id": user_id, "name": f"user-{user_id}"}


async def user(request: web.Request) -> web.Response:
    """``GET /user/{id}``: the user as JSON, or 404."""
    try:
        user_id = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPBadRequest(text="id must be an integer") from None
    try:
        return web.json_response(await load_user(user_id))
    except LookupError as exc:
        raise web.HTTPNotFound(text=str(exc)) from None


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: the Prometheus text exposition."""
    body = generate_latest(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def make_app() -> web.Application:
    """The service: ``/user/{id}`` and ``/metrics``."""
    app = web.Application()
    app[REGISTRY] = registry
    app.router.add_get("/user/{id}", user)
    app.router.add_get("/metrics", metrics)
    return app


async def self_test() -> None:
    """Serve on a free port, send a burst, scrape once, print, stop."""
    runner = web.AppRunner(make_app(), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, HOST, 0)
        await site.start()
        port = runner.addresses[0][1]
        base = f"http://{HOST}:{port}"
        async with ClientSession() as session:

            async def get(path: str) -> int:
                async with session.get(base + path) as response:
                    await response.read()
                    return response.status

            # 200 concurrent requests over ids 0..4 (id 0 is a 404).
            statuses = await asyncio.gather(
                *(get(f"/user/{n % 5}") for n in range(200))
            )
            async with session.get(base + "/metrics") as response:
                scrape = await response.text()
        print(
            f"served {len(statuses)} requests "
            f"({statuses.count(200)} ok, {statuses.count(404)} not found)"
        )
        print(f"scraped {base}/metrics:")
        for line in scrape.splitlines():
            if line.startswith("async_reduce_") and not line.startswith(
                (
                    "async_reduce_execution_seconds_bucket",
                    "async_reduce_execution_callers_bucket",
                )
            ):
                print(f"  {line}")
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="serve a burst of requests, scrape /metrics once, print and exit",
    )
    args = parser.parse_args()
    if args.self_test:
        asyncio.run(self_test())
    else:
        web.run_app(make_app(), host=HOST, port=args.port)


if __name__ == "__main__":
    main()
