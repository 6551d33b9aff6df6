"""Module-level helpers for the map tests (importable by worker processes)."""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from executor_helpers import ItemError, add, fail_on

from futurekit._process.chunks import run_items

__all__ = ["ItemError", "add", "fail_on"]  # shared worker helpers, re-exported for the map tests


def inc(x: int) -> int:
    """x + 1."""
    return x + 1


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
    """A submit_chunk adapter over an executor (chunks run by run_items) recording each chunk's size."""

    def __init__(self, executor: cf.Executor) -> None:
        self.executor = executor
        self.sizes: list[int] = []
        self.futures: list[cf.Future[Any]] = []
        self.lock = threading.Lock()

    def __call__(self, fn: Callable[..., Any], chunk: list[Any]) -> cf.Future[Any]:
        fut = self.executor.submit(run_items, fn, chunk)
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


class CtrlC:
    """Presses Ctrl-C (a real SIGINT to the main thread) once the main thread waits inside a map.

    ``start()`` it, then call ``next()`` on the map in the main thread; ``sent_at`` holds the
    monotonic time the signal was sent.
    """

    def __init__(self) -> None:
        import signal
        import sys

        self._signal, self._sys = signal, sys
        self.main = threading.main_thread().ident
        assert self.main == threading.get_ident(), "CtrlC must be created on the main thread"
        self.sent = threading.Event()
        self.sent_at: list[float] = []
        self.thread = threading.Thread(target=self._run, name="ctrl-c")

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        # wait (bounded) until the main thread is blocked inside the map's wait, then press Ctrl-C
        for _ in range(1000):
            frame = self._sys._current_frames().get(self.main or 0)
            names = set()
            while frame is not None:
                names.add(frame.f_code.co_name)
                frame = frame.f_back
            if "_wait" in names and "wait" in names:
                self.sent_at.append(time.monotonic())
                self._signal.pthread_kill(self.main or 0, self._signal.SIGINT)
                self.sent.set()
                return
            if self.sent.wait(0.01):
                return

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)
        self.sent.set()

    def interrupt(self, it: Iterator[Any], timeout: float) -> float:
        """Press Ctrl-C while ``next(it)`` waits; return the seconds from the signal to the KeyboardInterrupt."""
        self.start()
        try:
            next(it)
        except KeyboardInterrupt:
            returned_at = time.monotonic()
        else:
            raise AssertionError("next() returned instead of raising KeyboardInterrupt")
        finally:
            self.join(timeout)
        assert self.sent_at, "Ctrl-C was never sent"
        return returned_at - self.sent_at[0]
