"""Private helpers shared by the combinators: tolerant settling and input checks.

Every output future futurekit creates stays PENDING until it is settled, so a
caller may cancel it at any moment. The helpers here therefore never raise
``InvalidStateError``: settling an output that is already done (cancelled by
the caller, most often) is silently a no-op. They are meant to be called from
inside :func:`futurekit._trampoline.call`, since settling a future runs its
done-callbacks synchronously.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from concurrent.futures import CancelledError, Future, InvalidStateError
from concurrent.futures._base import CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED
from typing import Any

from ._types import FutureLike, is_future_like

_FINISHED = FINISHED
_CANCELLED_STATES = (CANCELLED, CANCELLED_AND_NOTIFIED)


def set_result(out: Future[Any], value: object) -> None:
    """Set ``out``'s result unless it is already done (e.g. cancelled meanwhile)."""
    if not out.done():
        try:
            out.set_result(value)
        except InvalidStateError:
            pass


def set_exception(out: Future[Any], exc: BaseException) -> None:
    """Fail ``out`` unless it is already done."""
    if not out.done():
        try:
            out.set_exception(exc)
        except InvalidStateError:
            pass


def outcome(src: FutureLike[Any]) -> tuple[bool, Any]:
    """Read a finished future: ``(True, value)`` or ``(False, exception)``.

    A cancelled input reads as ``(False, CancelledError())``. Reading never
    raises: whatever an odd FutureLike throws is returned as its error.
    """
    if type(src) is Future:
        # Fast path: the state of a done stdlib Future is final, so its fields
        # can be read without taking its lock.
        state = src._state
        if state == _FINISHED:
            exc = src._exception
            if exc is None:
                return True, src._result
            return False, exc
        if state in _CANCELLED_STATES:
            return False, CancelledError()
    try:
        if src.cancelled():
            return False, CancelledError()
        exc = src.exception(0)
        if exc is None:
            return True, src.result(0)
        return False, exc
    except BaseException as error:  # an odd FutureLike; never let it escape a callback
        return False, error


def copy_outcome(src: FutureLike[Any], out: Future[Any]) -> None:
    """Settle ``out`` like the finished ``src``: value, error, or cancellation."""
    if type(src) is Future and src._state in _CANCELLED_STATES:
        out.cancel()
        return
    if type(src) is not Future:
        try:
            if src.cancelled():
                out.cancel()
                return
        except BaseException as error:
            set_exception(out, error)
            return
    ok, value = outcome(src)
    if ok:
        set_result(out, value)
    else:
        set_exception(out, value)


def cancel_quietly(fut: FutureLike[Any] | None) -> None:
    """Cancel ``fut`` if it is pending; swallow whatever an odd FutureLike raises."""
    if fut is None:
        return
    try:
        fut.cancel()
    except BaseException:  # pragma: no cover - defensive against odd FutureLikes
        pass


def check_future(where: str, what: str, obj: object) -> None:
    """Raise TypeError naming the argument unless ``obj`` is future-like."""
    if type(obj) is not Future and not is_future_like(obj):
        raise TypeError(f"{where}: {what} must be a future, got {describe(obj)}")


def check_callable(where: str, what: str, obj: object) -> None:
    """Raise TypeError naming the argument unless ``obj`` is callable."""
    if not callable(obj):
        raise TypeError(f"{where}: {what} must be callable, got {describe(obj)}")


def check_seconds(where: str, what: str, value: object) -> float:
    """Return ``value`` as a float; TypeError unless a real number, ValueError if negative or NaN."""
    if isinstance(value, bool) or not isinstance(value, (int, float, numbers.Real)):
        raise TypeError(f"{where}: {what} must be a number, got {describe(value)}")
    seconds = float(value)
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(f"{where}: {what} must be >= 0, got {value!r}")
    return seconds


def check_executor(where: str, executor: object) -> None:
    """Raise TypeError unless ``executor`` is None or has a callable ``submit``."""
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise TypeError(f"{where}: executor must be an Executor or None, got {describe(executor)}")


def describe(obj: object) -> str:
    """Short text for an offending argument in an error message (never raises)."""
    if isinstance(obj, type):
        return f"class {obj.__qualname__}"
    try:
        text = repr(obj)
    except BaseException:  # a broken __repr__ must not hide the real error
        text = object.__repr__(obj)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(obj).__name__})"


def collect_inputs(where: str, futures: Iterable[object]) -> list[Any]:
    """Materialise and validate many inputs before anything is registered."""
    items: list[Any] = list(futures)
    for index, item in enumerate(items):
        if type(item) is not Future:
            check_future(where, f"argument {index + 1}", item)
    return items


def cancel_all(inputs: list[Any]) -> None:
    """Cancel every input still in the list (finished ones were replaced by None), the last first.

    Inputs are usually submitted in order, so the last ones are the most likely still queued:
    cancelling them first means a worker freed by stopping an earlier, running input does not
    pick up a later one that is about to be cancelled too.
    """
    for fut in reversed(inputs):
        if fut is not None:
            cancel_quietly(fut)


def is_cancelled(fut: FutureLike[Any]) -> bool:
    """``fut.cancelled()``, False if an odd FutureLike raises."""
    try:
        return fut.cancelled()
    except BaseException:  # pragma: no cover - odd FutureLike
        return False
