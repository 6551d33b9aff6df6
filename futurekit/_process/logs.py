"""Worker logs in the parent: log records emitted in ``fk.processes()`` workers, handled by the parent's loggers.

Parent, at each worker's start: :func:`parent_config` takes the level of the
root logger and of every logger with a level of its own, and
``logging.disable``'s level; the worker gets them as an argument of
:func:`futurekit._process.worker.serve`.

Worker: :func:`install` sets those levels (so a record the parent would drop is
never even created there: ``Logger.isEnabledFor`` filters it first), removes
the handlers it finds on its loggers (inherited under "fork", or added while
importing the main module under "spawn"; each record is written once, by the
parent) and makes them propagate, and puts one :class:`Forwarder` on the root
logger. The forwarder sends each record on the worker's result pipe, as a
:data:`futurekit._process.wire.LOG` message, synchronously, from whichever
thread emitted it: the bytes are in the pipe before the next line of the task
runs, so a record logged just before a crash still arrives. A lock orders those
sends with the main loop's (:class:`LockedPipe`).

On the wire a record is its ``__dict__`` with the message formatted
(``getMessage()``, then ``args=None``: arguments may not pickle) and its
exception captured by :func:`futurekit._process.exceptions.capture`, so the
parent's formatters print the worker's real frames.

Parent, on the reader thread: :func:`handle` rebuilds the record, sets
``record.futurekit_task`` (the running task's description, or None between
tasks) and calls ``logging.getLogger(record.name).handle(record)``. Nothing a
handler raises escapes into the reader thread: it is reported on stderr as
``logging`` reports handler errors (``--- Logging error ---``, if
``logging.raiseExceptions``).
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import sys
import threading
import traceback
from typing import Any, Final

from . import exceptions, wire

#: What the parent tells each worker: ``(logging.disable level, {logger name ("" = root): level})``.
Config = tuple[int, dict[str, int]]

#: The attribute that names the task running when the record was emitted (None between tasks).
TASK_ATTRIBUTE: Final = "futurekit_task"

_LOG_HEADER_PACK: Final = wire.HEADER.pack
_STANDARD: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
_BLOCKABLE: Final = getattr(signal, "pthread_sigmask", None) is not None


def parent_config() -> Config:
    """The parent's levels, for a worker that starts now: root's, and those set explicitly on named loggers.

    Loggers without a level of their own are left out: in the worker they
    inherit from the same ancestors, so their effective level is the parent's.
    """
    levels = {"": logging.root.level}
    for name, logger in dict(logging.root.manager.loggerDict).items():  # a copy: other threads may add loggers
        if isinstance(logger, logging.Logger) and logger.level:
            levels[name] = logger.level
    return logging.root.manager.disable, levels


class LockedPipe:
    """A worker's result pipe shared by its main loop and its forwarder: one whole message at a time."""

    __slots__ = ("conn", "lock")

    def __init__(self, conn: Any, lock: threading.Lock) -> None:
        self.conn = conn
        self.lock = lock

    def send_bytes(self, data: bytes) -> None:
        with self.lock:
            self.conn.send_bytes(data)


class Forwarder(logging.Handler):
    """The worker's handler on its root logger: sends each record to the parent (see the module docstring).

    ``task`` is read for the id of the running task (its ``running``
    attribute; 0 between tasks). In the main thread the sending is shielded
    from ``stop_signal``: a task stopped while it logs must not leave half a
    message in the pipe. In a process forked from the worker (by a task) it
    stands down: that process has no pipe of its own.
    """

    def __init__(self, conn: Any, lock: threading.Lock, task: Any, stop_signal: int | None) -> None:
        super().__init__()
        self.conn = conn
        self.send_lock = lock  # shared with the main loop's LockedPipe; not an RLock: no send starts inside another
        self.task = task
        self.main = threading.main_thread().ident
        self.mask = {stop_signal} if stop_signal is not None and _BLOCKABLE else None
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self.send_lock = threading.Lock()
        self.conn = None

    def handle(self, record: logging.LogRecord) -> bool:
        rv: Any = self.filter(record)
        if not rv:
            return False
        if isinstance(rv, logging.LogRecord):
            record = rv
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        conn = self.conn
        if conn is None:
            return
        try:
            data = _LOG_HEADER_PACK(wire.LOG, self.task.running, 0.0) + encode(record)
            if self.mask is not None and threading.get_ident() == self.main:
                old = signal.pthread_sigmask(signal.SIG_BLOCK, self.mask)
                try:
                    with self.send_lock:
                        conn.send_bytes(data)
                finally:
                    signal.pthread_sigmask(signal.SIG_SETMASK, old)
            else:
                with self.send_lock:
                    conn.send_bytes(data)
        except Exception:
            self.handleError(record)


