"""Keys: calls share an execution only when their keys are equal."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from async_reduce import AsyncReducer, async_reduceable

from .conftest import Gate


async def balance(user_id: int) -> int:
    await asyncio.sleep(0)
    return user_id * 100


async def pair(a: Any, b: Any) -> tuple[Any, Any]:
    await asyncio.sleep(0)
    return (a, b)


async def test_hash_collision_of_ints_does_not_share() -> None:
    """hash(-1) == hash(-2), yet balance(-1) and balance(-2) get their own results."""
    reducer = AsyncReducer()
    assert hash(-1) == hash(-2)
    results = await asyncio.gather(reducer(balance(-1)), reducer(balance(-2)))
    assert results == [-100, -200]


async def test_hash_collision_of_tuples_does_not_share() -> None:
    """(1, -1) and (1, -2) hash alike but are different keys."""
    reducer = AsyncReducer()
    assert hash((1, -1)) == hash((1, -2))
    results = await asyncio.gather(reducer(pair(1, -1)), reducer(pair(1, -2)))
    assert results == [(1, -1), (1, -2)]


async def test_colliding_explicit_idents_do_not_share() -> None:
    """Explicit idents are compared by equality too."""
    reducer = AsyncReducer()
    results = await asyncio.gather(
        reducer(balance(-1), ident=-1), reducer(balance(-2), ident=-2)
    )
    assert results == [-100, -200]


async def test_equal_arguments_share() -> None:
    """Concurrent calls of one function with equal arguments run once."""
    reducer = AsyncReducer()
    gate = Gate()
    calls = [asyncio.ensure_future(reducer(gate.work(5))) for _ in range(10)]
    await gate.running.wait()
    gate.release.set()
    assert await asyncio.gather(*calls) == [5] * 10
    assert gate.started == 1


async def test_different_functions_with_equal_arguments_do_not_share() -> None:
    """Two functions called with the same arguments are two keys."""

    async def one(x: int) -> str:
        await asyncio.sleep(0)
        return f"one{x}"

    async def two(x: int) -> str:
        await asyncio.sleep(0)
        return f"two{x}"

    reducer = AsyncReducer()
    assert await asyncio.gather(reducer(one(1)), reducer(two(1))) == ["one1", "two1"]


async def test_closures_of_one_def_with_different_values_do_not_share() -> None:
    """Functions made by one def differ by their closure values."""

    def make(base: int) -> Any:
        async def add(x: int) -> int:
            await asyncio.sleep(0)
            return base + x

        return add

    reducer = AsyncReducer()
    add1, add2 = make(1), make(2)
    assert await asyncio.gather(reducer(add1(5)), reducer(add2(5))) == [6, 7]


async def test_methods_of_distinct_instances_do_not_share() -> None:
    """For methods, self is part of the key."""

    class Repo:
        def __init__(self, name: str) -> None:
            self.name = name

        async def get(self, item: int) -> str:
            await asyncio.sleep(0)
            return f"{self.name}:{item}"

    reducer = AsyncReducer()
    a, b = Repo("a"), Repo("b")
    results = await asyncio.gather(reducer(a.get(1)), reducer(b.get(1)))
    assert results == ["a:1", "b:1"]


async def test_untyped_keys_treat_equal_numbers_alike() -> None:
    """Without typed, f(1), f(1.0) and f(True) are equal keys (like lru_cache)."""
    reducer = AsyncReducer()
    gate = Gate()
    calls = [asyncio.ensure_future(reducer(gate.work(v))) for v in (1, 1.0, True)]
    await gate.running.wait()
    gate.release.set()
    await asyncio.gather(*calls)
    assert gate.started == 1


async def test_typed_keys_keep_types_apart() -> None:
    """typed=True keeps f(1), f(1.0) and f(True) apart."""
    reducer = AsyncReducer(typed=True)
    results = await asyncio.gather(*(reducer(pair(v, None)) for v in (1, 1.0, True)))
    assert [type(r[0]) for r in results] == [int, float, bool]


async def test_keyword_arguments_are_part_of_the_key() -> None:
    """**kwargs are keyed by their items, whatever their order."""

    class Service(Gate):
        def __init__(self) -> None:
            super().__init__()
            self.orders: list[tuple[str, ...]] = []

        async def kw(self, **params: int) -> dict[str, int]:
            self.orders.append(tuple(params))  # the order the starting call used
            return await self.work(params)  # type: ignore[no-any-return]

    service = Service()
    reducer = AsyncReducer()
    calls = [
        asyncio.ensure_future(reducer(c))
        for c in (service.kw(a=1, b=2), service.kw(b=2, a=1), service.kw(a=1, b=3))
    ]
    await service.running.wait()
    service.release.set()
    results = await asyncio.gather(*calls)
    # b=2, a=1 joined a=1, b=2 (same items, other order); a=1, b=3 did not.
    assert service.orders == [("a", "b"), ("a", "b")]
    assert [tuple(r.items()) for r in results] == [
        (("a", 1), ("b", 2)),
        (("a", 1), ("b", 2)),
        (("a", 1), ("b", 3)),
    ]


def test_unhashable_argument_raises_1x_message_at_the_call() -> None:
    """Unhashable arguments without ident raise 1.x's TypeError when called."""
    reducer = AsyncReducer()
    coro = pair([1], 2)
    with pytest.raises(TypeError) as info:
        reducer(coro)
    coro.close()  # a refused call leaves the coroutine to its caller
    assert str(info.value) == (
        "Unable to auto calculate identity for coroutine because using"
        " unhashable arguments, you should set `ident` manual like:"
        '\n\tawait async_reduce(pair(...), ident="YOU-IDENT-FOR-THAT")'
    )


