"""Shared helpers and fixtures for the combinator tests (imported by test modules).

``no_logged_errors`` is the important one: the stdlib *logs* an exception raised
by a done-callback instead of propagating it, so a test that only looks at
results could miss an ``InvalidStateError`` or a swallowed user exception. The
fixture captures every record at WARNING or above from the
``concurrent.futures`` and ``futurekit`` loggers and fails the test if any
appeared.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

import pytest

WAIT = 10.0  # seconds: every wait in these tests is bounded by this


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []
        self._lock_records = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock_records:
            self.records.append(record)


@pytest.fixture
def no_logged_errors() -> Iterator[list[logging.LogRecord]]:
    """Fail the test if concurrent.futures or futurekit logged a warning or error."""
    handler = _Collector()
    loggers = [logging.getLogger("concurrent.futures"), logging.getLogger("futurekit")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    if handler.records:
        text = "\n".join(f"{r.name}: {r.getMessage()} {r.exc_info!r}" for r in handler.records)
        pytest.fail(f"errors were logged:\n{text}")


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    """A small thread pool, shut down (waiting) after the test."""
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="combinator-test") as executor:
        yield executor


def pending() -> Future[Any]:
    """A fresh pending future (typed Any for convenience in tests)."""
    return Future()


def settle(fut: Future[Any], how: str, value: object = None) -> None:
    """Settle ``fut`` as ``how`` in ("value", "error", "cancel")."""
    if how == "value":
        fut.set_result(value)
    elif how == "error":
        assert isinstance(value, BaseException)
        fut.set_exception(value)
    else:
        assert fut.cancel()


class CountingExecutor(Executor):
    """A minimal executor stand-in that runs submitted work on a real pool and counts submits."""

    def __init__(self, inner: ThreadPoolExecutor) -> None:
        self.inner = inner
        self.submits = 0
        self.threads: list[str] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submits += 1

        def run() -> Any:
            self.threads.append(threading.current_thread().name)
            return fn(*args, **kwargs)

        return self.inner.submit(run)


class OddFuture:
    """A FutureLike that is not a concurrent.futures.Future (delegates to one).

    Its callbacks receive the OddFuture itself, as the protocol promises.
    """

    def __init__(self) -> None:
        self._inner: Future[Any] = Future()

    def result(self, timeout: float | None = None) -> Any:
        return self._inner.result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        return self._inner.exception(timeout)

    def done(self) -> bool:
        return self._inner.done()

    def cancelled(self) -> bool:
        return self._inner.cancelled()

    def cancel(self) -> bool:
        return self._inner.cancel()

    def add_done_callback(self, fn: Callable[[Any], object], /) -> None:
        self._inner.add_done_callback(lambda _: fn(self))

    def set_result(self, value: object) -> None:
        self._inner.set_result(value)

    def set_exception(self, exc: BaseException) -> None:
        self._inner.set_exception(exc)
