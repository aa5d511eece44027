"""Random sequences of pool operations keep the pool's invariants.

Hypothesis drives acquire / release / cancel / kill-connection / failing
checks / failing creations / resize / close in any order, interleaved at any
event-loop step, on a fresh event loop per example, and checks after every
step that:

* the size stays within the limit (above it only by lent connections a
  shrinking resize left behind, which close when returned);
* ``idle + in_use + creating == size``;
* no connection is lent to two holders, and no lent or idle one is closed;
* nobody waits while a connection is idle or could be opened;
* after ``close()`` and the last return, every connection is closed.
"""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from pool_helpers import CheckingStrategy, MemoryConnection

from async_reduce.pool import ConnectionPool, PoolClosed


class Holder:
    """A task that borrows one connection and holds it until told to return it."""

    def __init__(self, machine: PoolMachine, style: str) -> None:
        self.conn: MemoryConnection | None = None
        self.give_back = asyncio.Event()
        self.task = machine.loop.create_task(self._hold(machine.pool, style))

    async def _hold(self, pool: ConnectionPool[MemoryConnection], style: str) -> None:
        if style == "context":
            async with pool.get_connection() as conn:
                await self._use(conn)
        elif style == "manual":
            conn = await pool.acquire()
            try:
                await self._use(conn)
            finally:
                await pool.release(conn)
        else:
            await pool.run(self._use_via_run, ident=self)

    async def _use_via_run(self, conn: MemoryConnection) -> None:
        await self._use(conn)

    async def _use(self, conn: MemoryConnection) -> None:
        self.conn = conn
        try:
            await self.give_back.wait()
        finally:
            self.conn = None

    @property
    def holding(self) -> bool:
        return self.conn is not None and not self.task.done()


class PoolMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.strategy = CheckingStrategy()
        # check_after=0: every checkout of an idle connection awaits a check,
        # one more point where a caller can be cancelled.
        self.pool = ConnectionPool(self.strategy, 2, burst_limit=3, check_after=0)
        # Examples must not depend on wall-clock time: reconnect attempts
        # during an outage follow each other without a backoff delay.
        self.pool._backoff.initial = self.pool._backoff.maximum = 0.0
        self.holders: list[Holder] = []
        self.closed = False
        self.settled = True

    def turns(self, count: int) -> None:
        """Let the event loop run ``count`` iterations."""

        async def turns() -> None:
            for _ in range(count):
                await asyncio.sleep(0)

        self.loop.run_until_complete(turns())

    @rule()
    def settle(self) -> None:
        """Run the loop until nothing is ready."""
        self.turns(40)
        self.settled = True

    @rule(count=st.integers(1, 4))
    def advance(self, count: int) -> None:
        """Let a few loop iterations pass: operations interleave anywhere."""
        self.turns(count)

    # -- rules ---------------------------------------------------------------

    @rule(style=st.sampled_from(["context", "manual", "run"]))
    def acquire(self, style: str) -> None:
        self.holders.append(Holder(self, style))
        self.settled = False

    @precondition(lambda self: any(h.holding for h in self.holders))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        holder = data.draw(st.sampled_from([h for h in self.holders if h.holding]))
        holder.give_back.set()
        self.settled = False

    @precondition(lambda self: any(not h.task.done() for h in self.holders))
    @rule(data=st.data(), later=st.booleans())
    def cancel(self, data: st.DataObject, later: bool) -> None:
        """Cancel a holder now, or once the callbacks already due have run.

        ``later`` lands the cancellation between steps of other tasks, for
        example right after a release handed the victim a connection.
        """
        running = [h for h in self.holders if not h.task.done()]
        holder = data.draw(st.sampled_from(running))
        if later:
            self.loop.call_soon(holder.task.cancel)
        else:
            holder.task.cancel()
        self.settled = False

    @precondition(
        lambda self: (
            any(h.holding for h in self.holders)
            and any(h.conn is None and not h.task.done() for h in self.holders)
        )
    )
    @rule(data=st.data())
    def release_then_cancel_a_waiter(self, data: st.DataObject) -> None:
        """A release, and a waiter cancelled in the very next callback."""
        holding = [h for h in self.holders if h.holding]
        waiting = [h for h in self.holders if h.conn is None and not h.task.done()]
        data.draw(st.sampled_from(holding)).give_back.set()
        self.loop.call_soon(data.draw(st.sampled_from(waiting)).task.cancel)
        self.settled = False

    @precondition(lambda self: any(self.strategy.open))
    @rule(data=st.data())
    def kill_connection(self, data: st.DataObject) -> None:
        conn = data.draw(st.sampled_from(self.strategy.open))
        conn.broken = True
        self.settled = False

    @precondition(lambda self: any(self.strategy.open))
    @rule(data=st.data())
    def fail_next_check(self, data: st.DataObject) -> None:
        data.draw(st.sampled_from(self.strategy.open)).healthy = False
        self.settled = False

    @rule()
    def fail_next_creation(self) -> None:
        self.strategy.failures.append(OSError("refused"))

    @rule(
        max_size=st.integers(1, 4),
        extra=st.integers(0, 2),
        min_size=st.integers(0, 4),
    )
    def resize(self, max_size: int, extra: int, min_size: int) -> None:
        burst = max_size + extra  # extra == 0: no bursting
        min_size = min(min_size, max_size)
        if self.closed:
            return
        self.loop.run_until_complete(
            self.pool.resize(max_size=max_size, min_size=min_size, burst_limit=burst)
        )
        self.settled = False

    @rule()
    def close(self) -> None:
        self.loop.run_until_complete(self.pool.close())
        self.closed = True
        self.settled = False

    # -- invariants ----------------------------------------------------------

    @invariant()
    def accounting(self) -> None:
        stats = self.pool.statistics()
        assert stats.idle + stats.in_use + stats.creating == stats.size, stats
        limit = stats.max_size if stats.burst_limit is None else stats.burst_limit
        assert stats.size <= limit or stats.idle == stats.creating == 0, stats

    @invariant()
    def lent_once(self) -> None:
        held = [h.conn for h in self.holders if h.holding]
        assert len({id(c) for c in held}) == len(held)
        assert all(c is not None and not c.closed for c in held)
        idle = [e.conn for e in self.pool._idle]
        assert not {id(c) for c in idle} & {id(c) for c in held}
        assert all(not c.closed for c in idle)
        if self.settled:  # else some may be handed over but not resumed yet
            assert self.pool.statistics().in_use == len(held)

    @invariant()
    def nobody_waits_in_vain(self) -> None:
        if not self.settled:
            return
        stats = self.pool.statistics()
        waiting = [h for h in self.holders if not h.task.done() and h.conn is None]
        assert stats.waiting == len(waiting), stats
        if stats.waiting:
            limit = stats.max_size if stats.burst_limit is None else stats.burst_limit
            assert stats.idle == 0, stats
            assert stats.size >= limit or stats.creating or stats.outage, stats

    @invariant()
    def closed_means_closed(self) -> None:
        if not (self.closed and self.settled):
            return
        assert all(h.task.done() for h in self.holders if h.conn is None)
        stats = self.pool.statistics()
        assert stats.size == stats.in_use
        lent = {id(h.conn) for h in self.holders if h.holding}
        assert all(id(c) in lent for c in self.strategy.open)

    def teardown(self) -> None:
        try:
            for holder in self.holders:
                holder.give_back.set()
            self.settle()
            self.loop.run_until_complete(self.pool.close())
            for holder in self.holders:
                assert holder.task.done()
                if not holder.task.cancelled():
                    error = holder.task.exception()
                    assert error is None or isinstance(error, (OSError, PoolClosed)), (
                        error
                    )
            assert self.strategy.open == []
            assert self.pool.statistics().size == 0
        finally:
            self.loop.close()


def test_pool_state_machine() -> None:
    """Any sequence of operations keeps the pool's invariants."""
    run_state_machine_as_test(
        PoolMachine,
        settings=settings(
            max_examples=200,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
