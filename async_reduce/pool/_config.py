"""Argument checks for the pool's constructor and ``resize``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .._validate import check_timeout

__all__ = [
    "DEFAULT_CHECK_TIMEOUT",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_CONNECTING",
    "Settings",
    "check_backoff",
    "check_check_after",
    "check_max_connecting",
    "check_sizes",
    "check_timeout",
]

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_CHECK_TIMEOUT = 5.0
DEFAULT_MAX_CONNECTING = 2


@dataclass(frozen=True, slots=True)
class Settings:
    """The constructor's validated arguments, as the pool's layers read them.

    The size limits here are the initial ones; ``resize()`` and the
    ``max_size``/``burst_limit`` setters change the pool's live copies.
    """

    sizes: tuple[int, int | None, int]
    acquire_timeout: float | None
    max_lifetime: float | None
    idle_timeout: float | None
    borrow_timeout: float | None
    check_after: float
    check_timeout: float | None
    connect_timeout: float | None
    max_connecting: int
    reconnect_backoff: tuple[float, float]


def _check_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return value


def check_sizes(
    max_size: Any, burst_limit: Any, min_size: Any
) -> tuple[int, int | None, int]:
    """``1 <= max_size``, ``max_size <= burst_limit``, ``0 <= min_size <= max_size``."""
    max_size = _check_int(max_size, "max_size")
    if max_size < 1:
        raise ValueError(f"max_size must be >= 1, got {max_size}")
    if burst_limit is not None:
        burst_limit = _check_int(burst_limit, "burst_limit")
        if burst_limit < max_size:
            # The first words are asyncio-connection-pool's message, which
            # its users' tests match.
            raise ValueError(
                "burst_limit must be greater than or equal to max_size "
                f"(or None), got burst_limit={burst_limit}, max_size={max_size}"
            )
    min_size = _check_int(min_size, "min_size")
    if not 0 <= min_size <= max_size:
        raise ValueError(
            f"min_size must be between 0 and max_size ({max_size}), got {min_size}"
        )
    return max_size, burst_limit, min_size


def check_check_after(value: Any) -> float:
    """``check_after`` is seconds >= 0, or ``None`` (never check)."""
    if value is None:
        return math.inf
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            "check_after must be a number of seconds or None, "
            f"got {type(value).__name__}"
        )
    if not 0 <= value < math.inf:
        raise ValueError(
            f"check_after must be a finite number of seconds >= 0, got {value!r}"
        )
    return float(value)


def check_backoff(value: Any) -> tuple[float, float]:
    """``reconnect_backoff`` is ``(initial, maximum)``, ``0 < initial <= maximum``."""
    try:
        initial, maximum = value
    except (TypeError, ValueError):
        raise TypeError(
            f"reconnect_backoff must be a pair (initial, maximum), got {value!r}"
        ) from None
    initial = check_timeout(initial, "reconnect_backoff[0]")
    maximum = check_timeout(maximum, "reconnect_backoff[1]")
    if initial is None or maximum is None or maximum < initial:
        raise ValueError(
            "reconnect_backoff must be (initial, maximum) seconds with "
            f"0 < initial <= maximum, got {value!r}"
        )
    return initial, maximum


def check_max_connecting(value: Any) -> int:
    """``max_connecting`` is an int >= 1."""
    number = _check_int(value, "max_connecting")
    if number < 1:
        raise ValueError(f"max_connecting must be >= 1, got {number}")
    return number
