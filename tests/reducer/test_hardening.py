"""Rules that hold under misuse: nothing of one caller reaches another, no key
is left held, errors come at the call.

Each rule runs over every entry point that repeats the call sequence:
``reducer(coro, ident=...)`` with and without hooks, and a decorated
function with and without hooks.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import traceback
import warnings
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from typing import Any

import pytest

from async_reduce import AsyncReducer, async_reduceable
from async_reduce._validate import UNSET
from async_reduce.hooks import StatisticsOverallHooks
from async_reduce.hooks.base import BaseHooks, MultipleHooks

from .conftest import Gate, capture_loop_errors, settle

GUARD = 10.0
"""Seconds after which a hang fails the test (never reached when it passes)."""


class Recording(BaseHooks):
    """Hooks overriding every reducer method, so every event is built."""

    def __init__(self) -> None:
        self.exceptions: list[BaseException] = []
        self.finished: list[Any] = []

    def on_apply_for(self, coro: Any, ident: Any) -> None:
        pass

    def on_executing_for(self, coro: Any, ident: Any) -> None:
        pass

    def on_reducing_for(self, coro: Any, ident: Any) -> None:
        pass

    def on_result_for(self, coro: Any, ident: Any, result: Any) -> None:
        pass

    def on_exception_for(self, coro: Any, ident: Any, exception: Any) -> None:
        self.exceptions.append(exception)

    def on_execution_finished(self, event: Any) -> None:
        self.finished.append(event)

    def on_caller_left(self, event: Any) -> None:
        pass

    def on_execution_abandoned(self, event: Any) -> None:
        pass


Work = Callable[..., Coroutine[Any, Any, Any]]


class Entry:
    """One way of calling a reducer: ``entry(work, key, *args)``."""

    def __init__(self, kind: str, **options: Any) -> None:
        self.kind = kind
        self.hooks = Recording() if kind.endswith("hooks") else None
        self.reducer = AsyncReducer(hooks=self.hooks, **options)

    def __call__(
        self, work: Work, key: Hashable, *args: Any, timeout: Any = UNSET
    ) -> Awaitable[Any]:
        if self.kind.startswith("call"):
            return self.reducer(work(*args), ident=key, timeout=timeout)
        decorated = async_reduceable(
            self.reducer, key=lambda *_a, **_k: key, timeout=timeout
        )(work)
        return decorated(*args)

    def __repr__(self) -> str:
        return self.kind


ENTRIES = ["call", "call_hooks", "decorator", "decorator_hooks"]


@pytest.fixture(params=ENTRIES)
def entry(request: pytest.FixtureRequest) -> Entry:
    return Entry(request.param)


class Payload:
    """Stands for the data a request handler holds (10 KB)."""

    def __init__(self) -> None:
        self.data = bytes(10_000)


# -- rule 1: a caller that left is forgotten at once -------------------------


@pytest.mark.parametrize("how", ["timeout", "cancel"])
async def test_a_caller_that_left_is_forgotten_at_once(entry: Entry, how: str) -> None:
    """Nothing of a caller that timed out or was cancelled stays reachable."""
    gate = Gate()
    patient = asyncio.ensure_future(entry(gate.work, "k", 1))
    await gate.running.wait()
    payloads: list[weakref.ref[Payload]] = []

    async def impatient() -> None:
        payload = Payload()
        payloads.append(weakref.ref(payload))
        try:
            if how == "timeout":
                await entry(gate.work, "k", 1, timeout=0.005)
            else:
                await entry(gate.work, "k", 1)
        except (TimeoutError, asyncio.CancelledError):
            assert payload.data is not None  # the handler holds its payload

    callers = [asyncio.ensure_future(impatient()) for _ in range(200)]
    await settle()
    if how == "cancel":
        for caller in callers:
            caller.cancel()
    await asyncio.wait(callers, timeout=GUARD)
    assert all(caller.done() for caller in callers)
    del callers
    gc.collect()
    alive = sum(ref() is not None for ref in payloads)
    assert alive == 0
    assert not patient.done()
    assert gate.cancelled == 0
    gate.release.set()
    assert await asyncio.wait_for(patient, GUARD) == 1
    assert len(entry.reducer) == 0


# -- rule 2: no caller sees another caller's state through an exception -----


class Denied(Exception):
    pass


async def test_each_caller_raises_its_own_exception(entry: Entry) -> None:
    """Context, traceback and notes of a caller's exception are its own."""
    release = asyncio.Event()

    async def work() -> None:
        await release.wait()
        raise Denied("no access")

    async def alice() -> BaseException:
        try:
            raise PermissionError("token=alice-secret")
        except PermissionError:
            try:
                await entry(work, "k")
            except Denied as exc:
                # add_note() is 3.11+; it appends to __notes__ as done here.
                exc.__notes__ = [*getattr(exc, "__notes__", ()), "seen by alice"]
                return exc
        raise AssertionError("no error")

    async def bob() -> BaseException:
        await release.wait()
        await asyncio.sleep(0)
        try:
            await entry(work, "k")
        except Denied as exc:
            return exc
        raise AssertionError("no error")

    async def carol() -> BaseException:
        try:
            await entry(work, "k")
        except Denied as exc:
            return exc
        raise AssertionError("no error")

    a = asyncio.ensure_future(alice())
    c = asyncio.ensure_future(carol())
    await settle()
    release.set()
    ea, ec = await asyncio.wait_for(asyncio.gather(a, c), GUARD)
    eb = await bob()  # a later execution: it must not see alice's either
    assert ea is not ec
    assert isinstance(ea.__context__, PermissionError)
    for other in (ec, eb):
        assert type(other) is Denied
        assert str(other) == "no access"
        shown = "".join(traceback.format_exception(other))
        assert "alice" not in shown
        assert not getattr(other, "__notes__", None)
    assert ea.__notes__ == ["seen by alice"]
    if entry.hooks is not None:
        originals = entry.hooks.exceptions
        assert len(originals) == 2  # once per execution
        assert all(type(o) is Denied for o in originals)
        assert all(o is not e for o in originals for e in (ea, ec, eb))
        assert [e.exception for e in entry.hooks.finished] == originals


