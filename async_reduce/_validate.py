"""Argument checks shared by the public entry points.

Every check raises at the call that passed the bad value and names the
argument, so the error points at the caller's mistake, not at some later
await.
"""

from __future__ import annotations

import enum
import inspect
import math
from collections.abc import Iterable
from typing import Any, Final, Literal

__all__ = [
    "UNSET",
    "Unset",
    "check_bool",
    "check_hooks",
    "check_orphans",
    "check_share_for",
    "check_timeout",
]


class Unset(enum.Enum):
    """Marker for "argument not given" where ``None`` is a meaningful value."""

    UNSET = enum.auto()

    def __repr__(self) -> str:
        return "<unset>"


UNSET: Final = Unset.UNSET

Orphans = Literal["cancel", "finish"]


def check_timeout(value: Any, name: str = "timeout") -> float | None:
    """A timeout is ``None`` (wait forever) or a finite number of seconds > 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{name} must be a number of seconds or None, got {type(value).__name__}"
        )
    if not value > 0 or math.isinf(value):
        raise ValueError(
            f"{name} must be a finite number of seconds > 0, got {value!r}"
        )
    return float(value)


def check_orphans(value: Any) -> Orphans:
    """``orphans`` is ``"cancel"`` or ``"finish"``."""
    if value == "cancel" and isinstance(value, str):
        return "cancel"
    if value == "finish" and isinstance(value, str):
        return "finish"
    raise ValueError(f"orphans must be 'cancel' or 'finish', got {value!r}")


def check_bool(value: Any, name: str) -> bool:
    """Flags are real booleans (``typed=1`` is more likely a mistake)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def check_share_for(value: Any) -> float:
    """``share_for`` is a finite number of seconds >= 0 (0: no reuse)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"share_for must be a number of seconds, got {type(value).__name__}"
        )
    if not value >= 0 or math.isinf(value):
        raise ValueError(f"share_for must be a finite number >= 0, got {value!r}")
    return float(value)


def _members(hooks: Any) -> Iterable[Any]:
    """``hooks`` itself, or the members of a composition of hooks."""
    members = getattr(hooks, "hooks_list", None)
    if isinstance(members, list):
        for member in members:
            yield from _members(member)
    else:
        yield hooks


def check_hooks(hooks: Any, required: Iterable[str], optional: Iterable[str]) -> None:
    """``hooks`` is a hooks *instance* whose hook methods are synchronous.

    Args:
        required: methods every hooks object has (1.x's five).
        optional: newer methods a 1.x-style object may lack.

    Raises:
        TypeError: ``hooks`` is a class, lacks a required method, or defines
            a hook method with ``async def`` (it would never run: hooks are
            called synchronously, inside the call they observe).
    """
    required = tuple(required)
    if isinstance(hooks, type):
        raise TypeError(
            f"hooks must be a hooks object, got the class {hooks.__qualname__};"
            f" pass an instance: hooks={hooks.__qualname__}()"
        )
    if not all(callable(getattr(hooks, name, None)) for name in required):
        raise TypeError(
            "hooks must provide the hook methods of async_reduce.hooks.BaseHooks"
            f" ({', '.join(required)}), got {hooks!r}"
        )
    for member in _members(hooks):
        for name in (*required, *optional):
            method = getattr(member, name, None)
            if inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(
                method
            ):
                raise TypeError(
                    f"hooks are synchronous: {type(member).__qualname__}.{name}"
                    " is defined with async def and would never run; define it"
                    " with def (start a task from it for asynchronous work)"
                )