async def test_ident_of_any_hashable_type() -> None:
    """ident may be any hashable: tuples, ints, frozensets."""
    reducer = AsyncReducer()
    gate = Gate()
    ident = ("user", 42, frozenset({1}))
    calls = [
        asyncio.ensure_future(reducer(gate.work(i), ident=ident)) for i in range(3)
    ]
    await gate.running.wait()
    gate.release.set()
    assert await asyncio.gather(*calls) == [0, 0, 0]
    assert gate.started == 1


def test_unhashable_ident_is_rejected() -> None:
    """An unhashable ident raises TypeError naming ident."""
    reducer = AsyncReducer()
    coro = balance(1)
    with pytest.raises(TypeError, match="ident"):
        reducer(coro, ident=["x"])  # type: ignore[arg-type]
    coro.close()


async def test_ident_built_from_the_call_does_not_join_an_automatic_key() -> None:
    """Automatic keys carry a private marker: an ident of the same parts differs."""
    reducer = AsyncReducer()
    gate = Gate()
    auto = asyncio.ensure_future(reducer(gate.work(1)))
    await gate.running.wait()
    (key,) = reducer._all_flights()[0]
    other = await reducer(balance(3), ident=tuple(key)[1:])
    assert other == 300
    gate.release.set()
    assert await auto == 1


# -- the decorator ---------------------------------------------------------


async def test_decorator_normalises_how_arguments_are_passed() -> None:
    """f(1, b=2), f(1, 2), f(a=1, b=2) and f(1) with default b=2 share one key."""
    started = 0
    release = asyncio.Event()

    running = asyncio.Event()

    @async_reduceable(AsyncReducer())
    async def f(a: int, b: int = 2) -> int:
        nonlocal started
        started += 1
        running.set()
        await release.wait()
        return a + b

    calls = [asyncio.ensure_future(c) for c in (f(1, b=2), f(1, 2), f(a=1, b=2), f(1))]
    await running.wait()  # every call was made before the work could start
    release.set()
    assert await asyncio.gather(*calls) == [3, 3, 3, 3]
    assert started == 1
    assert f.key(1) == f.key(1, 2) == f.key(a=1, b=2)


def test_decorator_binder_handles_every_parameter_kind() -> None:
    """Positional-only, keyword-only, *args and **kwargs all reach the key."""

    @async_reduceable(AsyncReducer())
    async def g(a: int, /, b: int, *args: int, c: int = 3, **kw: int) -> None:
        return None

    assert g.key(1, 2) == g.key(1, b=2) == g.key(1, 2, c=3)
    assert g.key(1, 2, 9) != g.key(1, 2)
    assert g.key(1, 2, x=1, y=2) == g.key(1, 2, y=2, x=1)
    assert g.key(1, 2, x=1) != g.key(1, 2, x=2)
    with pytest.raises(TypeError, match="missing"):
        g.key(1)


async def test_decorator_rejects_bad_arguments_like_the_function() -> None:
    """A call the function would reject raises the same TypeError."""

    @async_reduceable(AsyncReducer())
    async def h(a: int) -> int:
        return a

    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        await h(1, z=2)  # type: ignore[call-arg]