def install(results: Any, config: Config, task: Any, stop_signal: int | None) -> LockedPipe:
    """In a worker: take the parent's levels, forward every record; returns the pipe the main loop must send on.

    Args:
        results: The worker's result pipe (a ``Connection``).
        config: :func:`parent_config` of the parent.
        task: An object whose ``running`` attribute is the running task's id (0: none).
        stop_signal: The signal that stops a task (its sends are shielded from it), or None.
    """
    disable, levels = config
    root = logging.root
    loggers: list[logging.Logger] = [root]
    loggers += [lg for lg in dict(root.manager.loggerDict).values() if isinstance(lg, logging.Logger)]
    for logger in loggers:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        if logger is not root:
            logger.propagate = True  # the parent's own loggers decide, in handle()
    for name, level in levels.items():
        (logging.getLogger(name) if name else root).setLevel(level)
    logging.disable(disable)
    lock = threading.Lock()
    forwarder = Forwarder(results, lock, task, stop_signal)
    root.addHandler(forwarder)
    return LockedPipe(results, lock)


def encode(record: logging.LogRecord) -> bytes:
    """A record as bytes: its attributes, the message formatted, the exception captured (see the module docstring)."""
    state = record.__dict__.copy()
    state["msg"] = record.getMessage()
    state["args"] = None
    state.pop("message", None)
    captured: bytes | None = None
    exc_info = state.get("exc_info")
    if exc_info:
        state["exc_info"] = None
        if exc_info[1] is not None:
            try:
                captured = exceptions.capture(exc_info[1])
                state["exc_text"] = None  # the parent formats the rebuilt exception, with the worker's frames
            except Exception:
                state["exc_text"] = state.get("exc_text") or logging.Formatter().formatException(exc_info)
    try:
        return pickle.dumps((state, captured), wire.PROTOCOL)
    except Exception:
        pass
    for key, value in state.items():  # an attribute of the user's (extra=) that does not pickle: its text
        if key not in _STANDARD:
            try:
                pickle.dumps(value, wire.PROTOCOL)
            except Exception:
                state[key] = _text(value)
    return pickle.dumps((state, captured), wire.PROTOCOL)


def _text(value: object) -> str:
    """``repr(value)``, or a placeholder when its ``__repr__`` fails."""
    try:
        return repr(value)
    except Exception as err:
        return f"<repr() failed: {type(err).__name__}>"


def decode(body: bytes | memoryview, task: str | None) -> logging.LogRecord:
    """The record :func:`encode` made, with ``futurekit_task`` set and its exception rebuilt."""
    state, captured = pickle.loads(body)
    record: logging.LogRecord = logging.LogRecord.__new__(logging.LogRecord)
    record.__dict__.update(state)
    if captured is not None:
        exc = exceptions.rebuild(captured)
        record.exc_info = (type(exc), exc, exc.__traceback__)
    setattr(record, TASK_ATTRIBUTE, task)
    return record


def handle(body: bytes | memoryview, task: str | None, pid: int) -> None:
    """In the parent (the pool's reader thread): hand a forwarded record to the logger of its name; never raises."""
    record: logging.LogRecord | None = None
    try:
        record = decode(body, task)
        logging.getLogger(record.name).handle(record)
    except BaseException:
        _report(record, pid)


def _report(record: logging.LogRecord | None, pid: int) -> None:
    """Report the error being handled as ``logging.Handler.handleError`` would (on stderr, if raiseExceptions)."""
    if not (logging.raiseExceptions and sys.stderr):
        return
    try:
        sys.stderr.write("--- Logging error ---\n")
        traceback.print_exc(file=sys.stderr)
        if record is None:
            sys.stderr.write(f"A log record forwarded from worker process {pid} could not be decoded\n")
        else:
            sys.stderr.write(
                f"Logged in worker process {pid}, file {record.pathname}, line {record.lineno}, "
                f"forwarded to the logger {record.name!r}\nMessage: {record.msg!r}\n"
            )
    except BaseException:  # stderr closed or broken: nothing more to do
        pass
