"""futurekit's own process pool, the inner executor of :func:`futurekit.processes`.

Why not ``ProcessPoolExecutor``: each of its tasks crosses three parent threads
(the submitter, its manager thread and its call queue's feeder thread) and
costs ~75 us of parent CPU, five times ``multiprocessing.Pool``'s; a dying
worker breaks the whole pool, terminating the tasks the other workers run; and
it cannot say which task a dead worker was running.

This module is the executor's face (submit, shutdown, start-up and interpreter
exit); how tasks reach workers, how results come back and how a worker's
death is attributed is in its engine, :mod:`futurekit._process.engine`.
"""

from __future__ import annotations

import concurrent.futures
import os
import sys
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ParamSpec, TypeVar

from . import payload, wire
from .chunks import ChunkResult
from .engine import Engine, Task, settle_all

P = ParamSpec("P")
T = TypeVar("T")

_live: weakref.WeakSet[Engine] = weakref.WeakSet()  # pools whose threads run
_exiting = False  # the interpreter is shutting down: no new tasks


def _shutdown_at_exit() -> None:
    """At interpreter exit, finish every running pool's work, as the stdlib does for its pools.

    Unless the program is ending by Ctrl-C (an uncaught ``KeyboardInterrupt``,
    which the interpreter has printed and kept in ``sys.last_value`` by now):
    then, as when a ``with`` block is left by Ctrl-C, queued tasks are
    cancelled and running ones stopped, and exit waits at most ``stop_grace``
    + 1 s for them.
    """
    global _exiting
    _exiting = True
    interrupted = isinstance(getattr(sys, "last_value", None), KeyboardInterrupt)
    # Only this process's pools: a child forked from here (a "fork" worker, or os.fork())
    # inherits the objects, but not their threads, and maybe a lock one of them held.
    engines = [engine for engine in list(_live) if engine.pid == os.getpid()]
    for engine in engines:
        if interrupted:
            engine.stop_all()
        else:
            engine.begin_shutdown(False)
    for engine in engines:
        if not interrupted:
            engine.join()
        elif not engine.join(engine.stop_grace + 1.0):
            settle_all(engine.terminate(kill=True))
            engine.join(1.0)


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
        forward_logs: Whether workers' log records are handled by the parent's
            loggers (:mod:`futurekit._process.logs`).

    Example:
        >>> import multiprocessing
        >>> from futurekit._process.pool import ProcessPool
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
        *,
        stop_grace: float = 1.0,
        task_timeout: float | None = None,
        cancel_running: bool = True,
        forward_logs: bool = True,
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
        self._engine = Engine(
            ctx,
            max_workers,
            initializer,
            initargs,
            max_tasks_per_child,
            stop_grace=stop_grace,
            task_timeout=task_timeout,
            cancel_running=cancel_running,
            forward_logs=forward_logs,
        )
        self._finalizer = weakref.finalize(self, Engine.begin_shutdown, self._engine, False)
        self._finalizer.atexit = False  # at exit, _shutdown_at_exit does it (in this process only)

    @property
    def broken(self) -> str | None:
        """Why the pool is broken for good, or None."""
        return self._engine.broken

    @property
    def _broken(self) -> str | bool:
        """As ``ProcessPoolExecutor._broken``: the reason the pool is broken, or False."""
        return self._engine.broken or False

    @property
    def _processes(self) -> dict[int, Any]:
        """As ``ProcessPoolExecutor._processes``: the live workers' processes by pid (a snapshot)."""
        with self._engine.lock:
            return {w.process.pid: w.process for w in self._engine.workers}

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` in a worker process; see the class docstring."""
        return self.submit_call(fn, args, kwargs)

    def submit_call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Future[Any]:
        """Pickle one call here (SerializationError at once) and queue it (the ``Backend`` interface)."""
        return self._submit(wire.CALL, payload.encode_call(fn, args, kwargs))

    def submit_chunk(self, fn: Callable[..., Any], chunk: list[Any]) -> Future[ChunkResult]:
        """Pickle one ``map`` chunk here and queue it as one task (the ``Backend`` interface)."""
        return self._submit(wire.CHUNK, payload.encode_chunk(fn, chunk))

    def _submit(self, kind: int, encoded: payload.Encoded) -> Future[Any]:
        """Queue one encoded task of the given wire kind."""
        data, decode, describe = encoded
        engine = self._engine
        task_id = engine.next_id()
        task = Task(task_id, wire.HEADER.pack(kind, task_id, 0.0) + data, decode, describe, engine.Future())
        with engine.lock:
            if engine.broken is not None:
                raise BrokenProcessPool(engine.broken)
            if _exiting:
                raise RuntimeError("cannot schedule new futures after interpreter shutdown")
            if engine.shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            engine.queue.append(task)
            engine.cond.notify()
            count = engine.to_spawn()
            engine.spawning += count
            start = not engine.threads
            if start:
                engine.threads = [
                    threading.Thread(target=engine.send_loop, name="futurekit-pool-sender", daemon=True),
                    threading.Thread(target=engine.read_loop, name="futurekit-pool-reader", daemon=True),
                ]
        if start:
            self._start_threads()
        if count:
            engine.start_workers(count)
        return task.future

    def _start_threads(self) -> None:
        """Start the sender and reader; if either cannot start (say, at interpreter exit), break the pool."""
        engine = self._engine
        try:
            for thread in engine.threads:
                thread.start()
        except BaseException as err:
            with engine.lock:
                engine.spawning = 0
                failures = engine.break_pool(f"its threads could not be started: {err!r}")
                engine.shutdown = True
                if engine.threads[1].ident is None:  # no reader: nobody else ends the sender or closes the pipe
                    engine.close_wake_pipe()
                    engine.finished.set()
                    engine.cond.notify_all()
            settle_all(failures)
            raise BrokenProcessPool(engine.broken) from err
        _live.add(engine)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting tasks; the workers exit once the queued tasks are done (idempotent)."""
        engine = self._engine
        for task in engine.begin_shutdown(cancel_futures):
            task.future.cancel()
        if wait:
            engine.join()

    def terminate_workers(self) -> None:
        """Shut down and end every worker with SIGTERM at once (Python 3.14's ``ProcessPoolExecutor`` method).

        Running tasks fail with :class:`~futurekit.WorkerCrashedError`, queued
        ones with ``BrokenProcessPool``; no new task is accepted. Returns
        without waiting; ``shutdown(wait=True)`` waits for the workers to be gone.
        """
        settle_all(self._engine.terminate(kill=False))

    def kill_workers(self) -> None:
        """As :meth:`terminate_workers`, with SIGKILL (which a worker cannot catch or ignore)."""
        settle_all(self._engine.terminate(kill=True))

    def interrupt(self, grace: float | None = None, *, again: bool = False) -> None:
        """Ctrl-C in ``with``: cancel queued tasks, stop running ones, and wait at most ``stop_grace + 1`` s.

        A second Ctrl-C while waiting, or ``again`` (one came before this
        was called), kills every worker at once and waits (at most a second)
        only for them to be reaped.
        """
        engine = self._engine
        try:
            engine.stop_all()
            if again or not engine.join(engine.stop_grace + 1.0 if grace is None else grace):
                self.kill_workers()
                engine.join(1.0)
        except KeyboardInterrupt:
            self.kill_workers()
            engine.join(1.0)
