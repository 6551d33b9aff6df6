"""race and first_success: the first input to settle (or to succeed) decides.

One small state object per call; the winner is chosen under its lock, so
exactly one input wins however many complete concurrently. The output is
settled, and the losers cancelled, through :func:`futurekit._trampoline.call`.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any, TypeVar, overload

from . import _trampoline
from ._settle import cancel_all, cancel_quietly, collect_inputs, copy_outcome, outcome, set_exception, set_result
from ._types import FutureLike, T

T1 = TypeVar("T1")
T2 = TypeVar("T2")
T3 = TypeVar("T3")
T4 = TypeVar("T4")
T5 = TypeVar("T5")
T6 = TypeVar("T6")

_call = _trampoline.call


class _Race:
    """State of one race call: the first input to settle wins."""

    __slots__ = ("inputs", "lock", "out")

    def __init__(self, inputs: list[Any]) -> None:
        self.lock = threading.Lock()
        self.out: Future[Any] | None = Future()
        self.inputs: list[Any] | None = inputs

    def start(self) -> Future[Any]:
        out = self.out
        assert out is not None
        assert self.inputs is not None
        for fut in self.inputs:
            if self.out is None:
                break
            fut.add_done_callback(self.on_input_done)
        if self.out is not None:
            out.add_done_callback(self.on_output_done)
        return out

    def on_input_done(self, fut: FutureLike[Any]) -> None:
        with self.lock:
            out = self.out
            if out is None:
                return
            inputs = self.inputs
            self.out = self.inputs = None
        _call(_race_settle, (out, fut, inputs))

    def on_output_done(self, out: Future[Any]) -> None:
        if not out.cancelled():
            return
        with self.lock:
            inputs = self.inputs
            self.out = self.inputs = None
        if inputs:
            _call(cancel_all, inputs)


def _race_settle(args: tuple[Future[Any], FutureLike[Any], Any]) -> None:
    out, winner, inputs = args
    copy_outcome(winner, out)
    for fut in inputs:
        if fut is not winner:
            cancel_quietly(fut)


@overload
def race(f1: FutureLike[T1], /) -> Future[T1]: ...
@overload
def race(f1: FutureLike[T1], f2: FutureLike[T2], /) -> Future[T1 | T2]: ...
@overload
def race(f1: FutureLike[T1], f2: FutureLike[T2], f3: FutureLike[T3], /) -> Future[T1 | T2 | T3]: ...
@overload
def race(
    f1: FutureLike[T1], f2: FutureLike[T2], f3: FutureLike[T3], f4: FutureLike[T4], /
) -> Future[T1 | T2 | T3 | T4]: ...
@overload
def race(
    f1: FutureLike[T1], f2: FutureLike[T2], f3: FutureLike[T3], f4: FutureLike[T4], f5: FutureLike[T5], /
) -> Future[T1 | T2 | T3 | T4 | T5]: ...
@overload
def race(
    f1: FutureLike[T1],
    f2: FutureLike[T2],
    f3: FutureLike[T3],
    f4: FutureLike[T4],
    f5: FutureLike[T5],
    f6: FutureLike[T6],
    /,
) -> Future[T1 | T2 | T3 | T4 | T5 | T6]: ...
@overload
def race(f1: FutureLike[T], /, *futures: FutureLike[T]) -> Future[T]: ...
def race(*futures: FutureLike[Any]) -> Future[Any]:
    """Settle like whichever input settles first: its value, its error, or its cancellation.

    The losers are cancelled as soon as the winner is known. Inputs that are
    already done when ``race`` is called are considered in argument order,
    so the first done argument wins.

    Args:
        *futures: One or more ``FutureLike`` inputs (positional only).

    Returns:
        A pending ``concurrent.futures.Future`` typed as the union of the
        inputs' result types.

    Raises:
        ValueError: No inputs were given.
        TypeError: An argument is not a future (the message names its
            position); nothing has been registered on any input.

    Example:
        >>> from concurrent.futures import Future
        >>> import futurekit as fk
        >>> slow: Future[str] = Future()
        >>> fk.race(slow, fk.completed(7)).result(timeout=5)
        7
        >>> slow.cancelled()
        True

    Concurrency:
        Blocking: Never blocks; returns a pending future at once.
        Callbacks: The result is settled, and the losers cancelled, in the
            thread that completes the winning input, or in the calling thread
            if an input is already done.
        Thread safety: Safe to call from any thread, including from callbacks
            and from inside executor workers; exactly one input wins however
            many complete concurrently.
        Cancellation: Cancelling the result cancels every input that has not
            finished; a cancelled input that settles first cancels the result.
            The losers are cancelled: on ``fk.processes()`` a running loser is
            stopped; on threads it runs on.
    """
    if not futures:
        raise ValueError("race(): needs at least one future, got none")
    return _Race(collect_inputs("race()", futures)).start()


# ----------------------------------------------------------------------------- first_success


class _FirstSuccess:
    """State of one first_success call: first value wins, errors are kept in input order."""

    __slots__ = ("errors", "inputs", "lock", "out", "remaining")

    def __init__(self, inputs: list[Any]) -> None:
        self.lock = threading.Lock()
        self.out: Future[Any] | None = Future()
        self.inputs: list[Any] | None = inputs
        self.errors: list[Any] | None = [None] * len(inputs)
        self.remaining = len(inputs)

    def start(self) -> Future[Any]:
        out = self.out
        assert out is not None
        assert self.inputs is not None
        for index, fut in enumerate(self.inputs):
            if self.out is None:
                break
            fut.add_done_callback(_FirstSuccessSlot(self, index))
        if self.out is not None:
            out.add_done_callback(self.on_output_done)
        return out

    def on_output_done(self, out: Future[Any]) -> None:
        if not out.cancelled():
            return
        with self.lock:
            inputs = self.inputs
            self.out = self.inputs = self.errors = None
        if inputs:
            _call(cancel_all, inputs)


class _FirstSuccessSlot:
    """Done-callback for input ``index`` of a first_success."""

    __slots__ = ("index", "state")

    def __init__(self, state: _FirstSuccess, index: int) -> None:
        self.state = state
        self.index = index

    def __call__(self, fut: FutureLike[Any]) -> None:
        state = self.state
        ok, value = outcome(fut)
        with state.lock:
            out = state.out
            if out is None:
                return
            inputs = state.inputs
            errors = state.errors
            assert inputs is not None
            assert errors is not None
            inputs[self.index] = None
            if not ok:
                errors[self.index] = value
                state.remaining -= 1
                if state.remaining:
                    return
            state.out = state.inputs = state.errors = None
        if ok:
            _call(_win, (out, value, inputs))
        else:
            _call(_all_failed, (out, errors))


def _win(args: tuple[Future[Any], object, list[Any]]) -> None:
    out, value, inputs = args
    set_result(out, value)
    cancel_all(inputs)


def _all_failed(args: tuple[Future[Any], list[BaseException]]) -> None:
    out, errors = args
    count = len(errors)
    noun = "input" if count == 1 else f"all {count} inputs"
    set_exception(out, BaseExceptionGroup(f"first_success(): {noun} failed", errors))


@overload
def first_success(f1: FutureLike[T1], /) -> Future[T1]: ...
@overload
def first_success(f1: FutureLike[T1], f2: FutureLike[T2], /) -> Future[T1 | T2]: ...
@overload
def first_success(f1: FutureLike[T1], f2: FutureLike[T2], f3: FutureLike[T3], /) -> Future[T1 | T2 | T3]: ...
@overload
def first_success(
    f1: FutureLike[T1], f2: FutureLike[T2], f3: FutureLike[T3], f4: FutureLike[T4], /
) -> Future[T1 | T2 | T3 | T4]: ...
@overload
def first_success(
    f1: FutureLike[T1], f2: FutureLike[T2], f3: FutureLike[T3], f4: FutureLike[T4], f5: FutureLike[T5], /
) -> Future[T1 | T2 | T3 | T4 | T5]: ...
@overload
def first_success(
    f1: FutureLike[T1],
    f2: FutureLike[T2],
    f3: FutureLike[T3],
    f4: FutureLike[T4],
    f5: FutureLike[T5],
    f6: FutureLike[T6],
    /,
) -> Future[T1 | T2 | T3 | T4 | T5 | T6]: ...
@overload
def first_success(f1: FutureLike[T], /, *futures: FutureLike[T]) -> Future[T]: ...
def first_success(*futures: FutureLike[Any]) -> Future[Any]:
    """Settle with the first value any input produces; fail only if every input fails.

    The first input to succeed wins and every other unfinished input is
    cancelled. If all inputs fail, the result fails with a
    ``BaseExceptionGroup`` of every error in input order (an
    ``ExceptionGroup`` when all are ``Exception`` s); a cancelled input
    contributes a ``CancelledError``.

    Args:
        *futures: One or more ``FutureLike`` inputs (positional only).

    Returns:
        A pending ``concurrent.futures.Future`` typed as the union of the
        inputs' result types.

    Raises:
        ValueError: No inputs were given.
        TypeError: An argument is not a future (the message names its
            position); nothing has been registered on any input.

    Example:
        >>> import futurekit as fk
        >>> fk.first_success(fk.failed(OSError("down")), fk.completed("mirror")).result(timeout=5)
        'mirror'
        >>> out = fk.first_success(fk.failed(OSError("a")), fk.failed(ValueError("b")))
        >>> out.exception(timeout=5)
        ExceptionGroup('first_success(): all 2 inputs failed', [OSError('a'), ValueError('b')])

    Concurrency:
        Blocking: Never blocks; returns a pending future at once.
        Callbacks: The result is settled in the thread that completes the
            first successful input (or the last failing one), or in the calling
            thread if the inputs are already done.
        Thread safety: Safe to call from any thread, including from callbacks
            and from inside executor workers; exactly one value wins however
            many inputs complete concurrently.
        Cancellation: Cancelling the result cancels every input that has not
            finished; a cancelled input counts as a failure (CancelledError).
            Once one succeeds the others are cancelled: on ``fk.processes()``
            running ones are stopped; on threads they run on.
    """
    if not futures:
        raise ValueError("first_success(): needs at least one future, got none")
    return _FirstSuccess(collect_inputs("first_success()", futures)).start()
