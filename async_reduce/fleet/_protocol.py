"""The coordinator protocol: what a fleet reducer asks of a shared store.

The fleet reducer (``_reducer.py``) decides *what* to do; a coordinator
(the Redis one lives in :mod:`async_reduce.contrib.redis_fleet`) carries it
out against the store, one :class:`Session` per local execution of a key:

1. :meth:`Coordinator.session` makes sure the key's announcements can reach
   this process before the session reads anything, so an outcome announced
   in between cannot be missed.
2. :meth:`Session.claim` reads an outcome it may take, or takes the lease (this
   process becomes the key's *leader*), or reports who holds the lease and
   for how long (this process *follows*).  It is one atomic step.
3. A leader runs the work, :meth:`Session.renew`\\ s its lease while it runs,
   and ends with :meth:`Session.finish` (write the outcome, announce it and
   drop the lease, atomically, and only while no other leader holds the
   lease) or :meth:`Session.release` (drop the lease and announce that,
   when its callers all left).
4. A follower :meth:`Session.wait`\\ s for an announcement, at most until the
   lease it saw would expire; then it claims again, and takes over if the
   lease is gone.

Every method may raise :class:`CoordinatorError` when the store is
unreachable or too slow; the fleet reducer then falls back to running the
work in this process.

Messages travel as bytes: a one-byte kind, the 32-character token of the
execution that produced them, an optional 32-byte signature, the payload.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ABANDONED",
    "ERROR",
    "RESULT",
    "UNSHARED",
    "Claim",
    "Coordinator",
    "CoordinatorError",
    "Message",
    "Session",
    "TOKEN_SIZE",
]

RESULT = b"r"
ERROR = b"e"
UNSHARED = b"x"  # the leader's callers got a result the others must compute
ABANDONED = b"a"  # the leader's callers all left; the lease is free
TOKEN_SIZE = 32


class CoordinatorError(Exception):
    """The shared store failed, refused or did not answer in time."""


@dataclass(frozen=True, slots=True)
class Message:
    """An announcement or a stored outcome, split into its parts."""

    kind: bytes
    token: str
    signature: bytes
    payload: bytes

    @classmethod
    def parse(cls, data: bytes, signature_size: int) -> Message | None:
        """Split ``data``; ``None`` when it is not a well-formed message."""
        header = 1 + TOKEN_SIZE + signature_size
        if len(data) < header:
            return None
        kind = data[:1]
        if kind not in (RESULT, ERROR, UNSHARED, ABANDONED):
            return None
        try:
            token = data[1 : 1 + TOKEN_SIZE].decode("ascii")
        except UnicodeDecodeError:
            return None
        return cls(kind, token, data[1 + TOKEN_SIZE : header], data[header:])

    def signed_part(self) -> bytes:
        """What the signature covers (with the key's digest)."""
        return self.kind + self.token.encode("ascii") + self.payload


@dataclass(frozen=True, slots=True)
class Claim:
    """What :meth:`Session.claim` found.

    Attributes:
        role: ``"leader"`` (this process holds the lease, with ``token``),
            ``"follower"`` (``token`` holds it for ``remaining`` more
            seconds) or ``"outcome"`` (``outcome`` is a stored outcome this
            caller may take).
    """

    role: Literal["leader", "follower", "outcome"]
    token: str
    remaining: float = 0.0
    outcome: bytes = b""


class Session(abc.ABC):
    """One local execution's conversation with the store about one key."""

    @abc.abstractmethod
    async def claim(
        self, token: str, lease: float, share_for: float, accept: frozenset[str]
    ) -> Claim:
        """Read a stored outcome, or take the lease as ``token``, or report
        the holder.

        A stored outcome is taken when it was produced less than
        ``share_for`` seconds ago, or after this session started, or by
        one of the tokens in ``accept`` (leaders this session followed).
        """

    @abc.abstractmethod
    async def wait(self, timeout: float) -> bytes | None:
        """The next announcement on the key, or ``None`` after ``timeout``.

        Raises:
            CoordinatorError: the subscription was lost (announcements may
                have been missed; claim again to read the stored outcome).
        """

    @abc.abstractmethod
    async def renew(self, token: str, lease: float) -> bool:
        """Extend the lease if ``token`` still holds it."""

    @abc.abstractmethod
    async def finish(self, token: str, message: bytes, keep: float) -> bool:
        """Store ``message`` for ``keep`` seconds, announce it, drop the lease.

        Does nothing and returns ``False`` when another token holds the lease.
        """

    @abc.abstractmethod
    async def release(self, token: str, message: bytes) -> bool:
        """Drop the lease if ``token`` holds it, and announce ``message``."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop listening for the key's announcements (never blocks)."""


class Coordinator(abc.ABC):
    """A store shared by the processes of a fleet."""

    @abc.abstractmethod
    async def session(self, digest: str) -> Session:
        """Start listening for the announcements of the key with ``digest``.

        Returns only once announcements can arrive.
        """

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close what the coordinator opened for the running event loop."""
