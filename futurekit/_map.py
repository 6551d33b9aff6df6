"""The lazy, bounded, chunked map behind :meth:`futurekit.Executor.map`.

:func:`iter_map` reads its input a bounded number of items ahead of the
consumer, cuts it into chunks, hands each chunk to ``submit_chunk`` (one task
per chunk) and yields the per-item outcomes in input order, or in completion
order. It knows nothing about the executor: the executor supplies
``submit_chunk`` and the worker count.

How it moves through time:

* ``iter_map`` itself reads the first window of input and submits it before
  returning (eager start, like the stdlib's ``buffersize`` in 3.14).
* Each time the consumer takes a chunk (default window) or an item (explicit
  ``buffersize``), the window is refilled from the consumer's own thread. No
  other thread ever reads the input or calls ``submit_chunk``.
* Each yielded result is popped out of its chunk's batch as it is yielded:
  the iterator holds no reference to a result it has already yielded.
* Chunk futures report back through an O(1) done-callback that records the
  completion and wakes the consumer through a condition variable.
* Closing the iterator, dropping it after asking for a result, an error
  reaching the consumer, a timeout or a ``KeyboardInterrupt`` cancels every
  chunk not yet started (and the chunks in flight, which ``fk.processes()``
  stops; threads run them to the end). An iterator dropped unconsumed lets its first window
  run (as the stdlib's map runs every task) and reads no more input.

Automatic chunk sizes start at one item and grow toward a target duration per
chunk (and, for pickled chunks, a target size in bytes), learnt from the
worker's own running time of completed chunks (see :func:`iter_map`).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import CancelledError, Future
from itertools import chain, compress, islice, starmap
from time import monotonic
from typing import Any, Generic, NoReturn, TypeVar, cast

from ._process.chunks import Star
from ._progress import Reporter, ReporterFactory, total_of

R = TypeVar("R")
V = TypeVar("V")

#: ``submit_chunk(fn, chunk)``: one task for one chunk (see :func:`iter_map` for the protocol).
SubmitChunk = Callable[[Callable[..., Any], list[Any]], Future[Any]]

#: Chunks in flight per worker when ``buffersize`` is None.
WINDOW_PER_WORKER = 3
#: Largest automatic chunk, in items (``auto_chunk=True``: process pools).
MAX_AUTO_CHUNK = 8192
#: Automatic chunking aims at chunks whose items run this many seconds in the worker.
TARGET_CHUNK_SECONDS = 0.01
#: Largest chunk with ``auto_chunk=False`` (thread pools): small batches of quick items only.
LOCAL_MAX_CHUNK = 16
#: With ``auto_chunk=False``, batches grow only while a chunk takes less than this many seconds.
LOCAL_TARGET_SECONDS = 0.001
#: An automatic chunk has at most this many times the items of all completed chunks together.
MAX_GROWTH = 64
#: Automatic chunks whose items and results are pickled aim at most at this many bytes.
TARGET_CHUNK_BYTES = 2 * 1024 * 1024


class _Inbox:
    """Where chunk futures report completion; shared with their callbacks only.

    The callbacks hold this object, never the iterator, so dropping the
    iterator runs its cleanup even while chunks are pending.
    """

    __slots__ = ("closed", "cond", "done", "ordered", "ready", "wanted")

    def __init__(self, ordered: bool) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.ordered = ordered
        self.closed = False
        # ordered: the futures that completed; unordered: futures in completion order.
        self.done: set[Future[Any]] = set()
        self.ready: deque[Future[Any]] = deque()
        # ordered: the future the consumer waits for; other completions do not wake it.
        self.wanted: Future[Any] | None = None

    def on_done(self, fut: Future[Any]) -> None:
        """Done-callback: record the completion and wake the consumer. O(1), never raises."""
        try:
            with self.cond:
                if self.closed:
                    return
                if self.ordered:
                    self.done.add(fut)
                    if fut is not self.wanted:
                        return
                else:
                    self.ready.append(fut)
                self.cond.notify()
        except BaseException:  # pragma: no cover - defensive: never break the engine's thread
            pass


def _nothing_to_submit(*_args: Any) -> Any:
    """Stands in for the executor and function of a map with nothing left to submit."""
    raise RuntimeError("this map has nothing left to submit")


class _Chunk:
    """One submitted chunk: its future and item count."""

    __slots__ = ("future", "n")

    def __init__(self, future: Future[Any], n: int) -> None:
        self.future = future
        self.n = n


class _MapState(Generic[R]):
    """The consumer-side state of one map call; touched only by the consumer's thread."""

    def __init__(
        self,
        submit_chunk: SubmitChunk,
        fn: Callable[..., R],
        iterables: tuple[Iterable[Any], ...],
        *,
        deadline: float | None,
        chunksize: int | None,
        buffersize: int | None,
        ordered: bool,
        workers: int,
        auto_chunk: bool,
        star: bool,
    ) -> None:
        self.submit_chunk = submit_chunk
        self.input: Iterator[Any]
        self.fn: Callable[..., Any]
        if star:
            self.input, self.fn = iter(iterables[0]), Star(fn)  # each item is a row of arguments
        elif len(iterables) == 1:
            self.input, self.fn = iter(iterables[0]), fn  # items travel bare, not as 1-tuples
        else:
            self.input, self.fn = zip(*iterables, strict=False), Star(fn)
        self.deadline = deadline
        self.buffersize = buffersize
        self.ordered = ordered
        self.window = WINDOW_PER_WORKER * max(1, workers)
        self.auto = chunksize is None
        self.target = TARGET_CHUNK_SECONDS if auto_chunk else LOCAL_TARGET_SECONDS
        if chunksize is not None:
            self.size = self.cap = chunksize
        else:
            self.size = 1
            self.cap = MAX_AUTO_CHUNK if auto_chunk else LOCAL_MAX_CHUNK
            if buffersize is not None:
                self.cap = max(1, min(self.cap, buffersize // self.window))
        self.read = 0  # input items read
        self.measured = 0  # items of the completed chunks that sized the next ones
        self.consumed = 0  # items yielded to (or raised at) the consumer
        self.exhausted = False  # no more input will be read
        self.stop_error: BaseException | None = None  # the input's own exception, raised in order
        self.inbox = _Inbox(ordered)
        self.pending: deque[_Chunk] = deque()  # ordered: submitted, not yet taken
        self.inflight: dict[Future[Any], _Chunk] = {}  # unordered: submitted, not yet taken
        # The batch being yielded (reversed: each result is popped as it is yielded) and the
        # guard its iterator runs over (one () per result; clearing it stops that iterator).
        self.current: list[Any] = []
        self.guard: list[Any] = []
        # Whether close() cancels the chunks not yet started. False only while the
        # consumer has never asked for a result: an iterator dropped unconsumed lets
        # its first window run, as the stdlib's map runs every task (issue 11777),
        # but reads no more input.
        self.cancel_on_close = False
        # Told how many items the consumer took, once per batch (None: progress is off).
        self.progress: Reporter | None = None

    def fill(self) -> None:
        """Read input and submit chunks until the window is full or the input ends."""
        while True:
            n = self.size
            if self.buffersize is not None:
                if self.read - self.consumed + n > self.buffersize:
                    return
            elif len(self.pending) + len(self.inflight) >= self.window:
                return
            items = self._read(n)
            if not items:
                self._release_source()
                return
            self.read += len(items)
            fut: Future[Any]
            try:
                fut = self.submit_chunk(self.fn, items)
            except Exception as exc:
                if self.read == len(items):
                    raise  # nothing submitted yet: map() itself raises (e.g. after shutdown)
                # Every item of this chunk fails with the error, at its position; nothing more is read.
                self.exhausted = True
                fut = Future()
                fut.set_exception(exc)
            chunk = _Chunk(fut, len(items))
            if self.ordered:
                self.pending.append(chunk)
            else:
                self.inflight[fut] = chunk
            fut.add_done_callback(self.inbox.on_done)
            if self.exhausted:
                self._release_source()

    def _release_source(self) -> None:
        """Everything was submitted: drop the input, the function and the executor.

        So an executor the caller dropped can be collected (and its workers
        released) while this iterator still yields, as with the stdlib's map.
        """
        self.input = iter(())
        self.submit_chunk = _nothing_to_submit
        self.fn = _nothing_to_submit

    def _read(self, n: int) -> list[Any]:
        """Up to ``n`` input items; at the input's end (or its error) sets ``exhausted``."""
        items: list[Any] = []
        if self.exhausted:
            return items
        try:
            items.extend(islice(self.input, n))  # keeps the items read before an error
        except Exception as exc:
            self.exhausted = True
            self.stop_error = exc
        else:
            if len(items) < n:
                self.exhausted = True
        return items

    def _wait(self, ready: Callable[[], bool]) -> None:
        """Wait on the inbox until ``ready()``; TimeoutError past the deadline."""
        cond = self.inbox.cond
        with cond:
            while not ready():
                if self.deadline is None:
                    cond.wait()
                else:
                    remaining = self.deadline - monotonic()
                    if remaining <= 0:
                        raise TimeoutError
                    cond.wait(remaining)

    def take(self) -> _Chunk | None:
        """The next chunk to yield (waiting for it), or None when all are taken."""
        inbox = self.inbox
        if self.ordered:
            if not self.pending:
                return None
            chunk = self.pending[0]
            fut = chunk.future
            if fut not in inbox.done:
                with inbox.cond:
                    inbox.wanted = fut
                try:
                    self._wait(lambda: fut in inbox.done)
                finally:
                    with inbox.cond:
                        inbox.wanted = None
            self.pending.popleft()
            with inbox.cond:
                inbox.done.discard(fut)
        else:
            if not self.inflight:
                return None
            ready = inbox.ready
            if not ready:
                self._wait(lambda: bool(ready))
            with inbox.cond:
                fut = ready.popleft()
            chunk = self.inflight.pop(fut)
        if self.auto:
            self._learn(chunk)
        return chunk

    def _learn(self, chunk: _Chunk) -> None:
        """Size the next automatic chunk from a completed one."""
        fut = chunk.future
        if fut.cancelled() or fut.exception() is not None:
            return
        n = chunk.n
        self.measured += n
        # The worker's own running time, not the round trip: a small chunk's
        # round trip is all transport and queueing, which would keep chunks
        # small for many rounds on quick items.
        _values, _err, seconds, size = fut.result()
        estimate = int(n * self.target / seconds) if seconds > 0 else self.cap
        if size > 0:  # large items or results: keep each message to about TARGET_CHUNK_BYTES
            estimate = min(estimate, n * TARGET_CHUNK_BYTES // size)
        # Growth is bounded by the evidence so far: all the items measured, not just this chunk's.
        self.size = max(1, min(estimate, self.measured * MAX_GROWTH, self.cap))

    def close(self) -> None:
        """Cancel every chunk not yet started and drop what is held. Never raises."""
        self.exhausted = True
        self.stop_error = None
        self._release_source()
        self.guard.clear()  # the batch iterator the chain is running stops
        self.current.clear()
        futures = [c.future for c in self.pending]
        futures.extend(self.inflight)
        self.pending.clear()
        self.inflight.clear()
        inbox = self.inbox
        with inbox.cond:
            inbox.closed = True
            inbox.done.clear()
            inbox.ready.clear()
        if self.cancel_on_close:
            # Newest first: stopping a running chunk frees its worker, which must not then pick up a
            # queued chunk that is about to be cancelled too.
            for fut in reversed(futures):
                fut.cancel()


class _MapIterator(chain[R]):
    """The iterator iter_map returns: ``itertools.chain`` over the result batches, plus ``close()``.

    Items come out of C code (``chain`` over ``starmap(batch.pop, guard)``);
    only a new batch (a chunk) enters Python code. Each result is popped out
    of its batch as it is yielded, so the iterator keeps no reference to it.
    Dropping the iterator drops the batch generator, whose ``finally``
    cancels what has not started (once results were asked for).
    """

    __slots__ = ("__weakref__", "_batches", "_state")
    _batches: Generator[Iterator[R], None, None]
    _state: _MapState[R]

    @staticmethod
    def start(batches: Generator[Iterator[V], None, None], state: _MapState[V]) -> _MapIterator[V]:
        """The iterator over ``batches`` (primed by iter_map), closing ``state`` on ``close()``."""
        it = cast("_MapIterator[V]", _MapIterator.from_iterable(batches))
        it._batches = batches
        it._state = state
        return it

    def close(self) -> None:
        """Stop: cancel every chunk not yet started; later ``next()`` raises StopIteration."""
        self._state.cancel_on_close = True
        self._batches.close()

    def __repr__(self) -> str:
        return "<futurekit map iterator>"


def _raise(exc: BaseException) -> NoReturn:
    """Raise ``exc``, dropping this frame's reference to it (no cycle through the traceback)."""
    try:
        raise exc
    finally:
        del exc


def _drain(state: _MapState[R], values: list[Any], n: int) -> Iterator[R]:
    """An iterator popping the last ``n`` results off ``values`` (stored reversed), one per ``next``.

    It runs in C and holds no popped result; ``state.close()`` stops it by
    clearing its guard.
    """
    guard = state.guard = [()] * n
    state.current = values
    return starmap(values.pop, guard)


def _scan(state: _MapState[R], values: tuple[Any, ...]) -> Iterator[R]:
    """An iterator over ``values``, all small immutable scalars (see :func:`futurekit._process.chunks.scalar_batch`).

    It keeps the tuple until the batch ends, which nobody can observe (none of
    its values can be weakly referenced), and costs a third of :func:`_drain`
    per item. ``state.close()`` stops it by clearing its guard.
    """
    guard = state.guard = [True] * len(values)
    return compress(values, guard)


def _batches(state: _MapState[R]) -> Generator[Iterator[R], None, None]:
    """Yield the results in batches (a chunk's values, or one item at a time with an explicit buffersize).

    The first ``yield`` only primes the generator (see iter_map), so that its
    ``finally`` runs on close and on finalisation even before the first result.

    With progress on, each batch is counted when the consumer comes back after
    its last item, and a batch interrupted by ``close()`` by the items taken
    from it (so batches of scalars are drained as lists, not scanned). With
    progress off, no call is added: the items of a batch still come out of C
    code.
    """
    progress = state.progress
    open_left = -1  # while a drained batch is out: the items it had left when it was yielded
    try:
        try:
            state.fill()
        except BaseException:
            state.cancel_on_close = True  # map() itself fails: nothing it started may run on
            raise
        yield iter(())
        state.cancel_on_close = True  # the consumer has started: stopping now cancels the rest
        per_item = state.buffersize is not None
        while True:
            chunk = state.take()
            if chunk is None:
                err = state.stop_error
                if err is not None:
                    state.stop_error = None
                    _raise(err)
                return
            fut = chunk.future
            n = chunk.n
            del chunk
            if fut.cancelled():
                state.consumed += 1
                raise CancelledError(f"a chunk of {n} map item(s) was cancelled")
            err = fut.exception()
            if err is not None:
                state.consumed += 1
                del fut
                _raise(err)
            values: list[Any] | tuple[Any, ...]  # a tuple only from chunks.scalar_batch
            values, err, _seconds, _size = fut.result()
            del fut
            count = len(values)
            if not per_item:
                state.consumed += n
                if err is None:
                    state.fill()
                if progress is not None:
                    values = values if type(values) is list else list(values)  # counted as popped
                    values.reverse()  # popped from the end, in input order
                    open_left = count
                    yield _drain(state, values, count)
                    open_left = -1
                    progress.advance(count)
                elif type(values) is tuple:
                    yield _scan(state, values)
                else:
                    values = cast("list[Any]", values)  # not a tuple: a list (exact types, see run_items)
                    values.reverse()  # popped from the end, in input order
                    yield _drain(state, values, count)
            else:
                batch = (
                    values if type(values) is list else list(values)
                )  # emptied in place: nothing else holds a result
                del values
                batch.reverse()
                for _ in range(count):
                    state.consumed += 1
                    state.fill()
                    if progress is None:
                        yield _drain(state, batch, 1)
                    else:
                        open_left = len(batch)
                        yield _drain(state, batch, 1)
                        open_left = -1
                        progress.advance(1)
                del batch
            if err is not None:
                state.consumed += 1
                _raise(err)
    finally:
        taken = open_left - len(state.current) if open_left >= 0 else 0  # from a batch close() interrupted
        state.close()
        if progress is not None:
            progress.advance(taken)
            progress.end()


def iter_map(
    submit_chunk: SubmitChunk,
    fn: Callable[..., R],
    iterables: tuple[Iterable[Any], ...],
    *,
    timeout: float | None,
    chunksize: int | None,
    buffersize: int | None,
    ordered: bool,
    workers: int,
    auto_chunk: bool,
    star: bool = False,
    progress: ReporterFactory | None = None,
) -> Iterator[R]:
    """Map ``fn`` over zipped ``iterables`` in chunks, lazily and with bounded read-ahead.

    The engine of :meth:`futurekit.Executor.map`. ``submit_chunk(fn, chunk)``
    must submit ONE task for the chunk and return its future. ``chunk`` is a
    list of single arguments and ``fn`` takes one (for several iterables,
    ``fn`` arrives wrapped in :class:`Star` and the items are argument
    tuples). The task returns ``(values, error, seconds, bytes)``: the results
    of the leading items that succeeded, the exception of the item after them
    (or None), the seconds the worker spent running the items, and the bytes
    the chunk's items and results took pickled (0 if they were not).
    :func:`futurekit._process.chunks.run_items` implements it; ``values`` must be a list, which the
    iterator empties as it yields (so it holds no yielded result). The outcome
    pickles like a plain list of values, about five times cheaper per trivial
    item than per-item ``(ok, value)`` pairs and 1-tuples.

    If a chunk's future itself fails (worker crash, cancellation), every
    item of the chunk fails with that error.

    The iterables are zipped (iteration stops at the shortest). Before
    returning, ``iter_map`` reads the first window of input and submits it, so
    work starts even if the iterator is never consumed; the window is refilled
    as results are consumed.

    Read-ahead bound (items read from the input and not yet yielded to the
    consumer):

    * ``buffersize=B``: at most ``B`` items, exactly (the bound is reached
      when ``B`` is a multiple of the chunk size). An explicit ``chunksize``
      must not exceed ``B``; automatic chunks are at most
      ``B // (3 * workers)`` items (at least 1), so that several run at once.
    * ``buffersize=None``: at most ``3 * workers`` chunks are submitted and not
      yet taken by the consumer, plus the one chunk whose results are being
      yielded: at most ``(3 * workers + 1) * C`` items, where ``C`` is the
      explicit ``chunksize``, else at most 8192 with ``auto_chunk=True`` and
      at most 16 with ``auto_chunk=False``. Memory stays constant on an
      infinite input.

    Chunk sizes: an explicit ``chunksize`` is honoured exactly (only the last
    chunk may be shorter). With ``chunksize=None``, chunks start at one item;
    each completed chunk sizes the next ones from the time the worker spent
    running its items (not the round trip, which for a small chunk is all
    transport and queueing): proportionally toward a target time, toward at
    most ``TARGET_CHUNK_BYTES`` (2 MiB) of pickled items and results when the
    task reports them, at most ``MAX_GROWTH`` times the items of all chunks
    measured so far, and never above a cap. They shrink again if items get
    slower or bigger.

    * ``auto_chunk=True`` (process pools, where a task costs ~50 us): target
      10 ms, cap 8192 items.
    * ``auto_chunk=False`` (thread pools): small batches of quick items only,
      target 1 ms, cap 16 items. An item that takes 1 ms or more always runs
      alone, so slow (I/O-bound) items keep every thread busy; trivial items
      run ~10x faster than one task per item.

    Args:
        submit_chunk: Submits one chunk as one task (see above).
        fn: The function to apply; called as ``fn(*args)`` (through
            :class:`Star` when there are several iterables).
        iterables: The argument iterables, zipped.
        timeout: Seconds, measured from this call, after which ``__next__``
            raises :class:`TimeoutError` instead of waiting further; None
            waits forever.
        chunksize: Items per task, or None for automatic.
        buffersize: Maximum items read ahead of the consumer, or None for the
            default window described above.
        ordered: True yields results in input order; False yields them as
            their chunks complete.
        workers: The executor's worker count; sizes the default window.
        auto_chunk: True for executors whose tasks are costly to send
            (process pools): large adaptive chunks. False (thread pools):
            small adaptive batches of quick items only.
        star: True for ``starmap``: ``iterables`` holds one iterable whose
            items are rows of arguments, each called as ``fn(*row)``.
        progress: None, or a factory (see :func:`futurekit._progress.resolve`)
            of the reporter told how many items the consumer took: after
            each batch, in the consuming thread, and once at the end. The
            total is ``len()`` of the iterables (the shortest), when each has
            one.

    Returns:
        An iterator over the results, with a ``close()`` method.

    Raises:
        ValueError: At call time, if ``chunksize`` or ``buffersize`` is below
            1, or ``chunksize`` exceeds ``buffersize``.
        Exception: Whatever ``submit_chunk`` raises for the first chunk (for
            example RuntimeError after shutdown) is raised at call time. Later
            submission errors fail the items of that chunk.

    When iterating, an item's exception is raised when that item is reached,
    after every earlier result was yielded; an exception raised by the input
    iterable is raised after the results of every item read before it. Either
    ends the iteration and cancels every chunk not yet started.

    Example:
        >>> from concurrent.futures import ThreadPoolExecutor
        >>> from futurekit._process.chunks import run_items
        >>> with ThreadPoolExecutor(2) as pool:
        ...     submit = lambda fn, chunk: pool.submit(run_items, fn, chunk)
        ...     list(iter_map(submit, abs, ([-1, -2, 3],), timeout=10, chunksize=2, buffersize=None,
        ...                   ordered=True, workers=2, auto_chunk=False))
        ...     it = iter_map(submit, pow, ([2, 3, 4], [2, 2]), timeout=10, chunksize=None,
        ...                   buffersize=None, ordered=True, workers=2, auto_chunk=True)
        ...     list(it)
        [1, 2, 3]
        [4, 9]

    Concurrency:
        Blocking: The call itself reads the first window of input and submits
            it, then returns. ``__next__`` blocks until the next result is
            ready, or until the deadline set by ``timeout``.
        Callbacks: Each chunk future gets one O(1) done-callback, run in the
            thread that completes it; it only records the time and wakes the
            consumer. The input is read and ``submit_chunk`` is called only
            in the thread calling ``iter_map`` or ``__next__``.
        Thread safety: The iterator is for one consumer at a time, like any
            generator; it may be closed from another thread once no ``next``
            is running.
        Cancellation: ``close()``, dropping the last reference to the
            iterator (e.g. ``break`` out of ``for x in ex.map(...)``), or an
            exception reaching the consumer (an item's error, the input's
            error, TimeoutError, a KeyboardInterrupt while waiting or while
            the consumer handles a result) cancels every chunk not yet
            started and returns at once; it also cancels the chunks in
            flight, which stops them on an executor that stops running work
            (``fk.processes()``); elsewhere (threads) they finish in their
            workers and their results are discarded.
    """
    if chunksize is not None and chunksize < 1:
        raise ValueError(f"chunksize must be >= 1, got {chunksize}")
    if buffersize is not None and buffersize < 1:
        raise ValueError(f"buffersize must be >= 1, got {buffersize}")
    if chunksize is not None and buffersize is not None and chunksize > buffersize:
        raise ValueError(f"chunksize ({chunksize}) must not exceed buffersize ({buffersize})")
    deadline = None if timeout is None else monotonic() + timeout
    state = _MapState(
        submit_chunk,
        fn,
        iterables,
        deadline=deadline,
        chunksize=chunksize,
        buffersize=buffersize,
        ordered=ordered,
        workers=workers,
        auto_chunk=auto_chunk,
        star=star,
    )
    if progress is not None:
        state.progress = progress(total_of(iterables))
    batches = _batches(state)
    next(batches)  # eager start; from here on close() and finalisation cancel pending chunks
    return _MapIterator.start(batches, state)
