"""as_completed for any FutureLike: the one combinator that blocks (in ``next()``)."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from typing import Any

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


def as_completed(futures: Iterable[FutureLike[T]], timeout: float | None = None) -> Iterator[FutureLike[T]]:
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

    Returns:
        An iterator over the futures in completion order.

    Raises:
        TypeError: An item is not a future, or ``timeout`` is not a number.
        ValueError: ``timeout`` is negative or NaN.
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
            enqueues, in whichever thread completes the future.
        Thread safety: The iterator must be consumed by one thread; the
            futures may complete in any threads.
        Cancellation: Never cancels anything; a cancelled future is yielded as
            finished.
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
    return _as_completed(items, deadline)


def _as_completed(items: list[Any], deadline: float | None) -> Iterator[Any]:
    total = len(items)
    waiter: queue.SimpleQueue[int] = queue.SimpleQueue()
    notifiers: list[_Notify | None] = []
    try:
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
            yield fut
    finally:
        for index, maybe in enumerate(notifiers):
            if maybe is not None:
                maybe.waiter = None
                pending: FutureLike[Any] | None = items[index]
                if type(pending) is Future:
                    _remove_callback(pending, maybe)
        items.clear()


def _remove_callback(fut: Future[Any], callback: object) -> None:
    """Take an as_completed callback off a pending stdlib Future (private list, under its lock)."""
    with fut._condition:
        try:
            fut._done_callbacks.remove(callback)  # type: ignore[attr-defined]
        except ValueError:
            pass
