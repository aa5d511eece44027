"""End-to-end benchmark: what coalescing buys a real aiohttp service.

A front service (aiohttp, 127.0.0.1) fetches items from a slow, capacity-limited
inner service; a load generator in its own process drives it at fixed
concurrency levels with Zipf-distributed keys.  Variants: no reducer,
async-reduce 1.5, and this project's reducer used in several ways.

Run ``python -m benchmarks.e2e [--quick] [--json PATH]``; ``run()`` is the
programmatic entry point used by ``python -m benchmarks`` and the smoke test.
"""

from ._harness import FULL, QUICK, TINY, VARIANT_LABELS, Config, run

__all__ = ["FULL", "QUICK", "TINY", "VARIANT_LABELS", "Config", "run"]
