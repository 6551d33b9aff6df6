"""as_completed for any FutureLike: the one combinator that blocks (in ``next()``)."""

from __future__ import annotations

import queue
import time
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import Future
from typing import Any

from ._progress import ProgressArg, Reporter, resolve
from ._settle import check_future, check_seconds
from ._types import FutureLike, T


class _Notify:
    """Done-callback for as_completed: puts its input's index on the waiter's queue."""

    __slots__ = ("index", "waiter")

    def __init__(self, waiter: queue.SimpleQueue[int], index: int) -> None:
        self.waiter: queue.SimpleQueue[int] | None = waiter
        self.index = index

    def __call__(self, _fut: object) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            waiter.put(self.index)


def as_completed(
    futures: Iterable[FutureLike[T]], timeout: float | None = None, *, progress: ProgressArg = None
) -> Iterator[FutureLike[T]]:
    """Yield the given futures as they finish (value, error or cancellation).

    Like :func:`concurrent.futures.as_completed`, for any ``FutureLike``:
    yields the very objects passed in, each once (duplicates are dropped),
    those already done first. Closing the iterator early (``break``, or
    ``close()``) unregisters its callbacks from the stdlib futures and drops
    every reference it holds; callbacks left on other FutureLikes hold
    nothing.

    Args:
        futures: The futures to watch (read at call time).
        timeout: Seconds, measured from the call, after which ``next()``
            raises ``TimeoutError`` if futures are still unfinished; None
            waits forever.
        progress: True shows a tqdm bar (``tqdm.auto``: a widget in a
            notebook) counting the futures taken, out of the number of
            distinct futures; it needs ``pip install 'futurekit[progress]'``.
            A callable is called as ``progress(done, total)`` each time the
            consumer comes back for the next future (as ``tqdm(iterable)``
            counts), and once more at the end. None or False: nothing.

    Returns:
        An iterator over the futures in completion order.

    Raises:
        TypeError: An item is not a future, ``timeout`` is not a number, or
            ``progress`` is not a bool, None or a callable.
        ValueError: ``timeout`` is negative or NaN.
        ImportError: ``progress=True`` and tqdm is not installed.
        TimeoutError: (from ``next()``) the deadline passed first.

    Example:
        >>> import futurekit as fk
        >>> fs = [fk.completed(1), fk.completed(2)]
        >>> sorted(f.result() for f in fk.as_completed(fs, timeout=5))
        [1, 2]

    Concurrency:
        Blocking: ``next()`` blocks the calling thread until a future finishes
            or the timeout passes; do not iterate on an engine's thread.
        Callbacks: Registers one tiny callback per pending future; it only
            enqueues, in whichever thread completes the future. A
            ``progress`` callable is called, and the bar drawn, in the
            consuming thread (the one calling ``next()``; for the final call,
            the one calling ``close()``, or dropping an unfinished iterator).
        Thread safety: The iterator must be consumed by one thread; the
            futures may complete in any threads.
        Cancellation: Never cancels anything; a cancelled future is yielded as
            finished. The progress bar is closed when the iterator ends, is
            closed or raises.
    """
    items: list[FutureLike[T]] = []
    seen: set[int] = set()
    for index, item in enumerate(futures):
        check_future("as_completed()", f"item {index + 1}", item)
        key = id(item)
        if key not in seen:
            seen.add(key)
            items.append(item)
    del seen
    deadline: float | None = None
    if timeout is not None:
        deadline = time.monotonic() + check_seconds("as_completed()", "timeout", timeout)
    reporters = resolve("as_completed()", progress)
    if reporters is None:
        return _as_completed(items, deadline, None)
    it = _as_completed(items, deadline, reporters(len(items)))
    next(it)  # primed: its finally, which closes the progress bar, runs even if it is never iterated
    return it


def _as_completed(items: list[Any], deadline: float | None, progress: Reporter | None) -> Generator[Any, None, None]:
    """The iterator; with ``progress``, primed by a first ``yield None`` that as_completed() takes."""
    total = len(items)
    waiter: queue.SimpleQueue[int] = queue.SimpleQueue()
    notifiers: list[_Notify | None] = []
    out = 0  # progress: 1 while a yielded future is not yet counted
    try:
        if progress is not None:
            yield None
        for index, fut in enumerate(items):
            notifier = _Notify(waiter, index)
            notifiers.append(notifier)
            fut.add_done_callback(notifier)
        for yielded in range(total):
            try:
                index = waiter.get() if deadline is None else waiter.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"{total - yielded} (of {total}) futures unfinished") from None
            fut = items[index]
            items[index] = None
            notifiers[index] = None
            if progress is None:
                yield fut
            else:
                out = 1
                yield fut
                out = 0
                progress.advance(1)
    finally:
        for index, maybe in enumerate(notifiers):
            if maybe is not None:
                maybe.waiter = None
                pending: FutureLike[Any] | None = items[index]
                if type(pending) is Future:
                    _remove_callback(pending, maybe)
        items.clear()
        if progress is not None:
            progress.advance(out)  # a future the consumer took before closing the iterator
            progress.end()


def _remove_callback(fut: Future[Any], callback: object) -> None:
    """Take an as_completed callback off a pending stdlib Future (private list, under its lock)."""
    with fut._condition:
        try:
            fut._done_callbacks.remove(callback)  # type: ignore[attr-defined]
        except ValueError:
            pass
