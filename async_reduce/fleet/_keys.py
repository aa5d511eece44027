"""Fleet keys: the same call gives the same Redis key in every process.

The reducer's own automatic keys use ``id()`` of a code object, which means
nothing in another process.  A fleet key is built only from things every
process agrees on:

* the namespace given to the fleet reducer (two services, or two versions of
  one function, are kept apart by giving them different namespaces);
* the function's ``module:qualname``;
* a canonical byte encoding of the call's arguments, by parameter name, in
  signature order;

hashed with SHA-256.  Two calls share a fleet key only if all three are equal
(or SHA-256 collides).  An explicit ``ident`` (``str`` or ``bytes``) replaces
the function and the arguments and is taken as given.

The canonical encoding accepts ``None``, ``bool``, ``int``, ``float``,
``str``, ``bytes``, and tuples, frozensets (and sets) and dataclass instances
of those, nested to any depth.  It follows equality, as the reducer's keys
do: without ``typed``, ``1``, ``1.0`` and ``True`` encode alike; with
``typed`` they are kept apart.  Dataclasses always carry their class's
``module:qualname`` (instances of different classes are never equal).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import math
import struct
from collections.abc import Iterable
from typing import Any

from .._location import coroutine_location

__all__ = ["FleetKeyError", "KeyBuilder", "encode_value", "ident_digest"]

_VERSION = b"async_reduce.fleet/1\x00"
_pack_len = struct.Struct(">Q").pack


class FleetKeyError(TypeError):
    """A value has no canonical encoding (raised as ``TypeError``)."""


def _text(value: str) -> bytes:
    data = value.encode("utf-8", "surrogatepass")
    return _pack_len(len(data)) + data


def _number(value: Any, typed: bool, out: list[bytes]) -> None:
    cls = type(value)
    if cls is bool or isinstance(value, bool):
        if typed:
            out.append(b"B1" if value else b"B0")
            return
        value = int(value)
    if isinstance(value, int):
        out.append((b"I" if typed else b"N") + _text(str(int(value))))
        return
    number = float(value)
    if not typed and number.is_integer():
        out.append(b"N" + _text(str(int(number))))
        return
    text = "nan" if math.isnan(number) else number.hex()
    out.append((b"F" if typed else b"N") + _text(text))


def _encode(value: Any, typed: bool, out: list[bytes], depth: int) -> None:
    if depth > 64:
        raise FleetKeyError("nested too deeply")
    if value is None:
        out.append(b"0")
    elif isinstance(value, str):
        out.append(b"S" + _text(value))
    elif isinstance(value, bytes):
        out.append(b"Y" + _pack_len(len(value)) + value)
    elif isinstance(value, (bool, int, float)):
        _number(value, typed, out)
    elif isinstance(value, tuple):
        out.append(b"T" + _pack_len(len(value)))
        for item in value:
            _encode(item, typed, out, depth + 1)
    elif isinstance(value, (frozenset, set)):
        items = sorted(_encoded(item, typed, depth + 1) for item in value)
        out.append(b"Z" + _pack_len(len(items)))
        out.extend(items)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        out.append(b"D" + _text(f"{cls.__module__}:{cls.__qualname__}"))
        compared = [field for field in dataclasses.fields(value) if field.compare]
        out.append(_pack_len(len(compared)))
        for field in compared:
            out.append(_text(field.name))
            _encode(getattr(value, field.name), typed, out, depth + 1)
    else:
        raise FleetKeyError(type(value).__name__)


def _encoded(value: Any, typed: bool, depth: int) -> bytes:
    out: list[bytes] = []
    _encode(value, typed, out, depth)
    return b"".join(out)


def encode_value(value: Any, typed: bool = False) -> bytes:
    """The canonical encoding of ``value``.

    Raises:
        FleetKeyError: (a ``TypeError``) naming the first type met that has
            no canonical encoding.
    """
    return _encoded(value, typed, 0)


def _unencodable(
    location: str, name: str, exc: FleetKeyError, what: str = "argument"
) -> TypeError:
    return TypeError(
        f"{location}: {what} {name!r} has no stable encoding across processes"
        f" ({exc.args[0]}); fleet keys take None, bool, int, float, str, bytes,"
        " and tuples, frozensets and dataclasses of those. Pass a key= function"
        " to async_reduceable, or ident= (str or bytes) to the fleet reducer."
    )


class KeyBuilder:
    """Digests of fleet keys for one namespace.

    Args:
        namespace: the fleet's namespace, part of every digest.
    """

    __slots__ = ("_prefix",)

    def __init__(self, namespace: str) -> None:
        self._prefix = _VERSION + _text(namespace)

    def for_call(
        self,
        location: str,
        arguments: Iterable[tuple[str, Any]],
        typed: bool,
        closure: Iterable[tuple[str, Any]] = (),
    ) -> str:
        """The hex SHA-256 digest of a call of ``location`` with ``arguments``.

        Raises:
            TypeError: an argument has no canonical encoding; the message names
                the argument and points to ``key=``/``ident=``.
        """
        out = [self._prefix, b"C", _text(location)]
        for what, pairs in (("argument", arguments), ("closure variable", closure)):
            out.append(what.encode("ascii"))
            for name, value in pairs:
                out.append(_text(name))
                try:
                    _encode(value, typed, out, 0)
                except FleetKeyError as exc:
                    raise _unencodable(location, name, exc, what) from None
        return hashlib.sha256(b"".join(out)).hexdigest()

    def for_coroutine(self, coro: Any, typed: bool) -> str:
        """The digest of a not yet started coroutine's call: its function's
        location, its arguments and (for a nested function) its closure.

        Raises:
            TypeError: ``coro`` is not a native coroutine that has not run,
                or an argument has no canonical encoding.
        """
        frame = getattr(coro, "cr_frame", None)
        code = getattr(coro, "cr_code", None)
        if frame is None or code is None or (frame.f_lasti >= 0 and _started(coro)):
            raise TypeError(
                "coro: cannot compute a fleet key for this object (a coroutine"
                f" that has not run is needed, got {type(coro).__name__});"
                " pass ident= (str or bytes)"
            )
        count = code.co_argcount + code.co_kwonlyargcount
        count += bool(code.co_flags & inspect.CO_VARARGS)
        values = frame.f_locals
        arguments = [(name, values.get(name)) for name in code.co_varnames[:count]]
        if code.co_flags & inspect.CO_VARKEYWORDS:  # its items, in no order
            name = code.co_varnames[count]
            arguments.append((name, frozenset(values.get(name, {}).items())))
        closure = [(name, values.get(name)) for name in code.co_freevars]
        return self.for_call(coroutine_location(coro), arguments, typed, closure)

    def for_ident(self, ident: str | bytes) -> str:
        """The hex SHA-256 digest of an explicit ``ident``, taken as given."""
        return ident_digest(self._prefix, ident)


def _started(coro: Any) -> bool:
    return bool(inspect.getcoroutinestate(coro) != inspect.CORO_CREATED)


def ident_digest(prefix: bytes, ident: str | bytes) -> str:
    if isinstance(ident, str):
        body = b"S" + _text(ident)
    elif isinstance(ident, bytes):
        body = b"Y" + _pack_len(len(ident)) + ident
    else:
        raise TypeError(
            "ident must be str or bytes for a fleet reducer,"
            f" got {type(ident).__name__}"
        )
    return hashlib.sha256(prefix + b"I" + body).hexdigest()
