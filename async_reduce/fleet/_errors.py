"""Exceptions of the fleet layer."""

from __future__ import annotations

__all__ = ["FleetUnavailable", "RemoteError"]


class RemoteError(Exception):
    """The work raised an exception in another process of the fleet.

    Remote exceptions are never unpickled: a follower gets this exception,
    carrying what the leader reported.

    Attributes:
        type_name: ``module.QualName`` of the leader's exception type.
        message: ``str()`` of the leader's exception.

    .. versionadded:: 2.0
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(type_name, message)
        self.type_name = type_name
        self.message = message

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message}" if self.message else self.type_name


class FleetUnavailable(RuntimeError):
    """The store could not be used and the reducer was told not to fall back
    (``on_unavailable="raise"``).  The cause is chained as ``__cause__``.

    .. versionadded:: 2.0
    """
