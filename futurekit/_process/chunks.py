"""What a map chunk is, on both sides: the worker runs it, the parent's map iterator reads its outcome.

Kept apart from :mod:`futurekit._map`, the consumer-side engine: this is the
part a worker runs (:func:`run_items`, called by
:func:`futurekit._process.worker.run_chunk` in a process, or submitted as a task
to a thread pool) and the shape of what it returns.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import starmap
from time import monotonic
from typing import Any, final

#: A chunk's outcome: the results of the leading items that succeeded, the
#: exception of the item after them (None when every item succeeded), the
#: seconds the worker spent running them, and the bytes its items and results
#: took when pickled (0 when they were not): what automatic chunk sizes learn from.
ChunkResult = tuple[list[Any] | tuple[Any, ...], BaseException | None, float, int]


@final  # so run_items' isinstance(fn, Star) is the exact-type check it means
class Star:
    """``Star(fn)(args)`` calls ``fn(*args)``: how a multi-iterable map passes ``fn`` to its chunks.

    Picklable whenever ``fn`` is. :func:`run_items` recognises it and uses
    :func:`itertools.starmap`, so it costs nothing per item.

    Example:
        >>> Star(pow)((2, 5))
        32

    Concurrency:
        Blocking: Calls ``fn`` synchronously.
        Callbacks: None.
        Thread safety: Immutable; safe to share.
        Cancellation: Not applicable.
    """

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def __call__(self, args: tuple[Any, ...]) -> Any:
        return self.fn(*args)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Star, (self.fn,))

    def __repr__(self) -> str:
        return f"Star({self.fn!r})"


def run_items(fn: Callable[[Any], Any], items: list[Any]) -> tuple[list[Any], BaseException | None, float, int]:
    """Run one map chunk: ``fn(item)`` for each item, in order, up to the first error.

    Runs at C speed (``list.extend`` over ``map``/``starmap``), keeping the
    results of the items before a failing one. Items after the failing one
    do not run: the map stops at the first error anyway.

    Args:
        fn: A one-argument function, or a :class:`Star` for multi-iterable maps.
        items: The chunk's items (argument tuples when ``fn`` is a Star).

    Returns:
        ``(values, None, seconds, 0)`` when every item succeeded, else
        ``(values, exc, seconds, 0)``: the results before the failing item and
        the exception it raised (any ``BaseException``, as the stdlib's futures
        capture); ``seconds`` is the time spent running the items; 0 is the
        pickled size, which the caller fills in when it pickles them.

    Example:
        >>> run_items(abs, [-1, -2])[:2]
        ([1, 2], None)
        >>> values, exc, _seconds, _size = run_items(Star(divmod), [(7, 2), (1, 0), (3, 1)])
        >>> values, type(exc).__name__
        ([(3, 1)], 'ZeroDivisionError')

    Concurrency:
        Blocking: Runs the items synchronously in the calling thread.
        Callbacks: None.
        Thread safety: Safe from any thread; shares nothing.
        Cancellation: Not applicable: the chunk runs to its end or first error.
    """
    out: list[Any] = []
    start = monotonic()
    try:
        if isinstance(fn, Star):  # not type(fn) is Star: pyright does not narrow a Callable by type()
            out.extend(starmap(fn.fn, items))
        else:
            out.extend(map(fn, items))
    except BaseException as exc:
        box = [exc]  # returned through a box so this frame does not hold it (no cycle via the traceback)
    else:
        return out, None, monotonic() - start, 0
    return out, box.pop(), monotonic() - start, 0


#: Result types a map iterator may keep until their batch ends: immutable, small, not weakly referenceable.
SCALAR_TYPES = frozenset({int, float, complex, bool, type(None)})


def scalar_batch(values: list[Any]) -> list[Any] | tuple[Any, ...]:
    """``values`` as a tuple if every value's type is in :data:`SCALAR_TYPES`, else the list itself.

    Run in the worker (which has CPU to spare; the parent rarely does): a
    tuple tells the parent's iterator it need not release each value as it
    yields it.

    Example:
        >>> scalar_batch([1, 2.5, None])
        (1, 2.5, None)
        >>> scalar_batch([1, "a"])
        [1, 'a']

    Concurrency:
        Blocking: Never blocks.
        Callbacks: None.
        Thread safety: Safe from any thread.
        Cancellation: Not applicable.
    """
    return tuple(values) if set(map(type, values)) <= SCALAR_TYPES else values
