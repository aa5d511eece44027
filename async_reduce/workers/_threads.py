"""Worker threads: the loop each one runs, and how results reach callers.

Worker threads are daemon threads: the interpreter does not wait for them
when it exits, so a call stuck in a worker never keeps a process alive.
(``concurrent.futures`` threads are joined at exit instead, which hangs the
exit behind a stuck call.)  ``shutdown()`` is how to wait for running calls.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

from ._state import EXIT, Job, PoolState, Worker, post

__all__ = ["deliver", "start_worker"]

_perf_counter = time.perf_counter
_thread_numbers = itertools.count(1)


def start_worker(state: PoolState, worker: Worker, name: str) -> None:
    """Start ``worker``'s thread (the state already counts it).

    Raises:
        RuntimeError: the thread could not be started (it is forgotten).
    """
    thread = threading.Thread(
        target=_work,
        args=(state, worker, deliver),
        name=f"{name}-worker-{next(_thread_numbers)}",
        daemon=True,
    )
    worker.thread = thread
    try:
        thread.start()
    except BaseException:
        state.thread_failed(worker)
        raise


def _work(state: PoolState, worker: Worker, deliver: Any) -> None:
    """A worker thread: take jobs until told to exit."""
    take = state.take
    wake = worker.wake
    job: Job | None = None
    while True:
        next_job = take(worker, job)
        if job is not None:
            deliver(job)
            job = None
        if next_job is EXIT:
            return
        if next_job is None:
            timeout = state.idle_timeout
            while not wake.acquire(True, -1 if timeout is None else timeout):
                verdict = state.idle_timeout_elapsed(worker)
                if verdict is EXIT:
                    return
                if verdict is worker:  # woken meanwhile: take the wake-up
                    wake.acquire()
                    break
            continue
        job = next_job
        started = _perf_counter()
        try:
            job.value = job.context.run(job.fn, *job.args, **job.kwargs)
            job.ok = True
        except BaseException as exc:
            job.value = exc
        job.duration = _perf_counter() - started


def _settle(job: Job) -> None:
    """On the caller's loop: hand the outcome to the caller's future."""
    future = job.future
    if not future.done():
        if job.ok:
            future.set_result(job.value)
        else:
            exc = job.value
            if isinstance(exc, StopIteration):
                # A future cannot carry StopIteration; a generator would say
                # the same thing this way.
                err = RuntimeError(f"{job.fn!r} raised StopIteration")
                err.__cause__ = exc
                exc = err
            future.set_exception(exc)
    job.value = None
    report = job.report
    if report is not None:
        report(job)


def deliver(job: Job) -> None:
    """From the worker thread: settle ``job`` on its caller's loop."""
    post(job.loop, _settle, job)
