"""Deterministic executors for tests: run tasks inline, or in a seeded random order.

Both executors are real :class:`concurrent.futures.Executor` subclasses, so
they plug in wherever an executor is expected (``fk.Executor(...)``,
``executor=`` arguments, ``concurrent.futures.wait``), and both run every task
in a thread the test controls, never in a thread of their own:

* :class:`InlineExecutor` runs each task inside ``submit`` and returns a future
  that is already done.
* :class:`ShuffledExecutor` queues tasks and runs them, one by one, in a
  reproducible random order when the test says so (``run_next``, ``run_all``,
  ``run_until``). Use it to make a test see completion orders that a real pool
  produces only rarely.

Only the standard library is used here.
"""

from __future__ import annotations

import threading as _threading
import time as _time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor as _StdExecutor
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypeVar

if TYPE_CHECKING:
    from random import Random as _Random

__all__ = ["InlineExecutor", "ShuffledExecutor"]

_T = TypeVar("_T")
_P = ParamSpec("_P")


class _Doneable(Protocol):
    def done(self) -> bool: ...


class _WorkItem(Generic[_T]):
    """One submitted call and the future that receives its outcome."""

    __slots__ = ("args", "fn", "future", "kwargs")

    def __init__(
        self, future: Future[_T], fn: Callable[..., _T], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        self.future = future
        self.fn = fn
        self.args = args
        self.kwargs = kwargs

    def run(self) -> bool:
        """Run the call into the future; False if the future was cancelled first."""
        future = self.future
        if not future.set_running_or_notify_cancel():
            return False
        try:
            result = self.fn(*self.args, **self.kwargs)
        except BaseException as exc:  # the stdlib's workers capture BaseException too
            future.set_exception(exc)
            # exc.__traceback__ holds this frame: drop the frame's references to
            # the future, or future -> exc -> frame -> future is a cycle.
            del future, self
        else:
            future.set_result(result)
        return True

    def detach(self) -> Future[_T]:
        """Return the future and forget it."""
        future = self.future
        del self.future
        return future


class InlineExecutor(_StdExecutor):
    """An executor that runs each task synchronously, inside ``submit``.

    ``submit(fn, *args, **kwargs)`` calls ``fn`` at once, in the calling
    thread, and returns a future that is already done: it holds ``fn``'s
    return value, or the exception ``fn`` raised (any ``BaseException``, as
    the stdlib's pools capture it). ``submit`` itself raises only
    ``RuntimeError``, after ``shutdown``. A task may submit further tasks;
    they run nested, before the outer ``submit`` returns. ``map`` is the
    stdlib's, so it runs every call before returning its iterator.

    Use it to test code that takes an executor without threads or timing:
    everything happens in order, in the test's own thread.

    Example:
        >>> from futurekit.testing import InlineExecutor
        >>> with InlineExecutor() as ex:
        ...     f = ex.submit(divmod, 7, 2)
        ...     print(f.done(), f.result())
        ...     bad = ex.submit(int, "x")
        ...     print(type(bad.exception()).__name__)
        ...     print(list(ex.map(pow, [2, 3], [3, 2])))
        True (3, 1)
        ValueError
        [8, 9]

    Concurrency:
        Blocking: ``submit`` returns when the task has run, so it takes as
            long as the task; the returned future is already done and its
            ``result()`` never waits.
        Callbacks: Tasks, and the done-callbacks of their futures, run in the
            thread that calls ``submit``; callbacks added later run at once
            in the thread that adds them.
        Thread safety: Safe to use from several threads; each task runs in
            the thread that submitted it, concurrently with other threads'
            tasks.
        Cancellation: Futures are done when returned, so ``cancel()`` always
            returns False; ``shutdown(cancel_futures=True)`` has nothing to
            cancel.
    """

    def __init__(self) -> None:
        """Create an executor that accepts tasks until ``shutdown``."""
        self._lock = _threading.Lock()
        self._shutdown = False

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        """Run ``fn(*args, **kwargs)`` now and return its done future.

        Args:
            fn: The callable to run.
            *args: Positional arguments for ``fn``.
            **kwargs: Keyword arguments for ``fn``.

        Returns:
            A done future holding ``fn``'s result, or the exception it raised.

        Raises:
            RuntimeError: If the executor has been shut down.

        Example:
            >>> from futurekit.testing import InlineExecutor
            >>> ex = InlineExecutor()
            >>> ex.submit(sorted, [3, 1, 2]).result()
            [1, 2, 3]
            >>> ex.submit(lambda: 1 / 0).exception()
            ZeroDivisionError('division by zero')
            >>> ex.shutdown()

        Concurrency:
            Blocking: Runs ``fn`` to completion before returning.
            Callbacks: ``fn`` and the future's done-callbacks run in the
                calling thread, before ``submit`` returns.
            Thread safety: Safe to call from any thread, and from inside a
                task (the nested task runs at once).
            Cancellation: The returned future is already done, so it cannot
                be cancelled.
        """
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
        item = _WorkItem(Future(), fn, args, kwargs)
        item.run()
        # Return the future without holding it in this frame: a failed task's
        # traceback reaches this frame (through f_back), so a local reference
        # here would make future -> exception -> traceback -> frame -> future
        # a cycle that only the garbage collector could break.
        return item.detach()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new tasks from now on. Idempotent.

        No task is ever pending, so ``wait`` and ``cancel_futures`` change
        nothing; they are accepted for the ``Executor`` contract. A task that
        is running in another thread's ``submit`` finishes normally.

        Args:
            wait: Accepted for compatibility; there is nothing to wait for.
            cancel_futures: Accepted for compatibility; nothing is pending.

        Example:
            >>> from futurekit.testing import InlineExecutor
            >>> ex = InlineExecutor()
            >>> ex.shutdown()
            >>> ex.shutdown()  # idempotent
            >>> ex.submit(print, "late")
            Traceback (most recent call last):
              ...
            RuntimeError: cannot schedule new futures after shutdown

        Concurrency:
            Blocking: Never blocks.
            Callbacks: None run.
            Thread safety: Safe to call from any thread, any number of times.
            Cancellation: Nothing is pending, so nothing is cancelled.
        """
        with self._lock:
            self._shutdown = True


class ShuffledExecutor(_StdExecutor):
    """An executor that queues tasks and runs them in a seeded random order.

    ``submit`` only queues the call and returns a pending future. Nothing runs
    until the test calls :meth:`run_next` (one task), :meth:`run_all` (until
    the queue is empty, including tasks that running tasks submit) or
    :meth:`run_until` (until a given future is done). Each step picks a
    queued task at random from a ``random.Random(seed)``, so the same seed and
    the same submissions give the same order on every run and every Python.
    Leaving the ``with`` block (``shutdown(wait=True)``) runs whatever is left.

    **Awaiting results.** The executor has no thread: a task runs only when
    some thread calls one of the ``run_*`` methods. ``future.result()`` on a
    task that has not run blocks until another thread runs it, and forever in
    a single-threaded test, so run tasks first, and in tests always pass a
    ``timeout``. The exception is :meth:`map`, whose iterator runs queued
    tasks itself until the result it needs is ready.

    Example:
        >>> from futurekit.testing import ShuffledExecutor
        >>> order = []
        >>> with ShuffledExecutor(seed=3) as ex:
        ...     futures = [ex.submit(order.append, i) for i in range(5)]
        ...     print(ex.pending, futures[0].done())
        ...     print(ex.run_all(), ex.pending)
        5 False
        5 0
        >>> sorted(order) == [0, 1, 2, 3, 4]
        True
        >>> again = []
        >>> with ShuffledExecutor(seed=3) as ex:
        ...     _ = [ex.submit(again.append, i) for i in range(5)]
        >>> again == order  # same seed, same order
        True

    Concurrency:
        Blocking: ``submit`` never blocks; ``result()`` on a future whose task
            has not run blocks until some thread runs it (see above).
        Callbacks: A task and its future's done-callbacks run in the thread
            that calls ``run_next``, ``run_all``, ``run_until``, ``shutdown``
            or iterates ``map``.
        Thread safety: All methods are safe to call from any thread and from
            inside tasks; the order is reproducible only when one thread
            drives the executor.
        Cancellation: A queued task's future can be cancelled at any time
            before it runs; the task is then dropped, never run. A running
            task cannot be cancelled.
    """

    def __init__(self, *, seed: int = 0) -> None:
        """Create an empty executor whose order is determined by ``seed``."""
        # Imported here, not at module level: ``random`` costs ~1.5 ms of
        # ``import futurekit``, and only tests need it.
        from random import Random

        self.seed = seed
        self._rng: _Random = Random(seed)
        self._lock = _threading.Lock()
        self._queue: list[_WorkItem[Any]] = []
        self._shutdown = False

    @property
    def pending(self) -> int:
        """Number of queued tasks not yet run and not cancelled (O(n) in the queue length)."""
        with self._lock:
            return sum(1 for item in self._queue if not item.future.cancelled())

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        """Queue ``fn(*args, **kwargs)`` and return its pending future.

        Args:
            fn: The callable to run later.
            *args: Positional arguments for ``fn``.
            **kwargs: Keyword arguments for ``fn``.

        Returns:
            A pending future, settled when the task runs (with ``fn``'s
            result or the exception it raised), or cancelled.

        Raises:
            RuntimeError: If the executor has been shut down, including from
                a task that runs during ``shutdown``.

        Example:
            >>> from futurekit.testing import ShuffledExecutor
            >>> ex = ShuffledExecutor(seed=0)
            >>> f = ex.submit(pow, 2, 10)
            >>> f.done(), ex.pending
            (False, 1)
            >>> ex.run_next(), f.result(timeout=0)
            (True, 1024)

        Concurrency:
            Blocking: Never blocks; nothing runs inside ``submit``.
            Callbacks: None run in ``submit``; the task runs later in the
                thread that drives the executor.
            Thread safety: Safe to call from any thread and from inside a
                running task.
            Cancellation: The future can be cancelled until its task starts.
        """
        future: Future[_T] = Future()
        item = _WorkItem(future, fn, args, kwargs)
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._queue.append(item)
        return future

    def _pop_random(self) -> _WorkItem[Any] | None:
        """Remove and return a random queued item, or None if the queue is empty."""
        with self._lock:
            queue = self._queue
            while queue:
                index = self._rng.randrange(len(queue))
                queue[index], queue[-1] = queue[-1], queue[index]
                item = queue.pop()
                if not item.future.cancelled():
                    return item
            return None

    def run_next(self) -> bool:
        """Run one queued task, picked at random; cancelled tasks are dropped.

        Returns:
            True if a task ran, False if no runnable task was queued.

        Example:
            >>> from futurekit.testing import ShuffledExecutor
            >>> ex = ShuffledExecutor(seed=1)
            >>> a, b = ex.submit(str, 1), ex.submit(str, 2)
            >>> b.cancel()
            True
            >>> ex.run_next(), ex.run_next()
            (True, False)
            >>> a.result(timeout=0)
            '1'

        Concurrency:
            Blocking: Runs the task to completion before returning.
            Callbacks: The task and its future's done-callbacks run in the
                calling thread.
            Thread safety: Safe to call from any thread, and from inside a
                task (it runs another task, nested).
            Cancellation: Tasks whose futures were cancelled are skipped and
                removed from the queue.
        """
        while True:
            item = self._pop_random()
            if item is None:
                return False
            ran = item.run()
            # A failed task's traceback reaches this frame: keep no reference
            # to its future here (see InlineExecutor.submit).
            del item
            if ran:
                return True
            # Cancelled between the pick and the start: pick again.

    def run_all(self) -> int:
        """Run queued tasks in random order until none is left.

        Tasks submitted by running tasks are run too, so this returns only
        when the queue is empty.

        Returns:
            The number of tasks run (cancelled tasks are not counted).

        Example:
            >>> from futurekit.testing import ShuffledExecutor
            >>> ex = ShuffledExecutor(seed=2)
            >>> inner = []
            >>> outer = ex.submit(lambda: inner.append(ex.submit(abs, -5)))
            >>> ex.run_all()
            2
            >>> inner[0].result(timeout=0)
            5

        Concurrency:
            Blocking: Runs every task to completion before returning; a task
                that blocks forever blocks it forever.
            Callbacks: Tasks and their futures' done-callbacks run in the
                calling thread.
            Thread safety: Safe to call from any thread; tasks submitted
                concurrently by other threads may or may not be included.
            Cancellation: Cancelled tasks are skipped and removed.
        """
        count = 0
        while self.run_next():
            count += 1
        return count

    def run_until(self, future: _Doneable) -> int:
        """Run queued tasks in random order until ``future`` is done.

        Useful when ``future`` depends on only some of the queued tasks (the
        output of a combinator, say). Stops early, leaving the rest queued,
        as soon as ``future.done()``; stops when the queue is empty even if
        ``future`` is still pending (check ``future.done()`` afterwards).

        Args:
            future: Any object with a ``done()`` method, typically a future.

        Returns:
            The number of tasks run.

        Example:
            >>> from futurekit.testing import ShuffledExecutor
            >>> ex = ShuffledExecutor(seed=0)
            >>> fs = [ex.submit(int, s) for s in "123"]
            >>> ran = ex.run_until(fs[1])
            >>> fs[1].result(timeout=0), ran + ex.pending
            (2, 3)

        Concurrency:
            Blocking: Runs tasks to completion, one by one, in the calling
                thread; returns at once if ``future`` is already done.
            Callbacks: Tasks and their futures' done-callbacks run in the
                calling thread.
            Thread safety: Safe to call from any thread.
            Cancellation: Cancelled tasks are skipped and removed; cancelling
                ``future`` makes it done, so this stops.
        """
        count = 0
        while not future.done() and self.run_next():
            count += 1
        del future  # see run_next: no reference from a frame a traceback may hold
        return count

    def map(
        self,
        fn: Callable[..., _T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[_T]:
        """Like ``Executor.map``, but iterating runs the queued tasks itself.

        Every call is queued at once, as the stdlib does before Python 3.14;
        results are yielded in input order. Each step of the iterator runs
        queued tasks (in random order, possibly including unrelated ones)
        until the next result is ready, so ``list(ex.map(...))`` works in a
        single thread. Closing the iterator early cancels the calls that have
        not run.

        Args:
            fn: The callable to map.
            *iterables: Argument iterables, zipped as by built-in ``map``.
            timeout: Seconds from this call after which a result that is not
                ready raises ``TimeoutError``. Tasks run synchronously, so it
                only matters when another thread is running the needed task.
            chunksize: Ignored (accepted for compatibility).

        Returns:
            An iterator over the results, in input order; a call's exception
            is raised when its result is reached.

        Example:
            >>> from futurekit.testing import ShuffledExecutor
            >>> seen = []
            >>> def square(x):
            ...     seen.append(x)
            ...     return x * x
            >>> with ShuffledExecutor(seed=5) as ex:
            ...     print(list(ex.map(square, range(5))))
            [0, 1, 4, 9, 16]
            >>> sorted(seen) == [0, 1, 2, 3, 4] and seen != [0, 1, 2, 3, 4]
            True

        Concurrency:
            Blocking: Queues every call, then returns at once; each step of
                the iterator runs tasks until its result is ready.
            Callbacks: Tasks and their done-callbacks run in the thread that
                iterates.
            Thread safety: Safe to call from any thread; iterate from one.
            Cancellation: Closing or abandoning the iterator cancels the
                calls that have not started.
        """
        end_time = None if timeout is None else _time.monotonic() + timeout
        futures = [self.submit(fn, *args) for args in zip(*iterables, strict=False)]
        futures.reverse()

        def results() -> Iterator[_T]:
            try:
                while futures:
                    future = futures.pop()
                    self.run_until(future)
                    remaining = None if end_time is None else max(0.0, end_time - _time.monotonic())
                    try:
                        value = future.result(remaining)
                    finally:
                        future.cancel()  # a no-op unless result() timed out
                    del future  # keep no reference to a consumed future
                    yield value
            finally:
                for future in futures:
                    future.cancel()

        return results()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new tasks; then cancel and/or run what is queued. Idempotent.

        Args:
            wait: If True, run every task still queued (in random order)
                before returning. Tasks these tasks submit are refused with
                ``RuntimeError``, which fails the submitting task unless it
                catches it. If False, queued tasks stay queued; ``run_next``
                and ``run_all`` still run them.
            cancel_futures: If True, first cancel every queued task.

        Example:
            >>> from futurekit.testing import ShuffledExecutor
            >>> ex = ShuffledExecutor(seed=0)
            >>> a, b = ex.submit(len, "ab"), ex.submit(len, "abc")
            >>> ex.shutdown(cancel_futures=True)
            >>> a.cancelled(), b.cancelled(), ex.pending
            (True, True, 0)

        Concurrency:
            Blocking: With ``wait=True``, runs the remaining tasks to
                completion in the calling thread.
            Callbacks: Remaining tasks and their done-callbacks, and the
                done-callbacks of cancelled futures, run in the calling thread.
            Thread safety: Safe to call from any thread, any number of times.
            Cancellation: ``cancel_futures=True`` cancels every queued task;
                a running task is never interrupted.
        """
        with self._lock:
            self._shutdown = True
            cancelled = self._queue if cancel_futures else []
            if cancel_futures:
                self._queue = []
        for item in cancelled:
            item.future.cancel()
        if wait:
            self.run_all()