async def test_copies_keep_args_attributes_and_cause(entry: Entry) -> None:
    """A copy keeps the type, args, attributes, cause and the work's frames."""

    class Rejected(Exception):
        def __init__(self, code: int) -> None:
            super().__init__(f"rejected with code {code}")
            self.code = code

    async def work() -> None:
        await asyncio.sleep(0)
        try:
            {}["missing"]
        except KeyError as exc:
            raise Rejected(7) from exc

    results = await asyncio.gather(
        *(entry(work, "k") for _ in range(3)), return_exceptions=True
    )
    assert len({id(r) for r in results}) == 3
    for exc in results:
        assert isinstance(exc, Rejected)
        assert str(exc) == "rejected with code 7"
        assert exc.code == 7
        assert isinstance(exc.__cause__, KeyError)
        frames = [f.name for f in traceback.extract_tb(exc.__traceback__)]
        assert "work" in frames


async def test_an_exception_that_cannot_be_copied_is_shared(entry: Entry) -> None:
    """Fallback: an exception that cannot be rebuilt reaches callers as itself."""

    class Unbuildable(Exception):
        def __new__(cls, *args: Any, token: object = None) -> Unbuildable:
            if token is not SECRET:
                raise TypeError("built only by the work")
            return super().__new__(cls)

        def __init__(self, *args: Any, token: object = None) -> None:
            super().__init__("unbuildable")

    SECRET = object()

    async def work() -> None:
        await asyncio.sleep(0)
        raise Unbuildable(token=SECRET)

    results = await asyncio.gather(
        *(entry(work, "k") for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, Unbuildable) for r in results)
    assert results[0] is results[1] is results[2]
    assert str(results[0]) == "unbuildable"


# -- rule 3: typed=True covers *args and **kwargs ------------------------------


async def test_typed_covers_star_args_and_kwargs() -> None:
    """typed=True keys f(1), f(1.0), f(True) of *args/**kwargs apart."""
    reducer = AsyncReducer(typed=True)
    gate = Gate()  # closure values are part of the key: this one is hashable

    async def star(*a: Any) -> Any:
        return await gate.work(a)

    async def kw(**k: Any) -> Any:
        return await gate.work(k)

    calls = [
        *(asyncio.ensure_future(reducer(star(v))) for v in (1, 1.0, True, 1)),
        *(asyncio.ensure_future(reducer(kw(x=v))) for v in (1, 1.0, True, 1)),
        asyncio.ensure_future(reducer(star(1, 2))),
        asyncio.ensure_future(reducer(star(1, 2.0))),
    ]
    await settle()
    gate.release.set()
    results = await asyncio.gather(*calls)
    assert gate.started == 8  # the fourth of each group joins the first
    assert [type(r[0]) for r in results[:4]] == [int, float, bool, int]
    assert [type(r["x"]) for r in results[4:8]] == [int, float, bool, int]


