"""futurekit's own process pool, the inner executor of :func:`futurekit.processes`.

Why not ``ProcessPoolExecutor``: each of its tasks crosses three parent threads
(the submitter, its manager thread and its call queue's feeder thread) and
costs ~75 us of parent CPU, five times ``multiprocessing.Pool``'s; a dying
worker breaks the whole pool, terminating the tasks the other workers run; and
it cannot say which task a dead worker was running.

This module is the executor's face (submit, shutdown, start-up and interpreter
exit); how tasks reach workers, how results come back and how a worker's
death is attributed is in :mod:`futurekit._poolstate`.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ParamSpec, TypeVar

from . import _calls, _worker
from ._poolstate import Decoder, PoolState, Runner, Task, settle_all

P = ParamSpec("P")
T = TypeVar("T")


def submit_call(
    submit_task: Callable[[Runner, bytes, Decoder, Callable[[], str]], Future[Any]],
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Future[Any]:
    """Pickle ``fn(*args, **kwargs)`` here (SerializationError at once) and submit it as one task."""
    payload = _calls.dump_call(fn, args, kwargs)
    return submit_task(_worker.run_task, payload, _calls.decode_value, lambda: _calls.describe_call(fn, args, kwargs))


_live: weakref.WeakSet[PoolState] = weakref.WeakSet()  # pools whose threads run
_exiting = False  # the interpreter is shutting down: no new tasks


def _shutdown_at_exit() -> None:
    """At interpreter exit, finish every running pool's work, as the stdlib does for its pools."""
    global _exiting
    _exiting = True
    # Only this process's pools: a child forked from here (a "fork" worker, or os.fork())
    # inherits the objects, but not their threads, and maybe a lock one of them held.
    states = [state for state in list(_live) if state.pid == os.getpid()]
    for state in states:
        state.begin_shutdown(False)
    for state in states:
        state.join()


_register = getattr(threading, "_register_atexit", None)
if _register is not None:  # runs before non-daemon threads are joined and before atexit hooks
    _register(_shutdown_at_exit)
else:  # pragma: no cover - CPython < 3.9
    import atexit

    atexit.register(_shutdown_at_exit)


class ProcessPool(concurrent.futures.Executor):
    """A process pool that attributes each worker death to the task it was running.

    The inner executor of :func:`futurekit.processes` (see this module's
    docstring for how it works). Use it through ``processes()``, which wraps
    it in :class:`futurekit.Executor`; its own ``submit`` behaves the same.

    Args:
        max_workers: Number of worker processes (at least 1).
        ctx: The multiprocessing context to start workers with.
        initializer: Called in each worker when it starts.
        initargs: Arguments for ``initializer``.
        max_tasks_per_child: Replace a worker after this many tasks.

    Example:
        >>> import multiprocessing
        >>> from futurekit._pool import ProcessPool
        >>> with ProcessPool(1, multiprocessing.get_context("spawn")) as pool:
        ...     pool.submit(divmod, 7, 2).result(timeout=60)
        (3, 1)

    Concurrency:
        Blocking: ``submit`` pickles the call in the calling thread and may
            start a worker process; it never waits for a task.
            ``shutdown(wait=True)`` blocks until every task finished.
        Callbacks: Done-callbacks run on the pool's reader thread (a
            cancelled future's in the cancelling thread).
        Thread safety: Every method is safe from any thread.
        Cancellation: A task can be cancelled until a worker is handed it
            (``running()`` turns True); not after.
    """

    def __init__(
        self,
        max_workers: int,
        ctx: Any,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        max_tasks_per_child: int | None = None,
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be greater than 0")
        if max_tasks_per_child is not None:
            if max_tasks_per_child < 1:
                raise ValueError("max_tasks_per_child must be >= 1")
            if ctx.get_start_method() == "fork":  # as the stdlib: forking a threaded parent is unsafe
                raise ValueError("max_tasks_per_child is incompatible with the 'fork' multiprocessing start method")
        self._max_workers = max_workers
        self._mp_context = ctx
        self._state = PoolState(ctx, max_workers, initializer, initargs, max_tasks_per_child)
        self._finalizer = weakref.finalize(self, PoolState.begin_shutdown, self._state, False)
        self._finalizer.atexit = False  # at exit, _shutdown_at_exit does it (in this process only)

    @property
    def broken(self) -> str | None:
        """Why the pool is broken for good, or None."""
        return self._state.broken

    @property
    def _broken(self) -> str | bool:
        """As ``ProcessPoolExecutor._broken``: the reason the pool is broken, or False."""
        return self._state.broken or False

    @property
    def _processes(self) -> dict[int, Any]:
        """As ``ProcessPoolExecutor._processes``: the live workers' processes by pid (a snapshot)."""
        with self._state.lock:
            return {w.process.pid: w.process for w in self._state.workers}

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` in a worker process; see the class docstring."""
        return submit_call(self.submit_task, fn, args, kwargs)

    def submit_task(self, runner: Runner, payload: bytes, decode: Decoder, describe: Callable[[], str]) -> Future[Any]:
        """Queue one pickled task (``runner`` is one of ``futurekit._worker.RUNNERS``)."""
        message = _worker.HEADER.pack(0, _worker.RUNNERS.index(runner), 0.0) + payload
        task = Task(message, decode, describe)
        state = self._state
        with state.lock:
            if state.broken is not None:
                raise BrokenProcessPool(state.broken)
            if _exiting:
                raise RuntimeError("cannot schedule new futures after interpreter shutdown")
            if state.shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            state.queue.append(task)
            state.cond.notify()
            count = state.to_spawn()
            state.spawning += count
            start = not state.threads
            if start:
                state.threads = [
                    threading.Thread(target=state.send_loop, name="futurekit-pool-sender", daemon=True),
                    threading.Thread(target=state.read_loop, name="futurekit-pool-reader", daemon=True),
                ]
        if start:
            self._start_threads()
        if count:
            state.start_workers(count)
        return task.future

    def _start_threads(self) -> None:
        """Start the sender and reader; if either cannot start (say, at interpreter exit), break the pool."""
        state = self._state
        try:
            for thread in state.threads:
                thread.start()
        except BaseException as err:
            with state.lock:
                state.spawning = 0
                failures = state.break_pool(f"its threads could not be started: {err!r}")
                state.shutdown = True
                if state.threads[1].ident is None:  # no reader: nobody else ends the sender or closes the pipe
                    state.close_wake_pipe()
                    state.finished.set()
                    state.cond.notify_all()
            settle_all(failures)
            raise BrokenProcessPool(state.broken) from err
        _live.add(state)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting tasks; the workers exit once the queued tasks are done (idempotent)."""
        state = self._state
        for task in state.begin_shutdown(cancel_futures):
            task.future.cancel()
        if wait:
            state.join()
