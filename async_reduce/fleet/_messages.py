"""Outcomes as bytes: what a leader announces and what a follower makes of it.

A message is a one-byte kind, the 32-character token of the execution that
produced it, with a ``secret`` a 32-byte HMAC-SHA256 signature over the key's
digest and the rest, then the payload: the codec's bytes for a result, a
small JSON object (type name, message) for an error, nothing for the other
kinds.  A message is read only after its signature verified, and an error is
never unpickled, whatever the codec.
"""

from __future__ import annotations

import json
from typing import Any, Literal, NamedTuple

from ._codec import Codec, Signer
from ._errors import RemoteError
from ._protocol import ABANDONED, ERROR, RESULT, UNSHARED, Message

__all__ = ["Messages", "Read"]


class Read(NamedTuple):
    """A message as a follower reads it.

    ``kind`` is ``"result"`` (``value`` is the result), ``"error"``
    (``value`` is a :class:`RemoteError`), ``"unshared"`` (run the work
    here), ``"abandoned"`` (the lease is free: claim again) or
    ``"rejected"`` (``reason`` says why; run the work here).
    """

    kind: Literal["result", "error", "unshared", "abandoned", "rejected"]
    value: Any = None
    reason: str = ""


def _error_payload(exc: BaseException) -> bytes:
    if isinstance(exc, RemoteError):
        name, text = exc.type_name, exc.message
    else:
        cls = type(exc)
        name = cls.__qualname__
        if cls.__module__ != "builtins":
            name = f"{cls.__module__}.{name}"
        text = str(exc)
    return json.dumps({"type": name, "message": text}).encode("utf-8")


class Messages:
    """Builds and reads the messages of one fleet reducer."""

    __slots__ = ("_codec", "_max_result_bytes", "_signature_size", "_signer")

    def __init__(
        self, codec: Codec, secret: bytes | None, max_result_bytes: int
    ) -> None:
        self._codec = codec
        self._signer = Signer(secret) if secret is not None else None
        self._signature_size = Signer.SIZE if secret is not None else 0
        self._max_result_bytes = max_result_bytes

    def _build(self, digest: str, kind: bytes, token: str, payload: bytes) -> bytes:
        head = kind + token.encode("ascii")
        signer = self._signer
        if signer is None:
            return head + payload
        return head + signer.sign(digest, head + payload) + payload

    def result(self, digest: str, token: str, value: Any) -> tuple[bytes, str]:
        """The announcement of ``value``, and why it is not shared (or ``""``).

        A value is shared only if the codec gives it back equal, and within
        ``max_result_bytes``; otherwise the followers are told to run the
        work themselves.
        """
        codec = self._codec
        try:
            payload = codec.dumps(value)
            faithful = codec.loads(payload) == value
        except Exception:
            faithful = False
            payload = b""
        if not faithful:
            return self._build(digest, UNSHARED, token, b""), "not_encodable"
        if len(payload) > self._max_result_bytes:
            return self._build(digest, UNSHARED, token, b""), "too_large"
        return self._build(digest, RESULT, token, payload), ""

    def error(self, digest: str, token: str, exc: BaseException) -> bytes:
        """The announcement of the work's exception (type name and message)."""
        return self._build(digest, ERROR, token, _error_payload(exc))

    def abandoned(self, digest: str, token: str) -> bytes:
        """The announcement that the leader released the lease early."""
        return self._build(digest, ABANDONED, token, b"")

    def read(self, digest: str, data: bytes) -> Read:
        """What ``data``, received for the key ``digest``, says."""
        message = Message.parse(data, self._signature_size)
        if message is None:
            return Read("rejected", reason="malformed")
        signer = self._signer
        if signer is not None and not signer.verify(
            digest, message.signed_part(), message.signature
        ):
            return Read("rejected", reason="signature")
        if message.kind == RESULT:
            try:
                return Read("result", self._codec.loads(message.payload))
            except Exception:
                return Read("rejected", reason="undecodable")
        if message.kind == ERROR:
            try:
                info = json.loads(message.payload)
                error = RemoteError(str(info["type"]), str(info["message"]))
            except Exception:
                return Read("rejected", reason="undecodable")
            return Read("error", error)
        if message.kind == ABANDONED:
            return Read("abandoned")
        return Read("unshared")