# -- rule 4: work that awaits its own key fails fast ------------------------


@pytest.mark.parametrize("via", ["direct", "spawned_task"])
async def test_work_awaiting_its_own_key_fails_fast(entry: Entry, via: str) -> None:
    """The inner call raises RuntimeError naming the key; no key stays held."""

    async def load(x: int) -> int:
        inner = entry(load, ("load", x), x)
        if via == "spawned_task":
            return await asyncio.ensure_future(inner)  # type: ignore[no-any-return]
        return await inner  # type: ignore[no-any-return]

    with pytest.raises(RuntimeError, match=r"\('load', 1\)"):
        await asyncio.wait_for(entry(load, ("load", 1), 1), GUARD)
    await settle()
    assert len(entry.reducer) == 0


async def test_a_cycle_of_keys_fails_fast(entry: Entry) -> None:
    """Work of key a awaiting key b whose work awaits key a raises, no hang."""

    async def a() -> Any:
        return await entry(b, "b")

    async def b() -> Any:
        return await entry(a, "a")

    with pytest.raises(RuntimeError, match="'a'"):
        await asyncio.wait_for(entry(a, "a"), GUARD)
    await settle()
    assert len(entry.reducer) == 0


async def test_work_may_await_other_keys(entry: Entry) -> None:
    """Work joining another key's execution in flight, or starting one, works."""
    gate = Gate()
    other = asyncio.ensure_future(entry(gate.work, "other", 5))
    await gate.running.wait()

    async def outer() -> Any:
        joined = asyncio.ensure_future(entry(gate.work, "other", 5))
        fresh = await entry(inner, "inner")
        await asyncio.sleep(0)
        gate.release.set()
        return fresh, await joined

    async def inner() -> int:
        await asyncio.sleep(0)
        return 3

    assert await asyncio.wait_for(entry(outer, "outer"), GUARD) == (3, 5)
    assert await other == 5
    assert gate.started == 1


# -- rule 5: BaseExceptions ----------------------------------------------------


class Abort(BaseException):
    pass


@pytest.mark.parametrize("exc_type", [Abort, GeneratorExit])
async def test_base_exceptions_reach_every_caller_unlogged(
    entry: Entry, exc_type: type[BaseException]
) -> None:
    """A BaseException of the work reaches every caller; nothing is logged."""
    errors = capture_loop_errors()

    async def work() -> None:
        await asyncio.sleep(0)
        raise exc_type("stop")

    results = await asyncio.wait_for(
        asyncio.gather(*(entry(work, "k") for _ in range(3)), return_exceptions=True),
        GUARD,
    )
    assert all(type(r) is exc_type for r in results)
    del results  # their tracebacks reach the execution's task
    await settle()
    gc.collect()
    await settle()
    assert errors == []
    assert len(entry.reducer) == 0


# -- rule 6: a hook raising a BaseException never leaves a key held ----------

HOOK_METHODS = [
    "on_apply_for",
    "on_executing_for",
    "on_reducing_for",
    "on_result_for",
    "on_exception_for",
    "on_execution_finished",
    "on_caller_left",
    "on_execution_abandoned",
]


