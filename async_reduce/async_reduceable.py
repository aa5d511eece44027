"""async-reduce 1.x's module path of the ``async_reduceable`` decorator.

Kept for compatibility, so that code written for 1.x
(``from async_reduce.async_reduceable import async_reduceable``) runs
unchanged; it names the same objects as :mod:`async_reduce` and importing it
warns about nothing.  New code imports from :mod:`async_reduce`.

.. versionadded:: 2.0
   As an alias; in 1.x this module held the implementation.
"""

from ._decorator import async_reduceable
from ._reducer import AsyncReducer, async_reduce

__all__ = ["AsyncReducer", "async_reduce", "async_reduceable"]
