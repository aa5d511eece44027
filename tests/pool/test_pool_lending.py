"""A release ends the lending it belongs to: a connection is never lent twice."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pool_helpers import (
    CheckingStrategy,
    MemoryConnection,
    MemoryStrategy,
    RecordingHooks,
    check_invariants,
    eventually,
    settle,
)

from async_reduce.pool import ConnectionPool

# Pool settings that send lending and returning down different code paths:
# the plain fast paths, the clocked ones, the ones with hooks, bursting.
CONFIGS: dict[str, dict[str, Any]] = {
    "plain": {},
    "clocked": {"max_lifetime": 600},
    "hooks": {"hooks": RecordingHooks()},
    "burst": {"burst_limit": 2},  # at its limit: one more is held throughout
    "checked": {"check_after": 0, "strategy": "checking"},
}


async def _pool(make_pool: Any, config: str) -> Any:
    kwargs = dict(CONFIGS[config])
    if kwargs.get("strategy") == "checking":
        kwargs["strategy"] = CheckingStrategy()
    if "hooks" in kwargs:
        kwargs["hooks"] = RecordingHooks()
    pool = make_pool(1, **kwargs)
    if config == "burst":
        await pool.acquire()  # never returned: the pool is closed with it out
    return pool


class Holder:
    """A task that borrows a connection and keeps it until told to return it."""

    def __init__(self, pool: ConnectionPool[Any], how: str) -> None:
        self.pool = pool
        self.how = how
        self.conn: Any = None
        self.got = asyncio.Event()
        self.done = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        if self.how == "context":
            async with self.pool.get_connection() as conn:
                self.conn = conn
                self.got.set()
                await self.done.wait()
        else:
            self.conn = await self.pool.acquire()
            self.got.set()
            await self.done.wait()
            await self.pool.release(self.conn)

    async def finish(self) -> None:
        self.done.set()
        await self.task


def _unchanged(pool: ConnectionPool[Any]) -> Callable[[], None]:
    before = pool.statistics()

    def check() -> None:
        assert pool.statistics() == before
        check_invariants(pool)

    return check


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("holder_how", ["acquire", "context"])
async def test_second_release_raises_while_another_holds_it(
    make_pool: Any, config: str, holder_how: str
) -> None:
    """A second release() while another caller holds the connection is a ValueError
    and changes nothing: the holder keeps it, the next caller does not get it."""
    pool = await _pool(make_pool, config)
    conn = await pool.acquire()
    b = Holder(pool, holder_how)
    await settle()
    await pool.release(conn)
    await b.got.wait()
    assert b.conn is conn
    unchanged = _unchanged(pool)
    with pytest.raises(ValueError, match="already released"):
        await pool.release(conn)
    unchanged()
    c = Holder(pool, "acquire")
    await settle()
    assert not c.got.is_set()  # still B's
    await b.finish()
    await c.got.wait()
    assert c.conn is conn
    await c.finish()
    check_invariants(pool)
    await pool.close()


@pytest.mark.parametrize("config", list(CONFIGS))
async def test_release_after_the_context_exits_raises(
    make_pool: Any, config: str
) -> None:
    """release() of a connection whose get_connection() block has ended, while
    another caller holds it, is a ValueError and changes nothing."""
    pool = await _pool(make_pool, config)
    async with pool.get_connection() as conn:
        b = Holder(pool, "acquire")
        await settle()
    await b.got.wait()
    assert b.conn is conn
    unchanged = _unchanged(pool)
    with pytest.raises(ValueError, match="already released"):
        await pool.release(conn)
    unchanged()
    await b.finish()
    await pool.close()


@pytest.mark.parametrize("config", list(CONFIGS))
async def test_release_inside_the_block_ends_that_lending_only(
    make_pool: Any, config: str
) -> None:
    """Inside a get_connection() block, release() ends the block's lending; a
    second one raises ValueError while another holds the connection, and the
    block's exit gives back nothing."""
    pool = await _pool(make_pool, config)
    async with pool.get_connection() as conn:
        b = Holder(pool, "acquire")
        await settle()
        await pool.release(conn)
        await b.got.wait()
        assert b.conn is conn
        unchanged = _unchanged(pool)
        with pytest.raises(ValueError, match="already released"):
            await pool.release(conn)
        unchanged()
    unchanged()  # leaving the block did not take B's connection
    c = Holder(pool, "acquire")
    await settle()
    assert not c.got.is_set()
    await b.finish()
    await c.got.wait()
    await c.finish()
    check_invariants(pool)
    await pool.close()


