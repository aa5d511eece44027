"""Child processes of the harness: start, wait until ready, talk, stop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

import psutil  # type: ignore[import-untyped,unused-ignore]

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


class ChildFailed(RuntimeError):
    """A child process exited or answered with an error."""


class Child:
    """One child process speaking JSON lines on stdout (and stdin if asked).

    Its stderr goes to a temporary file, so a chatty child can never block on a
    full pipe; the tail of it is quoted when the child fails.
    """

    def __init__(self, name: str, proc: asyncio.subprocess.Process, err: BinaryIO):
        self.name = name
        self.proc = proc
        self._err = err
        self.ready: dict[str, Any] = {}

    @classmethod
    async def start(
        cls,
        name: str,
        argv: list[str],
        *,
        cwd: Path,
        env: dict[str, str] | None = None,
        stdin: bool = False,
        ready_line: bool = True,
    ) -> Child:
        """Start ``argv``; if ``ready_line``, wait for its first JSON line."""
        # Owned by the Child from here on; closed by stop().
        err = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=env,
                stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
            )
        except BaseException:
            err.close()
            raise
        child = cls(name, proc, err)
        if ready_line:
            try:
                child.ready = await child.read(READY_TIMEOUT)
            except BaseException:
                await child.stop()
                raise
        return child

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.proc.pid

    def stderr_tail(self, limit: int = 2000) -> str:
        """The last ``limit`` characters the child wrote to stderr."""
        self._err.seek(0, os.SEEK_END)
        size = self._err.tell()
        self._err.seek(max(0, size - limit))
        return self._err.read().decode(errors="replace")

    async def read(self, timeout: float) -> dict[str, Any]:
        """Read one JSON line; raise ChildFailed on exit, timeout or error."""
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except TimeoutError:
            raise ChildFailed(
                f"{self.name}: no answer in {timeout:.0f} s\n{self.stderr_tail()}"
            ) from None
        if not line:
            await self.proc.wait()
            raise ChildFailed(
                f"{self.name}: exited with {self.proc.returncode}\n{self.stderr_tail()}"
            )
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise ChildFailed(f"{self.name}: {answer['error']}")
        return answer

    async def ask(self, command: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one JSON command line and read the answer."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        await self.proc.stdin.drain()
        return await self.read(timeout)

    def cpu_seconds(self) -> float:
        """User plus system CPU seconds the child has used so far."""
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)

    def peak_rss(self) -> int:
        """The child's peak resident set size in bytes (current RSS if unknown)."""
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return int(psutil.Process(self.pid).memory_info().rss)

    async def stop(self) -> None:
        """Ask the child to stop (SIGTERM, or end of input), then make sure."""
        try:
            if self.proc.returncode is None:
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
                else:
                    self.proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT)
                except TimeoutError:
                    self.proc.kill()
                    await self.proc.wait()
            if self.proc.stdin is not None:
                self.proc.stdin.close()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    await self.proc.stdin.wait_closed()
        finally:
            self._err.close()
