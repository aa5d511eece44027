"""The fleet layer's public surface and the breaker, without Redis."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from async_reduce import async_reduceable
from async_reduce.fleet import FleetReducer, RemoteError
from async_reduce.fleet._breaker import Breaker


@pytest.mark.parametrize(
    "module", ["async_reduce.fleet", "async_reduce.contrib.redis_fleet"]
)
def test_public_modules_declare_all(module: str) -> None:
    """Every public fleet module lists its API in __all__, and each name exists."""
    mod = importlib.import_module(module)
    assert mod.__all__, module
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_probes_and_backs_off() -> None:
    """The first failure opens the breaker; one probe is let through after the
    pause; a failed probe doubles the pause up to the cap; success closes it."""
    clock = _Clock()
    breaker = Breaker(1.0, 3.0, clock)
    assert breaker.allow()
    assert breaker.failed() is True  # opened
    assert not breaker.allow()
    clock.now = 1.0
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one at a time
    assert breaker.failed() is False
    clock.now = 2.9
    assert not breaker.allow()  # paused 2 s now
    clock.now = 3.0
    assert breaker.allow()
    breaker.failed()
    clock.now = 5.9
    assert not breaker.allow()  # capped at 3 s
    clock.now = 6.0
    assert breaker.allow()
    assert breaker.succeeded() is True  # closed again
    assert breaker.closed
    assert breaker.allow()


def test_remote_error_text() -> None:
    """RemoteError shows the remote type and message, and keeps them."""
    error = RemoteError("app.errors.NotFound", "user 42")
    assert str(error) == "app.errors.NotFound: user 42"
    assert (error.type_name, error.message) == ("app.errors.NotFound", "user 42")


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"lease": 0}, ValueError, "lease"),
        ({"share_for": -1}, ValueError, "share_for"),
        ({"share_errors": 1}, TypeError, "share_errors"),
        ({"codec": "yaml"}, TypeError, "codec"),
        ({"codec": "pickle"}, ValueError, "secret"),
        ({"secret": b"short"}, ValueError, "secret"),
        ({"max_result_bytes": -1}, ValueError, "max_result_bytes"),
        ({"on_unavailable": "ignore"}, ValueError, "on_unavailable"),
        ({"retry_after": (2.0, 1.0)}, ValueError, "retry_after"),
    ],
)
def test_bad_options_name_the_argument(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    """Wrong options raise at construction, naming the argument."""
    import redis.asyncio

    from async_reduce.contrib.redis_fleet import RedisCoordinator

    coordinator = RedisCoordinator(redis.asyncio.Redis())
    with pytest.raises(error, match=match):
        FleetReducer(coordinator, "ns", **options)


def test_bad_namespace_and_coordinator() -> None:
    """The namespace is a non-empty str without braces; the coordinator is one."""
    import redis.asyncio

    from async_reduce.contrib.redis_fleet import RedisCoordinator

    coordinator = RedisCoordinator(redis.asyncio.Redis())
    with pytest.raises(TypeError, match="namespace"):
        FleetReducer(coordinator, "")
    with pytest.raises(ValueError, match="namespace"):
        FleetReducer(coordinator, "a{b}")
    with pytest.raises(TypeError, match="coordinator"):
        FleetReducer(object(), "ns")  # type: ignore[arg-type]


def test_decorator_rejects_plain_functions() -> None:
    """@async_reduceable(fleet) decorates coroutine functions only."""
    import redis.asyncio

    from async_reduce.contrib.redis_fleet import RedisFleetReducer

    fleet = RedisFleetReducer(redis.asyncio.Redis(), "ns")
    with pytest.raises(TypeError, match="coroutine functions"):
        async_reduceable(fleet)(len)  # type: ignore[type-var]


def test_without_redis_the_extra_is_named() -> None:
    """Without redis-py, async_reduce.fleet imports and
    async_reduce.contrib.redis_fleet names the [redis] extra."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "sys.modules['redis'] = None  # as if not installed\n"
        "import async_reduce.fleet  # the Redis-free part imports\n"
        "try:\n"
        "    import async_reduce.contrib.redis_fleet\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    raise SystemExit('imported without redis')\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "pip install 'async-reduce[redis]'" in done.stdout
