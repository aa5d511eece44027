"""Fixtures of the services tests."""

from __future__ import annotations

import weakref

import pytest
from services_helpers import Lab

from async_reduce import _hookerrors


@pytest.fixture(autouse=True)
def _fresh_hook_error_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hook errors are logged once per hook id and type; start every test afresh."""
    monkeypatch.setattr(_hookerrors, "_reported", weakref.WeakKeyDictionary())


@pytest.fixture
def lab() -> Lab:
    return Lab()
