"""Errors raised by the worker-thread pool."""

from __future__ import annotations

import asyncio

__all__ = ["WorkerPoolClosed", "WorkerPoolError", "WorkerQueueFull"]


class WorkerPoolError(Exception):
    """Base class of the worker pool's own errors."""


class WorkerPoolClosed(WorkerPoolError, RuntimeError):
    """The pool is shut down (or shutting down) and takes no new calls.

    Also what a queued call's callers get when ``shutdown(cancel_pending=True)``
    removes it before it ran.
    """


class WorkerQueueFull(WorkerPoolError, asyncio.QueueFull):
    """``submit_nowait()`` found the queue at ``max_queue`` calls.

    Also an :class:`asyncio.QueueFull`, the error asyncio's own bounded
    queues raise in the same situation.
    """
