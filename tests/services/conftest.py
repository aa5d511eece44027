"""Fixtures of the services tests."""

from __future__ import annotations

import os
import shutil
import weakref
from typing import Any

import pytest
from pytest_redis import factories
from services_helpers import Lab

from async_reduce import _hookerrors


@pytest.fixture(autouse=True)
def _fresh_hook_error_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hook errors are logged once per hook id and type; start every test afresh."""
    monkeypatch.setattr(_hookerrors, "_reported", weakref.WeakKeyDictionary())


@pytest.fixture
def lab() -> Lab:
    return Lab()


REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
HAVE_REDIS = os.access(REDIS_SERVER, os.X_OK)

if HAVE_REDIS:
    services_redis_proc = factories.redis_proc(executable=REDIS_SERVER, port=None)


@pytest.fixture
def redis_server(request: pytest.FixtureRequest) -> Any:
    """A real redis-server on 127.0.0.1 (random port)."""
    if not HAVE_REDIS:
        reason = f"redis-server not found (looked for {REDIS_SERVER})"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {reason}", pytrace=False)
        pytest.skip(reason)
    return request.getfixturevalue("services_redis_proc")
