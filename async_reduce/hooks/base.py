"""The hooks protocol: :class:`BaseHooks` and its composition, :class:`MultipleHooks`.

A reducer made with ``AsyncReducer(hooks=...)`` calls the methods of its
hooks object synchronously, on the event loop running the call, in this
order:

Per call, when the caller awaits the reducer:
    1. ``on_apply_for(coro, ident)``.
    2. ``on_executing_for(coro, ident)`` when this call starts the shared
       execution, or ``on_reducing_for(coro, ident)`` when it joins one in
       flight (``coro`` is then closed without running).

When a caller stops waiting before the execution ends (its task was
cancelled or its ``timeout`` elapsed):
    3. ``on_caller_left(event)``; and when it was the last caller waiting,
       right after it, ``on_execution_abandoned(event)``.

Once per execution, when the shared work ends, inside the execution's task
and before any caller resumes:
    4. ``on_result_for(coro, ident, result)`` or
       ``on_exception_for(coro, ident, exception)``; the exception is a
       ``CancelledError`` when the work was cancelled (for example because
       every caller left).
    5. ``on_execution_finished(event)``.

Connection pools call ``on_pool_event(event)`` for each pool event; the
layers built on the reducer report theirs the same way:
``on_fleet_event(event)`` (coalescing across processes),
``on_service_event(event)`` (shared services) and ``on_worker_event(event)``
(the worker-thread pool).

``coro`` is the caller's coroutine object and ``ident`` the key as shown to
hooks: the explicit ``ident`` as given, or
``package.module:qualname(<state_hash:N>)`` for automatic keys.  The event
methods receive one frozen dataclass from :mod:`async_reduce._events`
(re-exported by :mod:`async_reduce.hooks`), so fields added later never break
a hook.

A hook must be quick and must not block: it runs inside every call.  An
exception raised by a hook never reaches a caller; it is logged through the
``async_reduce`` logger, once per hook object and exception type.  A reducer
used from event loops in several threads calls the same hooks object from
those threads.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from async_reduce._events import (
    CallerLeft,
    ExecutionAbandoned,
    ExecutionFinished,
    PoolEvent,
)
from async_reduce._hookerrors import report_hook_error

if TYPE_CHECKING:
    from async_reduce.fleet._events import FleetEvent
    from async_reduce.services._events import ServiceEvent
    from async_reduce.workers._events import WorkerEvent

__all__ = ["BaseHooks", "MultipleHooks"]

# The methods a 1.x hooks object has; an object providing them all is accepted
# as a hook even when it does not derive from BaseHooks.
_LEGACY_METHODS = (
    "on_apply_for",
    "on_executing_for",
    "on_reducing_for",
    "on_result_for",
    "on_exception_for",
)


def _is_hooks(obj: object) -> bool:
    if isinstance(obj, BaseHooks):
        return True
    return all(callable(getattr(obj, name, None)) for name in _LEGACY_METHODS)


class BaseHooks:
    """Base class for hooks: every method does nothing.

    Subclass it and override the methods you need; the module documentation
    gives the order in which a reducer calls them.  Combine hooks with ``&``:
    ``a & b`` is a new :class:`MultipleHooks` calling ``a`` then ``b``.

    The parameter ``ident`` is annotated ``Any`` so that subclasses written
    for 1.x (which annotated it ``str``) still type-check; it is any hashable.
    """

    def on_apply_for(self, coro: Coroutine[Any, Any, Any], ident: Any) -> None:
        """A caller awaits the reducer with ``coro`` (every call)."""

    def on_executing_for(self, coro: Coroutine[Any, Any, Any], ident: Any) -> None:
        """This call starts the shared execution of ``coro``."""

    def on_reducing_for(self, coro: Coroutine[Any, Any, Any], ident: Any) -> None:
        """This call joins the execution in flight for ``ident``."""

    def on_result_for(
        self, coro: Coroutine[Any, Any, Any], ident: Any, result: Any
    ) -> None:
        """The shared execution returned ``result`` (once per execution)."""

    def on_exception_for(
        self, coro: Coroutine[Any, Any, Any], ident: Any, exception: BaseException
    ) -> None:
        """The shared execution raised ``exception`` (once per execution).

        ``exception`` is a ``CancelledError`` when the work was cancelled.
        """

    def on_execution_finished(self, event: ExecutionFinished) -> None:
        """A shared execution ended; called after ``on_result_for`` or
        ``on_exception_for``.

        .. versionadded:: 2.0
        """

    def on_caller_left(self, event: CallerLeft) -> None:
        """A caller stopped waiting early (cancelled or timed out).

        .. versionadded:: 2.0
        """

    def on_execution_abandoned(self, event: ExecutionAbandoned) -> None:
        """The last caller waiting on an execution left before it ended.

        .. versionadded:: 2.0
        """

    def on_pool_event(self, event: PoolEvent) -> None:
        """A connection pool reports ``event``.

        .. versionadded:: 2.0
        """

    def on_fleet_event(self, event: FleetEvent) -> None:
        """A fleet (cross-process) reducer reports ``event``, a
        :class:`async_reduce.fleet.FleetEvent`.

        .. versionadded:: 2.0
        """

    def on_service_event(self, event: ServiceEvent) -> None:
        """A scope of shared services reports ``event`` (one of the event
        classes of :mod:`async_reduce.services`).

        .. versionadded:: 2.0
        """

    def on_worker_event(self, event: WorkerEvent) -> None:
        """A worker-thread pool reports ``event`` (one of the event classes of
        :mod:`async_reduce.workers`).

        .. versionadded:: 2.0
        """

    def __and__(self, other: BaseHooks) -> MultipleHooks:
        """A new :class:`MultipleHooks` calling ``self`` then ``other``.

        Neither operand is changed.

        .. versionchanged:: 2.0
           1.x extended the left operand in place, and put ``self`` last when
           ``other`` was a :class:`MultipleHooks`.
        """
        if not _is_hooks(other):
            return NotImplemented
        return MultipleHooks(self, other)

    def __rand__(self, other: BaseHooks) -> MultipleHooks:
        """``other & self`` for a 1.x-style hooks object not derived from this class."""
        if not _is_hooks(other):
            return NotImplemented
        return MultipleHooks(other, self)


# (member, bound method) pairs for one hook method.
_Calls = tuple[tuple[BaseHooks, Any], ...]


def _calls_for(members: tuple[BaseHooks, ...], name: str) -> _Calls:
    """The members' bound methods ``name``, leaving out inherited no-ops."""
    noop = getattr(BaseHooks, name)
    calls = []
    for member in members:
        if getattr(type(member), name, None) is noop:
            continue
        method = getattr(member, name, None)
        if callable(method):
            calls.append((member, method))
    return tuple(calls)


