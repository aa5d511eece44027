"""What makes two uses the same service.

The identity of a service is its factory plus the factory's arguments bound
to its signature, so ``use(db, "x")``, ``use(db, dsn="x")`` and (when the
factory's ``pool_size`` defaults to 10) ``use(db, "x", pool_size=10)`` are one
service.  Values are compared by equality, as the reducer compares keys
(``1 == 1.0``), never by hash alone.  An explicit ``name=`` replaces all of
that.

The common call (positional arguments matching the factory's plain
parameters one for one) builds its key without binding; everything else goes
through ``inspect.Signature.bind`` once per call.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable
from typing import Any

from .._location import function_location

__all__ = ["Identity", "StartIdent", "display_name"]

_KIND = inspect.Parameter


class _Named:
    """First element of a key given by ``name=``: equal to no factory key."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<named>"


NAMED = _Named()


class Identity:
    """Computes keys for one factory."""

    __slots__ = ("factory", "name", "plain", "signature")

    def __init__(self, factory: Callable[..., Any]) -> None:
        self.factory = factory
        self.name = display_name(factory)
        try:
            signature: inspect.Signature | None = inspect.signature(factory)
        except (TypeError, ValueError):  # builtins without a signature
            signature = None
        self.signature = signature
        plain = -1
        if signature is not None and all(
            p.kind in (_KIND.POSITIONAL_ONLY, _KIND.POSITIONAL_OR_KEYWORD)
            for p in signature.parameters.values()
        ):
            plain = len(signature.parameters)
        # Number of positional arguments that bind one for one, or -1.
        self.plain = plain

    def key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
        """The service key of ``factory(*args, **kwargs)``.

        Raises:
            TypeError: the arguments do not fit the factory's signature, or
                one of them is unhashable.
        """
        if not kwargs and len(args) == self.plain:
            key: Hashable = (self.factory, args)
        else:
            key = (self.factory, self._bound(args, kwargs))
        try:
            hash(key)
        except TypeError:
            raise TypeError(
                f"use({self.name}, ...): an argument is unhashable, so the service"
                " cannot be identified by its arguments; pass name= to name it"
            ) from None
        return key

    def _bound(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
        signature = self.signature
        if signature is None:
            return (args, frozenset(kwargs.items()))
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"use({self.name}, ...): {exc}") from None
        bound.apply_defaults()
        parameters = signature.parameters
        values = []
        for name, value in bound.arguments.items():
            if parameters[name].kind is _KIND.VAR_KEYWORD:
                values.append(frozenset(value.items()))
            else:
                values.append(value)
        return tuple(values)


def display_name(factory: Callable[..., Any]) -> str:
    """``module:qualname`` of a factory (of the function it wraps, if any)."""
    return function_location(inspect.unwrap(factory))


class StartIdent:
    """The reducer ident under which one scope starts one service.

    Equal for equal (scope, key) pairs, so concurrent first users share one
    start; shown to hooks by the service's name only, never its arguments.
    """

    __slots__ = ("_hash", "key", "name", "scope")

    def __init__(self, scope: object, key: Hashable, name: str) -> None:
        self.scope = scope
        self.key = key
        self.name = name
        self._hash = hash((id(scope), key))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StartIdent):
            return NotImplemented
        return self.scope is other.scope and self.key == other.key

    def __repr__(self) -> str:
        return f"<start of service {self.name}>"
