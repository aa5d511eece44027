"""A fixed-size histogram of durations with logarithmic buckets.

Recording costs one ``math.frexp`` and a list increment; memory is a constant
274 counters whatever the number of values.  Each power of two between about
one microsecond and four and a half hours is split into eight equal buckets,
so a reported percentile (the middle of its bucket) is within 6.25% of the
true value; values outside that range fall into an underflow or an overflow
bucket, and the exact maximum is kept besides.
"""

from __future__ import annotations

from math import ceil, frexp

__all__ = ["LogHistogram"]

_SUB = 8  # buckets per power of two
_LOW_EXP = -19  # frexp exponent of the first regular bucket: [2**-20, 2**-19)
_HIGH_EXP = 14  # frexp exponent of the last regular bucket: [2**13, 2**14)
_LOWEST = 2.0**-20  # ~0.95 microseconds; smaller values underflow
_HIGHEST = 2.0**14  # ~4.55 hours; larger values overflow
_OVERFLOW = (_HIGH_EXP - _LOW_EXP + 1) * _SUB + 1
_TWICE_SUB = 2 * _SUB
# Index of a regular value: exponent * _SUB + step + _SHIFT, with step in
# [_SUB, 2 * _SUB); the smallest regular value lands in bucket 1.
_SHIFT = 1 - _LOW_EXP * _SUB - _SUB
_SIZE = _OVERFLOW + 1


def _bucket_bounds(index: int) -> tuple[float, float]:
    """Lower and upper bound of regular bucket ``index``."""
    octave, step = divmod(index - 1, _SUB)
    base = 2.0 ** (octave + _LOW_EXP - 1)
    return base * (1 + step / _SUB), base * (1 + (step + 1) / _SUB)


class LogHistogram:
    """Counts of non-negative values (seconds) in fixed logarithmic buckets.

    Not thread-safe: meant to be updated from one event loop's thread.
    """

    __slots__ = ("_counts", "count", "max", "total")

    def __init__(self) -> None:
        self._counts = [0] * _SIZE
        self.count = 0
        self.total = 0.0
        self.max = 0.0

    def record(self, value: float) -> None:
        """Add one value."""
        self.count += 1
        self.total += value
        if value > self.max:
            self.max = value
        if _LOWEST <= value < _HIGHEST:
            mantissa, exponent = frexp(value)
            # mantissa is in [0.5, 1): int(mantissa * 2 * _SUB) picks one of
            # the _SUB steps of the octave, from _SUB to 2 * _SUB - 1.
            self._counts[exponent * _SUB + int(mantissa * _TWICE_SUB) + _SHIFT] += 1
        elif value < _LOWEST:
            self._counts[0] += 1
        else:  # overflow, inf and nan
            self._counts[_OVERFLOW] += 1

    def quantile(self, fraction: float) -> float:
        """The value below which ``fraction`` of the recorded values lie.

        Returns the middle of the bucket holding that value, never more than
        the recorded maximum; 0.0 when nothing was recorded.
        """
        if self.count == 0:
            return 0.0
        # The epsilon keeps 0.7 * 10 (7.000000000000001) at rank 7.
        rank = max(1, ceil(fraction * self.count - 1e-9))
        seen = 0
        index = 0
        for count in self._counts:
            seen += count
            if seen >= rank:
                break
            index += 1
        if index == 0:
            value = _LOWEST / 2
        elif index == _OVERFLOW:
            value = self.max
        else:
            low, high = _bucket_bounds(index)
            value = (low + high) / 2
        return min(value, self.max)

    @property
    def mean(self) -> float:
        """Mean of the recorded values; 0.0 when nothing was recorded."""
        return self.total / self.count if self.count else 0.0

    def clear(self) -> None:
        """Forget every recorded value."""
        self._counts = [0] * _SIZE
        self.count = 0
        self.total = 0.0
        self.max = 0.0
