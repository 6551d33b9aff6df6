"""Module-level helpers for the map tests (importable by worker processes)."""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from futurekit._map import run_chunk


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


class Token:
    """A weak-referenceable result object."""

    def __init__(self, value: int) -> None:
        self.value = value


class Recorder:
    """A submit_chunk adapter over an executor (chunks run by futurekit._map.run_chunk) recording each chunk's size."""

    def __init__(self, executor: cf.Executor) -> None:
        self.executor = executor
        self.sizes: list[int] = []
        self.futures: list[cf.Future[Any]] = []
        self.lock = threading.Lock()

    def __call__(self, fn: Callable[..., Any], chunk: list[Any]) -> cf.Future[Any]:
        fut = self.executor.submit(run_chunk, fn, chunk)
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
