"""Progress reporting for the iterators of ``map``, ``starmap`` and ``as_completed``.

One leaf room, imported by the map engine and by ``as_completed``; it knows
neither. The caller validates ``progress=`` at the call with :func:`resolve`,
which returns None (nothing to report: the iterators then take no branch that
costs anything per item) or a factory that makes a :class:`Reporter` once the
total is known. The iterator calls ``advance(n)`` when the consumer comes back
for more after ``n`` items, and ``end()`` once when it ends, is closed or
raises. Both run in the consuming thread: no user code on an engine's thread.

tqdm is optional (the ``futurekit[progress]`` extra) and imported only when
``progress=True`` is asked for, at the call.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sized
from typing import Any, Protocol

#: What ``progress=`` accepts: None or False (off), True (a tqdm bar), or ``fn(done, total_or_None)``.
ProgressArg = bool | Callable[[int, int | None], object] | None

INSTALL_HINT = "pip install 'futurekit[progress]'"


class Reporter(Protocol):
    """What an iterator reports its progress to (consuming thread only)."""

    def advance(self, n: int) -> None:
        """``n`` more items were taken by the consumer."""

    def end(self) -> None:
        """The iterator ended, was closed or raised; called once."""


#: Makes the reporter of one iterator, given its total number of items (None if unknown).
ReporterFactory = Callable[[int | None], Reporter]


class _Callback:
    """Calls ``fn(done, total)`` after each batch of items, and once more at the end."""

    __slots__ = ("done", "fn", "total")

    def __init__(self, fn: Callable[[int, int | None], object], total: int | None) -> None:
        self.fn = fn
        self.total = total
        self.done = 0

    def advance(self, n: int) -> None:
        if n:
            self.done += n
            self.fn(self.done, self.total)

    def end(self) -> None:
        self.fn(self.done, self.total)


class _Bar:
    """A tqdm bar (``tqdm.auto``: a widget in a notebook), counting items."""

    __slots__ = ("bar",)

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def advance(self, n: int) -> None:
        if n:
            self.bar.update(n)

    def end(self) -> None:
        self.bar.close()


def _tqdm_class(where: str) -> Callable[..., Any]:
    """``tqdm.auto.tqdm``, or ImportError saying how to install it."""
    try:
        # By name: tqdm is an optional extra and ships no types, so no import statement names it.
        # The package first, so that a blocked tqdm (sys.modules["tqdm"] = None) is missing even when
        # tqdm.auto was imported before.
        importlib.import_module("tqdm")
        module = importlib.import_module("tqdm.auto")
    except ImportError as exc:
        raise ImportError(
            f"{where}: progress=True shows a tqdm bar, and tqdm is not installed: {INSTALL_HINT}", name="tqdm"
        ) from exc
    cls: Callable[..., Any] = module.tqdm
    return cls


def resolve(where: str, progress: object) -> ReporterFactory | None:
    """Check ``progress=`` at the call: None if it is off, else a factory of reporters.

    Raises:
        TypeError: ``progress`` is not a bool, None or a callable.
        ImportError: ``progress=True`` and tqdm is not installed.
    """
    if progress is None or progress is False:
        return None
    if progress is True:
        tqdm = _tqdm_class(where)
        return lambda total: _Bar(tqdm(total=total))
    if callable(progress):
        fn: Callable[[int, int | None], object] = progress
        return lambda total: _Callback(fn, total)
    raise TypeError(
        f"{where}: progress must be True, False, None or a callable fn(done, total), not {type(progress).__name__}"
    )


def total_of(iterables: Iterable[object]) -> int | None:
    """The number of items zipping ``iterables`` gives, if each has a length; else None.

    Asks ``len()`` only: an input is never consumed to count it.
    """
    total: int | None = None
    for source in iterables:
        if not isinstance(source, Sized):
            return None
        n = len(source)
        total = n if total is None else min(total, n)
    return total
