"""Fleet keys and codecs: the rules that need no Redis."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from async_reduce.fleet._codec import JsonCodec, PickleCodec, Signer, codec_for
from async_reduce.fleet._keys import KeyBuilder, encode_value

KEYS = KeyBuilder("ns")


def digest(*args: Any, typed: bool = False) -> str:
    return KEYS.for_call("m:f", [(f"a{i}", v) for i, v in enumerate(args)], typed)


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int
    note: str = dataclasses.field(default="", compare=False)


@dataclasses.dataclass(frozen=True)
class Other:
    x: int
    y: int


def test_equal_values_share_untyped_and_split_typed() -> None:
    """Without typed, 1, 1.0 and True share a key; with typed they do not."""
    assert digest(1) == digest(1.0) == digest(True)
    assert (
        len({digest(1, typed=True), digest(1.0, typed=True), digest(True, typed=True)})
        == 3
    )
    assert digest(0.0) == digest(-0.0)


def test_distinct_values_never_share() -> None:
    """Values that differ get different keys, whatever their shape."""
    values = [
        None,
        0,
        1,
        -1,
        2**70,
        0.5,
        "",
        "a",
        b"a",
        (),
        ("a",),
        (("a",),),
        frozenset(),
        frozenset({"a"}),
        ("a", "b"),
        ("ab",),
        Point(1, 2),
        Other(1, 2),
        float("inf"),
        float("-inf"),
    ]
    assert len({digest(v) for v in values}) == len(values)


def test_frozensets_ignore_order_dataclasses_follow_equality() -> None:
    """Frozensets key by content; dataclasses by class and compared fields."""
    assert digest(frozenset([3, "x", b"y"])) == digest(frozenset([b"y", 3, "x"]))
    assert digest(Point(1, 2, "a")) == digest(Point(1, 2, "b"))
    assert digest(Point(1, 2)) != digest(Point(2, 1))


def test_namespace_function_and_names_are_part_of_the_key() -> None:
    """Namespace, function location and parameter names all tell keys apart."""
    base = KEYS.for_call("m:f", [("a", 1)], False)
    assert KeyBuilder("other").for_call("m:f", [("a", 1)], False) != base
    assert KEYS.for_call("m:g", [("a", 1)], False) != base
    assert KEYS.for_call("m:f", [("b", 1)], False) != base
    assert KEYS.for_ident("x") != KEYS.for_ident(b"x")
    assert len(base) == 64


@given(st.lists(st.text(), max_size=4), st.lists(st.text(), max_size=4))
def test_argument_boundaries_cannot_blur(a: list[str], b: list[str]) -> None:
    """Different argument lists never encode alike (length-prefixed parts)."""
    if a != b:
        assert digest(*a) != digest(*b)


@pytest.mark.parametrize("bad", [[1], {"a": 1}, object(), bytearray(b"x"), (1, [2])])
def test_unencodable_values_raise_type_error(bad: Any) -> None:
    """Unsupported types raise TypeError naming the argument and the way out."""
    with pytest.raises(TypeError, match=r"argument 'a0'.*key=.*ident="):
        digest(bad)


def test_keys_are_the_same_in_another_process() -> None:
    """A fresh interpreter (other hash seed) computes the same digest."""
    value = (frozenset({"a", "b", "c", 1.5}), b"x", None, Point(1, 2))
    # Imported under the same module name as here (a dataclass's key
    # includes its module:qualname).
    code = f"from {__name__} import digest, Point; print(digest({value!r}))"
    path = os.pathsep.join([os.path.dirname(__file__), os.getcwd()])
    env = dict(os.environ, PYTHONHASHSEED="12345", PYTHONPATH=path)
    command = [sys.executable, "-c", code]
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == digest(value)


def test_encode_value_is_deterministic() -> None:
    """encode_value gives bytes that do not depend on set iteration order."""
    assert encode_value(frozenset(["b", "a"])) == encode_value(frozenset(["a", "b"]))


def test_codecs() -> None:
    """JSON round-trips JSON values; pickle needs a secret; the signer binds
    a message to its key."""
    codec = JsonCodec()
    assert codec.loads(codec.dumps({"a": [1, 2.5, None]})) == {"a": [1, 2.5, None]}
    with pytest.raises(TypeError):
        codec.dumps(object())
    assert PickleCodec.needs_secret
    assert isinstance(codec_for("pickle"), PickleCodec)
    with pytest.raises(TypeError, match="codec"):
        codec_for("yaml")
    signer = Signer(b"k" * 16)
    signature = signer.sign("d1", b"message")
    assert signer.verify("d1", b"message", signature)
    assert not signer.verify("d2", b"message", signature)
    assert not signer.verify("d1", b"messagE", signature)
    assert "k" * 16 not in repr(signer)


async def _plain(x: int, *rest: int, **options: str) -> int:
    return x


def test_coroutine_keys_bind_arguments_by_name() -> None:
    """A coroutine's key comes from its function and its bound arguments
    (**kwargs by content); a coroutine that already ran is refused."""
    first = _plain(1, 2, a="x", b="y")
    second = _plain(1, 2, b="y", a="x")
    third = _plain(1, 3, a="x", b="y")
    try:
        assert KEYS.for_coroutine(first, False) == KEYS.for_coroutine(second, False)
        assert KEYS.for_coroutine(first, False) != KEYS.for_coroutine(third, False)
    finally:
        for coro in (first, second, third):
            coro.close()
    with pytest.raises(TypeError, match="ident="):
        KEYS.for_coroutine(first, False)
