"""Random sequences of worker pool operations keep the pool's invariants.

Hypothesis drives: occupy a thread with a call held on its own event,
submit instant calls with random priorities while every thread is held,
cancel queued or running calls, release held calls, resize, and shut down
(with or without ``cancel_pending``), and checks:

* never more threads than ``max_workers`` (above it only while a shrinking
  ``resize()`` waits for busy threads to finish);
* every accepted call ends exactly once: with its result (it ran once),
  cancelled (a queued call never ran), or ``WorkerPoolClosed`` (removed by
  ``shutdown(cancel_pending=True)``, never ran);
* calls queued at the same time start in priority order, first come first
  served within a priority (``aging=None``: strict priorities);
* after ``shutdown()`` no thread of the pool is left.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from workers_helpers import thread_names

from async_reduce.workers import WorkerPool, WorkerPoolClosed

HANG_GUARD = 10.0  # seconds: reached only when a step is broken


class WorkerMachine(RuleBasedStateMachine):
    """Preconditions read a model of the pool only (threads, idle, held and
    queued calls); each rule waits until the real pool matches the model."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.pool: WorkerPool | None = None
        self.lock = threading.Lock()
        self.tags = itertools.count()
        self.ran: dict[int, int] = {}  # tag -> times its function ran
        self.started: list[int] = []  # tags of instant calls, in start order
        self.held: dict[int, tuple[threading.Event, asyncio.Task[Any]]] = {}
        self.calls: dict[int, tuple[int, asyncio.Task[Any]]] = {}  # tag -> prio
        # The model.
        self.max_workers = 0
        self.threads = 0
        self.idle = 0
        self.busy: set[int] = set()  # held calls not released yet
        self.queue: list[int] = []  # instant calls waiting, in submit order
        self.cap = 0
        self.resizing: asyncio.Task[None] | None = None
        self.closed = False

    # -- helpers ---------------------------------------------------------------

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(awaitable, HANG_GUARD))

    def wait_all(self, tasks: list[asyncio.Task[Any]]) -> None:
        async def gather() -> None:
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(gather())

    def settle(self, predicate: Any) -> None:
        async def poll() -> None:
            while not predicate():  # noqa: ASYNC110 - worker threads get there
                await asyncio.sleep(0.001)

        self.run(poll())

    def matches_model(self) -> bool:
        assert self.pool is not None
        stats = self.pool.statistics()
        return (
            stats.workers == self.threads
            and stats.idle == self.idle
            and stats.busy == len(self.busy)
            and stats.queued == len(self.queue)
        )

    def hold(self, tag: int, release: threading.Event) -> int:
        with self.lock:
            self.ran[tag] = self.ran.get(tag, 0) + 1
        release.wait(HANG_GUARD)
        return tag

    def instant(self, tag: int) -> int:
        with self.lock:
            self.ran[tag] = self.ran.get(tag, 0) + 1
            self.started.append(tag)
        return tag

    def saturated(self) -> bool:
        return not self.closed and not self.idle and self.threads >= self.max_workers

    # -- rules -----------------------------------------------------------------

    @initialize(max_workers=st.integers(1, 3))
    def make_pool(self, max_workers: int) -> None:
        self.pool = WorkerPool(max_workers, aging=None, idle_timeout=None)
        self.max_workers = self.cap = max_workers

    @precondition(
        lambda self: (
            not self.closed
            and not self.queue
            and (self.idle or self.threads < self.max_workers)
        )
    )
    @rule()
    def hold_a_thread(self) -> None:
        tag = next(self.tags)
        release = threading.Event()
        assert self.pool is not None
        task = self.loop.create_task(self.pool.run(self.hold, tag, release))
        self.held[tag] = (release, task)
        self.busy.add(tag)
        if self.idle:
            self.idle -= 1
        else:
            self.threads += 1
        self.settle(lambda: self.ran.get(tag) == 1 and self.matches_model())

    @precondition(lambda self: self.saturated())
    @rule(priority=st.integers(-2, 2))
    def submit(self, priority: int) -> None:
        tag = next(self.tags)
        assert self.pool is not None
        task = self.loop.create_task(
            self.pool.run(self.instant, tag, priority=priority)
        )
        self.calls[tag] = (priority, task)
        self.queue.append(tag)
        self.settle(self.matches_model)

    @precondition(lambda self: self.saturated() and self.queue)
    @rule(data=st.data())
    def cancel_queued(self, data: st.DataObject) -> None:
        tag = data.draw(st.sampled_from(self.queue))
        task = self.calls[tag][1]
        task.cancel()
        self.wait_all([task])
        self.queue.remove(tag)
        self.settle(self.matches_model)
        assert self.ran.get(tag, 0) == 0

    @precondition(
        lambda self: (
            not self.closed
            and any(not self.held[t][1].done() for t in sorted(self.busy))
        )
    )
    @rule(data=st.data())
    def cancel_running(self, data: st.DataObject) -> None:
        tag = data.draw(
            st.sampled_from(
                [t for t in sorted(self.busy) if not self.held[t][1].done()]
            )
        )
        task = self.held[tag][1]
        task.cancel()
        self.wait_all([task])
        self.settle(self.matches_model)  # the thread is still busy with it

    @precondition(lambda self: not self.closed and bool(self.busy))
    @rule(data=st.data())
    def release_one(self, data: st.DataObject) -> None:
        tag = data.draw(st.sampled_from(sorted(self.busy)))
        self.busy.remove(tag)
        drained = []
        if self.threads > self.max_workers:
            self.threads -= 1  # retires above a lowered limit, takes nothing
        else:
            drained, self.queue = self.queue, []
            self.idle += 1
        self.held[tag][0].set()
        # Only the released thread runs: it drains the queue alone.
        self.settle(lambda: self.held[tag][1].done() and self.matches_model())
        with self.lock:
            started = [t for t in self.started if t in drained]
        assert started == sorted(drained, key=lambda t: (-self.calls[t][0], t))

    @precondition(lambda self: not self.closed and not self.queue)
    @rule(max_workers=st.integers(1, 3))
    def resize(self, max_workers: int) -> None:
        assert self.pool is not None
        if self.resizing is not None:
            self.run(asyncio.sleep(0))
            if not self.resizing.done():
                return
        excess = self.threads - max_workers
        retired = min(self.idle, max(0, excess))
        self.idle -= retired
        self.threads -= retired
        self.cap = max(max_workers, self.threads)
        self.max_workers = max_workers
        self.resizing = self.loop.create_task(
            self.pool.resize(min_workers=0, max_workers=max_workers)
        )
        self.settle(self.matches_model)

    @precondition(lambda self: not self.closed)
    @rule(cancel_pending=st.booleans())
    def shutdown(self, cancel_pending: bool) -> None:
        assert self.pool is not None
        closing = self.loop.create_task(
            self.pool.shutdown(cancel_pending=cancel_pending)
        )
        self.run(asyncio.sleep(0))
        self.closed = True
        self.busy.clear()
        self.queue.clear()
        for release, _ in self.held.values():
            release.set()
        assert self.run(closing) is True
        assert thread_names(self.pool.name) == []
        self.finish_calls(cancel_pending)

    @precondition(lambda self: self.closed)
    @rule()
    def call_after_shutdown(self) -> None:
        assert self.pool is not None
        try:
            self.run(self.pool.run(self.instant, -1))
        except WorkerPoolClosed:
            return
        raise AssertionError("a call after shutdown() was accepted")

    # -- invariants ------------------------------------------------------------

    @invariant()
    def threads_within_the_limit(self) -> None:
        if self.pool is None:
            return
        stats = self.pool.statistics()
        if self.resizing is not None and self.resizing.done():
            self.resizing.result()
            self.resizing = None
            self.cap = stats.max_workers
        assert stats.workers <= self.cap, (stats, self.cap)
        assert len(thread_names(self.pool.name)) <= self.cap
        assert stats.busy <= stats.workers

    @invariant()
    def nothing_ran_twice(self) -> None:
        with self.lock:
            assert all(count == 1 for count in self.ran.values()), self.ran

    # -- end -------------------------------------------------------------------

    def finish_calls(self, cancel_pending: bool) -> None:
        """Every call ended exactly once, with an outcome that fits."""
        tasks = [t for _, t in self.calls.values()] + [t for _, t in self.held.values()]
        self.wait_all(tasks)
        for tag, (_, task) in self.calls.items():
            assert task.done()
            if task.cancelled():
                assert self.ran.get(tag, 0) == 0
            elif task.exception() is not None:
                assert isinstance(task.exception(), WorkerPoolClosed)
                assert cancel_pending
                assert self.ran.get(tag, 0) == 0
            else:
                assert task.result() == tag
                assert self.ran[tag] == 1
        for tag, (_, task) in self.held.items():
            assert self.ran[tag] == 1
            assert task.cancelled() or task.result() == tag

    def teardown(self) -> None:
        try:
            if self.pool is not None and not self.closed:
                closing = self.loop.create_task(self.pool.shutdown())
                self.run(asyncio.sleep(0))
                for release, _ in self.held.values():
                    release.set()
                assert self.run(closing) is True
                assert thread_names(self.pool.name) == []
                self.finish_calls(False)
        finally:
            for release, _ in self.held.values():
                release.set()
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()


def test_worker_pool_state_machine() -> None:
    """Any sequence of submits, cancels, releases, resizes and a shutdown keeps
    the invariants of the module docstring."""
    run_state_machine_as_test(
        WorkerMachine,
        settings=settings(
            max_examples=60,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
