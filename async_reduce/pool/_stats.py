"""A snapshot of a pool's state and counters."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PoolStatistics"]


@dataclass(frozen=True, slots=True)
class PoolStatistics:
    """A consistent snapshot of a :class:`~async_reduce.pool.ConnectionPool`.

    Gauges (at the moment of the call): ``size == idle + in_use + creating``.

    Attributes:
        size: connections open or being opened (what counts against the limit).
        idle: open connections waiting in the pool.
        in_use: connections lent out (including one handed to a waiter that
            has not resumed yet).
        creating: connections being opened: slots reserved for them, whether
            their ``create_connection`` runs already or waits for a turn
            among ``max_connecting``.
        waiting: callers waiting for a connection.
        max_size: the size the pool keeps to when not bursting.
        burst_limit: the hard limit while bursting, ``None`` without bursting.
        min_size: connections the pool keeps open even when idle.
        created: connections opened since the pool was made.
        closed: connections the pool closed (for any reason).
        acquired: connections handed out.
        timeouts: acquires that raised ``PoolTimeout``.
        create_failures: ``create_connection`` calls that raised.
        reclaimed: connections taken back after ``borrow_timeout``.
        outage: ``True`` while connection attempts are failing and new ones
            are throttled by the reconnect backoff.

    .. versionadded:: 2.0
    """

    size: int
    idle: int
    in_use: int
    creating: int
    waiting: int
    max_size: int
    burst_limit: int | None
    min_size: int
    created: int
    closed: int
    acquired: int
    timeouts: int
    create_failures: int
    reclaimed: int
    outage: bool
