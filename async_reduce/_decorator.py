"""``@async_reduceable``: coalescing applied to every call of a function."""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable, Coroutine, Hashable
from typing import (
    TYPE_CHECKING,
    Any,
    Generic,
    ParamSpec,
    Protocol,
    TypeVar,
    cast,
    overload,
)

from ._keys import make_binder
from ._reducer import AsyncReducer, async_reduce
from ._validate import UNSET, Unset, check_bool, check_timeout

if TYPE_CHECKING:
    from .workers import WorkerPool

__all__ = ["ReducedFunction", "async_reduceable"]

P = ParamSpec("P")
R = TypeVar("R")


class ReducedFunction(Generic[P, R]):
    """A function decorated with :func:`async_reduceable`.

    Calling it returns a coroutine, as calling the undecorated function does;
    concurrent calls with the same key share one execution.  The key is
    computed at the call, so an argument that cannot be keyed raises
    ``TypeError`` there, before any coroutine exists.

    It is a coroutine function to ``inspect.iscoroutinefunction`` and
    ``asyncio.iscoroutinefunction`` (frameworks that dispatch on that treat
    it as ``async def``), carries the original's name, docstring and
    signature (``functools.wraps``), and binds as a method like a function.
    """

    reducer: AsyncReducer
    """The reducer the calls go through."""

    key: Callable[P, Hashable]
    """``key(*args, **kwargs)``: the reducer key of a call with these arguments."""

    __wrapped__: Callable[P, Coroutine[Any, Any, R]]
    __name__: str
    __qualname__: str

    def __init__(
        self,
        fn: Callable[P, Coroutine[Any, Any, R]],
        reducer: AsyncReducer,
        key: Callable[P, Hashable],
        explicit: bool,
        timeout: float | Unset | None,
    ) -> None:
        functools.update_wrapper(self, fn)
        self.reducer = reducer
        self.key = key
        self._fn = fn
        self._explicit = explicit
        self._timeout = timeout
        # What inspect.iscoroutinefunction() reads of a function-like object;
        # FastAPI also asks whether __call__ is a coroutine function.
        code = getattr(fn, "__code__", None)
        if code is not None:
            vars(self).update(
                __code__=code,
                __defaults__=getattr(fn, "__defaults__", None),
                __kwdefaults__=getattr(fn, "__kwdefaults__", None),
            )
        vars(self)["__call__"] = self

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        call_key = self.key(*args, **kwargs)
        try:
            hash(call_key)
        except TypeError:
            raise self._unhashable(args, kwargs) from None
        reducer = self.reducer
        timeout = self._timeout
        wait = reducer._timeout if timeout is UNSET else timeout
        fn = self._fn
        if reducer._hooks is None:
            return reducer._call_factory(fn, args, kwargs, call_key, wait)
        # With hooks: the hooks get a coroutine for every call, as in 1.x.
        shown = cast(Any, call_key)[1] if self._explicit else None
        return reducer._reduced_call(fn(*args, **kwargs), call_key, shown, wait)

    @overload
    def __get__(self, instance: None, owner: type) -> ReducedFunction[P, R]: ...

    @overload
    def __get__(
        self, instance: object, owner: type
    ) -> Callable[..., Coroutine[Any, Any, R]]: ...

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        """Methods: bound like the function they wrap."""
        if instance is None:
            return self
        return types.MethodType(self, instance)

    def __repr__(self) -> str:
        return f"<reduced function {self.__module__}.{self.__qualname__}>"

    def _unhashable(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> TypeError:
        """The error of a call whose key cannot be hashed, naming the argument."""
        name = self.__qualname__
        if self._explicit:
            return TypeError(
                f"{name}(): key= returned an unhashable key; the key function"
                " must return a hashable value"
            )
        culprit = _unhashable_argument(self._fn, args, kwargs)
        return TypeError(
            "Unable to auto calculate identity for coroutine because using"
            f" unhashable arguments: {name}() argument {culprit} is not hashable;"
            " pass key= to async_reduceable to compute a hashable key from the"
            f" arguments, like:\n\t@async_reduceable(key=lambda ...: ...)"
        )


def _unhashable_argument(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> str:
    """Name the first argument of a call that cannot be hashed."""
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return "(one of them)"
    for name, value in bound.arguments.items():
        kind = bound.signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            items: list[tuple[str, Any]] = [
                (f"{name}[{i}]", v) for i, v in enumerate(value)
            ]
        elif kind is inspect.Parameter.VAR_KEYWORD:
            items = [(f"{k!r} (in **{name})", v) for k, v in value.items()]
        else:
            items = [(repr(name), value)]
        for shown, item in items:
            try:
                hash(item)
            except TypeError:
                return f"{shown} ({type(item).__name__})"
    return "(one of them)"


class _DecoratesItself(Protocol):
    """A reducer that decorates functions itself (see :func:`async_reduceable`)."""

    def __async_reduceable__(
        self,
        fn: Callable[..., Coroutine[Any, Any, Any]],
        *,
        typed: bool | None,
        key: Callable[..., Hashable] | None,
        timeout: float | Unset | None,
    ) -> Any: ...


@overload
def async_reduceable(
    reducer: AsyncReducer | None = None,
    *,
    workers: WorkerPool,
    typed: bool | None = None,
    key: Callable[..., Hashable] | None = None,
    timeout: float | Unset | None = UNSET,
) -> Callable[[Callable[P, R]], ReducedFunction[P, R]]: ...


@overload
def async_reduceable(  # type: ignore[overload-overlap]
    reducer: AsyncReducer | _DecoratesItself | None = None,
    *,
    typed: bool | None = None,
    key: Callable[..., Hashable] | None = None,
    timeout: float | Unset | None = UNSET,
) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], ReducedFunction[P, R]]: ...