@pytest.mark.parametrize("method", HOOK_METHODS)
@pytest.mark.parametrize("kind", ["call_hooks", "decorator_hooks"])
async def test_a_hook_raising_base_exception_never_leaves_a_key_held(
    kind: str, method: str
) -> None:
    """After a hook raised a BaseException, the key starts and joins normally."""
    armed = [True]

    def fire(*_args: Any) -> None:
        if armed[0]:
            armed[0] = False
            raise Abort(method)

    entry = Entry(kind)
    assert entry.hooks is not None
    setattr(entry.hooks, method, fire)
    entry.reducer._want_finished = entry.reducer._want_left = True
    entry.reducer._want_abandoned = True
    capture_loop_errors()  # the hook's Abort may end a task: not under test

    async def fail() -> None:
        await asyncio.sleep(0)
        raise Denied("x")

    async def outcomes(*calls: Awaitable[Any]) -> list[Any]:
        tasks = [asyncio.ensure_future(c) for c in calls]
        await asyncio.wait(tasks, timeout=GUARD)
        assert all(t.done() for t in tasks), "a caller hangs"
        return [t.exception() if not t.cancelled() else None for t in tasks]

    # Callers leave: the last one abandons the execution.
    gate = Gate()
    leaving = [asyncio.ensure_future(entry(gate.work, "k", 1)) for _ in range(2)]
    await settle()
    for task in leaving:
        task.cancel()
    await asyncio.wait(leaving, timeout=GUARD)
    await settle()
    assert len(entry.reducer) == 0
    # The work returns, and fails.
    done = Gate()
    done.release.set()
    await outcomes(entry(done.work, "k", 2), entry(done.work, "k", 2))
    await outcomes(entry(fail, "k"), entry(fail, "k"))
    await settle()
    assert len(entry.reducer) == 0
    # The key starts and joins normally afterwards.
    fresh = Gate()
    calls = [asyncio.ensure_future(entry(fresh.work, "k", 3)) for _ in range(2)]
    await fresh.running.wait()
    fresh.release.set()
    assert await asyncio.wait_for(asyncio.gather(*calls), GUARD) == [3, 3]
    assert fresh.started == 1


# -- rule 7: closed loops are not kept alive -----------------------------------


def test_a_closed_loop_is_not_kept_alive() -> None:
    """A loop closed with an execution pending is not referenced afterwards."""
    reducer = AsyncReducer()
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(lambda _loop, _context: None)

    async def never() -> None:
        await asyncio.Event().wait()

    task = loop.create_task(reducer(never(), ident="k"))
    loop.run_until_complete(asyncio.sleep(0))
    assert len(reducer) == 1
    assert "k" in reducer
    loop.close()
    assert len(reducer) == 0
    assert "k" not in reducer
    ref = weakref.ref(loop)
    del loop, task
    gc.collect()
    assert ref() is None

    async def again() -> int:
        await asyncio.sleep(0)
        return 1

    assert asyncio.run(reducer(again(), ident="k")) == 1
    assert len(reducer) == 0


# -- rule 8: clear errors at the call, nothing left behind --------------------


@pytest.mark.parametrize("hooks", [None, StatisticsOverallHooks()])
def test_decorated_unhashable_argument_raises_at_the_call(hooks: Any) -> None:
    """TypeError at the call, naming function, argument and key=; no coroutine."""

    @async_reduceable(AsyncReducer(hooks=hooks))
    async def search(limit: int, query: dict[str, int]) -> int:
        return limit

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(TypeError) as info:
            search(3, {"a": 1})  # not awaited: the error comes from the call
        gc.collect()
    message = str(info.value)
    assert message.startswith(
        "Unable to auto calculate identity for coroutine because using"
        " unhashable arguments"
    )
    assert "search" in message
    assert "'query'" in message
    assert "key=" in message
    assert [str(w.message) for w in seen] == []


def test_decorated_key_function_returning_unhashable_raises_at_the_call() -> None:
    """key= returning an unhashable value raises TypeError at the call."""

    @async_reduceable(AsyncReducer(), key=lambda query: query)
    async def search(query: list[int]) -> int:
        return 1

    with pytest.raises(TypeError, match=r"search.*key="):
        search([1])


@pytest.mark.parametrize("ident", [None, "given"])
async def test_a_coroutine_that_already_ran_is_rejected_at_the_call(
    ident: Any,
) -> None:
    """A finished, closed or started coroutine raises ValueError, ident or not."""

    async def work() -> int:
        await asyncio.sleep(0)
        return 1

    finished = work()
    await finished
    closed = work()
    closed.close()
    started = work()
    started.send(None)
    for coro in (finished, closed, started):
        with pytest.raises(ValueError, match="coro"):
            AsyncReducer()(coro, ident=ident)
    started.close()


class EqualityFails:
    """A key equal in hash to ``"held"`` whose ``__eq__`` raises."""

    def __hash__(self) -> int:
        return hash("held")

    def __eq__(self, other: object) -> bool:
        raise LookupError("cannot compare")


