"""The public surface of async_reduce.services."""

from __future__ import annotations

import importlib
import inspect

import pytest

import async_reduce.services as services_module
from async_reduce.services import (
    ServiceBroken,
    ServiceCycleError,
    ServiceError,
    ServiceNotHeld,
    Services,
    ServicesClosed,
)


def test_all_names_exist_and_classes_are_documented() -> None:
    """Every name in __all__ exists; every class and function has a docstring."""
    assert services_module.__all__ == sorted(services_module.__all__)
    for name in services_module.__all__:
        value = getattr(services_module, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__doc__, name


def test_implementation_modules_are_private() -> None:
    """Only the package is public; its modules are private."""
    package = importlib.import_module("async_reduce.services")
    for name in vars(package):
        module = getattr(package, name)
        if inspect.ismodule(module) and module.__name__.startswith(package.__name__):
            assert name.startswith("_"), name


def test_error_hierarchy() -> None:
    """Errors the layer raises derive from ServiceError and the builtin that
    fits (ValueError for a bad release, RuntimeError for a closed scope or a
    cycle)."""
    for error in (ServiceBroken, ServiceCycleError, ServiceNotHeld, ServicesClosed):
        assert issubclass(error, ServiceError)
    assert issubclass(ServiceNotHeld, ValueError)
    assert issubclass(ServicesClosed, RuntimeError)
    assert issubclass(ServiceCycleError, RuntimeError)
    cycle = ServiceCycleError(("a", "b", "a"))
    assert cycle.cycle == ("a", "b", "a")
    assert str(cycle) == "service dependency cycle: a -> b -> a"


@pytest.mark.parametrize("method", ["use", "acquire", "release", "statistics"])
def test_methods_state_their_semantics(method: str) -> None:
    """The methods users call have docstrings."""
    assert getattr(Services, method).__doc__


def test_repr_shows_state() -> None:
    """repr() of a scope shows its state and number of services."""
    assert repr(Services()) == "<Services new services=0>"
