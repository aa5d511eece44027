"""Property: under any interleaving of calls, cancellations, timeouts and
errors, every caller gets an outcome of its own key and no key stays stuck."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from virtual_clock import run_virtual

from async_reduce import AsyncReducer

KEYS = (0, 1, 2)


class WorkFailed(Exception):
    def __init__(self, key: int, execution: int) -> None:
        super().__init__(key, execution)
        self.key = key


operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("call"),
            st.sampled_from(KEYS),
            st.sampled_from([None, None, 0.001, 1.0]),
            st.booleans(),  # automatic key instead of ident
        ),
        st.tuples(st.just("cancel"), st.integers(0, 30)),
        st.tuples(
            st.just("finish"), st.sampled_from(KEYS), st.sampled_from(["ok", "error"])
        ),
        st.tuples(st.just("step")),
        st.tuples(st.just("wait")),
    ),
    max_size=40,
)


class Backend:
    """The shared work's world: one gate per running execution, by key."""

    def __init__(self) -> None:
        self.counter = itertools.count()
        self.running: dict[int, list[asyncio.Future[str]]] = {k: [] for k in KEYS}

    def finish(self, key: int, how: str) -> None:
        """End the oldest running execution of ``key`` with ``how``."""
        for gate in self.running[key]:
            if not gate.done():
                gate.set_result(how)
                return


async def work(backend: Backend, key: int) -> tuple[int, int]:
    execution = next(backend.counter)
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    backend.running[key].append(gate)
    try:
        how = await gate
    finally:
        backend.running[key].remove(gate)
    if how == "error":
        raise WorkFailed(key, execution)
    return (key, execution)


async def scenario(ops: list[tuple[Any, ...]], orphans: str) -> None:
    reducer = AsyncReducer(orphans=orphans)
    backend = Backend()
    running = backend.running

    callers: list[tuple[int, float | None, asyncio.Task[Any]]] = []
    cancelled: set[int] = set()
    for op in ops:
        kind = op[0]
        if kind == "call":
            _, key, timeout, auto = op
            coro = (
                reducer(work(backend, key), timeout=timeout)
                if auto
                else reducer(work(backend, key), ident=("k", key), timeout=timeout)
            )
            callers.append((key, timeout, asyncio.ensure_future(coro)))
        elif kind == "cancel":
            index = op[1]
            if index < len(callers) and not callers[index][2].done():
                callers[index][2].cancel()
                cancelled.add(index)
        elif kind == "finish":
            backend.finish(op[1], op[2])
        elif kind == "step":
            await asyncio.sleep(0)
        else:
            await asyncio.sleep(0.002)

    # Let everything still running end.
    for _ in range(100):
        if all(task.done() for _, _, task in callers) and not any(running.values()):
            break
        for key in KEYS:
            for gate in list(running[key]):
                if not gate.done():
                    gate.set_result("ok")
        await asyncio.sleep(0)
    for _ in range(5):
        await asyncio.sleep(0)

    assert all(task.done() for _, _, task in callers), "a caller hangs"
    assert len(reducer) == 0, "a key stayed stuck"
    assert not any(running.values()), "work left running"
    for index, (key, timeout, task) in enumerate(callers):
        if task.cancelled():
            assert index in cancelled, "a caller that nobody cancelled was cancelled"
            continue
        exc = task.exception()
        if exc is None:
            got_key, _ = task.result()
            assert got_key == key, "a caller got another key's result"
        elif isinstance(exc, WorkFailed):
            assert exc.key == key, "a caller got another key's error"
        else:
            assert isinstance(exc, TimeoutError), repr(exc)
            assert timeout is not None


@settings(max_examples=150, deadline=None)
@given(ops=operations, orphans=st.sampled_from(["cancel", "finish"]))
def test_any_interleaving_keeps_callers_apart_and_frees_keys(
    ops: list[tuple[Any, ...]], orphans: str
) -> None:
    """Every caller gets its own key's outcome and len(reducer) ends at 0."""
    run_virtual(scenario(ops, orphans))  # timeouts replay exactly