async def test_a_key_whose_eq_raises_fails_only_its_caller(entry: Entry) -> None:
    """The __eq__ error reaches that caller; the other execution is unharmed."""
    gate = Gate()
    held = asyncio.ensure_future(entry(gate.work, "held", 1))
    await gate.running.wait()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(LookupError):
            await entry(gate.work, EqualityFails(), 2)
        gc.collect()
    assert [str(w.message) for w in seen] == []  # its coroutine, if any, closed
    assert len(entry.reducer) == 1
    gate.release.set()
    assert await held == 1
    assert gate.started == 1
    assert len(entry.reducer) == 0


class HashFails:
    def __hash__(self) -> int:
        raise LookupError("cannot hash")


async def fetch(query: Any) -> str:
    await asyncio.sleep(0)
    return "fetched"


@pytest.mark.parametrize("hooks", [None, StatisticsOverallHooks()])
async def test_a_call_refused_for_its_key_leaves_the_coroutine(hooks: Any) -> None:
    """Unhashable or unhashing keys raise at the call; a retry with ident= works."""
    reducer = AsyncReducer(hooks=hooks)
    for bad in ({"a": 1}, HashFails()):
        coro = fetch(bad)
        with pytest.raises((TypeError, LookupError)):
            reducer(coro)
        assert inspect.getcoroutinestate(coro) == inspect.CORO_CREATED
        assert await reducer(coro, ident="fetch-a") == "fetched"
    coro = fetch(1)
    with pytest.raises(LookupError):
        reducer(coro, ident=HashFails())
    with pytest.raises(TypeError, match="ident"):
        reducer(coro, ident=[1])  # type: ignore[arg-type]
    assert await reducer(coro, ident="fetch-1") == "fetched"


async def test_1x_retry_pattern_after_the_unhashable_error() -> None:
    """1.x's documented retry: the same coroutine again, with ident=."""
    from async_reduce import async_reduce

    coro = fetch({"a": 1})
    try:
        result = await async_reduce(coro)
    except TypeError:
        result = await async_reduce(coro, ident="fetch-a")
    assert result == "fetched"


class AsyncResult(BaseHooks):
    async def on_result_for(  # type: ignore[override]
        self, coro: Any, ident: Any, result: Any
    ) -> None:
        pass


class AsyncLeft(BaseHooks):
    async def on_caller_left(self, event: Any) -> None:  # type: ignore[override]
        pass


@pytest.mark.parametrize(
    "hooks",
    [AsyncResult(), AsyncLeft(), MultipleHooks(BaseHooks(), AsyncResult())],
    ids=["result", "event", "member"],
)
def test_async_hook_methods_are_rejected_when_attached(hooks: Any) -> None:
    """A hook method defined with async def raises TypeError: hooks are sync."""
    with pytest.raises(TypeError, match=r"synchronous.*async def"):
        AsyncReducer(hooks=hooks)


def test_a_hooks_class_is_rejected() -> None:
    """Passing the hooks class instead of an instance raises TypeError."""
    with pytest.raises(TypeError, match=r"StatisticsOverallHooks\(\)"):
        AsyncReducer(hooks=StatisticsOverallHooks)


# -- 1.x's calling pattern: a task drives the call directly -------------------


async def test_gathered_calls_driven_by_tasks_share_one_execution() -> None:
    """gather(*[reducer(f(x)) ...]) runs f once per key; a call runs only once."""
    reducer = AsyncReducer()
    gate = Gate()
    calls = [reducer(gate.work(7)) for _ in range(5)]
    gathered = asyncio.gather(*calls)
    await gate.running.wait()
    with pytest.raises(RuntimeError, match="already awaited"):
        await calls[0]  # a task drives it
    gate.release.set()
    assert await asyncio.wait_for(gathered, GUARD) == [7] * 5
    assert gate.started == 1
    assert len(reducer) == 0


async def test_a_task_driven_call_cancelled_while_waiting_leaves() -> None:
    """Cancelling the task driving a call makes it leave; the work is cancelled."""
    reducer = AsyncReducer()
    gate = Gate()
    task = asyncio.ensure_future(reducer(gate.work(1)))
    await gate.running.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await settle()
    assert gate.cancelled == 1
    assert len(reducer) == 0