class MultipleHooks(BaseHooks):
    """Several hooks called as one, in the order given.

    ``MultipleHooks(a, b, c)`` and ``a & b & c`` are equivalent.  Nested
    :class:`MultipleHooks` are flattened, so ``a & (b & c)`` also calls
    ``a``, ``b``, ``c`` in that order.  The object is immutable: ``&`` returns
    a new one and never changes an operand, so one combination can be shared
    by several reducers.

    Each member is isolated: when one raises an ``Exception``, the error is
    logged (once per member and exception type, through the ``async_reduce``
    logger) and the remaining members are still called.

    Args:
        *hooks: hooks objects: :class:`BaseHooks` instances, or objects with
            the five 1.x methods (``on_apply_for`` ... ``on_exception_for``).

    Raises:
        TypeError: an argument is not a hooks object.
    """

    def __init__(self, *hooks: BaseHooks) -> None:
        members: list[BaseHooks] = []
        for position, hook in enumerate(hooks, 1):
            if isinstance(hook, MultipleHooks):
                members.extend(hook._members)
            elif _is_hooks(hook):
                members.append(hook)
            else:
                raise TypeError(
                    f"MultipleHooks() argument {position} must be a hooks object "
                    "(a BaseHooks instance, or an object with the methods "
                    f"{', '.join(_LEGACY_METHODS)}), got {type(hook).__name__}"
                )
        self._members: tuple[BaseHooks, ...] = tuple(members)
        self._apply = _calls_for(self._members, "on_apply_for")
        self._executing = _calls_for(self._members, "on_executing_for")
        self._reducing = _calls_for(self._members, "on_reducing_for")
        self._result = _calls_for(self._members, "on_result_for")
        self._exception = _calls_for(self._members, "on_exception_for")
        self._finished = _calls_for(self._members, "on_execution_finished")
        self._left = _calls_for(self._members, "on_caller_left")
        self._abandoned = _calls_for(self._members, "on_execution_abandoned")
        self._pool = _calls_for(self._members, "on_pool_event")
        self._fleet = _calls_for(self._members, "on_fleet_event")
        self._service = _calls_for(self._members, "on_service_event")
        self._worker = _calls_for(self._members, "on_worker_event")

    def _wants(self, name: str) -> bool:
        """Whether any member overrides hook method ``name``."""
        return bool(_calls_for(self._members, name))

    @property
    def hooks_list(self) -> list[BaseHooks]:
        """The member hooks in call order, as a new list.

        .. versionchanged:: 2.0
           A copy: changing it does not change this object (build a new one
           with ``&`` instead).
        """
        return list(self._members)

    def __len__(self) -> int:
        """Number of member hooks."""
        return len(self._members)

    def __repr__(self) -> str:
        return f"MultipleHooks({', '.join(map(repr, self._members))})"

    def on_apply_for(self, coro: Coroutine[Any, Any, Any], ident: Any) -> None:
        """Call ``on_apply_for`` of every member, in order."""
        for member, method in self._apply:
            try:
                method(coro, ident)
            except Exception as exc:
                report_hook_error(member, "on_apply_for", exc)

    def on_executing_for(self, coro: Coroutine[Any, Any, Any], ident: Any) -> None:
        """Call ``on_executing_for`` of every member, in order."""
        for member, method in self._executing:
            try:
                method(coro, ident)
            except Exception as exc:
                report_hook_error(member, "on_executing_for", exc)

    def on_reducing_for(self, coro: Coroutine[Any, Any, Any], ident: Any) -> None:
        """Call ``on_reducing_for`` of every member, in order."""
        for member, method in self._reducing:
            try:
                method(coro, ident)
            except Exception as exc:
                report_hook_error(member, "on_reducing_for", exc)

    def on_result_for(
        self, coro: Coroutine[Any, Any, Any], ident: Any, result: Any
    ) -> None:
        """Call ``on_result_for`` of every member, in order."""
        for member, method in self._result:
            try:
                method(coro, ident, result)
            except Exception as exc:
                report_hook_error(member, "on_result_for", exc)

    def on_exception_for(
        self, coro: Coroutine[Any, Any, Any], ident: Any, exception: BaseException
    ) -> None:
        """Call ``on_exception_for`` of every member, in order."""
        for member, method in self._exception:
            try:
                method(coro, ident, exception)
            except Exception as exc:
                report_hook_error(member, "on_exception_for", exc)

    def on_execution_finished(self, event: ExecutionFinished) -> None:
        """Call ``on_execution_finished`` of every member that has it, in order."""
        for member, method in self._finished:
            try:
                method(event)
            except Exception as exc:
                report_hook_error(member, "on_execution_finished", exc)

    def on_caller_left(self, event: CallerLeft) -> None:
        """Call ``on_caller_left`` of every member that has it, in order."""
        for member, method in self._left:
            try:
                method(event)
            except Exception as exc:
                report_hook_error(member, "on_caller_left", exc)

    def on_execution_abandoned(self, event: ExecutionAbandoned) -> None:
        """Call ``on_execution_abandoned`` of every member that has it, in order."""
        for member, method in self._abandoned:
            try:
                method(event)
            except Exception as exc:
                report_hook_error(member, "on_execution_abandoned", exc)

    def on_pool_event(self, event: PoolEvent) -> None:
        """Call ``on_pool_event`` of every member that has it, in order."""
        for member, method in self._pool:
            try:
                method(event)
            except Exception as exc:
                report_hook_error(member, "on_pool_event", exc)

    def on_fleet_event(self, event: FleetEvent) -> None:
        """Call ``on_fleet_event`` of every member that has it, in order."""
        for member, method in self._fleet:
            try:
                method(event)
            except Exception as exc:
                report_hook_error(member, "on_fleet_event", exc)

    def on_service_event(self, event: ServiceEvent) -> None:
        """Call ``on_service_event`` of every member that has it, in order."""
        for member, method in self._service:
            try:
                method(event)
            except Exception as exc:
                report_hook_error(member, "on_service_event", exc)

    def on_worker_event(self, event: WorkerEvent) -> None:
        """Call ``on_worker_event`` of every member that has it, in order."""
        for member, method in self._worker:
            try:
                method(event)
            except Exception as exc:
                report_hook_error(member, "on_worker_event", exc)
