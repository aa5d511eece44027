"""Why py-asyncutils' AdvancedPool is not a baseline of ``workers_bench``.

It needs Python 3.12 or later, so it runs in a venv of its own::

    python3.12 -m venv /tmp/asyncutils-venv
    /tmp/asyncutils-venv/bin/pip install py-asyncutils==1.3.4
    /tmp/asyncutils-venv/bin/python benchmarks/_asyncutils_probe.py

It makes one call, then 50, and reports how many completed within 5 seconds
and how many worker threads were alive.
"""

from __future__ import annotations

import asyncio
import threading

from asyncutils.pools import AdvancedPool  # type: ignore[import-not-found]

WAIT = 5.0
thread_errors: list[str] = []


def record(args: threading.ExceptHookArgs) -> None:
    thread_errors.append(f"{args.exc_type.__name__}: {args.exc_value}")


threading.excepthook = record


def double(x: int) -> int:
    return 2 * x


def workers() -> int:
    return threading.active_count() - 1


def report(what: str, completed: int) -> None:
    print(f"{what}: {completed} completed in {WAIT:.0f} s;", end=" ")
    print(f"worker threads alive: {workers()}; threads that died: {len(thread_errors)}")
    for error in sorted(set(thread_errors)):
        print("   ", error)
    thread_errors.clear()


async def one_call() -> None:
    pool = AdvancedPool(max_workers=4, min_workers=1)
    future = pool.submit_nowait(double, 21)
    done, _ = await asyncio.wait([future], timeout=WAIT)
    report("1 call", len(done))


async def many_calls(n: int = 50) -> None:
    pool = AdvancedPool(max_workers=4, min_workers=1)
    futures = [pool.submit_nowait(double, i) for i in range(n)]
    done, _ = await asyncio.wait(futures, timeout=WAIT)
    report(f"{n} calls", len(done))


if __name__ == "__main__":
    asyncio.run(one_call())
    asyncio.run(many_calls())