@overload
def async_reduceable(
    reducer: Callable[P, Coroutine[Any, Any, R]],
) -> ReducedFunction[P, R]: ...


def async_reduceable(
    reducer: Any = None,
    *,
    workers: WorkerPool | None = None,
    typed: bool | None = None,
    key: Callable[..., Hashable] | None = None,
    timeout: float | Unset | None = UNSET,
) -> Any:
    """Decorate a coroutine function so that concurrent identical calls run once.

    Usable as ``@async_reduceable()``, ``@async_reduceable(my_reducer)`` or
    bare ``@async_reduceable``.  The key of a call is the function plus its
    arguments bound to its signature, so ``f(1, b=2)``, ``f(1, 2)`` and
    ``f(1)`` (when ``b`` defaults to 2) share an execution; for methods
    ``self`` is part of the key.  The key is computed from the arguments
    before any coroutine exists: a call that joins a running execution never
    creates one (unless the reducer has hooks, which receive coroutines).

    The semantics of cancellation, timeouts and exceptions are those of
    :class:`AsyncReducer`.

    With ``workers=pool`` (a :class:`~async_reduce.workers.WorkerPool`) it
    decorates a plain ``def`` function instead: calling the result returns a
    coroutine that runs the function on the pool's threads, coalesced on the
    same key (see :meth:`WorkerPool.apply
    <async_reduce.workers.WorkerPool.apply>` for queueing and cancellation).

    Other reducers (such as :class:`async_reduce.fleet.FleetReducer`) plug in
    by defining ``__async_reduceable__(fn, *, typed, key, timeout)``, which
    receives the arguments given here (``typed=None`` when not given) and
    returns the decorated function.

    Args:
        reducer: the reducer to use (default: the module-level
            ``async_reduce``; with ``workers``, the pool's reducer).
        workers: a worker pool to run a plain ``def`` function on.

            .. versionadded:: 2.0
        typed: keep arguments of different types apart; default: the
            reducer's ``typed``.
        key: ``key(*args, **kwargs) -> Hashable`` computing the key from the
            call's arguments, for arguments that are not hashable; it is
            scoped to the decorated function.
        timeout: seconds a caller waits before ``TimeoutError``; ``None``
            waits forever; default: the reducer's timeout.

    Raises:
        TypeError: ``reducer`` is not an AsyncReducer, ``key`` is not
            callable, ``workers`` is not a WorkerPool, or the decorated
            object is not a coroutine function (with ``workers``: is not a
            plain function).
        ValueError: ``timeout`` is not a positive number or ``None``.
    """
    if inspect.iscoroutinefunction(reducer):
        # Bare ``@async_reduceable``.
        return _decorate(reducer, async_reduce, async_reduce.typed, None, UNSET)
    if workers is not None:
        from .workers import WorkerPool

        if not isinstance(workers, WorkerPool):
            raise TypeError(
                f"workers must be a WorkerPool, got {type(workers).__name__}"
            )
        if reducer is None:
            reducer = workers.reducer
    if reducer is None:
        reducer = async_reduce
    if not isinstance(reducer, AsyncReducer):
        plug_in = getattr(reducer, "__async_reduceable__", None)
        if callable(plug_in) and workers is None:
            return _plug_in(plug_in, typed, key, timeout)
        raise _not_a_reducer(reducer)
    typed = reducer.typed if typed is None else check_bool(typed, "typed")
    if key is not None and not callable(key):
        raise TypeError(f"key must be callable, got {type(key).__name__}")
    if timeout is not UNSET:
        timeout = check_timeout(timeout)

    def decorator(fn: Callable[P, Coroutine[Any, Any, R]]) -> ReducedFunction[P, R]:
        if workers is not None:
            wrapped: ReducedFunction[P, R] = _decorate_blocking(
                fn, workers, reducer, typed, key, timeout
            )
            return wrapped
        return _decorate(fn, reducer, typed, key, timeout)

    return decorator


