"""Exception types raised by futurekit. Each subclasses the stdlib error it refines."""

from __future__ import annotations

import pickle
import signal as _signal
from concurrent.futures.process import BrokenProcessPool


class RemoteError(Exception):
    """A child's exception that could not be rebuilt as its own type.

    Raised in the caller when an exception raised in a worker process could not
    be pickled there (its state holds a lock, say), or could not be rebuilt
    here either by its own pickling or from its class and state. (A custom
    ``__init__`` with required arguments is no obstacle: such an exception is
    rebuilt as itself.) It keeps what is knowable: the original type's
    qualified name, its message, and, as its ``__traceback__``, the remote
    frames.

    Attributes:
        type_name: Qualified name of the original exception type, e.g.
            ``"mymodule.ParseError"``.
        message: ``str()`` of the original exception.
        reason: Why the original could not be rebuilt.

    Example:
        >>> import futurekit as fk
        >>> err = fk.RemoteError("app.ParseError", "bad line 3", reason="not picklable")
        >>> print(err)
        app.ParseError: bad line 3 (not picklable)
    """

    def __init__(self, type_name: str, message: str, *, reason: str = "") -> None:
        super().__init__(type_name, message, reason)
        self.type_name = type_name
        self.message = message
        self.reason = reason

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_remote_error, (self.type_name, self.message, self.reason))

    def __str__(self) -> str:
        text = f"{self.type_name}: {self.message}" if self.message else self.type_name
        return f"{text} ({self.reason})" if self.reason else text


def _rebuild_remote_error(type_name: str, message: str, reason: str) -> RemoteError:
    return RemoteError(type_name, message, reason=reason)


class WorkerCrashedError(BrokenProcessPool):
    """A worker process died while running a task.

    Subclasses :class:`concurrent.futures.process.BrokenProcessPool`, so
    existing ``except BrokenProcessPool`` clauses keep working, but says which
    task was running and how the worker died.

    Attributes:
        task: A short description of the task (function and truncated
            arguments), or None when it is not known.
        exitcode: The worker's exit code (negative: killed by that signal), or
            None when the platform did not tell.

    Example:
        >>> import futurekit as fk
        >>> err = fk.WorkerCrashedError("worker died", task="work(1)", exitcode=-9)
        >>> err.signal_name
        'SIGKILL'
        >>> print(err)
        worker died while running work(1): killed by SIGKILL (exit code -9)
    """

    def __init__(self, message: str, *, task: str | None = None, exitcode: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.task = task
        self.exitcode = exitcode

    @property
    def signal_name(self) -> str | None:
        """Name of the signal that killed the worker, if one did."""
        if self.exitcode is None or self.exitcode >= 0:
            return None
        try:
            return _signal.Signals(-self.exitcode).name
        except ValueError:
            return f"signal {-self.exitcode}"

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_crash, (self.message, self.task, self.exitcode))

    def __str__(self) -> str:
        text = self.message
        if self.task is not None:
            text += f" while running {self.task}"
        if self.signal_name is not None:
            text += f": killed by {self.signal_name} (exit code {self.exitcode})"
        elif self.exitcode is not None:
            text += f": exit code {self.exitcode}"
        return text


def _rebuild_crash(message: str, task: str | None, exitcode: int | None) -> WorkerCrashedError:
    return WorkerCrashedError(message, task=task, exitcode=exitcode)


class SerializationError(pickle.PicklingError):
    """A task's function, arguments or result could not cross the process boundary.

    Raised by ``submit`` at once when the function or its arguments cannot be
    pickled (a lambda, a local function, an open file), and by
    ``future.result()`` when the worker's return value could not be pickled.
    The message names the function and the offending type, and says what to do
    instead. Subclasses :class:`pickle.PicklingError`.

    Example:
        >>> import futurekit as fk
        >>> isinstance(fk.SerializationError("x"), __import__("pickle").PicklingError)
        True
    """
