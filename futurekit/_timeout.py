"""timeout: a deadline for one future, served by the shared scheduler thread."""

from __future__ import annotations

import math
from concurrent.futures import Future
from typing import Any

from . import _timers, _trampoline
from ._settle import cancel_quietly, check_future, check_seconds, copy_outcome, set_exception
from ._types import FutureLike, T

_call = _trampoline.call


class _Timeout:
    """State of one timeout call: the input, the output and the timer handle."""

    __slots__ = ("handle", "out", "seconds", "src")

    def __init__(self, src: FutureLike[Any], seconds: float) -> None:
        self.src: FutureLike[Any] | None = src
        self.out: Future[Any] | None = Future()
        self.handle: _timers.Handle | None = None
        self.seconds = seconds

    def start(self) -> Future[Any]:
        out = self.out
        src = self.src
        assert out is not None
        assert src is not None
        if self.seconds != math.inf:
            self.handle = _timers.schedule(self.seconds, self.on_deadline, None)
        src.add_done_callback(self.on_src_done)
        if self.out is not None:
            out.add_done_callback(self.on_output_done)
        return out

    def _detach(self) -> tuple[FutureLike[Any] | None, Future[Any] | None]:
        # Every path detaches exactly once: plain attribute swaps under the GIL.
        src, out, handle = self.src, self.out, self.handle
        self.src = self.out = self.handle = None
        if handle is not None:
            handle.cancel()
        return src, out

    def on_src_done(self, src: FutureLike[Any]) -> None:
        if self.out is None:
            return
        _call(self.settle_from_src, src)

    def settle_from_src(self, src: FutureLike[Any]) -> None:
        _, out = self._detach()
        if out is not None:
            copy_outcome(src, out)

    def on_deadline(self, _: None) -> None:
        _call(self.expire, None)

    def expire(self, _: None) -> None:
        src = self.src
        if src is None or self.out is None:
            return
        if src.done():  # its callback is on its way and will settle the output
            return
        src, out = self._detach()
        if out is not None:
            set_exception(out, TimeoutError(f"timeout(): input did not finish within {self.seconds} s"))
        cancel_quietly(src)

    def on_output_done(self, out: Future[Any]) -> None:
        if out.cancelled():
            _call(self.cancel_src, None)
        else:
            self.out = None

    def cancel_src(self, _: None) -> None:
        src, _out = self._detach()
        cancel_quietly(src)


def timeout(f: FutureLike[T], seconds: float) -> Future[T]:
    """Return a future that settles like ``f``, or fails with TimeoutError after ``seconds``.

    If ``f`` has not settled ``seconds`` after the call, the result fails with
    the builtin ``TimeoutError`` (the same class as
    ``concurrent.futures.TimeoutError``) and ``f`` is cancelled. All deadlines
    share one scheduler thread (``futurekit-timer``), started lazily; an
    input that finishes in time removes its deadline at once.

    Args:
        f: The input future.
        seconds: A non-negative number of seconds; ``math.inf`` never times out.

    Returns:
        A pending ``concurrent.futures.Future`` settling like ``f``.

    Raises:
        TypeError: ``f`` is not a future, or ``seconds`` is not a number.
        ValueError: ``seconds`` is negative or NaN.

    Example:
        >>> from concurrent.futures import Future
        >>> import futurekit as fk
        >>> fk.timeout(fk.completed("fast"), 1.0).result(timeout=5)
        'fast'
        >>> never: Future[int] = Future()
        >>> fk.timeout(never, 0.01).exception(timeout=5)
        TimeoutError('timeout(): input did not finish within 0.01 s')
        >>> never.cancelled()
        True

    Concurrency:
        Blocking: Never blocks; returns a pending future at once.
        Callbacks: The result settles in the thread that completes ``f``, or on
            the ``futurekit-timer`` thread when the deadline passes (then that
            thread runs the result's callbacks: keep them short).
        Thread safety: Safe to call from any thread, including from callbacks
            and from inside executor workers.
        Cancellation: Cancelling the result cancels ``f`` if it has not
            finished and drops the deadline; a cancelled ``f`` cancels the
            result. At the deadline ``f`` is cancelled: a task of
            ``fk.processes()`` is stopped even while it runs (within
            ``seconds`` + the pool's ``stop_grace``); a running thread task
            refuses and runs on.
    """
    check_future("timeout()", "f", f)
    return _Timeout(f, check_seconds("timeout()", "seconds", seconds)).start()
