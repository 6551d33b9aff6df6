"""Module-level functions and exception classes that worker processes import by reference.

Used by tests/test_remote.py (and usable by other process tests): everything a
child must find by name lives here, never in a test function.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, NoReturn

from executor_helpers import TwoArgError, add, fail_two_arg, pid

__all__ = ["TwoArgError", "add", "fail_two_arg", "pid"]  # shared worker helpers, re-exported for the codec tests


class LockedError(Exception):
    """Holds a lock: cannot be pickled at all."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


class BadReduceError(Exception):
    """Pickles fine, its own reduction fails to unpickle (too few args); __new__ + state works."""

    def __init__(self, a: int, b: int) -> None:
        super().__init__(a, b)
        self.a = a
        self.b = b

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.a,))


class UnrebuildableError(Exception):
    """Fails to rebuild either way: its reduce is wrong and its __setstate__ refuses."""

    def __init__(self, a: int, b: int) -> None:
        super().__init__(a, b)
        self.a = a

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.a,))

    def __setstate__(self, state: object) -> NoReturn:
        raise RuntimeError("refuses state")


class ParentOnlyFailsError(Exception):
    """Unpickles in a worker, but not in the parent (its state setter checks the pid)."""

    def __init__(self, message: str, owner_pid: int) -> None:
        super().__init__(message, owner_pid)
        self.owner_pid = owner_pid

    def __reduce__(self) -> tuple[Any, ...]:
        return (_make_parent_only, (self.args[0], self.owner_pid))


def _make_parent_only(message: str, owner_pid: int) -> ParentOnlyFailsError:
    if os.getpid() != owner_pid:
        raise RuntimeError("this error refuses to unpickle outside its own process")
    return ParentOnlyFailsError(message, owner_pid)


class MyGroup(ExceptionGroup[Exception]):
    """An ExceptionGroup subclass with an extra attribute."""

    tag = "plain"


class Unpicklable:
    """A result that cannot be pickled."""

    def __init__(self) -> None:
        self.lock = threading.Lock()


class RaisesOnReduce:
    """An argument whose ``__reduce__`` raises SystemExit."""

    def __reduce__(self) -> tuple[Any, ...]:
        raise SystemExit(3)


class CallableObject:
    """A callable instance (no __qualname__ of its own)."""

    def __call__(self) -> int:
        return 1


class BadRepr:
    """An argument whose ``__repr__`` fails."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def level_three(value: str) -> int:
    """Innermost frame of a three-level failure."""
    return int(value)  # LINE: level_three


def level_two(value: str) -> int:
    """Middle frame."""
    return level_three(value) + 1


def fail_nested(value: str) -> int:
    """Raises ValueError three frames deep."""
    return level_two(value) * 2


def fail_locked() -> NoReturn:
    """Raises an exception holding a lock."""
    raise LockedError("locked out")


def fail_bad_reduce() -> NoReturn:
    """Raises an exception that cannot be rebuilt from its pickle."""
    raise BadReduceError(1, 2)


def fail_unrebuildable() -> NoReturn:
    """Raises an exception that cannot be rebuilt at all."""
    raise UnrebuildableError(1, 2)


def fail_parent_only() -> NoReturn:
    """Raises an exception that cannot be rebuilt in the parent only."""
    raise ParentOnlyFailsError("picky", os.getpid())


def fail_chained() -> NoReturn:
    """KeyError from ValueError (explicit cause), while handling ZeroDivisionError (context)."""
    try:
        _ = 1 / 0
    except ZeroDivisionError:
        try:
            int("nope")
        except ValueError as inner:
            err = KeyError("outer")
            err.add_note("first note")
            err.add_note("second note")
            raise err from inner
    raise AssertionError("unreachable")


def fail_context_suppressed() -> NoReturn:
    """RuntimeError raised ``from None`` while handling a KeyError."""
    empty: dict[str, int] = {}
    try:
        empty["k"]
    except KeyError:
        raise RuntimeError("suppressed") from None
    raise AssertionError("unreachable")


def _member_a() -> NoReturn:
    raise ValueError("member a")


def _member_b() -> NoReturn:
    raise TypeError("member b")


def fail_group() -> NoReturn:
    """Raises MyGroup of [ValueError, ExceptionGroup([TypeError])], each with its own traceback."""
    errors: list[Exception] = []
    for fn in (_member_a, _member_b):
        try:
            fn()
        except Exception as exc:
            errors.append(exc)
    inner = ExceptionGroup("inner", [errors[1]])
    group = MyGroup("outer", [errors[0], inner])
    group.tag = "custom"
    raise group


def fail_group_with_bad_member() -> NoReturn:
    """An ExceptionGroup whose second member cannot be pickled."""
    errors: list[Exception] = []
    for fn in (_member_a, fail_locked):
        try:
            fn()
        except Exception as exc:
            errors.append(exc)
    raise ExceptionGroup("mixed", errors)


def fail_base_group() -> NoReturn:
    """A BaseExceptionGroup holding a KeyboardInterrupt and a ValueError."""
    raise BaseExceptionGroup("base", [KeyboardInterrupt(), ValueError("v")])


class CountingRepr:
    """Counts how often its __repr__ runs."""

    calls = 0

    def __repr__(self) -> str:
        CountingRepr.calls += 1
        return "counted"


def recurse(n: int) -> int:
    """Recurses until RecursionError."""
    return recurse(n + 1) + 1


def fail_recursion() -> int:
    """Raises RecursionError with a traceback about the recursion limit deep."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        return recurse(0)
    finally:
        sys.setrecursionlimit(old)


def return_unpicklable() -> Unpicklable:
    """Returns an object that cannot be pickled."""
    return Unpicklable()


def return_lambda() -> Any:
    """Returns a lambda."""
    return lambda: 1


def fail_system_exit() -> NoReturn:
    """Raises SystemExit in the worker."""
    raise SystemExit(5)


def failing_frames(depth: int) -> int:
    """Raises ZeroDivisionError ``depth`` frames deep (for the cost measurement)."""
    if depth <= 1:
        return 1 // 0
    return failing_frames(depth - 1) + 1


_RENDER_CASES: dict[str, Any] = {
    "nested": lambda: fail_nested("x"),
    "chained": fail_chained,
    "suppressed": fail_context_suppressed,
    "group": fail_group,
    "two_arg": fail_two_arg,
    "recursion": fail_recursion,
}


def render_and_capture(case: str) -> tuple[str, bytes]:
    """Run a failing case here; return this process's own rendering and the captured bytes."""
    import traceback

    from futurekit._process.exceptions import capture

    try:
        _RENDER_CASES[case]()
    except BaseException as exc:
        return "".join(traceback.format_exception(exc)), capture(exc)
    raise AssertionError(f"{case} did not fail")


class Holder:
    """Holds what it is given as attributes (the path to an unsendable part is named through it)."""

    def __init__(self, **parts: Any) -> None:
        self.__dict__.update(parts)


def identity(x: object) -> object:
    return x
