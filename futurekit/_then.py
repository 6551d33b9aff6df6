"""then, chain and recover: one step after one future.

Each call builds one small state object (``_Step``, ``__slots__``) whose bound
methods are the callbacks. It awaits one future at a time (the input, then the
executor task running ``fn``, then the inner future chain's ``fn`` returned),
drops each as it finishes, and drops the output and ``fn`` once the output is
settled. Every call of ``fn`` and every settle runs through
:func:`futurekit._trampoline.call`, so chains of any length never recurse.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import CancelledError, Executor, Future, InvalidStateError
from concurrent.futures._base import FINISHED, PENDING
from typing import Any, TypeVar, overload

from . import _trampoline
from ._settle import (
    cancel_quietly,
    check_callable,
    check_executor,
    check_future,
    copy_outcome,
    describe,
    is_cancelled,
    outcome,
    set_exception,
)
from ._types import FutureLike, T, U, is_future_like

E = TypeVar("E", bound=BaseException)

_call = _trampoline.call


# Kinds of _Step: then, chain, recover.
_MAP, _FLAT, _RECOVER = 0, 1, 2
# Stages of a _Step, what it awaits: the input, the executor task running fn,
# chain's inner future. Plain ints, like the kinds: they are read on every hop.
_AWAIT_INPUT, _AWAIT_TASK, _AWAIT_INNER = 0, 1, 2
# For the fast argument check in then() and chain(), typed loosely: mypy would
# call the checks redundant, but a caller may pass anything at run time.
_Future: Any = Future
_callable: Any = callable
# States of a stdlib Future (concurrent.futures._base), read directly on the hot
# path: outputs are always stdlib Futures we created, and the state of a done
# Future is final, so no lock is needed to read it.
_PENDING = PENDING
_FINISHED = FINISHED


class _Step:
    """State of one then/chain/recover call.

    ``src`` is the future currently awaited: the input, then (with an
    executor) the task running ``fn``, then (for chain) the inner future ``fn``
    returned. Each is dropped when it finishes; ``out`` and ``fn`` are dropped
    once the output is settled. ``exc_types`` and ``handles_cancel`` are set
    for recover only.
    """

    __slots__ = ("exc_types", "executor", "fn", "handles_cancel", "kind", "out", "src", "stage")
    exc_types: tuple[type[BaseException], ...]
    handles_cancel: bool

    def __init__(self, kind: int, fn: Callable[[Any], Any], executor: Executor | None) -> None:
        self.kind = kind
        self.fn: Callable[[Any], Any] | None = fn
        self.executor = executor
        self.src: FutureLike[Any] | None = None
        self.out: Future[Any] | None = Future()
        self.stage = _AWAIT_INPUT

    def start(self, src: FutureLike[Any]) -> Future[Any]:
        out = self.out
        assert out is not None
        try:
            self.src = src
            src.add_done_callback(self.on_src_done)  # may run fn right here, in this stack
            if self.out is not None:
                out.add_done_callback(self.on_output_done)
            return out
        finally:
            # If fn raised while running inline, the exception's traceback holds
            # this frame: leave no reference to the output in it.
            del out

    # Callbacks: O(1); the work goes through the trampoline.
    def on_src_done(self, src: FutureLike[Any]) -> None:
        _call(self.advance, src)

    def on_output_done(self, out: Future[Any]) -> None:
        if out._state == _FINISHED:
            self.out = None  # settled by us; nothing left to hold
        else:  # cancelled by a caller
            _call(self.cancel_src, None)

    def cancel_src(self, _: None) -> None:
        src = self.src
        self.src = self.out = self.fn = None
        cancel_quietly(src)

    def watch(self, src: FutureLike[Any], stage: int) -> None:
        """Await ``src`` next; cancel it at once if the output was cancelled meanwhile."""
        self.stage = stage
        self.src = src
        src.add_done_callback(self.on_src_done)
        out = self.out
        if out is None or out.cancelled():
            self.src = None
            cancel_quietly(src)

    def advance(self, src: FutureLike[Any]) -> None:
        """One stage finished: run ``fn``, relay a task or inner future, or settle the output."""
        out = self.out
        self.src = None
        if out is None or out._state != _PENDING:
            self.out = self.fn = None
            return
        if self.stage == _AWAIT_INPUT:
            if self.kind == _RECOVER:
                ok, arg = outcome(src)
                if ok or not self._handles(src, arg):
                    self._settle_like(src, out)
                    return
            elif type(src) is Future and src._state == _FINISHED and src._exception is None:
                arg = src._result
            else:
                ok, arg = outcome(src)
                if not ok:
                    self._settle_like(src, out)
                    return
            fn = self.fn
            assert fn is not None
            if self.executor is not None:
                ok, value = _guarded(self.executor.submit, fn, arg)
                if ok:
                    self.watch(value, _AWAIT_TASK)
                else:
                    self._fail(out, value)
            else:
                try:
                    value = fn(arg)
                except BaseException as error:
                    self._fail(out, error)
                else:
                    if self.kind == _MAP:
                        self.fn = None
                        try:
                            out.set_result(value)
                        except InvalidStateError:  # cancelled meanwhile
                            pass
                    else:
                        self._deliver(out, value)
            # A caught exception's traceback holds this frame (through the
            # frames' f_back links): leave no output or exception in it, or
            # exception -> traceback -> frame -> exception would be a cycle.
            out = value = fn = None
            return
        if self.stage == _AWAIT_TASK:
            ok, value = outcome(src)
            if ok:
                self._deliver(out, value)
            else:
                self._settle_like(src, out)
            return
        # _AWAIT_INNER: chain's inner future settles the output as it settled.
        self._settle_like(src, out)

    def _handles(self, src: FutureLike[Any], error: BaseException) -> bool:
        """recover: does this error (or cancellation) go to ``fn``?"""
        if type(error) is CancelledError and is_cancelled(src):
            return self.handles_cancel
        return isinstance(error, self.exc_types)

    def _deliver(self, out: Future[Any], value: object) -> None:
        """``fn`` returned ``value``: settle the output, or (chain) await the inner future."""
        if self.kind == _FLAT:
            if type(value) is not Future and not is_future_like(value):
                self._fail(
                    out,
                    TypeError(f"chain(): fn must return a future, got {describe(value)} (use then() for plain values)"),
                )
                return
            self.watch(value, _AWAIT_INNER)  # type: ignore[arg-type]
            return
        self.fn = None
        try:
            out.set_result(value)
        except InvalidStateError:  # cancelled meanwhile
            pass

    def _settle_like(self, src: FutureLike[Any], out: Future[Any]) -> None:
        self.fn = None
        copy_outcome(src, out)

    def _fail(self, out: Future[Any], error: BaseException) -> None:
        self.fn = None
        set_exception(out, error)


def _guarded(fn: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
    """Call user code: ``(True, value)`` or ``(False, exception)``.

    The try/except lives here, in a frame that holds only ``fn`` and its
    arguments, so a caught exception's traceback does not reach the caller's
    frame (which holds the output future): no exception -> traceback -> frame
    -> output -> exception cycle for the garbage collector to break.
    """
    try:
        return True, fn(*args)
    except BaseException as error:
        return False, error


def _check(where: str, f: object, fn: object, executor: object) -> None:
    """Raise TypeError naming the bad argument (before anything is registered)."""
    check_future(where, "f", f)
    check_callable(where, "fn", fn)
    check_executor(where, executor)


def then(f: FutureLike[T], fn: Callable[[T], U], *, executor: Executor | None = None) -> Future[U]:
    """Return a future of ``fn(result)``, once ``f`` succeeds. Never flattens.

    If ``f`` fails or is cancelled, the result fails the same way (or is
    cancelled) and ``fn`` is not called. An exception raised by ``fn`` (any
    ``BaseException``) fails the result; it is never only logged. If ``fn``
    returns a future, the result's value is that future: use :func:`chain`
    to flatten.

    Args:
        f: The input future.
        fn: Called with the input's result.
        executor: If given, ``fn`` runs via ``executor.submit`` (so slow user
            code never runs on the thread that completed ``f``). If ``submit``
            raises (e.g. after shutdown), the result fails with that error.

    Returns:
        A pending ``concurrent.futures.Future`` of ``fn``'s return value.

    Raises:
        TypeError: ``f`` is not a future, ``fn`` is not callable, or
            ``executor`` has no ``submit``; nothing has been registered.

    Example:
        >>> import futurekit as fk
        >>> fk.then(fk.completed(20), lambda x: x + 1).result(timeout=5)
        21

    Concurrency:
        Blocking: Never blocks; returns a pending future at once.
        Callbacks: Without ``executor``, ``fn`` runs inline in the thread that
            completes ``f``, or in the calling thread if ``f`` is already done;
            with ``executor``, it runs on that executor.
        Thread safety: Safe to call from any thread, including from callbacks
            and from inside executor workers.
        Cancellation: Cancelling the result cancels ``f`` if it has not
            finished, or the executor task running ``fn``; a ``fn`` already
            running inline runs to the end and its value is dropped. A
            cancelled ``f`` cancels the result.
    """
    if type(f) is not _Future or executor is not None or not _callable(fn):
        _check("then()", f, fn, executor)
    return _Step(_MAP, fn, executor).start(f)


def chain(f: FutureLike[T], fn: Callable[[T], FutureLike[U]], *, executor: Executor | None = None) -> Future[U]:
    """Return a future of the result of the future ``fn(result)`` returns, once ``f`` succeeds.

    Always flattens one level: ``fn`` must return a future, and the result
    settles like that future (value, error or cancellation). If ``fn``
    returns anything else the result fails with ``TypeError``; if ``fn``
    raises, the result fails with that exception.

    Args:
        f: The input future.
        fn: Called with the input's result; returns a ``FutureLike``.
        executor: If given, ``fn`` runs via ``executor.submit``.

    Returns:
        A pending ``concurrent.futures.Future`` of the inner future's result.

    Raises:
        TypeError: ``f`` is not a future, ``fn`` is not callable, or
            ``executor`` has no ``submit``; nothing has been registered.

    Example:
        >>> import futurekit as fk
        >>> fk.chain(fk.completed(2), lambda x: fk.completed(x * 10)).result(timeout=5)
        20

    Concurrency:
        Blocking: Never blocks; returns a pending future at once.
        Callbacks: Without ``executor``, ``fn`` runs inline in the thread that
            completes ``f``, or in the calling thread if ``f`` is already done;
            with ``executor``, it runs on that executor. The result settles in
            the thread that completes the inner future.
        Thread safety: Safe to call from any thread, including from callbacks
            and from inside executor workers.
        Cancellation: Cancelling the result cancels whatever is pending: ``f``,
            the executor task running ``fn``, or the inner future ``fn``
            returned. A cancelled ``f`` or inner future cancels the result.
    """
    if type(f) is not _Future or executor is not None or not _callable(fn):
        _check("chain()", f, fn, executor)
    return _Step(_FLAT, fn, executor).start(f)


@overload
def recover(
    f: FutureLike[T], fn: Callable[[Exception], U], /, *, executor: Executor | None = None
) -> Future[T | U]: ...
@overload
def recover(
    f: FutureLike[T], fn: Callable[[E], U], exc_type: type[E], /, *, executor: Executor | None = None
) -> Future[T | U]: ...
@overload
def recover(
    f: FutureLike[T],
    fn: Callable[[BaseException], U],
    /,
    *exc_types: type[BaseException],
    executor: Executor | None = None,
) -> Future[T | U]: ...
def recover(
    f: FutureLike[Any],
    fn: Callable[[Any], Any],
    /,
    *exc_types: type[BaseException],
    executor: Executor | None = None,
) -> Future[Any]:
    """Return a future that replaces a matching error of ``f`` with ``fn(error)``.

    If ``f`` succeeds, the result has its value. If ``f`` fails with an
    instance of one of ``exc_types`` (default: ``Exception``), the result
    is ``fn(error)``; any other error passes through unchanged, and so does
    cancellation, unless ``CancelledError`` (or a subclass) is named in
    ``exc_types``, in which case ``fn`` gets a ``CancelledError``. An
    exception raised by ``fn`` fails the result.

    Args:
        f: The input future.
        fn: Called with the matching exception; its return value becomes the
            result.
        *exc_types: Exception classes to handle; none means ``(Exception,)``.
        executor: If given, ``fn`` runs via ``executor.submit``.

    Returns:
        A pending ``concurrent.futures.Future`` of ``f``'s value or ``fn``'s.

    Raises:
        TypeError: ``f`` is not a future, ``fn`` is not callable, an item of
            ``exc_types`` is not an exception class (the message names it),
            or ``executor`` has no ``submit``; nothing has been registered.

    Example:
        >>> import futurekit as fk
        >>> fk.recover(fk.failed(KeyError("k")), lambda e: "default", KeyError).result(timeout=5)
        'default'
        >>> fk.recover(fk.completed(1), lambda e: 0).result(timeout=5)
        1

    Concurrency:
        Blocking: Never blocks; returns a pending future at once.
        Callbacks: Without ``executor``, ``fn`` runs inline in the thread that
            completes ``f``, or in the calling thread if ``f`` is already done;
            with ``executor``, it runs on that executor.
        Thread safety: Safe to call from any thread, including from callbacks
            and from inside executor workers.
        Cancellation: Cancelling the result cancels ``f`` if it has not
            finished, or the executor task running ``fn``. A cancelled ``f``
            cancels the result (see above for naming ``CancelledError``).
    """
    for index, exc_type in enumerate(exc_types):
        if not _is_exception_class(exc_type):
            raise TypeError(f"recover(): exc_types[{index}] must be an exception class, got {describe(exc_type)}")
    _check("recover()", f, fn, executor)
    step = _Step(_RECOVER, fn, executor)
    step.exc_types = exc_types or (Exception,)
    step.handles_cancel = any(issubclass(t, CancelledError) for t in exc_types)
    return step.start(f)


def _is_exception_class(obj: object) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseException)