def _not_a_reducer(reducer: Any) -> TypeError:
    """The error for ``async_reduceable(reducer)`` with something else."""
    if isinstance(reducer, type) and issubclass(reducer, AsyncReducer):
        return TypeError(
            f"reducer must be an AsyncReducer instance, got the class "
            f"{reducer.__qualname__}; pass {reducer.__qualname__}()"
        )
    if inspect.isroutine(reducer) or isinstance(reducer, functools.partial):
        # Bare ``@async_reduceable`` on a function that is not ``async def``.
        name = getattr(reducer, "__qualname__", None) or repr(reducer)
        return TypeError(
            f"bare @async_reduceable needs a coroutine function (async def); "
            f"{name} is not one (a blocking function can run on worker threads: "
            "@async_reduceable(workers=pool))"
        )
    return TypeError(f"reducer must be an AsyncReducer, got {type(reducer).__name__}")


def _plug_in(
    plug_in: Callable[..., Any],
    typed: bool | None,
    key: Callable[..., Hashable] | None,
    timeout: float | Unset | None,
) -> Any:
    """``async_reduceable(reducer)`` for a reducer that decorates by itself."""
    if typed is not None:
        check_bool(typed, "typed")
    if key is not None and not callable(key):
        raise TypeError(f"key must be callable, got {type(key).__name__}")
    if timeout is not UNSET:
        timeout = check_timeout(timeout)

    def decorator(fn: Callable[P, Coroutine[Any, Any, R]]) -> ReducedFunction[P, R]:
        decorated: ReducedFunction[P, R] = plug_in(
            fn, typed=typed, key=key, timeout=timeout
        )
        return decorated

    return decorator


def _decorate(
    fn: Callable[P, Coroutine[Any, Any, R]],
    reducer: AsyncReducer,
    typed: bool,
    key_fn: Callable[..., Hashable] | None,
    timeout: float | Unset | None,
) -> ReducedFunction[P, R]:
    if not inspect.iscoroutinefunction(fn):
        raise TypeError(
            f"async_reduceable decorates coroutine functions (async def), got {fn!r}"
        )
    if key_fn is None:
        # The generated binder returns the whole key, (fn, arguments).
        key: Callable[..., Any] = make_binder(fn, typed, scope=fn)
    else:
        user_key = key_fn

        def key(*args: Any, **kwargs: Any) -> Any:
            return (fn, user_key(*args, **kwargs))

    return ReducedFunction(fn, reducer, key, key_fn is not None, timeout)


def _decorate_blocking(
    fn: Callable[..., Any],
    workers: WorkerPool,
    reducer: AsyncReducer,
    typed: bool,
    key_fn: Callable[..., Hashable] | None,
    timeout: float | Unset | None,
) -> Any:
    """``workers=``: a coroutine function running ``fn`` on the pool."""
    if inspect.iscoroutinefunction(fn) or not callable(fn):
        raise TypeError(
            "async_reduceable(workers=...) decorates plain (blocking) functions,"
            f" got {fn!r}; decorate coroutine functions without workers="
        )
    if key_fn is None:
        key: Callable[..., Any] = make_binder(fn, typed, scope=fn)
    else:
        user_key = key_fn

        def key(*args: Any, **kwargs: Any) -> Any:
            return (fn, user_key(*args, **kwargs))

    apply = workers.apply

    @functools.wraps(fn)
    async def reduced(*args: Any, **kwargs: Any) -> Any:
        call_key = key(*args, **kwargs)
        try:
            hash(call_key)
        except TypeError:  # unhashable arguments: the call runs on its own
            call_key = None
        return await apply(
            fn, args, kwargs, ident=call_key, timeout=timeout, reducer=reducer
        )

    wrapper: Any = reduced
    wrapper.key = key
    wrapper.reducer = reducer
    wrapper.workers = workers
    return wrapper
