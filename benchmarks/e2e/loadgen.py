"""The load generator: an aiohttp client in its own process, driven over stdin.

Run with ``python -m benchmarks.e2e.loadgen``.  It reads one JSON command a
line on stdin and answers each with one JSON line on stdout:

* ``{"op": "open", "id": ID, "url": URL, "concurrency": C}`` opens a client
  session with at most ``C`` connections to the front service at ``URL`` and
  warms it up (one request per worker, keys from a seed of its own) so that
  the measured run starts with its connections established.
* ``{"op": "run", "id": ID, "requests": N, "time_limit": T, "zipf_s": S,
  "keys": K, "seed": SEED}`` sends up to ``N`` requests with Zipf keys from
  ``C`` concurrent workers, starting no new request after ``T`` seconds, waits
  for every request it sent, and answers with counts and latencies.
* ``{"op": "close", "id": ID}`` closes that session.

End of input closes every session and exits.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector

from ._zipf import zipf_keys

REQUEST_TIMEOUT = 120.0
WARMUP_SEED = 7919


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty list."""
    rank = max(1, min(len(ordered), round(fraction * len(ordered))))
    return ordered[rank - 1]


async def drive(
    session: ClientSession,
    url: str,
    keys: list[str],
    concurrency: int,
    time_limit: float,
) -> dict[str, Any]:
    """Send ``keys`` in order from ``concurrency`` workers; measure each request."""
    pending = iter(keys)
    latencies: list[float] = []
    failures = 0
    sent = 0
    start = time.perf_counter()
    deadline = start + time_limit
    last_done = start

    async def worker() -> None:
        nonlocal failures, sent, last_done
        for key in pending:
            sent_at = time.perf_counter()
            if sent_at >= deadline:
                return
            sent += 1
            try:
                async with session.get(f"{url}/item/{key}") as response:
                    await response.read()
                    ok = response.status == 200
            except (ClientError, TimeoutError):
                ok = False
            last_done = time.perf_counter()
            if ok:
                latencies.append(last_done - sent_at)
            else:
                failures += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    latencies.sort()
    elapsed = last_done - start
    result: dict[str, Any] = {
        "sent": sent,
        "ok": len(latencies),
        "failed": failures,
        "elapsed": elapsed,
        "rps": len(latencies) / elapsed if elapsed > 0 else 0.0,
    }
    if latencies:
        result.update(
            p50=percentile(latencies, 0.50),
            p99=percentile(latencies, 0.99),
            max=latencies[-1],
            mean=sum(latencies) / len(latencies),
        )
    return result


class LoadGenerator:
    """The sessions opened by the harness, by id."""

    def __init__(self) -> None:
        self.sessions: dict[str, tuple[ClientSession, str, int]] = {}

    async def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        """Run one command and return its answer."""
        op = command["op"]
        ident = str(command["id"])
        if op == "open":
            if ident in self.sessions:  # left open by a run that failed
                await self.sessions.pop(ident)[0].close()
            concurrency = int(command["concurrency"])
            session = ClientSession(
                connector=TCPConnector(limit=concurrency, force_close=False),
                timeout=ClientTimeout(total=REQUEST_TIMEOUT),
            )
            self.sessions[ident] = (session, command["url"], concurrency)
            warm = zipf_keys(concurrency, s=1.0, keys=100, seed=WARMUP_SEED)
            return await drive(session, command["url"], warm, concurrency, 60.0)
        if op == "run":
            session, url, concurrency = self.sessions[ident]
            keys = zipf_keys(
                int(command["requests"]),
                s=float(command["zipf_s"]),
                keys=int(command["keys"]),
                seed=int(command["seed"]),
            )
            return await drive(
                session, url, keys, concurrency, float(command["time_limit"])
            )
        if op == "close":
            session, _, _ = self.sessions.pop(ident)
            await session.close()
            return {"closed": ident}
        raise ValueError(f"op: unknown {op!r}")

    async def close(self) -> None:
        """Close every session still open."""
        for session, _, _ in self.sessions.values():
            await session.close()
        self.sessions.clear()


async def main() -> None:
    """Serve commands from stdin until it closes."""
    generator = LoadGenerator()
    try:
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                return
            try:
                answer = await generator.handle(json.loads(line))
            except Exception as exc:
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(answer), flush=True)
    finally:
        await generator.close()


if __name__ == "__main__":
    asyncio.run(main())
