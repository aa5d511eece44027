"""Request keys with a Zipf (power-law) popularity, reproducible from a seed."""

from __future__ import annotations

import itertools
import math
import random


def zipf_keys(count: int, *, s: float, keys: int, seed: int) -> list[str]:
    """Return ``count`` keys drawn from ``keys`` names with Zipf exponent ``s``.

    The key of popularity rank ``r`` (1-based) is drawn with probability
    proportional to ``r ** -s``; names are ``k<r>``.  The same arguments give
    the same list on the same Python version.
    """
    if count < 0:
        raise ValueError(f"count: must be >= 0, got {count}")
    if keys < 1:
        raise ValueError(f"keys: must be >= 1, got {keys}")
    if s < 0:
        raise ValueError(f"s: must be >= 0, got {s}")
    cumulative = list(itertools.accumulate(math.pow(r, -s) for r in range(1, keys + 1)))
    names = [f"k{r}" for r in range(1, keys + 1)]
    return random.Random(seed).choices(names, cum_weights=cumulative, k=count)


def top_share(*, s: float, keys: int) -> float:
    """Probability of the most popular key."""
    return 1.0 / sum(math.pow(r, -s) for r in range(1, keys + 1))
