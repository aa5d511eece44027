"""How results cross processes: codecs, and signing of every message.

A codec turns a result into bytes and back.  The default is JSON (``orjson``
when installed, the standard library otherwise); a result is shared with
other processes only if it survives the round trip unchanged (compared with
``==``), so a tuple, which JSON would hand back as a list, is never passed
off as equal: the other processes run the work themselves instead.

Pickle can run code while loading, so :class:`PickleCodec` is opt-in and the
fleet reducer accepts it only together with a ``secret``: every message is
then signed with HMAC-SHA256 over the key and the message, and a message whose
signature does not verify is rejected before anything is unpickled.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import pickle
from typing import Any, Protocol, runtime_checkable

__all__ = ["Codec", "JsonCodec", "PickleCodec", "Signer", "codec_for"]

try:  # pragma: no cover - depends on the environment
    _orjson: Any = importlib.import_module("orjson")
except ImportError:  # pragma: no cover
    _orjson = None


@runtime_checkable
class Codec(Protocol):
    """Turns results into bytes and back.

    Attributes:
        needs_secret: whether loading untrusted bytes could run code (then
            the fleet reducer insists on a ``secret`` to sign messages).
    """

    needs_secret: bool

    def dumps(self, value: Any) -> bytes:
        """Encode ``value``; raise ``TypeError``/``ValueError`` if impossible."""
        ...

    def loads(self, data: bytes) -> Any:
        """Decode what :meth:`dumps` produced."""
        ...


class JsonCodec:
    """JSON, through ``orjson`` when it is installed.

    Only values that JSON hands back equal are shared (see the module
    documentation); ``orjson`` and the standard library agree on those.

    .. versionadded:: 2.0
    """

    needs_secret = False

    def __init__(self) -> None:
        self.backend = "orjson" if _orjson is not None else "json"

    def __repr__(self) -> str:
        return f"<JsonCodec backend={self.backend}>"

    def dumps(self, value: Any) -> bytes:
        """Encode ``value`` as UTF-8 JSON."""
        if _orjson is not None:
            try:
                data: bytes = _orjson.dumps(value)
                return data
            except _orjson.JSONEncodeError as exc:
                raise TypeError(str(exc)) from None
        return json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")

    def loads(self, data: bytes) -> Any:
        """Decode UTF-8 JSON."""
        if _orjson is not None:
            return _orjson.loads(data)
        return json.loads(data)


class PickleCodec:
    """Pickle, for results JSON cannot carry.  Needs the reducer's ``secret``.

    .. versionadded:: 2.0
    """

    needs_secret = True

    def __init__(self, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        self._protocol = protocol

    def __repr__(self) -> str:
        return f"<PickleCodec protocol={self._protocol}>"

    def dumps(self, value: Any) -> bytes:
        """Pickle ``value``."""
        try:
            return pickle.dumps(value, self._protocol)
        except (pickle.PicklingError, AttributeError) as exc:
            raise TypeError(str(exc)) from None

    def loads(self, data: bytes) -> Any:
        """Unpickle; only ever called on data whose signature verified."""
        return pickle.loads(data)


def codec_for(codec: Any) -> Codec:
    """``"json"``, ``"pickle"`` or a :class:`Codec` object."""
    if codec == "json" and isinstance(codec, str):
        return JsonCodec()
    if codec == "pickle" and isinstance(codec, str):
        return PickleCodec()
    if isinstance(codec, Codec):
        return codec
    raise TypeError(
        "codec must be 'json', 'pickle' or an object with dumps(), loads() and"
        f" needs_secret, got {codec!r}"
    )


class Signer:
    """HMAC-SHA256 signatures of messages, bound to the key they travel under."""

    SIZE = 32

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def __repr__(self) -> str:
        return "<Signer secret=***>"

    def sign(self, digest: str, message: bytes) -> bytes:
        return hmac.new(
            self._secret, digest.encode("ascii") + message, hashlib.sha256
        ).digest()

    def verify(self, digest: str, message: bytes, signature: bytes) -> bool:
        return hmac.compare_digest(self.sign(digest, message), signature)
