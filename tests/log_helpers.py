"""Worker-side functions of tests/test_logs.py (importable by name in every worker), and a parent-side handler."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import executor_helpers as h


def warn(name: str, text: str, arg: object) -> int:
    """Log ``text % arg`` at WARNING on the logger ``name``; return this worker's pid."""
    logging.getLogger(name).warning(text, arg)
    return os.getpid()


class _Counted:
    """An argument that counts how often it is formatted (in this process)."""

    formatted = 0

    def __str__(self) -> str:
        _Counted.formatted += 1
        return "counted"


def log_below_level(name: str) -> tuple[bool, int, int]:
    """Log at INFO and DEBUG on ``name``; return (INFO enabled here, the effective level here, formatting count)."""
    logger = logging.getLogger(name)
    _Counted.formatted = 0
    logger.info("quiet %s", _Counted())
    logger.debug("quieter %s", _Counted())
    return logger.isEnabledFor(logging.INFO), logger.getEffectiveLevel(), _Counted.formatted


def _deep_failure(text: str) -> None:
    raise ValueError(text)


def log_exception(name: str) -> None:
    """Log an exception raised by :func:`_deep_failure`, and a record with this call stack."""
    logger = logging.getLogger(name)
    try:
        _deep_failure("bad value")
    except ValueError:
        logger.exception("it failed")
    logger.warning("where am I", stack_info=True)


def log_then_crash(name: str, how: str) -> None:
    """Log on ``name``, then die at once (``how``: "exit" or "segfault")."""
    logging.getLogger(name).error("last words of %d", os.getpid())
    if how == "exit":
        os._exit(3)
    h.segfault()


def log_from_thread(name: str) -> str:
    """Log from a thread of this task; return that thread's name."""
    thread = threading.Thread(target=logging.getLogger(name).warning, args=("from a thread",), name="task-helper")
    thread.start()
    thread.join(h.TIMEOUT)
    return thread.name


def handlers_here(name: str) -> tuple[list[str], int, bool]:
    """The root logger's handler types, how many handlers ``name`` has and whether it propagates, in this worker."""
    logger = logging.getLogger(name)
    return [type(x).__name__ for x in logging.root.handlers], len(logger.handlers), logger.propagate


def log_in_initializer() -> None:
    """A pool initializer that logs (no task runs yet)."""
    logging.getLogger("fk.test.init").warning("initializing")


class Unpicklable:
    """An object that refuses to be pickled, with a readable repr."""

    def __reduce__(self) -> Any:
        raise TypeError("not today")

    def __repr__(self) -> str:
        return "<Unpicklable>"


def log_with_extra(name: str) -> None:
    """Log a record with an attribute that pickles and one that does not."""
    logging.getLogger(name).warning("extra", extra={"user_id": 7, "conn": Unpicklable()})


def log_when_stopped(name: str) -> None:
    """Run until stopped (at most a minute); log from the cleanup that runs after the stop.

    It waits in short sleeps, not in one blocking call such as ``h.block()``: a stop signal that lands
    just before a C-level wait begins is only seen when that wait ends (the soft stop then misses, and
    the worker is killed after the grace, with no cleanup).
    """
    h._started.release()  # pyright: ignore[reportPrivateUsage] - the kit's shared semaphore
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            time.sleep(0.005)
    finally:
        logging.getLogger(name).warning("cleaning up")


class Records(logging.Handler):
    """A parent-side handler that keeps what it handles."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []
        self.changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.changed:
            self.records.append(record)
            self.changed.notify_all()

    def wait_for(self, count: int) -> list[logging.LogRecord]:
        """The records, once there are ``count`` of them (at most :data:`executor_helpers.TIMEOUT` seconds)."""
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.records) >= count, h.TIMEOUT), self.records
            return list(self.records)

    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.records]


class Raising(logging.Handler):
    """A parent-side handler whose emit raises ``error`` (outside logging's own try, as a careless handler does)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(logging.NOTSET)
        self.error = error

    def handle(self, record: logging.LogRecord) -> bool:
        raise self.error

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - handle() raises first
        raise self.error
