"""Coalescing across processes: one execution per key for a whole fleet.

A :class:`FleetReducer` coalesces calls in its process first, like
:class:`~async_reduce.AsyncReducer`, then elects one process per key through
a shared store (Redis: :mod:`async_reduce.contrib.redis_fleet`) to run the
work, and hands the outcome to every other process without polling.

This package holds the parts that need no store: fleet keys, codecs and
signing, the coordinator protocol and the two-level reducer.

.. versionadded:: 2.0
"""

from ._codec import Codec, JsonCodec, PickleCodec
from ._errors import FleetUnavailable, RemoteError
from ._events import FleetEvent, FleetEventKind
from ._protocol import Claim, Coordinator, CoordinatorError, Session
from ._reducer import DEFAULT_MAX_RESULT_BYTES, FleetReducer

__all__ = [
    "DEFAULT_MAX_RESULT_BYTES",
    "Claim",
    "Codec",
    "Coordinator",
    "CoordinatorError",
    "FleetEvent",
    "FleetEventKind",
    "FleetReducer",
    "FleetUnavailable",
    "JsonCodec",
    "PickleCodec",
    "RemoteError",
    "Session",
]