async def test_decorator_joiners_never_create_a_coroutine() -> None:
    """Joining calls through the decorator do not call the function at all."""
    created = 0
    running, release = asyncio.Event(), asyncio.Event()

    async def body(x: int) -> int:
        running.set()
        await release.wait()
        return x

    def fetch_impl(x: int) -> Any:
        nonlocal created
        created += 1
        return body(x)

    @async_reduceable(AsyncReducer())
    async def fetch(x: int) -> int:
        return await fetch_impl(x)  # type: ignore[no-any-return]

    calls = [asyncio.ensure_future(fetch(1)) for _ in range(20)]
    await running.wait()
    release.set()
    assert await asyncio.gather(*calls) == [1] * 20
    assert created == 1


async def test_decorator_typed_keeps_types_apart() -> None:
    """@async_reduceable(typed=True) keys f(1) and f(1.0) apart."""

    @async_reduceable(AsyncReducer(), typed=True)
    async def t(x: Any) -> type:
        await asyncio.sleep(0)
        return type(x)

    assert await asyncio.gather(t(1), t(1.0), t(True)) == [int, float, bool]
    assert t.key(1) != t.key(1.0)


async def test_decorator_key_function_for_unhashable_arguments() -> None:
    """key= computes the key from unhashable arguments."""
    started = 0
    running, release = asyncio.Event(), asyncio.Event()

    @async_reduceable(AsyncReducer(), key=lambda query: tuple(sorted(query.items())))
    async def search(query: dict[str, int]) -> int:
        nonlocal started
        started += 1
        running.set()
        await release.wait()
        return sum(query.values())

    calls = [
        asyncio.ensure_future(search({"a": 1, "b": 2})),
        asyncio.ensure_future(search({"b": 2, "a": 1})),
    ]
    await running.wait()
    release.set()
    assert await asyncio.gather(*calls) == [3, 3]
    assert started == 1


async def test_decorated_methods_key_on_self() -> None:
    """A decorated method shares per instance, never across instances."""

    class Client:
        def __init__(self, name: str) -> None:
            self.name = name

        @async_reduceable(AsyncReducer())
        async def get(self, item: int) -> str:
            await asyncio.sleep(0)
            return f"{self.name}{item}"

    a, b = Client("a"), Client("b")
    assert await asyncio.gather(a.get(1), b.get(1), a.get(1)) == ["a1", "b1", "a1"]


def test_decorated_function_keeps_signature_and_stays_a_coroutine_function() -> None:
    """The decorated function is a coroutine function with the original signature."""

    @async_reduceable()
    async def fetch(user_id: int, *, fresh: bool = False) -> str:
        """Fetch a user."""
        return str(user_id)

    assert inspect.iscoroutinefunction(fetch)
    assert str(inspect.signature(fetch)) == str(inspect.signature(fetch.__wrapped__))
    assert fetch.__doc__ == "Fetch a user."
    assert fetch.__name__ == "fetch"


def test_bare_decorator_works() -> None:
    """@async_reduceable without parentheses decorates too."""

    @async_reduceable
    async def fetch(x: int) -> int:
        return x

    assert inspect.iscoroutinefunction(fetch)
    assert asyncio.run(fetch(3)) == 3


async def test_decorator_keys_are_scoped_to_their_function() -> None:
    """Two decorated functions on one reducer never share, even with equal keys."""
    reducer = AsyncReducer()
    gate = Gate()

    @async_reduceable(reducer)
    async def one(x: int) -> str:
        return f"one{await gate.work(x)}"

    @async_reduceable(reducer)
    async def two(x: int) -> str:
        return f"two{await gate.work(x)}"

    @async_reduceable(reducer, key=lambda x: "same")
    async def three(x: int) -> str:
        return f"three{await gate.work(x)}"

    @async_reduceable(reducer, key=lambda x: "same")
    async def four(x: int) -> str:
        return f"four{await gate.work(x)}"

    assert one.key(1) != two.key(1)
    assert three.key(1) != four.key(1)
    calls = [asyncio.ensure_future(f(1)) for f in (one, two, three, four, one)]
    await gate.running.wait()
    gate.release.set()
    assert await asyncio.gather(*calls) == ["one1", "two1", "three1", "four1", "one1"]
    assert gate.started == 4  # only the second one(1) joined
