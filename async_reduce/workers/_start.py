"""The coroutine a worker pool hands to the reducer for a coalesced call.

The reducer either awaits it (this call starts the shared execution: the job
is queued) or closes it unused (the call joined an identical one in flight).
It is a small :class:`collections.abc.Coroutine` rather than a native
coroutine so that closing it unused can give back the queue room reserved
for it, which a native coroutine that never started cannot do.

For hooks it looks like a coroutine of the blocking function: ``cr_code`` is
the function's code object, so hooks report the function's location.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Generator, Hashable
from types import CodeType
from typing import TYPE_CHECKING, Any, TypeVar

from .._location import function_location
from ._state import Ticket

if TYPE_CHECKING:
    from ._pool import WorkerPool

__all__ = ["IDENT", "CallKey", "Start"]

R = TypeVar("R")


class CallKey(tuple):  # type: ignore[type-arg]
    """The reducer key of a coalesced call: ``(pool, fn, args, types[, kwargs])``
    or ``(pool, IDENT, ident)``, compared and hashed as a tuple (in C).

    Hooks show keys (``DebugHooks`` logs them), so its ``repr`` names the
    pool and the function, never the arguments or the ident.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        pool = self[0]
        what = "ident" if self[1] is IDENT else function_location(self[1])
        return f"<{pool.name}:{what}(<key_hash:{hash(self) & 0xFFFFFF:06x}>)>"


class _Ident:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<ident>"


IDENT: Any = _Ident()
"""Second item of the key of a call coalesced by ``ident=``."""


class Start(Coroutine[Any, Any, R]):
    """Queue ``fn(*args, **kwargs)`` on the pool when awaited."""

    __slots__ = (
        "_args",
        "_fn",
        "_gen",
        "_key",
        "_kwargs",
        "_pool",
        "_priority",
        "_ticket",
    )

    cr_frame = None

    def __init__(
        self,
        pool: WorkerPool,
        fn: Callable[..., R],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        priority: int,
        ticket: Ticket | None,
        key: Hashable,
    ) -> None:
        self._pool = pool
        self._key = key
        self._fn = fn
        self._args = args
        self._kwargs = kwargs
        self._priority = priority
        self._ticket = ticket
        self._gen: Generator[Any, None, R] | None = None

    @property
    def cr_code(self) -> CodeType | None:
        """The blocking function's code object (for hook locations)."""
        return getattr(self._fn, "__code__", None)

    def __repr__(self) -> str:
        name = getattr(self._fn, "__qualname__", None) or repr(self._fn)
        return f"<worker call {name}>"

    def __await__(self) -> Generator[Any, None, R]:
        gen = self._gen
        if gen is None:
            coro = self._pool._execute(
                self._fn,
                self._args,
                self._kwargs,
                self._priority,
                self._ticket,
                self._key,
            )
            gen = self._gen = coro.__await__()
        return gen

    def send(self, value: Any) -> Any:
        """Drive the call, as a task does."""
        return self.__await__().send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None, /) -> Any:
        """Raise an exception inside the call."""
        if self._gen is None:
            # Cancelled before it started: no call was joined.
            self._gen = _closed()
            self._pool._state.release(self._ticket)
            exc = typ if val is None else val
            if isinstance(exc, type):
                exc = exc()
            raise exc
        return self._gen.throw(typ if val is None else val)

    def close(self) -> None:
        """Closed before it ran: the call joined another; give back its room."""
        gen = self._gen
        if gen is None:
            self._gen = _closed()
            self._pool._joined(self._ticket)
        else:
            gen.close()


def _closed() -> Generator[Any, None, Any]:
    raise RuntimeError("cannot reuse a closed worker call")
    yield  # pragma: no cover - makes this a generator
