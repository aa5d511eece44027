"""``@async_reduceable``: coalescing applied to every call of a function."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine, Hashable
from typing import (
    TYPE_CHECKING,
    Any,
    Generic,
    ParamSpec,
    Protocol,
    TypeVar,
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
    """Type of a function decorated with :func:`async_reduceable`.

    Calling it returns a coroutine, as calling the undecorated function does;
    concurrent calls with the same key share one execution.  At run time the
    decorated object is a real coroutine function (``functools.wraps`` of the
    original), with these extra attributes.
    """

    reducer: AsyncReducer
    """The reducer the calls go through."""

    __wrapped__: Callable[P, Coroutine[Any, Any, R]]
    __name__: str
    __qualname__: str

    if TYPE_CHECKING:

        @overload
        def __get__(self, instance: None, owner: type) -> ReducedFunction[P, R]: ...

        @overload
        def __get__(
            self, instance: object, owner: type
        ) -> Callable[..., Coroutine[Any, Any, R]]: ...

        def __get__(self, instance: object, owner: type) -> Any:
            """Methods: bound like the function they wrap."""

        def __call__(
            self, *args: P.args, **kwargs: P.kwargs
        ) -> Coroutine[Any, Any, R]: ...

        def key(self, *args: P.args, **kwargs: P.kwargs) -> Hashable:
            """The reducer key of a call with these arguments."""
            ...


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

    explicit = key_fn is not None

    @functools.wraps(fn)
    async def reduced(*args: Any, **kwargs: Any) -> R:
        call_key = key(*args, **kwargs)
        wait = reducer._timeout if timeout is UNSET else timeout
        if reducer._hooks is None:
            result: R = await reducer._call_factory(fn, args, kwargs, call_key, wait)
            return result
        # With hooks: the hooks get a coroutine for every call, as in 1.x.
        shown = call_key[1] if explicit else None
        return await reducer._reduced_call(fn(*args, **kwargs), call_key, shown, wait)

    wrapper: Any = reduced
    wrapper.key = key
    wrapper.reducer = reducer
    return wrapper  # type: ignore[no-any-return]


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
