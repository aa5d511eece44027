"""Key rules over every shape of signature, for both ways of keying a call.

``reducer(coro)`` reads a coroutine's arguments from its frame (with a
separate path for ``typed=True`` and ``**kwargs``); ``@async_reduceable``
binds them through a binder generated for the function's signature (with a
generic fallback).  Each rule here names what a user relies on.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

import pytest

from async_reduce import AsyncReducer, async_reduceable
from async_reduce.hooks import BaseHooks

from .conftest import Gate


async def shared_runs(calls: list[Any], gate: Gate) -> int:
    """Run ``calls`` (coroutines) concurrently; how many executions started."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    await gate.running.wait()
    gate.release.set()
    await asyncio.gather(*tasks)
    return gate.started


# -- reducer(coro): every parameter kind ------------------------------------


class Mixed(Gate):
    async def call(self, a: int, *args: int, b: int = 1, **kw: int) -> Any:
        return await self.work((a, args, b, kw))


@pytest.mark.parametrize("typed", [False, True])
async def test_auto_keys_with_every_parameter_kind(typed: bool) -> None:
    """Calls share exactly when every argument is equal (**kwargs in any order)."""
    reducer = AsyncReducer(typed=typed)
    gate = Mixed()
    same = [
        gate.call(1, 2, 3, b=4, x=5, y=6),
        gate.call(1, 2, 3, b=4, y=6, x=5),
    ]
    different = [
        gate.call(1, 2, b=4, x=5, y=6),  # *args differ
        gate.call(1, 2, 3, b=9, x=5, y=6),  # keyword-only differs
        gate.call(1, 2, 3, b=4, x=5, y=7),  # **kwargs value differs
        gate.call(1, 2, 3, b=4, x=5),  # **kwargs keys differ
        gate.call(7, 2, 3, b=4, x=5, y=6),  # positional differs
    ]
    assert await shared_runs([reducer(c) for c in same + different], gate) == 6


@pytest.mark.parametrize("typed", [False, True])
async def test_auto_keys_tell_functions_apart_on_every_path(typed: bool) -> None:
    """Two functions with equal arguments never share, typed or with **kwargs."""
    reducer = AsyncReducer(typed=typed)
    gate = Gate()

    async def one(x: int, **kw: int) -> str:
        return f"one{await gate.work(x)}"

    async def two(x: int, **kw: int) -> str:
        return f"two{await gate.work(x)}"

    calls = [reducer(one(1, k=1)), reducer(two(1, k=1))]
    assert await shared_runs(calls, gate) == 2


@pytest.mark.parametrize("typed", [False, True])
def test_unhashable_argument_names_the_function_on_every_path(typed: bool) -> None:
    """An unhashable argument raises 1.x's TypeError naming the function, at once."""
    reducer = AsyncReducer(typed=typed)

    async def lookup(key: Any, **options: Any) -> None:
        return None

    for call in (lookup([1]), lookup(1, opt=[2])):
        try:
            with pytest.raises(TypeError, match=r"async_reduce\(lookup\(\.\.\.\), id"):
                reducer(call)
        finally:
            call.close()  # a refused call leaves the coroutine to its caller


async def test_hooks_see_distinct_idents_for_distinct_arguments() -> None:
    """Automatic keys are shown as location(<state_hash:N>), N differing by key."""
    shown: list[Any] = []

    class Idents(BaseHooks):
        def on_apply_for(self, coro: Any, ident: Any) -> None:
            shown.append(ident)

    reducer = AsyncReducer(hooks=Idents())

    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        return x

    assert await asyncio.gather(reducer(fetch(1)), reducer(fetch(2))) == [1, 2]
    location = f"{__name__}:{fetch.__qualname__}"
    assert all(ident.startswith(f"{location}(<state_hash:") for ident in shown)
    assert shown[0] != shown[1]


# -- @async_reduceable: the generated binder ----------------------------------


def reject_alike(
    fn: Callable[..., Any], decorated: Any, *args: Any, **kwargs: Any
) -> None:
    """Calling ``decorated`` wrongly raises the TypeError ``fn`` raises."""
    with pytest.raises(TypeError) as expected:
        fn(*args, **kwargs).close()
    with pytest.raises(TypeError) as got:
        decorated.key(*args, **kwargs)
    assert str(got.value) == str(expected.value)


def test_decorator_rejects_what_the_function_rejects() -> None:
    """Each parameter kind keeps its rules: the decorator raises the same TypeError."""

    async def f(a: int, /, b: int, *args: int, c: int, **kw: int) -> None:
        return None

    async def g(a: int, /) -> None:
        return None

    async def h(a: int, *, b: int) -> None:
        return None

    decorated = [async_reduceable(AsyncReducer())(fn) for fn in (f, g, h)]
    reject_alike(f, decorated[0], a=1, b=2, c=3)  # positional-only by keyword
    reject_alike(f, decorated[0], 1, 2)  # keyword-only missing
    reject_alike(g, decorated[1], a=1)  # the only parameter is positional-only
    reject_alike(g, decorated[1], 1, 2)
    reject_alike(h, decorated[2], 1, 2)  # keyword-only passed positionally
    reject_alike(h, decorated[2], 1, b=2, z=3)


