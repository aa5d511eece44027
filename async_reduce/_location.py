"""Human-readable locations of coroutine functions: ``package.module:qualname``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import CodeType
from typing import Any

__all__ = ["coroutine_location", "function_location"]

_UNKNOWN_MODULE = "<unknown module>"
_MAX_CACHED = 10_000
_by_code: dict[CodeType, str] = {}
_module_by_file: dict[str, str] = {}


def _module_for_file(filename: str) -> str:
    """Name of the imported module whose source is ``filename``."""
    name = _module_by_file.get(filename)
    if name is not None:
        return name
    for mod_name, module in list(sys.modules.items()):
        if getattr(module, "__file__", None) == filename:
            _module_by_file[filename] = mod_name
            return mod_name
    return _UNKNOWN_MODULE


def coroutine_location(coro: Any) -> str:
    """``package.module:qualname`` of the function that made ``coro``.

    Works on coroutines in any state, finished ones included.  The module is
    read from the frame's globals while the frame exists, otherwise found by
    source file among the imported modules.
    """
    code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
    if code is None:
        return f"{_UNKNOWN_MODULE}:{type(coro).__qualname__}"
    location = _by_code.get(code)
    if location is None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            module = frame.f_globals.get("__name__", _UNKNOWN_MODULE)
        else:
            module = _module_for_file(code.co_filename)
        qualname = getattr(coro, "__qualname__", code.co_name)
        location = f"{module}:{qualname}"
        if len(_by_code) >= _MAX_CACHED:
            _by_code.clear()
        _by_code[code] = location
    return location


def function_location(fn: Callable[..., Any]) -> str:
    """``package.module:qualname`` of a function."""
    module = getattr(fn, "__module__", None) or _UNKNOWN_MODULE
    qualname = getattr(fn, "__qualname__", None) or repr(fn)
    return f"{module}:{qualname}"
