"""Per-location state with a bounded number of locations.

Hooks that keep figures per function location must not grow without bound
when a program creates coroutine functions dynamically (closures made per
request have distinct code objects, hence distinct locations): the first
``limit`` locations get their own entry, every later one shares the entry
named ``<other>``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

__all__ = ["DEFAULT_MAX_LOCATIONS", "OTHER_LOCATION", "LocationTable", "check_limit"]

OTHER_LOCATION = "<other>"
"""The name under which locations beyond the limit are counted."""

DEFAULT_MAX_LOCATIONS = 1000

T = TypeVar("T")


def check_limit(max_locations: object) -> int:
    """Validate a ``max_locations`` argument."""
    if isinstance(max_locations, bool) or not isinstance(max_locations, int):
        raise TypeError(
            f"max_locations must be an int, got {type(max_locations).__name__}"
        )
    if max_locations < 0:
        raise ValueError(f"max_locations must be >= 0, got {max_locations}")
    return max_locations


class LocationTable(Generic[T]):
    """Entries made by ``factory(name)``, one per location up to ``limit``.

    ``get`` returns the entry of a location, creating it while fewer than
    ``limit`` locations are known, otherwise the shared ``<other>`` entry.
    Locations once admitted keep their entry for the life of the table.
    """

    __slots__ = ("_entries", "_factory", "_limit", "_other")

    def __init__(self, limit: int, factory: Callable[[str], T]) -> None:
        self._limit = limit
        self._factory = factory
        self._entries: dict[str, T] = {}
        self._other: T | None = None

    def get(self, location: str) -> T:
        """The entry counting ``location``."""
        entry = self._entries.get(location)
        if entry is None:
            entry = self._admit(location)
        return entry

    def _admit(self, location: str) -> T:
        if len(self._entries) < self._limit:
            entry = self._entries[location] = self._factory(location)
            return entry
        other = self._other
        if other is None:
            other = self._other = self._factory(OTHER_LOCATION)
        return other

    def items(self) -> Iterator[tuple[str, T]]:
        """Every entry with its name, ``<other>`` last when it exists."""
        # A copy: the table may grow while a scraper thread iterates.
        yield from list(self._entries.items())
        if self._other is not None:
            yield OTHER_LOCATION, self._other

    def __len__(self) -> int:
        """Number of entries, ``<other>`` included."""
        return len(self._entries) + (self._other is not None)