@pytest.mark.parametrize("typed", [False, True])
async def test_decorator_keys_with_every_parameter_kind(typed: bool) -> None:
    """Decorated calls share exactly when their bound arguments are equal."""
    gate = Mixed()
    call = async_reduceable(AsyncReducer(), typed=typed)(gate.call)
    same = [call(1, 2, b=4, x=5, y=6), call(1, 2, y=6, x=5, b=4)]
    different = [call(1, b=4, x=5, y=6), call(1, 2, x=5, y=6), call(1, 2, b=4, x=5)]
    assert await shared_runs(same + different, gate) == 4


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ((1, 2), (1, 2.0)),  # *args
        ((1,), (1.0,)),  # positional
    ],
)
async def test_decorator_typed_applies_to_every_parameter_kind(
    a: tuple[Any, ...], b: tuple[Any, ...]
) -> None:
    """typed=True keeps equal values of other types apart: positional, *args, **kw."""
    gate = Mixed()
    typed = async_reduceable(AsyncReducer(), typed=True)(gate.call)
    untyped = async_reduceable(AsyncReducer())(gate.call)
    assert typed.key(*a) != typed.key(*b)
    assert typed.key(1, x=1) != typed.key(1, x=1.0)
    assert untyped.key(*a) == untyped.key(*b)
    assert untyped.key(1, x=1) == untyped.key(1, x=1.0)
    assert await shared_runs([untyped(*a), untyped(*b)], gate) == 1


@pytest.mark.parametrize("typed", [False, True])
async def test_decorator_binds_parameters_named_like_its_helpers(typed: bool) -> None:
    """Parameters of any name bind correctly, even names the binder uses itself."""

    async def f(_ar_type: Any, _ar_map: Any = 2, **_ar_frozenset: Any) -> Any:
        return (_ar_type, _ar_map, _ar_frozenset)

    async def g(_ar_type: Any, _ar_map: Any = 2, **_ar_frozenset: Any) -> Any:
        return (_ar_type, _ar_map, _ar_frozenset)

    reducer = AsyncReducer()
    df, dg = (async_reduceable(reducer, typed=typed)(fn) for fn in (f, g))
    assert df.key(1) == df.key(1, 2) == df.key(_ar_type=1, _ar_map=2)
    assert df.key(1, z=1) == df.key(1, 2, z=1) != df.key(1)
    assert df.key(1) != dg.key(1)  # scoped to the function
    assert (df.key(1) != df.key(1.0)) is typed
    assert await df(1, z=3) == (1, 2, {"z": 3})
    with pytest.raises(TypeError):  # the generic binder words it differently
        df.key(1, 2, 3)


def test_decorator_uses_the_functions_own_signature() -> None:
    """A function with __wrapped__ is bound by its own signature, not the wrapped."""

    async def inner(a: int, b: int) -> int:
        return a + b

    @functools.wraps(inner)
    async def outer(a: int) -> int:
        return await inner(a, 1)

    decorated = async_reduceable(AsyncReducer())(outer)
    assert decorated.key(1) == decorated.key(a=1)
    reject_alike(outer, decorated, 1, 2)


async def test_key_function_gets_every_argument() -> None:
    """key= receives the call's positional and keyword arguments."""
    seen: list[Any] = []

    def key(*args: Any, **kwargs: Any) -> Any:
        seen.append((args, kwargs))
        return (args, tuple(sorted(kwargs.items())))

    @async_reduceable(AsyncReducer(), key=key)
    async def f(a: int, b: int = 0) -> int:
        await asyncio.sleep(0)
        return a + b

    assert await f(1, b=2) == 3
    assert seen == [((1,), {"b": 2})]


async def test_hooks_see_the_key_function_value_as_ident() -> None:
    """With key=, hooks get the key function's value as ident; without, a location."""
    shown: list[Any] = []

    class Idents(BaseHooks):
        def on_apply_for(self, coro: Any, ident: Any) -> None:
            shown.append(ident)

    reducer = AsyncReducer(hooks=Idents())

    @async_reduceable(reducer, key=lambda user: f"user:{user}")
    async def keyed(user: int) -> int:
        await asyncio.sleep(0)
        return user

    @async_reduceable(reducer)
    async def plain(user: int) -> int:
        await asyncio.sleep(0)
        return user

    assert await keyed(7) == 7
    assert await plain(7) == 7
    assert shown[0] == "user:7"
    assert str(shown[1]).startswith(f"{__name__}:")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reducer": 3}, "got int"),
        ({"key": 3}, "key must be callable, got int"),
        ({"typed": "yes"}, "typed must be True or False"),
    ],
)
def test_decorator_errors_name_the_argument_and_its_type(
    kwargs: dict[str, Any], message: str
) -> None:
    """Wrong decorator arguments raise TypeError naming the argument and value."""
    options = dict(kwargs)  # the parameter's dict is shared by reruns
    reducer = options.pop("reducer", AsyncReducer())
    with pytest.raises(TypeError, match=message):
        async_reduceable(reducer, **options)
