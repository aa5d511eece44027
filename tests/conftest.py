"""Session-wide rules: Redis tests are never skipped silently, and never under CI.

The suites that need a real ``redis-server`` skip their tests when it is
missing, with a reason that names it.  This file counts those skips and says
so at the end of the run, and when ``CI`` is set it turns each of them into a
failure: CI must run every Redis test.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

_MARK = "redis-server"


def _is_redis_skip(report: pytest.TestReport) -> bool:
    return report.skipped and _MARK in str(report.longrepr)


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[Any]
) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if os.environ.get("CI") and _is_redis_skip(report):
        report.outcome = "failed"
        report.longrepr = f"CI is set, so Redis tests may not skip: {_reason(report)}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if isinstance(report, pytest.TestReport) and _is_redis_skip(report)
    ]
    if not skipped:
        return
    reasons = sorted({_reason(report) for report in skipped})
    terminalreporter.section("Redis tests skipped", sep="!", yellow=True, bold=True)
    terminalreporter.line(
        f"{len(skipped)} tests that need a real redis-server were SKIPPED, not run:",
        yellow=True,
        bold=True,
    )
    for reason in reasons:
        terminalreporter.line(f"  {reason}")
    terminalreporter.line(
        "Install it (Debian: apt-get install redis-server) to run them;"
        " with CI set they fail instead of skipping."
    )
