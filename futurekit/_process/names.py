"""How error messages name things: classes, callables and exceptions; nothing here ever raises."""

from __future__ import annotations


def type_name(cls: type) -> str:
    """Qualified name of a class, e.g. ``mymod.ParseError`` or ``ValueError``."""
    module = getattr(cls, "__module__", None)
    qualname = getattr(cls, "__qualname__", None) or getattr(cls, "__name__", "?")
    if module in (None, "builtins"):
        return str(qualname)
    return f"{module}.{qualname}"


def callable_name(fn: object) -> str:
    """``module.qualname`` of a callable; never raises."""
    try:
        inner = fn
        for _ in range(10):  # functools.partial and friends
            nested = getattr(inner, "func", None)
            if nested is None or not callable(nested):
                break
            inner = nested
        qualname = getattr(inner, "__qualname__", None)
        if not isinstance(qualname, str):
            qualname = type_name(type(inner))
            return qualname
        module = getattr(inner, "__module__", None)
        if isinstance(module, str) and module != "builtins":
            return f"{module}.{qualname}"
        return qualname
    except BaseException:
        return f"<{type(fn).__name__} object>"


def safe_str(exc: BaseException) -> str:
    """``str(exc)`` or a placeholder when its ``__str__`` fails (in any way)."""
    try:
        return str(exc)
    except BaseException as err:
        return f"<str() failed: {type(err).__name__}>"


def describe_error(err: BaseException) -> str:
    """``"TypeName: message"``; never raises."""
    return f"{type(err).__name__}: {safe_str(err)}"
