"""The pool's shared state and every decision about it.

Event loops (one or several, in any threads) and worker threads share one
:class:`PoolState`.  Each decision (queue a call, hand it to a worker, start
or retire a thread, grant room in a bounded queue) is a short synchronous
method run under ``PoolState.lock``; nothing waits while holding it.  What the
decision implies outside the lock (start a thread, run the call, wake a
future on its loop) is done by the caller afterwards.

Queue order: the heap is keyed by ``(rank, sequence)``.  Without aging the
rank is ``-priority``.  With aging, a queued call gains one priority level
per ``aging`` seconds; as every queued call gains at the same rate, the order
between two calls never changes while they wait, so the rank can be fixed
when the call is queued: ``queued_at / aging - priority``.  Equal ranks keep
the order of the ``sequence`` counter: first come, first served.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable
from contextvars import Context
from types import MappingProxyType
from typing import Any

from ._errors import WorkerPoolClosed
from ._stats import WorkerPoolStatistics

__all__ = ["EXIT", "Job", "PoolState", "RoomWaiter", "Ticket", "Worker", "post"]

# Job states.
NEW = 0
QUEUED = 1
RUNNING = 2
DONE = 3
REMOVED = 4
SKIPPED = 5  # removed by a worker that found its future cancelled

# Ticket and room-waiter states.
HELD = 0
CONSUMED = 1
RELEASED = 2
WAITING = 3
GRANTED = 4
WITHDRAWN = 5

_perf_counter = time.perf_counter
_heappush = heapq.heappush
_heappop = heapq.heappop


class _Exit:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<exit>"


EXIT: Any = _Exit()
"""What :meth:`PoolState.take` returns to a worker that must end."""


class Job:
    """One call queued on the pool: the function, its arguments and context,
    and the future (on the caller's loop) that gets its outcome."""

    __slots__ = (
        "args",
        "context",
        "dropped",
        "duration",
        "entry",
        "fn",
        "future",
        "kwargs",
        "loop",
        "ok",
        "priority",
        "queued_at",
        "report",
        "state",
        "value",
        "wait",
    )

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        context: Context,
        priority: int,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any],
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.context = context
        self.priority = priority
        self.loop = loop
        self.future = future
        self.state = NEW
        self.queued_at = 0.0
        # Its current heap entry; older ones (before a priority raise) are
        # skipped when popped.
        self.entry: tuple[float, int, Job] | None = None
        self.wait = 0.0
        self.duration = 0.0
        self.dropped = False
        self.ok = False
        self.value: Any = None
        # Set when the pool's hooks want events: called with the job, on its
        # loop, once its outcome is known.
        self.report: Callable[[Job], None] | None = None


