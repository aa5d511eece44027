"""Exceptions raised by :class:`~async_reduce.services.Services` itself.

Errors raised by a factory (while a service starts) or by a service reach
the caller unchanged and do not derive from these classes.
"""

from __future__ import annotations

__all__ = [
    "ServiceBroken",
    "ServiceCycleError",
    "ServiceError",
    "ServiceNotHeld",
    "ServicesClosed",
]


class ServiceError(Exception):
    """Base class of the errors the services layer raises itself.

    .. versionadded:: 2.0
    """


class ServiceCycleError(ServiceError, RuntimeError):
    """A service's start uses, directly or through others, a service whose
    start is waiting for it: waiting would never end.

    Raised by the ``use``/``acquire`` call inside the factory that closes the
    cycle; unless the factory catches it, it fails that start and, through
    it, every start waiting on it, so the first user sees this error.

    Attributes:
        cycle: the names of the services along the cycle, first and last
            the same (``("a", "b", "a")``; ``("a", "a")`` for a service whose
            start uses itself).

    .. versionadded:: 2.0
    """

    def __init__(self, cycle: tuple[str, ...]) -> None:
        super().__init__("service dependency cycle: " + " -> ".join(cycle))
        self.cycle = cycle

    def __reduce__(self) -> tuple[type[ServiceCycleError], tuple[tuple[str, ...]]]:
        return (type(self), (self.cycle,))


class ServiceBroken(ServiceError):
    """The service held by a ``use`` block failed, or was stopped because a
    service it depends on failed, while the block held it.

    ``__cause__`` is the failure.  Raised when the block is left (unless the
    block is already raising an error of its own).

    Attributes:
        name: the service's name.

    .. versionadded:: 2.0
    """

    def __init__(self, name: str) -> None:
        super().__init__(f"service {name} failed while in use")
        self.name = name

    def __reduce__(self) -> tuple[type[ServiceBroken], tuple[str]]:
        return (type(self), (self.name,))


class ServiceNotHeld(ServiceError, ValueError):
    """``release(svc)`` of an object not held through ``acquire()`` (never
    acquired, or already released as often as it was acquired).

    Nothing changed: no hold was dropped and no service stopped.

    .. versionadded:: 2.0
    """


class ServicesClosed(ServiceError, RuntimeError):
    """The scope is not open (not entered yet, or exited): no service can be
    started in it.

    Users waiting for a start when the scope exits get this error too.

    .. versionadded:: 2.0
    """
