"""The coroutine a fleet reducer hands to its local reducer."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar

__all__ = ["FleetWork"]

T = TypeVar("T")


class FleetWork(Coroutine[Any, Any, T]):
    """Wraps the caller's work so that the local reducer can coalesce it.

    The local reducer either runs it (then it coordinates with the fleet and
    maybe runs the work) or closes it unused (then the caller's coroutine, if
    there is one, is closed too, so it is never reported as never awaited).
    ``cr_code``, ``cr_frame``, ``__name__`` and ``__qualname__`` are those of
    the caller's coroutine (or function), so hooks show the caller's function.
    """

    __slots__ = (
        "_coro",
        "_factory",
        "_inner",
        "_origin",
        "_start",
        "cr_code",
        "cr_frame",
    )

    def __init__(
        self,
        start: Callable[[FleetWork[T]], Coroutine[Any, Any, T]],
        coro: Coroutine[Any, Any, T] | None,
        factory: Callable[[], Coroutine[Any, Any, T]] | None,
        origin: Any = None,
    ) -> None:
        self._start = start
        self._coro = coro
        self._factory = factory
        self._inner: Coroutine[Any, Any, T] | None = None
        self._origin = coro if coro is not None else origin
        self.cr_code = getattr(coro, "cr_code", None) or getattr(
            origin, "__code__", None
        )
        self.cr_frame = getattr(coro, "cr_frame", None)

    def __getattr__(self, name: str) -> Any:
        # Hooks name the work after the caller's function.
        if name in ("__name__", "__qualname__"):
            return getattr(self._origin, name)
        raise AttributeError(name)

    def take(self) -> Coroutine[Any, Any, T]:
        """The caller's coroutine, created now if it was deferred."""
        coro = self._coro
        if coro is not None:
            self._coro = None
            return coro
        factory = self._factory
        if factory is None:
            raise RuntimeError("the work was already taken")
        self._factory = None
        return factory()

    def _inner_coro(self) -> Coroutine[Any, Any, T]:
        inner = self._inner
        if inner is None:
            inner = self._inner = self._start(self)
        return inner

    def __await__(self) -> Generator[Any, None, T]:
        return self._inner_coro().__await__()

    def send(self, value: Any) -> Any:
        return self._inner_coro().send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None, /) -> Any:
        if self._inner is None:
            self.close()
            exc = typ if val is None else val
            if isinstance(exc, type):
                exc = exc()
            raise exc
        return self._inner.throw(typ if val is None else val)

    def discard(self) -> None:
        """The work will not run here: close the caller's coroutine, if any."""
        self._factory = None
        coro = self._coro
        if coro is not None:
            self._coro = None
            coro.close()

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()
        self._factory = None
        coro = self._coro
        if coro is not None:
            self._coro = None
            coro.close()
