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
    pickled, even by value (a lock, a socket, a generator, or a function that
    captures one), and by
    ``future.result()`` when the worker's return value could not be pickled.
    The message names the function and the offending type, and says what to do
    instead. Subclasses :class:`pickle.PicklingError`.

    Example:
        >>> import futurekit as fk
        >>> isinstance(fk.SerializationError("x"), __import__("pickle").PicklingError)
        True
    """


class StopRequested(BaseException):
    """Raised *inside* a task running on ``fk.processes()`` when its caller stops it.

    A task is stopped when its future is cancelled while it runs (directly, or
    by ``timeout``, ``race``, ``first_success``, a failing ``gather``, a closed
    ``map`` iterator, a ``with`` block left by ``KeyboardInterrupt``), or when
    it runs past the pool's ``task_timeout``. It derives from
    :class:`BaseException`, as :class:`KeyboardInterrupt` does, so that
    ``except Exception`` in the task does not swallow it: its ``finally``
    blocks and ``with`` statements run, then the worker takes its next task.
    A task that catches it and goes on anyway (or that sits in C code that
    never returns to Python) is killed after the pool's ``stop_grace``, and
    its worker is replaced. The caller never sees this exception: the future
    is already cancelled (or failed with :class:`TaskTimeoutError`).

    Attributes:
        task_id: The pool's id of the task that was stopped.

    Example:
        >>> import futurekit as fk
        >>> issubclass(fk.StopRequested, Exception), issubclass(fk.StopRequested, BaseException)
        (False, True)
    """

    def __init__(self, message: str = "futurekit: the task was stopped by its caller", task_id: int = 0) -> None:
        super().__init__(message)
        self.task_id = task_id

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.task_id))


class TaskTimeoutError(TimeoutError):
    """A task ran longer than its pool's ``task_timeout`` and was stopped.

    A subclass of the builtin :class:`TimeoutError` (which is also
    ``concurrent.futures.TimeoutError``), so existing ``except TimeoutError``
    clauses keep working; it says which task and how long it ran.

    Attributes:
        task: A short description of the task (function and truncated arguments).
        seconds: How long the task had run when it was stopped.
        limit: The pool's ``task_timeout``.

    Example:
        >>> import futurekit as fk
        >>> err = fk.TaskTimeoutError(task="work(1)", seconds=2.01, limit=2.0)
        >>> print(err)
        work(1) ran 2.01 s, longer than task_timeout=2 s, and was stopped
        >>> isinstance(err, TimeoutError)
        True
    """

    def __init__(self, *, task: str, seconds: float, limit: float) -> None:
        super().__init__(f"{task} ran {seconds:.2f} s, longer than task_timeout={limit:g} s, and was stopped")
        self.task = task
        self.seconds = seconds
        self.limit = limit

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_task_timeout, (self.task, self.seconds, self.limit))


def _rebuild_task_timeout(task: str, seconds: float, limit: float) -> TaskTimeoutError:
    return TaskTimeoutError(task=task, seconds=seconds, limit=limit)


class DeadlockError(RuntimeError):
    """Waiting here could never end: raised instead of hanging.

    Raised by ``result()`` or ``exception()`` of a pending future of
    ``fk.processes()`` when called on that pool's own result thread
    ("futurekit-pool-reader"), i.e. from a done-callback or from a ``then``/
    ``chain``/``recover`` function run inline there: that thread is the one
    that would settle the future, so the wait could never end. Pass
    ``executor=`` to ``then``/``chain``/``recover`` to run the function
    elsewhere, or chain on the future instead of waiting for it.

    Example:
        >>> import futurekit as fk
        >>> issubclass(fk.DeadlockError, RuntimeError)
        True
    """
