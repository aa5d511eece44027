"""Events of fleet reducers, delivered through ``hooks.on_fleet_event``.

Keys appear only as the first 16 hex digits of their SHA-256 digest; no
argument value, secret or result is ever part of an event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["FleetEvent", "FleetEventKind"]

FleetEventKind = Literal[
    "leader",
    "takeover",
    "remote_join",
    "reused",
    "lease_lost",
    "fallback",
    "unshared",
    "run_locally",
    "rejected",
    "breaker_opened",
    "breaker_closed",
]


@dataclass(frozen=True, slots=True)
class FleetEvent:
    """Something a fleet reducer did or met.

    Attributes:
        kind: what happened:

            * ``"leader"``: this process won the key's election and runs the
              work for the fleet.
            * ``"takeover"``: as ``"leader"``, after the previous leader's
              lease expired or it released the key early.
            * ``"remote_join"``: this process waits for another process's
              execution.
            * ``"reused"``: a stored outcome was taken (``share_for``).
            * ``"lease_lost"``: a leader found its lease gone while working;
              its outcome will not overwrite a newer leader's.
            * ``"fallback"``: the store failed or the breaker is open; the
              work runs in this process only.  ``reason`` says why.
            * ``"unshared"``: the leader's result was not sent to the other
              processes (``reason``: ``"too_large"`` or ``"not_encodable"``).
            * ``"run_locally"``: a follower runs the work itself after the
              leader's ``"unshared"`` result, or after its error when
              ``share_errors`` is off (``reason``: ``"unshared"`` or
              ``"error"``).
            * ``"rejected"``: a message failed its signature check or could
              not be decoded; it was dropped and the work runs here.
            * ``"breaker_opened"`` / ``"breaker_closed"``: calls stopped /
              resumed trying the store.
        namespace: the fleet reducer's namespace.
        key: the first 16 hex digits of the key's digest (``""`` for breaker
            events).
        reason: a short machine-readable cause, or ``""``.

    .. versionadded:: 2.0
    """

    kind: FleetEventKind
    namespace: str
    key: str
    reason: str = ""
