"""How calls are keyed.

A key says "these two calls would do the same work".  Keys are compared as
dict keys, by hash *and* equality, so two calls share an execution only when
their keys are equal: unlike async-reduce 1.x, a hash collision (``hash(-1) ==
hash(-2)``) never makes two callers share a result.

* ``async_reduce(coro)``: the key is the coroutine's code object plus the
  values of its bound arguments and closure variables, read from the frame of
  the not-yet-started coroutine.  Two functions made by the same ``def`` differ
  by their closure values; for methods ``self`` is an argument like any other.
* ``@async_reduceable``: the key is the decorated function plus its arguments
  bound to its signature, so ``f(1, b=2)``, ``f(1, 2)`` and ``f(1)`` (with the
  default ``b=2``) share a key.  The binder is generated once per function, so
  keying a call costs one plain function call, not ``inspect.Signature.bind``.
* ``typed=True`` adds the type of every argument, as ``functools.lru_cache``
  does, so ``f(1)``, ``f(1.0)`` and ``f(True)`` stay apart.
"""

from __future__ import annotations

import inspect
import keyword
from collections.abc import Callable, Hashable
from types import CodeType
from typing import Any

__all__ = [
    "AUTO",
    "auto_key",
    "display_ident",
    "make_binder",
    "unhashable_error",
]

_CO_VARKEYWORDS = inspect.CO_VARKEYWORDS