class Ticket:
    """Room reserved in a bounded queue for one call not queued yet."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = HELD


class RoomWaiter:
    """A caller waiting for room in a full queue."""

    __slots__ = ("future", "loop", "state")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]
    ) -> None:
        self.loop = loop
        self.future = future
        self.state = WAITING


class Worker:
    """One worker thread's bookkeeping.

    ``wake`` is held while the worker sleeps; whoever takes the worker off the
    idle list releases it, exactly once.
    """

    __slots__ = ("starting", "thread", "wake")

    def __init__(self) -> None:
        self.wake = threading.Lock()
        self.wake.acquire()
        self.starting = True
        self.thread: threading.Thread | None = None


def _set_if_pending(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_result(None)


def _fail_if_pending(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def post(loop: asyncio.AbstractEventLoop, callback: Any, *args: Any) -> None:
    """Run ``callback(*args)`` on ``loop`` soon, from any thread; nothing
    happens when the loop is closed."""
    with contextlib.suppress(RuntimeError):  # closed: nobody is left to tell
        loop.call_soon_threadsafe(callback, *args)


def closed_error() -> WorkerPoolClosed:
    return WorkerPoolClosed("the worker pool is shut down and takes no new calls")


class PoolState:
    """Everything the pool's loops and threads share; see the module docstring."""

    def __init__(
        self,
        min_workers: int,
        max_workers: int,
        max_queue: int | None,
        idle_timeout: float | None,
        aging: float | None,
    ) -> None:
        self.lock = threading.Lock()
        self.min_workers = min_workers
        self.max_workers = max_workers
        self.max_queue = max_queue
        self.idle_timeout = idle_timeout
        self.aging = aging
        self.epoch = _perf_counter()
        self.closed = False
        self._sequence = itertools.count()
        self._heap: list[tuple[float, int, Job]] = []
        self.queued = 0
        self._by_priority: Counter[int] = Counter()
        self.reserved = 0
        self._room: list[tuple[int, int, RoomWaiter]] = []
        self.room_waiting = 0
        self.idle: list[Worker] = []
        self.threads = 0
        self.starting = 0
        self.busy = 0
        self.in_progress = 0
        self.workers: set[Worker] = set()
        self._ended: list[threading.Thread] = []
        self._watchers: list[
            tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]
        ] = []
        self._home: Callable[[], asyncio.AbstractEventLoop | None] = lambda: None
        self.submitted = 0
        self.completed = 0
        self.failed = 0
        self.cancelled = 0
        self.dropped = 0
        self.coalesced = 0
        self.rejected = 0
        # Set by the pool when its hooks want events: called on a loop.
        self.on_stopped: Callable[[str, int], None] | None = None

    # -- callers (event loops) -------------------------------------------------

    def enter(self, loop: asyncio.AbstractEventLoop) -> None:
        """A call enters the pool's API (counted until :meth:`leave`)."""
        with self.lock:
            if self.closed:
                raise closed_error()
            self.in_progress += 1
            if self._home() is not loop:
                self._home = weakref.ref(loop)

    def leave(self) -> None:
        with self.lock:
            self.in_progress -= 1
            if not self.in_progress:
                self._notify()

    def remember_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        with self.lock:
            if self._home() is not loop:
                self._home = weakref.ref(loop)

    def push(self, job: Job, ticket: Ticket | None) -> Worker | None:
        """Queue ``job``; returns a new worker for the caller to start, if any.

        Raises:
            WorkerPoolClosed: the pool is shut down (the ticket is released).
        """
        with self.lock:
            if ticket is not None and ticket.state == HELD:
                ticket.state = CONSUMED
                self.reserved -= 1
            if self.closed:
                self._grant_room()
                raise closed_error()
            now = _perf_counter()
            job.queued_at = now
            priority = job.priority
            job.entry = entry = (self._rank(now, priority), next(self._sequence), job)
            _heappush(self._heap, entry)
            job.state = QUEUED
            self.queued += 1
            self._by_priority[priority] += 1
            self.submitted += 1
            idle = self.idle
            if idle:
                idle.pop().wake.release()
                return None
            if self.threads < self.max_workers and self.queued > self.starting:
                return self._new_worker()
            return None

    def cancel(self, job: Job) -> bool:
        """Every caller of ``job`` left: remove it if queued (returns ``True``),
        or mark its outcome to be dropped if it runs."""
        with self.lock:
            state = job.state
            if state == SKIPPED:
                job.state = REMOVED
                return True
            if state == QUEUED:
                job.state = REMOVED
                job.wait = _perf_counter() - job.queued_at
                self._unqueue(job)
                self.cancelled += 1
                self._grant_room()
                if len(self._heap) > 64 and len(self._heap) > 2 * self.queued:
                    self._heap = [
                        e
                        for e in self._heap
                        if e[2].state == QUEUED and e is e[2].entry
                    ]
                    heapq.heapify(self._heap)
                self._notify_if_quiet()
                return True
            if state == RUNNING:
                job.dropped = True
            return False

    def raise_priority(self, job: Job, priority: int) -> None:
        """A caller of priority ``priority`` joined ``job``: if it is still
        queued at a lower priority, it moves up (keeping its age)."""
        with self.lock:
            if job.state != QUEUED or priority <= job.priority:
                return
            self._unqueue(job)
            job.priority = priority
            self.queued += 1
            self._by_priority[priority] += 1
            job.entry = entry = (
                self._rank(job.queued_at, priority),
                next(self._sequence),
                job,
            )
            _heappush(self._heap, entry)

    def reserve_nowait(self) -> Ticket | None:
        """Room in the bounded queue for one call, or ``None`` when full."""
        with self.lock:
            if self.closed:
                raise closed_error()
            assert self.max_queue is not None
            if self.queued + self.reserved < self.max_queue:
                self.reserved += 1
                return Ticket()
            return None

    def wait_for_room(
        self, loop: asyncio.AbstractEventLoop, priority: int
    ) -> Ticket | RoomWaiter:
        """A ticket at once, or a waiter whose future is set when room is
        granted to it (higher priority first, then first come)."""
        with self.lock:
            if self.closed:
                raise closed_error()
            assert self.max_queue is not None
            if self.queued + self.reserved < self.max_queue and not self.room_waiting:
                self.reserved += 1
                return Ticket()
            waiter = RoomWaiter(loop, loop.create_future())
            _heappush(self._room, (-priority, next(self._sequence), waiter))
            self.room_waiting += 1
            return waiter

    def withdraw(self, waiter: RoomWaiter) -> None:
        """A room waiter left (cancelled); room already granted is passed on."""
        with self.lock:
            if waiter.state == WAITING:
                waiter.state = WITHDRAWN
                self.room_waiting -= 1
                self._notify_if_quiet()
            elif waiter.state == GRANTED:
                waiter.state = RELEASED
                self.reserved -= 1
                self._grant_room()

    def release(self, ticket: Ticket | None) -> None:
        """Give back room reserved and not used (no-op once used or given back)."""
        if ticket is None or ticket.state != HELD:
            return
        with self.lock:
            if ticket.state == HELD:
                ticket.state = RELEASED
                self.reserved -= 1
                self._grant_room()
                self._notify_if_quiet()

    def count_coalesced(self) -> None:
        with self.lock:
            self.coalesced += 1

    def count_rejected(self) -> None:
        with self.lock:
            self.rejected += 1

    def watch(
        self, loop: asyncio.AbstractEventLoop, done: Callable[[], bool]
    ) -> asyncio.Future[None] | None:
        """``None`` when ``done()`` holds, else a future set at the next change
        of thread count or activity (then check again)."""
        with self.lock:
            if done():
                return None
            future: asyncio.Future[None] = loop.create_future()
            self._watchers.append((loop, future))
            return future

    def unwatch(self, future: asyncio.Future[None]) -> None:
        with self.lock:
            self._watchers = [w for w in self._watchers if w[1] is not future]

    def quiet(self) -> bool:
        """No call queued, running, reserved, waiting for room or entering."""
        return not (
            self.queued
            or self.busy
            or self.reserved
            or self.room_waiting
            or self.in_progress
        )

    def resize(self, min_workers: int, max_workers: int) -> list[Worker]:
        """New limits; returns the workers to start."""
        with self.lock:
            if self.closed:
                raise closed_error()
            self.min_workers = min_workers
            self.max_workers = max_workers
            excess = self.threads - max_workers
            while excess > 0 and self.idle:
                self.idle.pop().wake.release()  # it retires on waking
                excess -= 1
            wanted = max(min_workers, min(max_workers, self.busy + self.queued))
            return [self._new_worker() for _ in range(wanted - self.threads)]

    def close(self, cancel_pending: bool) -> tuple[list[Job], list[RoomWaiter]]:
        """Refuse new calls; returns the queued jobs removed (with
        ``cancel_pending``) and the room waiters turned away."""
        with self.lock:
            self.closed = True
            removed: list[Job] = []
            if cancel_pending:
                now = _perf_counter()
                for _, _, job in self._heap:
                    if job.state == QUEUED:
                        job.state = REMOVED
                        job.wait = now - job.queued_at
                        removed.append(job)
                self._heap.clear()
                self._by_priority.clear()
                self.queued = 0
            turned_away = []
            for _, _, waiter in self._room:
                if waiter.state == WAITING:
                    waiter.state = WITHDRAWN
                    turned_away.append(waiter)
            self._room.clear()
            self.room_waiting = 0
            while self.idle:
                self.idle.pop().wake.release()
            self._notify()
            return removed, turned_away

    def snapshot(self) -> WorkerPoolStatistics:
        with self.lock:
            idle = len(self.idle)
            return WorkerPoolStatistics(
                workers=self.threads,
                busy=self.busy,
                idle=idle,
                starting=self.threads - self.busy - idle,
                min_workers=self.min_workers,
                max_workers=self.max_workers,
                max_queue=self.max_queue,
                queued=self.queued,
                queued_by_priority=MappingProxyType(
                    {p: n for p, n in sorted(self._by_priority.items()) if n}
                ),
                waiting_for_room=self.room_waiting,
                submitted=self.submitted,
                completed=self.completed,
                failed=self.failed,
                cancelled=self.cancelled,
                dropped=self.dropped,
                coalesced=self.coalesced,
                rejected=self.rejected,
                closed=self.closed,
            )

    def join_ended(self, timeout: float) -> None:
        """Wait (briefly) for threads that left the work loop to end."""
        with self.lock:
            ended, self._ended = self._ended, []
        for thread in ended:
            thread.join(timeout)

    # -- worker threads --------------------------------------------------------

    def take(self, worker: Worker, finished: Job | None) -> Any:
        """Account for ``finished`` (the worker's last job) and give the worker
        its next job; ``None`` puts it on the idle list, ``EXIT`` ends it."""
        with self.lock:
            if finished is not None:
                finished.state = DONE
                self.busy -= 1
                self.completed += 1
                if not finished.ok:
                    self.failed += 1
                if finished.dropped or finished.future.cancelled():
                    finished.dropped = True  # every caller has left
                    self.dropped += 1
            if worker.starting:
                worker.starting = False
                self.starting -= 1
            if self.threads > self.max_workers:
                return self._retire(worker, "resize")
            heap = self._heap
            while heap:
                entry = _heappop(heap)
                job = entry[2]
                if job.state != QUEUED or entry is not job.entry:
                    continue
                if job.future.cancelled():
                    # Every caller has left; the caller's loop has not told
                    # the pool yet (it will, in :meth:`cancel`).
                    job.state = SKIPPED
                    job.wait = _perf_counter() - job.queued_at
                    self._unqueue(job)
                    self.cancelled += 1
                    continue
                job.state = RUNNING
                job.wait = _perf_counter() - job.queued_at
                self._unqueue(job)
                self.busy += 1
                if self._room:
                    self._grant_room()
                return job
            if self._room:
                self._grant_room()
            if self.closed:
                return self._retire(worker, "shutdown")
            self.idle.append(worker)
            self._notify_if_quiet()
            return None

    def idle_timeout_elapsed(self, worker: Worker) -> Any:
        """The worker slept ``idle_timeout``: ``EXIT`` (retire), ``None``
        (stay idle) or ``worker`` (it was woken meanwhile: take its wake-up)."""
        with self.lock:
            if worker not in self.idle:
                return worker
            if self.threads > self.min_workers:
                self.idle.remove(worker)
                return self._retire(worker, "idle")
            return None

    def thread_failed(self, worker: Worker) -> None:
        """Starting ``worker``'s thread failed: forget it."""
        with self.lock:
            self.threads -= 1
            self.starting -= 1
            self.workers.discard(worker)
            self._notify()

    # -- helpers (lock held) ---------------------------------------------------

    def _rank(self, queued_at: float, priority: int) -> float:
        aging = self.aging
        if aging is None:
            return -priority
        return (queued_at - self.epoch) / aging - priority

    def _unqueue(self, job: Job) -> None:
        self.queued -= 1
        by_priority = self._by_priority
        left = by_priority[job.priority] - 1
        if left:
            by_priority[job.priority] = left
        else:
            del by_priority[job.priority]

    def _new_worker(self) -> Worker:
        worker = Worker()
        self.threads += 1
        self.starting += 1
        self.workers.add(worker)
        return worker

    def _retire(self, worker: Worker, reason: str) -> Any:
        self.threads -= 1
        self.workers.discard(worker)
        if worker.thread is not None:
            ended = self._ended
            if len(ended) > 64:
                ended[:] = [t for t in ended if t.is_alive()]
            ended.append(worker.thread)
        on_stopped = self.on_stopped
        home = self._home()
        if on_stopped is not None and home is not None:
            post(home, on_stopped, reason, self.threads)
        self._notify()
        return EXIT

    def _grant_room(self) -> None:
        max_queue = self.max_queue
        if max_queue is None:
            return
        room = self._room
        while room and self.queued + self.reserved < max_queue:
            waiter = _heappop(room)[2]
            if waiter.state != WAITING:
                continue
            waiter.state = GRANTED
            self.room_waiting -= 1
            self.reserved += 1
            post(waiter.loop, _set_if_pending, waiter.future)

    def _notify_if_quiet(self) -> None:
        if self._watchers and self.quiet():
            self._notify()

    def _notify(self) -> None:
        watchers = self._watchers
        if watchers:
            self._watchers = []
            for loop, future in watchers:
                post(loop, _set_if_pending, future)


def fail_later(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], exc: BaseException
) -> None:
    """Fail ``future`` (on its ``loop``) with ``exc``, from any thread."""
    post(loop, _fail_if_pending, future, exc)
