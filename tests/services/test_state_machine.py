"""Random sequences of uses, releases, cancellations, failing starts and
stops, failures while running, lingering and scope exit keep the invariants:

* at most one running (or lingering) instance per identity;
* a dependency outlives its dependents (no teardown finds a dependency down);
* every started instance is torn down at most once, and exactly once after
  the scope exited;
* users get the service, the start's own error, ServiceBroken or
  ServicesClosed, nothing else;
* nothing is left after the scope exited (no service, task, pending start or
  wait edge).

The event loop runs on a virtual clock, so lingering is exercised without
waiting: the ``advance`` rule moves time forward.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from async_reduce.services import (
    ServiceBroken,
    Services,
    ServicesClosed,
)

# name -> names its start uses (a DAG: c uses a; d uses b and c)
CATALOGUE: dict[str, tuple[str, ...]] = {
    "a": (),
    "b": (),
    "c": ("a",),
    "d": ("b", "c"),
}
NAMES = sorted(CATALOGUE)


class StartError(Exception):
    pass


class StopError(Exception):
    pass


class BrokeError(Exception):
    pass


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """A loop whose clock only moves when told to."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def time(self) -> float:
        return self.now


class Inst:
    def __init__(self, name: str, held: list[Inst], owner: asyncio.Task[Any]) -> None:
        self.name = name
        self.held = held
        self.owner = owner
        self.up = True
        self.stops = 0
        self.break_requested = False


class User:
    """A task holding one service until released: through a ``use`` block
    (optionally with ``cancel_on_failure``) or ``acquire``/``release``."""

    def __init__(
        self, machine: ServicesMachine, name: str, linger: float | None, style: str
    ) -> None:
        self.name = name
        self.style = style
        self.instance: Inst | None = None
        self.release = asyncio.Event()
        self.cancelled = False
        self.outcome: BaseException | None = None
        self.task = machine.loop.create_task(self.run(machine, linger))

    async def run(self, machine: ServicesMachine, linger: float | None) -> None:
        services = machine.services
        factory = machine.factories[self.name]
        try:
            if self.style == "acquire":
                instance = await services.acquire(factory, services, linger=linger)
                try:
                    self.instance = instance
                    assert instance.up, f"{self.name}: got an instance already down"
                    await self.release.wait()
                finally:
                    services.release(instance)
                return
            async with services.use(
                factory,
                services,
                linger=linger,
                cancel_on_failure=self.style == "block_cancel",
            ) as instance:
                self.instance = instance
                assert instance.up, f"{self.name}: got an instance already down"
                await self.release.wait()
        except (StartError, ServiceBroken, ServicesClosed) as exc:
            self.outcome = exc
        except asyncio.CancelledError:
            assert self.cancelled, "a user was cancelled by nobody"
            raise
        finally:
            self.instance = None


class ServicesMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = VirtualClockLoop()
        self.services = Services()
        self.loop.run_until_complete(self.services.__aenter__())
        self.gates: dict[str, list[asyncio.Future[None]]] = {n: [] for n in NAMES}
        self.stop_fails = dict.fromkeys(NAMES, False)
        # "ok": starts succeed at once; "fail": they fail; "hold": they wait
        # for finish_start.
        self.start_mode = dict.fromkeys(NAMES, "ok")
        self.instances: list[Inst] = []
        self.violations: list[str] = []
        self.users: list[User] = []
        self.closed = False
        self.factories = {name: self._factory(name) for name in NAMES}

    def _factory(self, name: str) -> Any:
        machine = self

        @asynccontextmanager
        async def factory(services: Services) -> AsyncIterator[Inst]:
            held: list[Inst] = []
            try:
                for dep in CATALOGUE[name]:
                    held.append(
                        await services.acquire(machine.factories[dep], services)
                    )
                await asyncio.sleep(0)  # a start always takes a step
                mode = machine.start_mode[name]
                if mode == "fail":
                    raise StartError(name)
                if mode == "hold":
                    gate = machine.loop.create_future()
                    machine.gates[name].append(gate)
                    try:
                        await gate
                    finally:
                        if gate in machine.gates[name]:
                            machine.gates[name].remove(gate)
            except BaseException:
                for dep_instance in held:
                    services.release(dep_instance)
                raise
            owner = asyncio.current_task()
            assert owner is not None
            instance = Inst(name, held, owner)
            machine.instances.append(instance)
            try:
                yield instance
            except asyncio.CancelledError:
                if instance.break_requested:
                    raise BrokeError(name) from None
                raise
            finally:
                for dep_instance in held:
                    if not dep_instance.up:
                        machine.violations.append(
                            f"{dep_instance.name} went down before {name}"
                        )
                instance.up = False
                instance.stops += 1
                for dep_instance in held:
                    services.release(dep_instance)
                if machine.stop_fails[name]:
                    raise StopError(name)

        factory.__wrapped__.__qualname__ = name  # type: ignore[attr-defined]
        return factory

    def settle(self) -> None:
        async def settle() -> None:
            for _ in range(30):
                await asyncio.sleep(0)

        self.loop.run_until_complete(settle())

    # -- rules ---------------------------------------------------------------

    @precondition(lambda self: not self.closed)
    @rule(
        name=st.sampled_from(NAMES),
        linger=st.sampled_from([None, 0.0, 5.0]),
        style=st.sampled_from(["block", "block_cancel", "acquire"]),
    )
    def use(self, name: str, linger: float | None, style: str) -> None:
        self.users.append(User(self, name, linger, style))
        self.settle()

    @precondition(lambda self: any(not u.task.done() for u in self.users))
    @rule(index=st.integers(0, 1000))
    def release(self, index: int) -> None:
        live = [u for u in self.users if not u.task.done()]
        live[index % len(live)].release.set()
        self.settle()

    @precondition(lambda self: any(not u.task.done() for u in self.users))
    @rule(index=st.integers(0, 1000))
    def cancel(self, index: int) -> None:
        live = [u for u in self.users if not u.task.done()]
        user = live[index % len(live)]
        user.cancelled = True
        user.task.cancel()
        self.settle()

    @precondition(lambda self: any(self.gates.values()))
    @rule(index=st.integers(0, 1000), ok=st.booleans())
    def finish_start(self, index: int, ok: bool) -> None:
        waiting = [(name, gate) for name in NAMES for gate in self.gates[name]]
        name, gate = waiting[index % len(waiting)]
        self.gates[name].remove(gate)
        if ok:
            gate.set_result(None)
        else:
            gate.set_exception(StartError(name))
        self.settle()

    @rule(name=st.sampled_from(NAMES), mode=st.sampled_from(["ok", "fail", "hold"]))
    def set_start_mode(self, name: str, mode: str) -> None:
        self.start_mode[name] = mode

    @rule(name=st.sampled_from(NAMES), fails=st.booleans())
    def set_stop_failure(self, name: str, fails: bool) -> None:
        self.stop_fails[name] = fails

    @precondition(lambda self: any(i.up for i in self.instances))
    @rule(index=st.integers(0, 1000))
    def break_service(self, index: int) -> None:
        up = [i for i in self.instances if i.up and not i.break_requested]
        if not up:
            return
        instance = up[index % len(up)]
        instance.break_requested = True
        instance.owner.cancel()
        self.settle()

    @rule(seconds=st.sampled_from([1.0, 10.0]))
    def advance(self, seconds: float) -> None:
        self.loop.now += seconds
        self.settle()

    @precondition(lambda self: not self.closed)
    @rule()
    def exit_scope(self) -> None:
        self.close()

    def close(self) -> None:
        self.closed = True
        for gates in self.gates.values():
            for gate in gates:
                if not gate.done():
                    gate.set_exception(StartError("late"))
        self.loop.run_until_complete(self.services.aclose())
        self.settle()

    # -- invariants ------------------------------------------------------------

    @invariant()
    def one_running_instance_per_identity(self) -> None:
        states = [(s.name, s.state) for s in self.services.statistics().services]
        for name in NAMES:
            running = [
                state
                for shown, state in states
                if shown.endswith(name) and state in ("running", "lingering")
            ]
            assert len(running) <= 1, states

    @invariant()
    def dependencies_outlive_dependents(self) -> None:
        assert self.violations == []

    @invariant()
    def torn_down_at_most_once(self) -> None:
        assert all(instance.stops <= 1 for instance in self.instances)

    @invariant()
    def users_see_only_allowed_outcomes(self) -> None:
        for user in self.users:
            if user.task.done() and not user.task.cancelled():
                assert user.task.exception() is None, user.task.exception()

    @invariant()
    def nothing_left_after_exit(self) -> None:
        if not self.closed:
            return
        services = self.services
        assert services.statistics().services == ()
        assert services._registry == {}
        assert services._pending == {}
        assert len(services._waits) == 0
        assert all(instance.stops == 1 for instance in self.instances)

    def teardown(self) -> None:
        try:
            if not self.closed:
                self.close()
            for user in self.users:
                user.release.set()
            self.settle()
            assert all(user.task.done() for user in self.users)
            assert self.services._tasks == set()
            self.nothing_left_after_exit()
            self.users_see_only_allowed_outcomes()
        finally:
            self.loop.close()


def test_services_state_machine() -> None:
    """Any sequence of operations keeps the services' invariants."""
    run_state_machine_as_test(
        ServicesMachine,
        settings=settings(
            max_examples=150,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
