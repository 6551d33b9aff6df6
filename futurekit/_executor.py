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
import math
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing.context import BaseContext
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeGuard, TypeVar, TypeVarTuple, overload

from ._process import Backend
from ._process.chunks import ChunkResult, run_items
from ._process.foreign import ForeignPool, accepts_cancel_futures
from ._process.pool import ProcessPool
from ._progress import ProgressArg, resolve

P = ParamSpec("P")
T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class Executor(concurrent.futures.Executor):
    """A drop-in ``concurrent.futures.Executor`` that never loses an error.

    Wraps any executor. Everything the stdlib documents for ``Executor`` and
    ``Future`` holds as for the wrapped executor (``with``, ``shutdown``,
    ``cancel`` of a pending future, ``wait``/``as_completed``,
    ``loop.run_in_executor``, ``asyncio.wrap_future``), and ``map`` and its
    twin ``starmap`` (one row of arguments per item) are lazy and bounded (see
    :meth:`map` and :meth:`starmap`).

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
            and the iterators of ``map`` and ``starmap`` block as the stdlib's
            do.
        Callbacks: Done-callbacks run in the thread that settles the future:
            a worker thread; for ``processes()``, the pool's reader thread
            ("futurekit-pool-reader"); for a wrapped ``ProcessPoolExecutor``,
            its result thread. A cancelled future's run in the cancelling
            thread.
        Thread safety: Every method is safe to call from any thread.
        Cancellation: A pending future can be cancelled (the task never
            runs). A running one is stopped on :func:`processes` (see
            ``processes()``: ``cancel()`` returns True); on threads and on a
            wrapped pool it cannot be (``cancel()`` returns False). Leaving
            ``with`` by an exception cancels the tasks not yet started.
    """

    def __init__(self, inner: concurrent.futures.Executor, *, remote: bool | None = None) -> None:
        if not callable(getattr(inner, "submit", None)):
            raise TypeError(f"Executor() needs an executor with a submit() method, not {type(inner).__name__}")
        self._inner = inner
        self._remote = isinstance(inner, ProcessPoolExecutor) if remote is None else bool(remote)
        self._backend: Backend | None = None  # remote mode: the pool behind one interface
        if isinstance(inner, ProcessPool) or _offers_backend(inner):
            # futurekit's own pools (processes, a dask cluster) offer the Backend interface themselves.
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
            fn: The callable. In remote mode it is pickled, by reference when
                the workers can import it, else by value with cloudpickle
                (lambdas, closures, ``__main__`` code of a notebook or stdin);
                so are the arguments.
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
                then it never runs. Once it runs (``running()`` is True), on
                :func:`processes` ``cancel()`` returns True and stops the task
                (``StopRequested`` raised in it, then a kill after
                ``stop_grace``); on threads and wrapped pools it returns False.
                A done task refuses.
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
        progress: ProgressArg = None,
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
            progress: True shows a tqdm bar (``tqdm.auto``: a widget in a
                notebook) counting items, with a total when every iterable
                has a ``len()`` (the input is never consumed to count it); it
                needs ``pip install 'futurekit[progress]'``. A callable is
                called as ``progress(done, total)`` (``total`` None when
                unknown) with the items taken so far, counted per chunk when
                the consumer comes back after the chunk's last item (per item
                with an explicit ``buffersize``), and once more at the end.
                None or False: no progress, and no cost.

        Returns:
            An iterator over the results.

        Raises:
            ValueError: If ``chunksize`` or ``buffersize`` is below 1.
            TypeError: If ``chunksize`` or ``buffersize`` is not an integer, or
                ``progress`` not a bool, None or a callable.
            ImportError: If ``progress=True`` and tqdm is not installed.
            RuntimeError: If the executor was shut down.

        Example:
            >>> import futurekit as fk
            >>> with fk.threads(max_workers=2) as ex:
            ...     list(ex.map(pow, [2, 3, 4], [2, 2, 2]))
            [4, 9, 16]

        Concurrency:
            Blocking: ``map`` itself returns after submitting the first window;
                ``next()`` blocks until the next result is ready (or timeout).
            Callbacks: None run user code on the executor's threads; the
                window is refilled, and a ``progress`` callable is called or
                the bar drawn, in the consuming thread (the one calling
                ``next()``; for the final call, the one calling ``close()``,
                or dropping an iterator it never finished).
            Thread safety: Safe to call from any thread; consume each iterator
                from one thread at a time.
            Cancellation: Once a result was asked for, closing the iterator
                (``close()``, ``break``, garbage collection), an error reaching
                the consumer, a timeout or a ``KeyboardInterrupt`` cancels
                every task not yet started, and on :func:`processes` stops
                the chunks running (threads run them to the end). An iterator
                dropped without ever
                being consumed lets the tasks ``map`` already started run, as
                the stdlib's does, but reads no more input. The progress bar
                is closed when the iterator ends, is closed or raises.
        """
        return self._iter_map("map()", fn, iterables, timeout, chunksize, buffersize, ordered, progress, star=False)

    @overload
    def starmap(
        self,
        fn: Callable[[*Ts], T],
        iterable: Iterable[tuple[*Ts]],
        *,
        timeout: float | None = None,
        chunksize: int | None = None,
        buffersize: int | None = None,
        ordered: bool = True,
        progress: ProgressArg = None,
    ) -> Iterator[T]: ...

    @overload
    def starmap(
        self,
        fn: Callable[..., T],
        iterable: Iterable[list[Any]],
        *,
        timeout: float | None = None,
        chunksize: int | None = None,
        buffersize: int | None = None,
        ordered: bool = True,
        progress: ProgressArg = None,
    ) -> Iterator[T]: ...

    def starmap(
        self,
        fn: Callable[..., T],
        iterable: Iterable[Iterable[Any]],
        *,
        timeout: float | None = None,
        chunksize: int | None = None,
        buffersize: int | None = None,
        ordered: bool = True,
        progress: ProgressArg = None,
    ) -> Iterator[T]:
        """Lazily call ``fn(*row)`` for each row of ``iterable``, a bounded window at a time.

        :meth:`map` for functions of several arguments whose rows come
        already grouped (``zip`` output, a list of tuples, CSV rows), as
        :func:`itertools.starmap` is to :func:`map`: the same engine, with
        the same laziness, bounds, chunking, ordering, timeout, progress,
        errors and cancellation. A type checker checks each tuple row against
        ``fn``'s parameters; rows that are lists are accepted unchecked (any
        iterable works at run time, but rows sent to a process pool must be
        picklable).

        Args:
            fn: The function; called as ``fn(*row)`` for each row.
            iterable: The rows of arguments; may be infinite.
            timeout: Seconds from this call after which ``__next__`` raises
                :class:`TimeoutError`; None waits forever.
            chunksize: Rows per task; None picks sizes automatically (see
                :meth:`map`). An explicit number is honoured exactly.
            buffersize: At most this many rows are read ahead of the
                consumer; None means a window of three chunks per worker.
            ordered: True yields in input order; False yields results as they
                complete.
            progress: True shows a tqdm bar counting rows (with a total when
                ``iterable`` has a ``len()``; needs
                ``pip install 'futurekit[progress]'``); a callable is called
                as ``progress(done, total)``; None or False: nothing. As for
                :meth:`map`.

        Returns:
            An iterator over the results.

        Raises:
            ValueError: If ``chunksize`` or ``buffersize`` is below 1.
            TypeError: If ``chunksize`` or ``buffersize`` is not an integer, or
                ``progress`` not a bool, None or a callable.
            ImportError: If ``progress=True`` and tqdm is not installed.
            RuntimeError: If the executor was shut down.

        Example:
            >>> import futurekit as fk
            >>> with fk.threads(max_workers=2) as ex:
            ...     list(ex.starmap(pow, [(2, 5), (3, 2), (10, 3)]))
            [32, 9, 1000]

        Concurrency:
            Blocking: ``starmap`` itself returns after submitting the first
                window; ``next()`` blocks until the next result is ready (or
                timeout).
            Callbacks: None run user code on the executor's threads; the
                window is refilled, and a ``progress`` callable is called or
                the bar drawn, in the consuming thread (the one calling
                ``next()``; for the final call, the one calling ``close()``,
                or dropping an iterator it never finished).
            Thread safety: Safe to call from any thread; consume each iterator
                from one thread at a time.
            Cancellation: Once a result was asked for, closing the iterator
                (``close()``, ``break``, garbage collection), an error reaching
                the consumer, a timeout or a ``KeyboardInterrupt`` cancels
                every task not yet started, and on :func:`processes` stops
                the chunks running (threads run them to the end). An iterator
                dropped without ever being consumed lets the tasks already
                started run, but reads no more input. The progress bar is
                closed when the iterator ends, is closed or raises.
        """
        return self._iter_map(
            "starmap()", fn, (iterable,), timeout, chunksize, buffersize, ordered, progress, star=True
        )

    def _iter_map(
        self,
        where: str,
        fn: Callable[..., T],
        iterables: tuple[Iterable[Any], ...],
        timeout: float | None,
        chunksize: int | None,
        buffersize: int | None,
        ordered: bool,
        progress: object,
        *,
        star: bool,
    ) -> Iterator[T]:
        """map() and starmap(): check the arguments, then start the engine (futurekit._map.iter_map)."""
        checks: tuple[tuple[str, object], ...] = (("chunksize", chunksize), ("buffersize", buffersize))
        for name, value in checks:
            if value is not None:
                # Typed int | None, but callers pass floats and strings anyway: keep the run-time check.
                if not isinstance(value, int) or isinstance(value, bool):  # pyright: ignore[reportUnnecessaryIsInstance]
                    raise TypeError(f"{name} must be an integer or None")
                if value < 1:
                    raise ValueError(f"{name} must be >= 1.")
        reporters = resolve(where, progress)
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
            star=star,
            progress=reporters,
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
                already running complete (to stop them, cancel their futures on
                :func:`processes`, or use ``terminate_workers()``).
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
        """Leave ``with``: normally, wait for every task; on an exception, cancel what has not started first.

        On ``KeyboardInterrupt`` (Ctrl-C) a pool of :func:`processes` also
        stops its running tasks (softly, then by killing their workers after
        ``stop_grace``) and returns within ``stop_grace`` + 1 s; a second
        Ctrl-C while it waits, or one that came while the first was being
        handled (a ``KeyboardInterrupt`` whose ``__context__`` holds
        another), kills the workers at once. Threads cannot be
        stopped: there the running tasks are waited for.
        """
        if exc_type is None:
            self.shutdown(wait=True)
            return
        with self._shutdown_lock:
            self._closed = True
        if issubclass(exc_type, KeyboardInterrupt) and isinstance(self._inner, ProcessPool):
            self._inner.interrupt(again=_interrupted_twice(exc_val))
            return
        self.shutdown(wait=True, cancel_futures=True)

    def terminate_workers(self) -> None:
        """End every worker process at once with SIGTERM, and shut down (as Python 3.14's ``ProcessPoolExecutor``).

        Tasks running on a worker fail with :class:`futurekit.WorkerCrashedError`
        (a ``BrokenProcessPool``), queued ones with ``BrokenProcessPool``;
        ``submit`` raises ``RuntimeError`` afterwards. Unlike a ``cancel()``,
        no soft stop is tried: the task's ``finally`` blocks do not run.

        Raises:
            NotImplementedError: For an executor that has no worker processes
                to end (threads, or a wrapped pool without this method).

        Example:
            >>> import futurekit as fk
            >>> ex = fk.processes(max_workers=1)
            >>> ex.terminate_workers()
            >>> ex.shutdown()

        Concurrency:
            Blocking: Does not wait for the workers to exit;
                ``shutdown(wait=True)`` does.
            Callbacks: Futures of queued tasks run their done-callbacks in this
                thread; futures of running tasks on the pool's reader thread.
            Thread safety: Safe from any thread.
            Cancellation: Ends running tasks by force; nothing is cancelled.
        """
        self._end_workers("terminate_workers")

    def kill_workers(self) -> None:
        """As :meth:`terminate_workers`, with SIGKILL, which a worker can neither catch nor ignore.

        Raises:
            NotImplementedError: For an executor that has no worker processes
                to end (threads, or a wrapped pool without this method).

        Example:
            >>> import futurekit as fk
            >>> ex = fk.processes(max_workers=1)
            >>> ex.kill_workers()
            >>> ex.shutdown()

        Concurrency:
            Blocking: Does not wait for the workers to exit;
                ``shutdown(wait=True)`` does.
            Callbacks: Futures of queued tasks run their done-callbacks in this
                thread; futures of running tasks on the pool's reader thread.
            Thread safety: Safe from any thread.
            Cancellation: Ends running tasks by force; nothing is cancelled.
        """
        self._end_workers("kill_workers")

    def _end_workers(self, how: str) -> None:
        method = getattr(self._inner, how, None)
        if method is None:
            raise NotImplementedError(f"{how}() needs a process pool; {type(self._inner).__name__} has no {how}()")
        with self._shutdown_lock:
            self._closed = True
        method()

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


def _offers_backend(inner: object) -> TypeGuard[Backend]:
    """Whether ``inner`` offers the :class:`~futurekit._process.Backend` interface (e.g. the dask adapter's pool)."""
    return all(callable(getattr(inner, name, None)) for name in ("submit_call", "submit_chunk")) and hasattr(
        inner, "broken"
    )


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
        Cancellation: Pending tasks can be cancelled; running ones cannot
            (a thread cannot be stopped): ``cancel()`` returns False.
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


def _seconds(name: str, value: object, *, zero_ok: bool) -> float:
    """Validate a duration argument: a real number, not NaN, not negative (and not zero unless ``zero_ok``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    seconds = float(value)
    if math.isnan(seconds) or seconds < 0 or (seconds == 0 and not zero_ok):
        raise ValueError(f"{name} must be {'>= 0' if zero_ok else '> 0'} seconds, not {value!r}")
    return seconds


def processes(
    max_workers: int | None = None,
    mp_context: BaseContext | str | None = None,
    initializer: Callable[..., object] | None = None,
    initargs: tuple[Any, ...] = (),
    max_tasks_per_child: int | None = None,
    *,
    stop_grace: float = 1.0,
    task_timeout: float | None = None,
    cancel_running: bool = True,
    forward_logs: bool = True,
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

    **Running tasks can be stopped.** ``cancel()`` on a running task returns
    True, cancels its future at once and stops the task: first softly, by
    raising :class:`futurekit.StopRequested` inside it (so its ``finally``
    blocks and ``with`` statements run), then, if it still runs after
    ``stop_grace`` seconds, by killing its worker, which is replaced. A stop
    names its task: it never reaches another task. So ``timeout``, ``race``,
    ``first_success``, a failing ``gather``, a closed ``map`` iterator and
    Ctrl-C in ``with`` stop the process work they no longer need (see
    docs/stopping.md). Workers ignore SIGINT: the parent decides what stops.

    **Worker logs reach the parent's loggers.** A record logged in a worker,
    by any logger, is handled in the parent by the logger of the same name
    (its handlers, then propagation), with its level, message (formatted in
    the worker), exception (with the worker's frames), ``stack_info``, the
    worker's pid (``record.process``) and the running task's description
    (``record.futurekit_task``, None between tasks). Workers take the
    parent's levels when they start, so a record the parent would drop costs
    nothing there; the handlers a worker finds on its loggers at start are
    removed, so nothing is written twice (see docs/executors.md).

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
        stop_grace: Seconds a stopped task may take to end after
            ``StopRequested`` was raised in it, before its worker is killed
            (0: kill at once).
        task_timeout: A task running longer than this many seconds is
            stopped and fails with :class:`futurekit.TaskTimeoutError`;
            None: no limit.
        cancel_running: False keeps the stdlib's rule: ``cancel()`` of a
            running task returns False and the task runs on.
        forward_logs: False leaves workers' logging alone (records stay in
            the worker, as with ``ProcessPoolExecutor``).

    Returns:
        The executor.

    Raises:
        ValueError: If ``max_workers`` or ``max_tasks_per_child`` is below 1,
            ``mp_context`` names an unknown start method, ``stop_grace`` is
            negative or NaN, or ``task_timeout`` is not above 0.
        TypeError: If ``initializer`` is not callable, ``stop_grace`` or
            ``task_timeout`` is not a number, or ``cancel_running`` or
            ``forward_logs`` not a bool.

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
            cancelled it. The parent's log handlers handle workers' records on
            that thread too: a slow handler delays results (put a
            ``QueueHandler`` in front of slow sinks).
        Thread safety: The executor is safe to use from any thread.
        Cancellation: A queued task is cancelled and never runs; a running
            one (``running()`` is True) is cancelled and stopped, unless
            ``cancel_running=False``. Leaving ``with`` by an exception
            cancels the queued tasks; by ``KeyboardInterrupt`` it also stops
            the running ones and returns within ``stop_grace`` + 1 s (a
            second Ctrl-C kills the workers at once).
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
    grace = _seconds("stop_grace", stop_grace, zero_ok=True)
    limit = None if task_timeout is None else _seconds("task_timeout", task_timeout, zero_ok=False)
    if not isinstance(cancel_running, bool):  # pyright: ignore[reportUnnecessaryIsInstance] - users pass 0/1 anyway
        raise TypeError(f"cancel_running must be True or False, not {type(cancel_running).__name__}")
    if not isinstance(forward_logs, bool):  # pyright: ignore[reportUnnecessaryIsInstance] - users pass 0/1 anyway
        raise TypeError(f"forward_logs must be True or False, not {type(forward_logs).__name__}")
    if mp_context is None:
        mp_context = _default_start_method()
    ctx: Any = multiprocessing.get_context(mp_context) if isinstance(mp_context, str) else mp_context
    pool = ProcessPool(
        max_workers,
        ctx,
        initializer,
        initargs,
        max_tasks_per_child,
        stop_grace=grace,
        task_timeout=limit,
        cancel_running=cancel_running,
        forward_logs=forward_logs,
    )
    return Executor(pool)


def _interrupted_twice(exc: BaseException | None) -> bool:
    """Whether ``exc`` (a KeyboardInterrupt) was raised while another was being handled: a second Ctrl-C.

    Say the first one stopped a ``map`` and the second came while the map's
    cleanup ran: the second replaces the first, with the first as its context.
    """
    seen: set[int] = set()
    context = None if exc is None else exc.__context__
    while context is not None and id(context) not in seen:
        if isinstance(context, KeyboardInterrupt):
            return True
        seen.add(id(context))
        context = context.__context__
    return False
