"""The adapter for a process pool the user supplied (``fk.Executor(ProcessPoolExecutor())``, loky...).

A :class:`ForeignPool` sends each task to the wrapped pool as
``run_call(payload)`` or ``run_chunk(payload)`` (see
:mod:`futurekit._process.worker`) and converts the raw outcome in a
done-callback on the inner future: the original exception with the worker's
frames, or the decoded value. When the wrapped pool breaks (a worker died),
each of its tasks fails with :class:`~futurekit.WorkerCrashedError` naming the
task; the pool is not replaced (it is the user's), and the exit code is not
known. Pools made by :func:`futurekit.processes` use
:mod:`futurekit._process.pool` instead, which attributes each death to its
task and replaces the dead worker. Both offer the same interface,
:class:`futurekit._process.Backend`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import _base as _futures_base  # pyright: ignore[reportPrivateUsage] - the stdlib's future states
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from .._errors import WorkerCrashedError
from .._settle import set_exception, set_result
from . import exceptions, payload, worker
from .chunks import ChunkResult
from .payload import Decoder

_log = logging.getLogger("futurekit")


class ForeignFuture(Future[Any]):
    """The caller's future of a task: mirrors the inner future's running()/cancel().

    It is never RUNNING itself; ``running()`` reports the inner future's state and
    ``cancel()`` cancels the inner future first and refuses if the inner refuses.
    """

    inner: Future[Any] | None = None

    def cancel(self) -> bool:
        inner = self.inner
        if inner is None:  # already settled
            return super().cancel()
        if inner.cancel():
            self.cancel_self()
            return True
        return self.cancelled()

    def running(self) -> bool:
        with self._condition:
            if self._state != _futures_base.PENDING:
                return False
            inner = self.inner
        return inner is not None and inner.running()

    def cancel_self(self) -> None:
        """Cancel this future and notify waiters at once (it never runs itself)."""
        if super().cancel():
            with self._condition:
                if self._state == _futures_base.CANCELLED:
                    self.set_running_or_notify_cancel()

    def __repr__(self) -> str:
        if self.running():
            return f"<{type(self).__name__} at {id(self):#x} state=running>"
        return super().__repr__()


class ForeignPool:
    """Sends tasks to a user-supplied process pool and decodes their outcomes."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self._lock = threading.Lock()
        self._live: set[ForeignFuture] = set()  # not settled yet (for cancel_futures on pools without it)

    @property
    def broken(self) -> str | None:
        """Why the pool is broken for good, or None (the stdlib's pool says so itself on submit)."""
        broken = getattr(self.pool, "_broken", None)
        return broken if isinstance(broken, str) and broken else None

    def submit_call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Future[Any]:
        """Pickle one call here (SerializationError at once) and submit it (the ``Backend`` interface)."""
        # The wrapped pool's workers may never import __main__ (loky's do not): what it defines goes by value.
        return self._submit(worker.run_call, payload.encode_call(fn, args, kwargs, main_by_value=True))

    def submit_chunk(self, fn: Callable[..., Any], chunk: list[Any]) -> Future[ChunkResult]:
        """Pickle one ``map`` chunk here and submit it as one task (the ``Backend`` interface)."""
        return self._submit(worker.run_chunk, payload.encode_chunk(fn, chunk, main_by_value=True))

    def _submit(self, runner: Callable[[bytes], tuple[bool, bytes]], encoded: payload.Encoded) -> ForeignFuture:
        """Submit ``runner(data)`` to the pool; the returned future settles with the decoded outcome."""
        data, decode, describe = encoded
        future = ForeignFuture()
        inner = self.pool.submit(runner, data)
        future.inner = inner
        with self._lock:
            self._live.add(future)

        def on_done(f: Future[Any]) -> None:
            self._on_done(future, f, decode, describe)

        inner.add_done_callback(on_done)
        return future

    def _on_done(self, future: ForeignFuture, inner: Future[Any], decode: Decoder, describe: Callable[[], str]) -> None:
        """Done-callback on the inner future (runs on the pool's result thread); never raises."""
        with self._lock:
            self._live.discard(future)
        try:
            if inner.cancelled():
                future.cancel_self()
                return
            exc = inner.exception()
            if exc is None:
                ok, data = inner.result()
                if ok:
                    set_result(future, decode(data, describe))
                else:
                    set_exception(future, exceptions.rebuild(data))
            elif isinstance(exc, BrokenProcessPool) and not isinstance(exc, WorkerCrashedError):
                crash = WorkerCrashedError(
                    "a worker process of the pool died abruptly (the pool is broken)", task=describe()
                )
                crash.__cause__ = exc
                set_exception(future, crash)
            else:
                set_exception(future, exc)
        except BaseException as err:  # a failing decode fails only this task
            if future.done():  # a user's done-callback raised a BaseException: keep the pool alive
                _log.error("futurekit: a done-callback of %r raised", future, exc_info=err)
            else:
                set_exception(future, err)
        finally:
            future.inner = None  # break the cycle future -> inner -> its callback -> future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Shut the wrapped pool down; ``cancel_futures`` also works for pools without that option."""
        if cancel_futures and accepts_cancel_futures(self.pool):
            self.pool.shutdown(wait=wait, cancel_futures=True)
        else:
            if cancel_futures:
                with self._lock:
                    live = list(self._live)
                for future in live:
                    future.cancel()
            self.pool.shutdown(wait=wait)
        if wait:
            with self._lock:
                live = list(self._live)
            _futures_base.wait(live)


def accepts_cancel_futures(inner: object) -> bool:
    """Whether ``inner.shutdown`` takes ``cancel_futures`` (loky's does not)."""
    import inspect

    shutdown: Any = getattr(inner, "shutdown", None)
    try:
        params = inspect.signature(shutdown).parameters
    except (TypeError, ValueError, AttributeError):
        return False
    return "cancel_futures" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