async def test_a_block_released_early_keeps_its_own_error(make_pool: Any) -> None:
    """A block released early that raises propagates its own error."""
    pool = make_pool(1)

    async def block() -> None:
        async with pool.get_connection() as conn:
            await pool.release(conn)
            raise KeyError("mine")

    with pytest.raises(KeyError):
        await block()
    assert pool.statistics().idle == 1
    await pool.close()


async def test_stale_release_detected_after_several_lendings(make_pool: Any) -> None:
    """A task's stale release is refused even after the connection passed
    through other callers' hands in between."""
    pool = make_pool(1)
    conn = await pool.acquire()
    await pool.release(conn)
    for _ in range(4):  # others borrow and return it in turn
        other = Holder(pool, "context")
        await other.got.wait()
        await other.finish()
    holder = Holder(pool, "acquire")
    await holder.got.wait()
    with pytest.raises(ValueError, match="already released"):
        await pool.release(conn)
    assert pool.statistics().in_use == 1
    await holder.finish()
    await pool.close()


async def test_connection_on_its_way_to_a_waiter_cannot_be_released(
    make_pool: Any,
) -> None:
    """Between a hand-off and the waiter resuming, nobody can release the
    connection: the waiter gets it."""
    pool = make_pool(1)
    conn = await pool.acquire()
    waiter = asyncio.create_task(pool.acquire())
    await settle()
    await pool.release(conn)  # handed to the waiter, which has not resumed
    with pytest.raises(ValueError, match="already released"):
        await pool.release(conn)
    assert await waiter is conn
    assert pool.statistics().in_use == 1
    await pool.release(conn)  # the waiter's task has ended: its caller returns it
    await pool.close()


async def test_release_on_behalf_of_a_running_holder(make_pool: Any) -> None:
    """A task that never held the connection may release it for its holder."""
    pool = make_pool(1)
    conn = await pool.acquire()
    released = asyncio.Event()

    async def release_for_me() -> None:
        await pool.release(conn)
        released.set()

    helper = asyncio.create_task(release_for_me())
    await released.wait()
    await helper
    assert pool.statistics().idle == 1
    await pool.close()


async def test_run_is_not_disturbed_by_a_stale_release(
    make_pool: Any, strategy: MemoryStrategy
) -> None:
    """A stale release() cannot take the connection a run() call is using."""
    pool = make_pool(1)
    conn = await pool.acquire()
    inside = asyncio.Event()
    leave = asyncio.Event()

    async def work(c: MemoryConnection) -> int:
        inside.set()
        await leave.wait()
        return c.number

    call = asyncio.create_task(pool.run(work))
    await settle()
    await pool.release(conn)
    await inside.wait()
    with pytest.raises(ValueError, match="already released"):
        await pool.release(conn)
    leave.set()
    assert await call == conn.number
    assert pool.statistics().idle == 1
    await pool.close()


@pytest.mark.parametrize(
    "lend",
    ["acquire", "context"],
)
async def test_holder_releases_normally(make_pool: Any, lend: str) -> None:
    """The holder's own release always works, through either entry point."""
    pool = make_pool(2)
    for _ in range(3):
        holder = Holder(pool, lend)
        await holder.got.wait()
        await holder.finish()
    assert pool.statistics().idle == 1
    await pool.close()


def _entry_points(pool: ConnectionPool[Any]) -> dict[str, Callable[[], Awaitable[Any]]]:
    async def context() -> None:
        async with pool.get_connection():
            pass

    async def run() -> None:
        async def noop(conn: Any) -> None:
            return None

        await pool.run(noop)

    return {"acquire": pool.acquire, "context": context, "run": run}


async def test_entry_points_table_is_complete(make_pool: Any) -> None:
    """The loop tests below cover every way to borrow a connection."""
    pool = make_pool(1)
    assert set(_entry_points(pool)) == {"acquire", "context", "run"}
    await pool.close()


@pytest.mark.parametrize("entry_point", ["acquire", "context", "run"])
@pytest.mark.parametrize("config", ["plain", "clocked", "hooks"])
def test_second_open_loop_is_refused_on_every_path(
    entry_point: str, config: str
) -> None:
    """Borrowing from a second event loop while the first is still open raises
    RuntimeError, on the fast paths (idle connection, nobody waiting) too."""
    kwargs = dict(CONFIGS[config])
    if "hooks" in kwargs:
        kwargs["hooks"] = RecordingHooks()
    pool = ConnectionPool(MemoryStrategy(), 2, **kwargs)
    first = asyncio.new_event_loop()
    second = asyncio.new_event_loop()
    try:

        async def warm() -> None:
            async with pool.get_connection():
                pass
            assert pool.statistics().idle == 1

        first.run_until_complete(warm())
        with pytest.raises(RuntimeError, match="different event loop"):
            second.run_until_complete(_entry_points(pool)[entry_point]())
        assert pool.statistics().idle == 1
        assert pool.statistics().in_use == 0
        first.run_until_complete(pool.close())
    finally:
        second.close()
        first.close()


