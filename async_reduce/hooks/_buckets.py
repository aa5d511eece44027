"""Default histogram buckets shared by the metrics exporters."""

from __future__ import annotations

__all__ = ["CALLERS_BUCKETS", "SECONDS_BUCKETS"]

# Coalesced work is mostly I/O between a fraction of a millisecond and a few
# seconds; the upper buckets catch stuck calls.
SECONDS_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)

# Callers served by one execution: 1 means coalescing did not help.
CALLERS_BUCKETS: tuple[float, ...] = (1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000)
