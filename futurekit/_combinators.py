"""The combinators' public room: constructors here, the rest re-exported from their modules.

Every combinator is driven by ``add_done_callback`` alone and returns a plain,
PENDING ``concurrent.futures.Future`` (never RUNNING, so it can be cancelled at
any moment). Every settle, and every call of a user function, runs through
:func:`futurekit._trampoline.call`, so chains of any length never recurse.

Where things live: :mod:`futurekit._gather` (gather, gather_all),
:mod:`futurekit._race` (race, first_success), :mod:`futurekit._then` (then,
chain, recover), :mod:`futurekit._timeout` with :mod:`futurekit._timers`
(timeout), :mod:`futurekit._as_completed`; shared settling helpers in
:mod:`futurekit._settle`.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from ._as_completed import as_completed as as_completed
from ._gather import gather as gather
from ._gather import gather_all as gather_all
from ._race import first_success as first_success
from ._race import race as race
from ._settle import describe
from ._then import chain as chain
from ._then import recover as recover
from ._then import then as then
from ._timeout import timeout as timeout
from ._types import T

__all__ = [
    "as_completed",
    "cancelled",
    "chain",
    "completed",
    "failed",
    "first_success",
    "gather",
    "gather_all",
    "race",
    "recover",
    "then",
    "timeout",
]


# ----------------------------------------------------------------------------- constructors


def completed(value: T) -> Future[T]:
    """Return a future that is already done with ``value``.

    Args:
        value: The result.

    Returns:
        A finished ``concurrent.futures.Future``.

    Example:
        >>> import futurekit as fk
        >>> fk.completed(42).result(timeout=0)
        42

    Concurrency:
        Blocking: Never blocks.
        Callbacks: Callbacks added later run at once in the adding thread.
        Thread safety: Safe to call from any thread.
        Cancellation: The future is done, so ``cancel()`` returns False.
    """
    out: Future[T] = Future()
    out.set_result(value)
    return out


def failed(exc: BaseException) -> Future[Any]:
    """Return a future that is already done with the exception ``exc``.

    Args:
        exc: An exception instance (not a class).

    Returns:
        A finished ``concurrent.futures.Future`` whose ``result()`` raises ``exc``.

    Raises:
        TypeError: ``exc`` is not an exception instance.

    Example:
        >>> import futurekit as fk
        >>> fk.failed(ValueError("no")).exception(timeout=0)
        ValueError('no')

    Concurrency:
        Blocking: Never blocks.
        Callbacks: Callbacks added later run at once in the adding thread.
        Thread safety: Safe to call from any thread.
        Cancellation: The future is done, so ``cancel()`` returns False.
    """
    # Typed BaseException, but callers pass exception classes and strings anyway: keep the run-time check.
    if not isinstance(exc, BaseException):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise TypeError(f"failed(): exc must be an exception instance, got {describe(exc)}")
    out: Future[Any] = Future()
    out.set_exception(exc)
    return out


def cancelled() -> Future[Any]:
    """Return a future that is already cancelled.

    Returns:
        A cancelled ``concurrent.futures.Future``; ``result()`` raises
        ``CancelledError``.

    Example:
        >>> import futurekit as fk
        >>> fk.cancelled().cancelled()
        True

    Concurrency:
        Blocking: Never blocks.
        Callbacks: Callbacks added later run at once in the adding thread.
        Thread safety: Safe to call from any thread.
        Cancellation: Already cancelled; ``cancel()`` returns True again.
    """
    out: Future[Any] = Future()
    out.cancel()
    return out
