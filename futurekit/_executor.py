"""The executor wrapper: ``Executor``, ``threads()`` and ``processes()``.

An ``Executor`` wraps any ``concurrent.futures.Executor``. For executors whose
tasks run in the caller's process (threads) it forwards ``submit`` untouched and
returns the inner future itself. For process-based executors ("remote" mode) it
serialises each call in ``submit``'s own thread, runs it in the worker through
a runner that never raises, and rebuilds the outcome in the parent: the
original exception type with the worker's real frames, and a
``WorkerCrashedError`` naming the task when a worker dies.

In remote mode it talks to one interface, :class:`futurekit._process.Backend`:
``processes()`` wraps futurekit's own pool (:mod:`futurekit._process.pool`),
which fails only the task a dead worker was running and replaces that worker;
a process pool the user supplies goes through the adapter
:mod:`futurekit._process.foreign`.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing.context import BaseContext
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from ._process import Backend
from ._process.chunks import ChunkResult, run_items
from ._process.foreign import ForeignPool, accepts_cancel_futures
from ._process.pool import ProcessPool

P = ParamSpec("P")
T = TypeVar("T")


class Executor(concurrent.futures.Executor):
    """A drop-in ``concurrent.futures.Executor`` that never loses an error.

    Wraps any executor. Everything the stdlib documents for ``Executor`` and
    ``Future`` holds as for the wrapped executor (``with``, ``shutdown``,
    ``cancel`` of a pending future, ``wait``/``as_completed``,
    ``loop.run_in_executor``, ``asyncio.wrap_future``), and ``map`` is lazy and
    bounded (see :meth:`map`).

    In remote mode (process pools) a task's exception arrives as its original
    type with the worker's real frames as its traceback, an exception that
    cannot cross the boundary arrives as :class:`futurekit.RemoteError`, an
    unpicklable function or argument raises :class:`futurekit.SerializationError`
    from ``submit`` at once, and a worker that dies fails its task with
    :class:`futurekit.WorkerCrashedError`. With the pool of :func:`processes`
    only that task fails: the other workers' tasks finish normally, tasks that
    had not started run on another worker, and a new worker replaces the dead
    one (the pool itself, ``inner``, stays the same object). A
    ``ProcessPoolExecutor`` you wrap yourself stays broken after a crash, as
    the stdlib's does, and each of its tasks fails with ``WorkerCrashedError``.

    Args:
        inner: The executor to wrap.
        remote: None picks remote mode for a ``ProcessPoolExecutor`` (or
            subclass); True forces it (other process-based executors, e.g.
            loky); False forwards calls untouched.

    Raises:
        TypeError: If ``inner`` has no ``submit`` method.

    Example:
        >>> from concurrent.futures import ThreadPoolExecutor
        >>> import futurekit as fk
        >>> with fk.Executor(ThreadPoolExecutor(max_workers=2)) as ex:
        ...     ex.submit(pow, 2, 10).result(timeout=10)
        1024

    Concurrency:
        Blocking: ``submit`` never blocks on the task; ``shutdown(wait=True)``
            and ``map``'s iterator block as the stdlib's do.
        Callbacks: Done-callbacks run in the thread that settles the future:
            a worker thread; for ``processes()``, the pool's reader thread
            ("futurekit-pool-reader"); for a wrapped ``ProcessPoolExecutor``,
            its result thread. A cancelled future's run in the cancelling
            thread.
        Thread safety: Every method is safe to call from any thread.
        Cancellation: A pending future can be cancelled (the task never
            runs); a running one cannot (``cancel()`` returns False).
    """

    def __init__(self, inner: concurrent.futures.Executor, *, remote: bool | None = None) -> None:
        if not callable(getattr(inner, "submit", None)):
            raise TypeError(f"Executor() needs an executor with a submit() method, not {type(inner).__name__}")
        self._inner = inner
        self._remote = isinstance(inner, ProcessPoolExecutor) if remote is None else bool(remote)
        self._backend: Backend | None = None  # remote mode: the pool behind one interface
        if isinstance(inner, ProcessPool):
            self._remote, self._backend = True, inner
        elif self._remote:
            self._backend = ForeignPool(inner)
        self._closed = False
        self._shutdown_lock = threading.Lock()
        self._max_workers: int | None = getattr(inner, "_max_workers", None)
        self._cancel_kw = accepts_cancel_futures(inner)

    @property
    def max_workers(self) -> int | None:
        """The number of workers of the wrapped executor, or None if it does not say.

        Example:
            >>> import futurekit as fk
            >>> with fk.threads(max_workers=3) as ex:
            ...     ex.max_workers
            3

        Concurrency:
            Blocking: Never blocks.
            Callbacks: None.
            Thread safety: Safe from any thread.
            Cancellation: Not applicable.
        """
        return self._max_workers

    @property
    def remote(self) -> bool:
        """Whether tasks cross a process boundary (remote tracebacks, crash attribution).

        Example:
            >>> import futurekit as fk
            >>> with fk.threads(max_workers=1) as ex:
            ...     ex.remote
            False

        Concurrency:
            Blocking: Never blocks.
            Callbacks: None.
            Thread safety: Safe from any thread.
            Cancellation: Not applicable.
        """
        return self._remote

    @property
    def inner(self) -> concurrent.futures.Executor:
        """The wrapped executor, the same object for the executor's whole life.

        For ``processes()`` it is futurekit's own pool; a worker crash replaces
        the dead worker, never the pool.

        Example:
            >>> import futurekit as fk
            >>> with fk.threads(max_workers=1) as ex:
            ...     type(ex.inner).__name__
            'ThreadPoolExecutor'

        Concurrency:
            Blocking: Never blocks.
            Callbacks: None.
            Thread safety: Safe from any thread.
            Cancellation: Not applicable.
        """
        return self._inner

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Schedule ``fn(*args, **kwargs)`` and return its future.

        Args:
            fn: The callable. In remote mode it must be picklable (defined at
                module level), as must the arguments.
            *args: Positional arguments for ``fn``.
            **kwargs: Keyword arguments for ``fn``.

        Returns:
            A future of ``fn``'s result. In thread mode it is the inner
            executor's own future.

        Raises:
            RuntimeError: If the executor was shut down.
            futurekit.SerializationError: Remote mode, when ``fn`` or an
                argument cannot be pickled (raised here, at once).
            concurrent.futures.process.BrokenProcessPool: If the pool is
                broken for good (for example its initializer raised).

        Example:
            >>> import futurekit as fk
            >>> with fk.threads(max_workers=2) as ex:
            ...     ex.submit(divmod, 17, 5).result(timeout=10)
            (3, 2)

        Concurrency:
            Blocking: Never waits for the task; in remote mode it pickles the
                call in the calling thread.
            Callbacks: The future's done-callbacks run in the thread that
                settles it: the worker thread, or the process pool's reader
                thread ("futurekit-pool-reader" for ``processes()``); after a
                successful ``cancel()``, in the cancelling thread.
            Thread safety: Safe from any thread, including from callbacks and
                from inside the executor's own workers.
            Cancellation: ``cancel()`` succeeds while the task is pending, and
                then it never runs; it returns False once the task is running
                (``running()`` is True) or done.
        """
        backend = self._backend
        if backend is None:
            return self._inner.submit(fn, *args, **kwargs)
        if self._closed:
            raise RuntimeError("cannot schedule new futures after shutdown")
        return backend.submit_call(fn, args, kwargs)

    def _submit_chunk(self, fn: Callable[..., Any], chunk: list[Any]) -> Future[ChunkResult]:
        """Submit one map() chunk as one task (see futurekit._map.iter_map)."""
        backend = self._backend
        if backend is None:
            return self._inner.submit(run_items, fn, chunk)
        if self._closed:
            raise RuntimeError("cannot schedule new futures after shutdown")
        return backend.submit_chunk(fn, chunk)

    def map(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int | None = None,
        buffersize: int | None = None,
        ordered: bool = True,
    ) -> Iterator[T]:
        """Lazily apply ``fn`` to the zipped ``iterables``, a bounded window at a time.

        Like the stdlib's ``map`` (results in input order, an item's exception
        raised when that item is reached, ``timeout`` measured from this call),
        but it starts the first window of tasks at once and never reads more
        than a bounded number of items ahead of the consumer, so it works on an
        infinite generator in constant memory.

        Args:
            fn: The function; called as ``fn(*args)`` for each tuple of items.
            *iterables: Argument iterables, zipped (stops at the shortest).
            timeout: Seconds from this call after which ``__next__`` raises
                :class:`TimeoutError`; None waits forever.
            chunksize: Items per task; None picks sizes automatically: for
                process pools growing toward ~10 ms per chunk (at most 8192
                items), for threads small batches of quick items only (at most
                16; an item taking 1 ms or more runs alone). An explicit number
                is honoured exactly.
            buffersize: At most this many items are read ahead of the
                consumer; None means a window of three chunks per worker.
            ordered: True yields in input order; False yields results as they
                complete.

        Returns:
            An iterator over the results.

        Raises:
            ValueError: If ``chunksize`` or ``buffersize`` is below 1.
            TypeError: If ``chunksize`` or ``buffersize`` is not an integer.
            RuntimeError: If the executor was shut down.

        Example:
            >>> import futurekit as fk
            >>> with fk.threads(max_workers=2) as ex:
            ...     list(ex.map(pow, [2, 3, 4], [2, 2, 2]))
            [4, 9, 16]

        Concurrency:
            Blocking: ``map`` itself returns after submitting the first window;
                ``next()`` blocks until the next result is ready (or timeout).
            Callbacks: None run user code; the window is refilled in the
                consuming thread.
            Thread safety: Safe to call from any thread; consume each iterator
                from one thread at a time.
            Cancellation: Once a result was asked for, closing the iterator
                (``close()``, ``break``, garbage collection), an error reaching
                the consumer, a timeout or a ``KeyboardInterrupt`` cancels
                every task not yet started. An iterator dropped without ever
                being consumed lets the tasks ``map`` already started run, as
                the stdlib's does, but reads no more input.
        """
        checks: tuple[tuple[str, object], ...] = (("chunksize", chunksize), ("buffersize", buffersize))
        for name, value in checks:
            if value is not None:
                # Typed int | None, but callers pass floats and strings anyway: keep the run-time check.
                if not isinstance(value, int) or isinstance(value, bool):  # pyright: ignore[reportUnnecessaryIsInstance]
                    raise TypeError(f"{name} must be an integer or None")
                if value < 1:
                    raise ValueError(f"{name} must be >= 1.")
        if self._closed:
            raise RuntimeError("cannot schedule new futures after shutdown")
        from ._map import iter_map

        workers = self._max_workers or os.cpu_count() or 1
        return iter_map(
            self._submit_chunk,
            fn,
            iterables,
            timeout=timeout,
            chunksize=chunksize,
            buffersize=buffersize,
            ordered=ordered,
            workers=workers,
            auto_chunk=self._remote,
        )

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting tasks and release the workers (idempotent).

        Args:
            wait: Wait until every pending and running task has finished and
                the workers have exited.
            cancel_futures: Cancel every task that has not started.

        Example:
            >>> import futurekit as fk
            >>> ex = fk.threads(max_workers=1)
            >>> ex.shutdown()
            >>> ex.shutdown()  # idempotent

        Concurrency:
            Blocking: With ``wait=True``, blocks until every queued task ran
                and every worker exited (a task whose worker died just before
                runs on a new worker first); otherwise returns at once.
            Callbacks: Cancelled futures run their done-callbacks in this
                thread.
            Thread safety: Safe from any thread, any number of times.
            Cancellation: ``cancel_futures=True`` cancels pending tasks; tasks
                already running always complete.
        """
        with self._shutdown_lock:
            self._closed = True
        if self._backend is not None:
            self._backend.shutdown(wait, cancel_futures=cancel_futures)
        elif cancel_futures and self._cancel_kw:
            self._inner.shutdown(wait=wait, cancel_futures=True)
        else:
            self._inner.shutdown(wait=wait)

    def __enter__(self) -> Executor:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc_val: BaseException | None, exc_tb: TracebackType | None
    ) -> None:
        self.shutdown(wait=True)

    if not TYPE_CHECKING:  # at run time only: type checkers keep rejecting unknown attributes

        def __getattr__(self, name: str) -> Any:
            # Code written against the wrapped executor's internals (``_max_workers``,
            # ``_threads``, ``_processes``, ``_broken``...) keeps working: private,
            # non-dunder names the wrapper lacks are looked up on the inner executor.
            if name.startswith("_") and not name.startswith("__") and name != "_inner":
                return getattr(self._inner, name)
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __repr__(self) -> str:
        state = "shut down" if self._closed else "running"
        backend = self._backend
        if backend is not None and backend.broken is not None:
            state = "broken"
        kind = "remote" if self._remote else "local"
        return f"<futurekit.Executor {type(self.inner).__name__} {kind} max_workers={self._max_workers} {state}>"


def threads(
    max_workers: int | None = None,
    thread_name_prefix: str = "",
    initializer: Callable[..., object] | None = None,
    initargs: tuple[Any, ...] = (),
) -> Executor:
    """A thread pool: an :class:`Executor` over ``concurrent.futures.ThreadPoolExecutor``.

    ``submit`` returns the thread pool's own future (no added cost per task).

    Args:
        max_workers: Number of threads (the stdlib's default if None).
        thread_name_prefix: Prefix of the worker threads' names.
        initializer: Called in each worker thread when it starts.
        initargs: Arguments for ``initializer``.

    Returns:
        The executor.

    Raises:
        ValueError: If ``max_workers`` is below 1.
        TypeError: If ``initializer`` is not callable.

    Example:
        >>> import futurekit as fk
        >>> with fk.threads(max_workers=4) as ex:
        ...     sorted(ex.map(abs, [-3, 1, -2]))
        [1, 2, 3]

    Concurrency:
        Blocking: Never blocks; threads start on demand.
        Callbacks: Done-callbacks run in the worker thread that ran the task.
        Thread safety: The executor is safe to use from any thread.
        Cancellation: Pending tasks can be cancelled; running ones cannot.
    """
    return Executor(ThreadPoolExecutor(max_workers, thread_name_prefix, initializer, initargs))


def _default_start_method() -> str:
    # Not "fork": forking a parent that runs threads can deadlock the child (3.12
    # warns about it), and forked workers inherit each other's copy of the parent's
    # sentinel, so they never see the parent die. "forkserver" forks each worker
    # from a small single-threaded server that holds none of the parent's state,
    # and starts workers far faster than "spawn". No start method by itself stops
    # workers from outliving a SIGKILLed parent (measured on 3.11: the stdlib's
    # fork, forkserver and spawn pools all leak them), so every worker also runs
    # a thread that exits it when its parent dies (futurekit._process.worker). Where
    # forkserver is missing or unsafe (Windows, macOS), "spawn".
    methods = multiprocessing.get_all_start_methods()
    if sys.platform.startswith("linux") and "forkserver" in methods:
        return "forkserver"
    return "spawn"


def processes(
    max_workers: int | None = None,
    mp_context: BaseContext | str | None = None,
    initializer: Callable[..., object] | None = None,
    initargs: tuple[Any, ...] = (),
    max_tasks_per_child: int | None = None,
) -> Executor:
    """A process pool with remote tracebacks and crash attribution.

    Wraps futurekit's own process pool (not ``ProcessPoolExecutor``): each
    worker has its own pipes, a sender thread hands tasks to workers and a
    reader thread settles results. Calls are pickled in ``submit``; errors come
    back as their original type with the worker's real frames.

    When a worker dies (``os._exit``, a signal, a segfault), only the task it
    was running fails, with :class:`futurekit.WorkerCrashedError` naming the
    task and the exit code or signal. Tasks running on other workers finish
    normally; tasks handed to the dead worker but not started, and queued
    tasks, run on other workers or on a new worker that replaces the dead one.
    No task runs twice, and the pool object is never replaced.

    Workers start on demand, one per submitted task while none is idle, up to
    ``max_workers``. A busy worker is handed a second task in advance only when
    the pool has all its workers and that worker's last task ran under 20 ms,
    so no task waits behind a long one while another worker could take it. If
    ``initializer`` raises in a worker, or workers die 3 times in a row before
    running any task, the pool is broken for good: pending and later tasks
    fail with ``BrokenProcessPool``, saying why (for an initializer, its
    exception, with the worker's traceback, is the ``__cause__``). Workers exit
    when the parent dies, even by ``SIGKILL``. A pool dropped without
    ``shutdown`` shuts down without waiting; at interpreter exit, pools still
    running are shut down and waited for.

    Args:
        max_workers: Number of worker processes (default: the CPUs usable).
        mp_context: A multiprocessing context or a start method name
            ("forkserver", "spawn", "fork"). Default: "forkserver" on Linux,
            else "spawn" (never "fork": it leaks workers when the parent is
            killed).
        initializer: Called in each worker process when it starts; must be
            picklable.
        initargs: Arguments for ``initializer``.
        max_tasks_per_child: Replace a worker after this many tasks.

    Returns:
        The executor.

    Raises:
        ValueError: If ``max_workers`` or ``max_tasks_per_child`` is below 1,
            or ``mp_context`` names an unknown start method.
        TypeError: If ``initializer`` is not callable.

    Example:
        >>> import futurekit as fk
        >>> with fk.processes(max_workers=1) as ex:
        ...     ex.submit(pow, 2, 8).result(timeout=60)
        256

    Concurrency:
        Blocking: Never blocks; worker processes start on demand.
        Callbacks: Done-callbacks run on the pool's reader thread
            ("futurekit-pool-reader"): keep them short, a slow one delays
            every other result. A cancelled future's run in the thread that
            cancelled it.
        Thread safety: The executor is safe to use from any thread.
        Cancellation: A task can be cancelled until it is handed to a worker;
            from then on ``running()`` is True and ``cancel()`` returns False.
    """
    if max_workers is None:
        cpu_count: Callable[[], int | None] = getattr(os, "process_cpu_count", os.cpu_count)  # 3.13+
        cpus = cpu_count() or 1
        max_workers = min(cpus, 61) if sys.platform == "win32" else cpus
    else:
        requested: object = max_workers
        # Typed int, but callers pass floats and strings anyway: keep the run-time check.
        if not isinstance(requested, int) or requested <= 0:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ValueError("max_workers must be greater than 0")
    if initializer is not None and not callable(initializer):
        raise TypeError("initializer must be a callable")
    if mp_context is None:
        mp_context = _default_start_method()
    ctx: Any = multiprocessing.get_context(mp_context) if isinstance(mp_context, str) else mp_context
    return Executor(ProcessPool(max_workers, ctx, initializer, initargs, max_tasks_per_child))
