"""run(): the function's identity is part of the key, and the docs say so."""

from __future__ import annotations

import asyncio
from typing import Any

from pool_helpers import MemoryConnection, settle

import async_reduce.pool
from async_reduce.pool import ConnectionPool


async def test_same_function_coalesces_new_function_objects_do_not(
    make_pool: Any,
) -> None:
    """Concurrent run() calls coalesce only when they pass the same function
    object; a lambda per call is a new key each time."""
    pool = make_pool(5)
    release = asyncio.Event()
    calls = 0

    async def get(conn: MemoryConnection, key: str) -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return key

    same = [asyncio.create_task(pool.run(get, "k")) for _ in range(3)]
    await settle()
    assert calls == 1
    fresh = [
        asyncio.create_task(pool.run(lambda conn, key: get(conn, key), "k"))
        for _ in range(3)
    ]
    await settle()
    assert calls == 4
    release.set()
    assert await asyncio.gather(*same, *fresh) == ["k"] * 6
    await pool.close()


def test_docs_use_a_named_function_and_explain_the_key() -> None:
    """The module's run() example passes a named function (not a lambda), and
    run()'s docstring says the function's identity is part of the key."""
    module_doc = async_reduce.pool.__doc__ or ""
    assert "pool.run(" in module_doc
    assert "pool.run(lambda" not in module_doc.replace(" ", "")
    run_doc = ConnectionPool.run.__doc__ or ""
    assert "identity is part of the key" in run_doc
    assert "lambda" in run_doc