async def test_current_task_lookup_matches_asyncio() -> None:
    """The pool's quick lookup of the current task agrees with asyncio's."""
    from async_reduce.pool._acquire import current_task_of

    loop = asyncio.get_running_loop()
    assert current_task_of(loop) is asyncio.current_task()

    async def inner() -> Any:
        return current_task_of(loop)

    task = asyncio.create_task(inner())
    assert await task is task


async def test_connection_from_a_finished_task_can_be_released(make_pool: Any) -> None:
    """A connection returned as the result of a finished task can be released
    by whoever received it, even a past holder."""
    pool = make_pool(1)
    conn = await pool.acquire()
    getter = asyncio.create_task(pool.acquire())
    await settle()
    await pool.release(conn)
    assert await getter is conn
    await pool.release(conn)
    await eventually(lambda: pool.statistics().idle == 1)
    await pool.close()


# -- any interleaving ---------------------------------------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(["acquire", "context", "release", "stale", "step"]),
        st.integers(0, 2),
    ),
    max_size=40,
)


@settings(max_examples=80, deadline=None)
@given(ops=OPS)
def test_no_interleaving_lends_a_connection_twice(ops: list[tuple[str, int]]) -> None:
    """Under any interleaving of borrowing, returning and stale releases by
    three tasks on a pool of two, no connection is ever held by two callers;
    every stale release raises ValueError and changes nothing."""
    asyncio.run(_interleave(ops))


async def _interleave(ops: list[tuple[str, int]]) -> None:
    strategy = MemoryStrategy()
    pool: ConnectionPool[MemoryConnection] = ConnectionPool(strategy, 2)
    holding: dict[int, MemoryConnection] = {}  # worker -> what it holds
    lendings: dict[int, list[int]] = {}  # connection number -> its borrowers
    queues: list[asyncio.Queue[str]] = [asyncio.Queue() for _ in range(3)]

    def lent(worker: int, conn: MemoryConnection) -> None:
        assert conn not in holding.values(), f"{conn!r} lent twice"
        holding[worker] = conn
        lendings.setdefault(conn.number, []).append(worker)

    async def stale_release(worker: int) -> None:
        # A connection this worker held among its last 8 lendings, and does
        # not hold now: idle, on its way, or another worker's.
        for conn in strategy.created:
            if (
                conn is not holding.get(worker)
                and worker in lendings.get(conn.number, [])[-8:]
            ):
                before = pool.statistics()
                with pytest.raises(ValueError, match=r"released|not lent out"):
                    await pool.release(conn)
                assert pool.statistics() == before
                return

    async def inside_block(worker: int) -> str:
        while True:
            op = await queues[worker].get()
            if op == "stale":
                await stale_release(worker)
            elif op in ("release", "done"):
                del holding[worker]
                return op

    async def run(worker: int) -> None:
        while True:
            op = await queues[worker].get()
            conn = holding.get(worker)
            if op == "stale":
                await stale_release(worker)
            elif op == "acquire" and conn is None:
                lent(worker, await pool.acquire())
            elif op == "context" and conn is None:
                async with pool.get_connection() as conn:
                    lent(worker, conn)
                    op = await inside_block(worker)
            elif op in ("release", "done") and conn is not None:
                del holding[worker]
                await pool.release(conn)
            if op == "done":
                return

    workers = [asyncio.create_task(run(w)) for w in range(3)]
    try:
        for op, worker in ops:
            if op == "step":
                await settle(2)
            else:
                queues[worker].put_nowait(op)
                await asyncio.sleep(0)
            check_invariants(pool)
        for queue in queues:
            queue.put_nowait("done")
        await asyncio.wait_for(asyncio.gather(*workers), 10)
        assert pool.statistics().in_use == 0
        check_invariants(pool)
    finally:
        for task in workers:
            task.cancel()
        await pool.close()


def test_release_from_a_second_open_loop_is_refused() -> None:
    """release() from a second event loop while the first is open raises
    RuntimeError and leaves the connection lent."""
    pool = ConnectionPool(MemoryStrategy(), 2)
    first = asyncio.new_event_loop()
    second = asyncio.new_event_loop()
    try:
        conn = first.run_until_complete(pool.acquire())
        with pytest.raises(RuntimeError, match="different event loop"):
            second.run_until_complete(pool.release(conn))
        assert pool.statistics().in_use == 1
        first.run_until_complete(pool.release(conn))
        first.run_until_complete(pool.close())
    finally:
        second.close()
        first.close()