class _AutoKeyMarker:
    """First element of every automatic key: no ``ident`` can equal one."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<auto>"


AUTO = _AutoKeyMarker()


def unhashable_error(name: str) -> TypeError:
    """The error async-reduce 1.x raised for unhashable arguments (users match it)."""
    return TypeError(
        "Unable to auto calculate identity for coroutine because using"
        " unhashable arguments, you should set `ident` manual like:"
        f'\n\tawait async_reduce({name}(...), ident="YOU-IDENT-FOR-THAT")'
    )


def _typed_values(code: CodeType, values: tuple[Any, ...]) -> tuple[Any, ...]:
    """The types of ``values`` (bound arguments, then closure values): of each
    item of ``*args``, of each value of ``**kwargs``, of every other value."""
    types: list[Any] = list(map(type, values))
    index = code.co_argcount + code.co_kwonlyargcount
    if code.co_flags & inspect.CO_VARARGS:
        if type(values[index]) is tuple:
            types[index] = tuple(map(type, values[index]))
        index += 1
    if code.co_flags & _CO_VARKEYWORDS and type(values[index]) is dict:
        types[index] = frozenset((k, type(v)) for k, v in values[index].items())
    return tuple(types)


def auto_key(coro: Any, typed: bool) -> tuple[Any, ...]:
    """The automatic key of a coroutine that has not started yet.

    The function is identified by ``id()`` of its code object: while a key is
    in flight its coroutine keeps that code object alive, so no other code
    object can have the same id, and an int hashes far faster than a code
    object (whose hash is recomputed from its contents on every call).

    ``**kwargs`` is keyed by its items; with ``typed``, the type of every
    argument is added, of each item of ``*args`` and each value of
    ``**kwargs`` too, so ``f(1)``, ``f(1.0)`` and ``f(True)`` of
    ``async def f(*a)`` are three keys.

    Raises:
        TypeError: with 1.x's message when an argument is unhashable.
    """
    code: CodeType = coro.cr_code
    values = tuple(coro.cr_frame.f_locals.values())
    types = _typed_values(code, values) if typed else ()
    if code.co_flags & _CO_VARKEYWORDS:
        index = code.co_argcount + code.co_kwonlyargcount
        if code.co_flags & inspect.CO_VARARGS:
            index += 1
        kwargs = values[index]
        if type(kwargs) is dict:
            values = (
                *values[:index],
                frozenset(kwargs.items()),
                *values[index + 1 :],
            )
    key: tuple[Any, ...] = (AUTO, id(code), *values, *types)
    try:
        hash(key)
    except TypeError:
        raise unhashable_error(getattr(coro, "__name__", "coroutine")) from None
    return key


def display_ident(location: str, key: Hashable) -> str:
    """How an automatic key is shown to hooks: ``module:qualname(<state_hash:N>)``."""
    return f"{location}(<state_hash:{hash(key)}>)"


def make_binder(
    fn: Callable[..., Any], typed: bool, scope: Any = None
) -> Callable[..., tuple[Any, ...]]:
    """Build ``bind(*args, **kwargs) -> tuple`` for ``fn``'s signature.

    The generated function has ``fn``'s parameters and defaults, so it accepts
    exactly the calls ``fn`` accepts (raising the same ``TypeError`` otherwise)
    and returns the argument values in signature order: every way of passing
    the same arguments gives the same tuple.  ``*args`` stays a tuple and
    ``**kwargs`` becomes a frozenset of its items.
    """
    signature = inspect.signature(fn, follow_wrapped=False)
    namespace: dict[str, Any] = {
        "_ar_frozenset": frozenset,
        "_ar_type": type,
        "_ar_map": map,
    }
    params: list[str] = []
    values: list[str] = []
    types: list[str] = []
    seen_kw_only = False
    positional_only_done = False
    has_positional_only = any(
        p.kind is p.POSITIONAL_ONLY for p in signature.parameters.values()
    )
    for index, param in enumerate(signature.parameters.values()):
        name = param.name
        if (
            not name.isidentifier()
            or keyword.iskeyword(name)
            or name.startswith("_ar_")
        ):
            # Cannot happen for a def-made function; keep the generic path.
            return _generic_binder(signature, typed, scope)
        if (
            has_positional_only
            and not positional_only_done
            and param.kind is not param.POSITIONAL_ONLY
        ):
            params.append("/")
            positional_only_done = True
        if param.kind is param.KEYWORD_ONLY and not seen_kw_only:
            params.append("*")
            seen_kw_only = True
        if param.kind is param.VAR_POSITIONAL:
            params.append(f"*{name}")
            seen_kw_only = True
            values.append(name)
            types.append(f"tuple(_ar_map(_ar_type, {name}))")
            continue
        if param.kind is param.VAR_KEYWORD:
            params.append(f"**{name}")
            values.append(f"(_ar_frozenset({name}.items()) if {name} else ())")
            types.append(
                "(_ar_frozenset((_ar_k, _ar_type(_ar_v))"
                f" for _ar_k, _ar_v in {name}.items()) if {name} else ())"
            )
            continue
        if param.default is param.empty:
            params.append(name)
        else:
            default_name = f"_ar_default_{index}"
            namespace[default_name] = param.default
            params.append(f"{name}={default_name}")
        values.append(name)
        types.append(f"_ar_type({name})")
    if has_positional_only and not positional_only_done:
        params.append("/")
    returned = values + types if typed else values
    fn_name = getattr(fn, "__name__", "")
    if not fn_name.isidentifier() or keyword.iskeyword(fn_name):
        fn_name = "_ar_bind"
    body = "(" + "".join(value + ", " for value in returned) + ")"
    if scope is not None:
        namespace["_ar_scope"] = scope
        body = f"(_ar_scope, {body})"
    source = f"def {fn_name}({', '.join(params)}):\n    return {body}\n"
    exec(source, namespace)
    binder: Callable[..., tuple[Any, ...]] = namespace[fn_name]
    binder.__qualname__ = getattr(fn, "__qualname__", fn_name)
    return binder


def _generic_binder(
    signature: inspect.Signature, typed: bool, scope: Any
) -> Callable[..., tuple[Any, ...]]:
    """Slow but general binder through ``inspect.Signature.bind``."""

    def bind(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = tuple(
            frozenset(value.items())
            if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD
            else value
            for name, value in bound.arguments.items()
        )
        if typed:
            values += tuple(map(type, bound.arguments.values()))
        return values if scope is None else (scope, values)

    return bind
