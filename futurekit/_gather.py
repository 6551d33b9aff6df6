"""gather and gather_all: one future of every input's result, in input order.

Each call builds one small state object (``__slots__``) and one tiny slot object
per pending input, which is that input's done-callback. A slot records its
input's value in a preallocated list and decrements a counter under the
state's lock: O(1) work, no trampoline hop per element. Inputs already done
with a value are recorded without any callback. Only the final settle of the
output goes through :func:`futurekit._trampoline.call`. The state drops each
input as it finishes and drops the output once it is settled, so nothing forms
a cycle that outlives the computation.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import CancelledError, Future
from concurrent.futures._base import FINISHED as _FINISHED
from typing import Any, Literal, TypeVar, overload

from . import _trampoline
from ._settle import cancel_all, cancel_quietly, check_future, is_cancelled, outcome, set_exception, set_result
from ._types import FutureLike, T, is_future_like

T1 = TypeVar("T1")
T2 = TypeVar("T2")
T3 = TypeVar("T3")
T4 = TypeVar("T4")
T5 = TypeVar("T5")
T6 = TypeVar("T6")

_call = _trampoline.call


def _finish(args: tuple[Future[Any], object]) -> None:
    set_result(args[0], args[1])


def _fail_and_cancel(args: tuple[Future[Any], Any, Any]) -> None:
    """Settle the output (error, or cancelled when ``exc`` is None), then cancel the rest."""
    out, exc, inputs = args
    if exc is None:
        out.cancel()
    else:
        set_exception(out, exc)
    for fut in inputs:
        if fut is not None:
            cancel_quietly(fut)


class _Gather:
    """State of one gather/gather_all call."""

    __slots__ = ("as_tuple", "inputs", "lock", "out", "remaining", "results", "return_exceptions")

    def __init__(
        self, inputs: list[Any], results: list[Any], remaining: int, return_exceptions: bool, as_tuple: bool
    ) -> None:
        self.lock = threading.Lock()
        self.out: Future[Any] | None = Future()
        self.inputs: list[Any] | None = inputs
        self.results: list[Any] | None = results
        self.remaining = remaining
        self.return_exceptions = return_exceptions
        self.as_tuple = as_tuple

    def start(self) -> Future[Any]:
        """Register a slot on every input not recorded yet (those still in ``inputs``)."""
        out = self.out
        inputs = self.inputs
        assert out is not None
        assert inputs is not None
        for index, fut in enumerate(inputs):
            if fut is None:  # already recorded
                continue
            if self.out is None:  # already failed fast: no need to watch the rest
                return out
            fut.add_done_callback(_GatherSlot(self, index))
        if self.out is not None:
            out.add_done_callback(self.on_output_done)
        return out

    def on_output_done(self, out: Future[Any]) -> None:
        if not out.cancelled():
            return
        with self.lock:
            if self.out is None:
                return
            inputs = self.inputs
            self.out = self.inputs = self.results = None
        if inputs:
            _call(cancel_all, inputs)


class _GatherSlot:
    """Done-callback for input ``index`` of a gather: record, count down, settle."""

    __slots__ = ("index", "state")

    def __init__(self, state: _Gather, index: int) -> None:
        self.state = state
        self.index = index

    def __call__(self, fut: FutureLike[Any]) -> None:
        state = self.state
        if type(fut) is Future and fut._state == _FINISHED and fut._exception is None:
            ok, value = True, fut._result
        else:
            ok, value = outcome(fut)
        if ok or state.return_exceptions:
            with state.lock:
                results = state.results
                if results is None:  # output already settled or cancelled
                    return
                index = self.index
                results[index] = value
                state.inputs[index] = None  # type: ignore[index]
                state.remaining -= 1
                if state.remaining:
                    return
                out = state.out
                state.out = state.inputs = state.results = None
            assert out is not None
            _call(_finish, (out, tuple(results) if state.as_tuple else results))
            return
        with state.lock:
            out = state.out
            if out is None:
                return
            inputs = state.inputs
            inputs[self.index] = None  # type: ignore[index]
            state.out = state.inputs = state.results = None
        cancelled = type(value) is CancelledError and is_cancelled(fut)
        _call(_fail_and_cancel, (out, None if cancelled else value, inputs))


@overload
def gather(*, return_exceptions: Literal[False] = False) -> Future[tuple[()]]: ...
@overload
def gather(f1: FutureLike[T1], /, *, return_exceptions: Literal[False] = False) -> Future[tuple[T1]]: ...
@overload
def gather(
    f1: FutureLike[T1], f2: FutureLike[T2], /, *, return_exceptions: Literal[False] = False
) -> Future[tuple[T1, T2]]: ...
@overload
def gather(
    f1: FutureLike[T1],
    f2: FutureLike[T2],
    f3: FutureLike[T3],
    /,
    *,
    return_exceptions: Literal[False] = False,
) -> Future[tuple[T1, T2, T3]]: ...
@overload
def gather(
    f1: FutureLike[T1],
    f2: FutureLike[T2],
    f3: FutureLike[T3],
    f4: FutureLike[T4],
    /,
    *,
    return_exceptions: Literal[False] = False,
) -> Future[tuple[T1, T2, T3, T4]]: ...
@overload
def gather(
    f1: FutureLike[T1],
    f2: FutureLike[T2],
    f3: FutureLike[T3],
    f4: FutureLike[T4],
    f5: FutureLike[T5],
    /,
    *,
    return_exceptions: Literal[False] = False,
) -> Future[tuple[T1, T2, T3, T4, T5]]: ...
@overload
def gather(
    f1: FutureLike[T1],
    f2: FutureLike[T2],
    f3: FutureLike[T3],
    f4: FutureLike[T4],
    f5: FutureLike[T5],
    f6: FutureLike[T6],
    /,
    *,
    return_exceptions: Literal[False] = False,
) -> Future[tuple[T1, T2, T3, T4, T5, T6]]: ...
@overload
def gather(*, return_exceptions: Literal[True]) -> Future[tuple[()]]: ...
@overload
def gather(f1: FutureLike[T1], /, *, return_exceptions: Literal[True]) -> Future[tuple[T1 | BaseException]]: ...
@overload
def gather(
    f1: FutureLike[T1], f2: FutureLike[T2], /, *, return_exceptions: Literal[True]
) -> Future[tuple[T1 | BaseException, T2 | BaseException]]: ...
@overload
def gather(
    f1: FutureLike[T1], f2: FutureLike[T2], f3: FutureLike[T3], /, *, return_exceptions: Literal[True]
) -> Future[tuple[T1 | BaseException, T2 | BaseException, T3 | BaseException]]: ...
@overload
def gather(
    f1: FutureLike[T1],
    f2: FutureLike[T2],
    f3: FutureLike[T3],
    f4: FutureLike[T4],
    /,
    *,
    return_exceptions: Literal[True],
) -> Future[tuple[T1 | BaseException, T2 | BaseException, T3 | BaseException, T4 | BaseException]]: ...
@overload
def gather(
    f1: FutureLike[T1],
    f2: FutureLike[T2],
    f3: FutureLike[T3],
    f4: FutureLike[T4],
    f5: FutureLike[T5],
    /,
    *,
    return_exceptions: Literal[True],
) -> Future[
    tuple[T1 | BaseException, T2 | BaseException, T3 | BaseException, T4 | BaseException, T5 | BaseException]
]: ...
@overload
def gather(
    f1: FutureLike[T1],
    f2: FutureLike[T2],
    f3: FutureLike[T3],
    f4: FutureLike[T4],
    f5: FutureLike[T5],
    f6: FutureLike[T6],
    /,
    *,
    return_exceptions: Literal[True],
) -> Future[
    tuple[
        T1 | BaseException,
        T2 | BaseException,
        T3 | BaseException,
        T4 | BaseException,
        T5 | BaseException,
        T6 | BaseException,
    ]
]: ...
@overload
def gather(*futures: FutureLike[T], return_exceptions: Literal[False] = False) -> Future[tuple[T, ...]]: ...
@overload
def gather(*futures: FutureLike[T], return_exceptions: Literal[True]) -> Future[tuple[T | BaseException, ...]]: ...
@overload
def gather(*futures: FutureLike[T], return_exceptions: bool) -> Future[tuple[T | BaseException, ...]]: ...
def gather(*futures: FutureLike[Any], return_exceptions: bool = False) -> Future[tuple[Any, ...]]:
    """Combine futures into one future of the tuple of their results, in argument order.

    Fail-fast: the first input to fail (or be cancelled) settles the result
    with that error (or cancels it), and every input that has not finished is
    cancelled. With ``return_exceptions=True`` nothing fails the result:
    each input's exception (a ``CancelledError`` instance for a cancelled
    input) takes its place in the tuple.

    Args:
        *futures: Any ``FutureLike`` inputs (positional only); zero inputs
            give a future already done with ``()``.
        return_exceptions: Put errors in the tuple instead of failing.

    Returns:
        A pending ``concurrent.futures.Future`` of the tuple (typed exactly
        for up to six inputs).

    Raises:
        TypeError: An argument is not a future (the message names its
            position); nothing has been registered on any input.

    Example:
        >>> import futurekit as fk
        >>> fk.gather(fk.completed(1), fk.completed("a")).result(timeout=5)
        (1, 'a')
        >>> out = fk.gather(fk.completed(1), fk.failed(KeyError("k")), return_exceptions=True)
        >>> out.result(timeout=5)
        (1, KeyError('k'))

    Concurrency:
        Blocking: Never blocks; returns a pending future at once.
        Callbacks: The result is settled in the thread that completes the last
            input (or the failing one), or in the calling thread if the inputs
            are already done. Per input only O(1) bookkeeping runs inline.
        Thread safety: Safe to call from any thread, including from callbacks
            and from inside executor workers; inputs may complete concurrently.
        Cancellation: Cancelling the result cancels every input that has not
            finished; a cancelled input cancels the result (unless
            ``return_exceptions=True``) and the other inputs. On failure the
            other inputs are cancelled: on ``fk.processes()`` running ones are
            stopped; on threads they run on.
    """
    return _gather("gather()", futures, return_exceptions, as_tuple=True)


def _gather(where: str, futures: Iterable[object], return_exceptions: bool, *, as_tuple: bool) -> Future[Any]:
    # Typed bool, but a truthy non-bool (e.g. an exception class) is a common mistake: keep the run-time check.
    if not isinstance(return_exceptions, bool):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise TypeError(f"{where}: return_exceptions must be a bool, got {return_exceptions!r}")
    inputs: list[Any] = list(futures)
    results: list[Any] = [None] * len(inputs)
    # One pass checks every input (before anything is registered) and records
    # the inputs already done with a value, with no callback: they are replaced
    # by None, so the state never holds them.
    remaining = 0
    fut: FutureLike[Any]  # checked in the loop; declared so that type(fut) is Future gives Future[Any]
    for index, fut in enumerate(inputs):
        if type(fut) is Future:
            if fut._state == _FINISHED and fut._exception is None:
                results[index] = fut._result
                inputs[index] = None
                continue
        elif not is_future_like(fut):
            check_future(where, f"argument {index + 1}", fut)
        remaining += 1
    if not remaining:
        out: Future[Any] = Future()
        out.set_result(tuple(results) if as_tuple else results)
        return out
    return _Gather(inputs, results, remaining, return_exceptions, as_tuple).start()


@overload
def gather_all(futures: Iterable[FutureLike[T]], *, return_exceptions: Literal[False] = False) -> Future[list[T]]: ...
@overload
def gather_all(
    futures: Iterable[FutureLike[T]], *, return_exceptions: Literal[True]
) -> Future[list[T | BaseException]]: ...
@overload
def gather_all(futures: Iterable[FutureLike[T]], *, return_exceptions: bool) -> Future[list[T | BaseException]]: ...
def gather_all(futures: Iterable[FutureLike[Any]], *, return_exceptions: bool = False) -> Future[list[Any]]:
    """Combine any number of futures into one future of the list of their results.

    Like :func:`gather`, for an iterable of homogeneous inputs: results come
    in input order; fail-fast unless ``return_exceptions=True``. The iterable
    is read to the end, and every item checked, before anything is
    registered. Built for scale: a million inputs cost O(N) time and about a
    hundred bytes per input beyond the futures themselves.

    Args:
        futures: An iterable of ``FutureLike`` inputs (read once, at call
            time). Empty gives a future already done with ``[]``.
        return_exceptions: Put errors in the list instead of failing.

    Returns:
        A pending ``concurrent.futures.Future`` of the list of results.

    Raises:
        TypeError: An item is not a future (the message names its 1-based
            position); nothing has been registered on any input.

    Example:
        >>> import futurekit as fk
        >>> fk.gather_all(fk.completed(i) for i in range(3)).result(timeout=5)
        [0, 1, 2]

    Concurrency:
        Blocking: Never blocks; returns a pending future at once (it only
            iterates ``futures``, which must not block either).
        Callbacks: The result is settled in the thread that completes the last
            input (or the failing one), or in the calling thread if the inputs
            are already done. Per input only O(1) bookkeeping runs inline.
        Thread safety: Safe to call from any thread, including from callbacks
            and from inside executor workers; inputs may complete concurrently.
        Cancellation: Cancelling the result cancels every input that has not
            finished; a cancelled input cancels the result (unless
            ``return_exceptions=True``) and the other inputs. On failure the
            other inputs are cancelled: on ``fk.processes()`` running ones are
            stopped; on threads they run on.
    """
    return _gather("gather_all()", futures, return_exceptions, as_tuple=False)
