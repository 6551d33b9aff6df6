"""Module-level helpers for the map tests (importable by worker processes)."""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from futurekit._map import run_chunk as compact_run_chunk


def run_chunk(fn: Callable[..., Any], chunk: list[tuple[Any, ...]]) -> list[tuple[bool, Any]]:
    """The chunk runner of the iter_map contract: per-item outcomes, never raises for an item."""
    out: list[tuple[bool, Any]] = []
    append = out.append
    for args in chunk:
        try:
            append((True, fn(*args)))
        except Exception as exc:
            append((False, exc))
    return out


class ItemError(Exception):
    """Raised by fail_on for the chosen item."""


def inc(x: int) -> int:
    """x + 1."""
    return x + 1


def add(x: int, y: int) -> int:
    """x + y."""
    return x + y


def fail_on(x: int, bad: int) -> int:
    """x, or ItemError when x == bad."""
    if x == bad:
        raise ItemError(f"item {x}")
    return x


def fail_on_7(x: int) -> int:
    """x, or ItemError at 7."""
    return fail_on(x, 7)


def spin(seconds: float) -> float:
    """Burn CPU for about ``seconds``; returns the argument."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    return seconds


class Recorder:
    """A submit_chunk adapter over an executor that records every chunk's size.

    ``compact=True`` speaks the compact protocol (futurekit._map.run_chunk), else per-item pairs.
    """

    def __init__(self, executor: cf.Executor, compact: bool = False) -> None:
        self.executor = executor
        self.compact = compact
        self.sizes: list[int] = []
        self.futures: list[cf.Future[Any]] = []
        self.lock = threading.Lock()

    def __call__(self, fn: Callable[..., Any], chunk: list[Any]) -> cf.Future[Any]:
        runner: Callable[..., Any] = compact_run_chunk if self.compact else run_chunk
        fut = self.executor.submit(runner, fn, chunk)
        with self.lock:
            self.sizes.append(len(chunk))
            self.futures.append(fut)
        return fut


class CountingInput:
    """An input iterator that counts how many items were pulled from it."""

    def __init__(self, source: Iterable[Any]) -> None:
        self.source = iter(source)
        self.pulled = 0

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        item = next(self.source)
        self.pulled += 1
        return item
