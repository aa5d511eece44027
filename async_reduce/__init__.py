"""Request coalescing for asyncio.

When many concurrent callers ask for the same thing, the work runs once and
every caller gets the result::

    from async_reduce import async_reduce, async_reduceable

    user = await async_reduce(fetch_user(42))

    @async_reduceable()
    async def fetch_user(user_id: int) -> dict: ...

See :class:`AsyncReducer` for the full contract (keys, cancellation,
timeouts, event loops).
"""

# async-reduce 1.x's module paths, kept for compatibility.  They are loaded
# first: loading ``async_reduce.async_reduceable`` after the name below was
# bound would rebind the package's ``async_reduceable`` to the module.
from . import async_reduceable as _async_reduceable_module  # noqa: F401
from . import async_reducer as _async_reducer_module  # noqa: F401
from ._decorator import ReducedFunction, async_reduceable
from ._reducer import AsyncReducer, async_reduce

__all__ = [
    "AsyncReducer",
    "ReducedFunction",
    "async_reduce",
    "async_reduceable",
]

__version__ = "2.0.0.dev0"
