"""The public surface of async_reduce.workers: curated, documented, typed."""

from __future__ import annotations

import asyncio
import importlib
import inspect

import async_reduce.workers as workers_module
from async_reduce.workers import (
    WorkerPool,
    WorkerPoolClosed,
    WorkerPoolError,
    WorkerQueueFull,
)


def test_all_names_exist_and_are_documented() -> None:
    """Every name in __all__ exists; every class and public method has a docstring."""
    assert workers_module.__all__ == sorted(workers_module.__all__)
    for name in workers_module.__all__:
        value = getattr(workers_module, name)
        if inspect.isclass(value):
            assert value.__doc__, name
    for name, member in vars(WorkerPool).items():
        if not name.startswith("_") and (
            callable(member) or isinstance(member, property)
        ):
            assert member.__doc__, name


def test_implementation_modules_are_private() -> None:
    """Only the package is public; its modules are private."""
    package = importlib.import_module("async_reduce.workers")
    for name in vars(package):
        module = getattr(package, name)
        if inspect.ismodule(module) and module.__name__.startswith(package.__name__):
            assert name.startswith("_"), name


def test_error_hierarchy() -> None:
    """Errors derive from WorkerPoolError and from the builtin they stand for."""
    assert issubclass(WorkerPoolClosed, WorkerPoolError)
    assert issubclass(WorkerPoolClosed, RuntimeError)
    assert issubclass(WorkerQueueFull, WorkerPoolError)
    assert issubclass(WorkerQueueFull, asyncio.QueueFull)


def test_repr_shows_the_state() -> None:
    """repr() names the pool and shows threads, queue and limits."""
    pool = WorkerPool(3, name="images")
    text = repr(pool)
    assert "'images'" in text
    assert "max_workers=3" in text
    assert "queued=0" in text
