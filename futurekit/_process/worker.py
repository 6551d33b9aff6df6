"""The child side of every process pool: the runners, and the main loop of futurekit's own workers.

Everything here runs inside worker processes and is referenced by the parent
only by name (module-level functions pickle by reference). The runners never
raise: a task's outcome always travels as ``(ok, bytes)``, so nothing of the
user's can break a pool while being (un)pickled on either side. A foreign
pool (``fk.Executor(ProcessPoolExecutor(), ...)``) is sent ``run_call(payload)``
or ``run_chunk(payload)`` as its task; futurekit's own workers run :func:`serve`,
which reads :mod:`futurekit._process.wire` messages and calls the same runners.
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
import types
from collections.abc import Callable
from struct import Struct
from time import monotonic
from typing import Any, ClassVar

from .._errors import StopRequested
from . import chunks, exceptions, logs, mainmodule, payload, wire


def _strip_own_frames(exc: BaseException, own: frozenset[types.CodeType]) -> None:
    """Start ``exc``'s traceback at the user's code: drop the leading frames of our runners."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None and tb.tb_frame.f_code in own:
        tb = tb.tb_next
    exc.__traceback__ = tb


def _run_one(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bool, bytes]:
    """Run fn and encode the outcome (the caller catches nothing)."""
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        _strip_own_frames(exc, _OWN_FRAMES)
        return False, exceptions.capture(exc)
    return payload.dump_result(fn, result)


def run_call(data: bytes) -> tuple[bool, bytes]:
    """Run one call made by :func:`futurekit._process.payload.dump_call`; never raises.

    Args:
        data: Bytes from ``dump_call``.

    Returns:
        ``(True, pickled result)``, or ``(False, capture(exc))`` when the call
        raised, when its result cannot be pickled (a
        :class:`~futurekit.SerializationError` naming the function and the
        type) or when the payload cannot be unpickled here.

    Example:
        >>> from futurekit._process.payload import dump_call
        >>> from futurekit._process.exceptions import rebuild
        >>> run_call(dump_call(abs, (-2,), {}))[0]
        True
        >>> ok, data = run_call(dump_call(int, ("x",), {}))
        >>> ok, type(rebuild(data)).__name__
        (False, 'ValueError')

    Concurrency:
        Blocking: Runs the call in the calling thread (the worker's).
        Callbacks: None.
        Thread safety: Safe from any thread.
        Cancellation: None; it runs to completion.
    """
    try:
        fn, args, kwargs = pickle.loads(data)
    except BaseException as err:
        return False, payload.payload_error(payload.guess_name(data), err)
    return _run_one(fn, args, kwargs)


def run_chunk(data: bytes) -> tuple[bool, bytes]:
    """Run a ``map`` chunk (:func:`futurekit._process.chunks.run_items`); never raises.

    Args:
        data: ``dump_call(fn, tuple_of_items, {})``.

    Returns:
        ``(True, pickle of (values, captured_error_or_None, seconds))``, or
        ``(False, captured error)`` when the chunk itself could not be run.

    Example:
        >>> import pickle
        >>> from futurekit._process.payload import dump_call
        >>> ok, data = run_chunk(dump_call(abs, (-1, -2), {}))
        >>> ok, pickle.loads(data)[:2]
        (True, ((1, 2), None))

    Concurrency:
        Blocking: Runs the items in the calling thread (the worker's).
        Callbacks: None.
        Thread safety: Safe from any thread.
        Cancellation: None; it runs to its end or first error.
    """
    try:
        fn, items, _kwargs = pickle.loads(data)
    except BaseException as exc:
        return False, payload.payload_error(f"a map() chunk of {payload.guess_name(data)}", exc)
    values, failure, seconds, _size = chunks.run_items(fn, items)
    captured = None
    if failure is not None:
        _strip_own_frames(failure, _OWN_FRAMES)
        captured = exceptions.capture(failure)
        del failure
    try:
        return True, pickle.dumps((chunks.scalar_batch(values), captured, seconds), wire.PROTOCOL)
    except BaseException:
        pass
    # Some value cannot be pickled: keep the values before it, and fail that item.
    user_fn = fn.fn if isinstance(fn, chunks.Star) else fn
    for index, value in enumerate(values):
        ok, encoded = payload.dump_result(user_fn, value)
        if not ok:
            try:
                return True, pickle.dumps((values[:index], encoded, seconds), wire.PROTOCOL)
            except BaseException as exc:  # pragma: no cover - values[:index] all pickled one by one
                return False, exceptions.capture(exc)
    # Each value pickles alone but not together (e.g. a __reduce__ with side effects).
    return False, exceptions.capture(payload.unpicklable_result_error(user_fn, values))


#: The runner of each kind of task message.
RUNNERS: dict[int, Callable[[bytes], tuple[bool, bytes]]] = {wire.CALL: run_call, wire.CHUNK: run_chunk}


class _Current:
    """What this worker's main thread runs now; shared with its control thread and its stop signal handler."""

    task = 0  # id of the task running now; 0 between tasks (and once a stop was raised in it)
    running = 0  # the same, also while it cleans up after a stop: the task its log records name
    stops: ClassVar[set[int]] = set()  # ids the parent asked to stop (running now, or handed over and not started)


#: The signal that asks the main thread to stop its task (sent by this worker's own control thread).
STOP_SIGNAL = getattr(signal, "SIGUSR1", None)


def _on_stop_signal(signum: int, frame: types.FrameType | None) -> None:
    """Raise StopRequested in the task running now, if the parent asked to stop exactly that one."""
    task = _Current.task
    if task and task in _Current.stops:
        _Current.task = 0  # raise at most once per task: its cleanup code runs undisturbed
        _Current.stops.discard(task)
        raise StopRequested(task_id=task)


def _watch(control: Any, main_thread: int) -> None:
    """The worker's control thread: exit when the parent dies; turn the parent's stop requests into signals.

    A worker blocked on its task pipe never notices a dead parent by itself.
    The parent's sentinel reports its death under "spawn" and "forkserver";
    under "fork" sibling workers inherit each other's copy of it, so the thread
    also checks once a second whether the process that forked this one is gone.
    A stop request names its task: the main thread is signalled only if it
    runs that very task, so a request that arrives after the task ended stops
    nothing (the signal handler checks again, in the main thread).
    """
    import multiprocessing
    import multiprocessing.connection

    parent = multiprocessing.parent_process()
    if parent is None:  # pragma: no cover - always set in a pool worker
        return
    sentinel = parent.sentinel
    ppid = os.getppid()
    watched: list[Any] = [sentinel, control]
    try:
        while True:
            ready = multiprocessing.connection.wait(watched, timeout=1.0)
            if sentinel in ready or os.getppid() != ppid:
                break
            if control in ready:
                try:
                    message = control.recv_bytes()
                except (EOFError, OSError):  # the parent closed it: it is shutting this worker down
                    watched.remove(control)
                    continue
                task = STOP.unpack(message)[0]
                _Current.stops.add(task)
                if _Current.task == task and STOP_SIGNAL is not None:
                    signal.pthread_kill(main_thread, STOP_SIGNAL)
    except BaseException:  # pragma: no cover - interpreter shutting down
        return
    os._exit(1)


#: A stop request on the control pipe: the id of the task to stop.
STOP = Struct("<q")


def serve(
    tasks: Any,
    results: Any,
    control: Any,
    init: payload.Deferred | None,
    max_tasks: int | None,
    main: mainmodule.MainRef | None = None,
    log_config: logs.Config | None = None,
) -> None:
    """A worker's main loop in futurekit's own pool: run each task it is handed, in order, and send back its outcome.

    An empty message, the parent closing its end, or ``max_tasks`` tasks run
    make it return (the process then exits with code 0). Ctrl-C is the
    parent's to handle: a worker ignores SIGINT (the terminal sends it to the
    whole process group), and the parent stops what it wants stopped.
    With ``main`` (where the parent's main module lives), the worker imports
    it first, as ``multiprocessing``'s spawn would, and reports a failure
    as :data:`wire.MAIN_FAILED`. With ``log_config`` (the parent's levels),
    log records then go to the parent (:func:`forward_logs_setup`).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if STOP_SIGNAL is not None:
        signal.signal(STOP_SIGNAL, _on_stop_signal)
    threading.Thread(
        target=_watch, args=(control, threading.get_ident()), name="futurekit-worker-control", daemon=True
    ).start()
    header = wire.HEADER
    if main is not None:
        try:
            mainmodule.import_main(main)
        except BaseException as exc:
            _strip_own_frames(exc, _OWN_FRAMES)
            try:
                results.send_bytes(header.pack(wire.MAIN_FAILED, 0, 0.0) + exceptions.capture(exc))
            except BaseException:  # pragma: no cover - the parent is gone
                pass
            return
    if log_config is not None:
        # After the main module: the handlers it set up at import are dropped with the inherited ones.
        results = forward_logs_setup(results, log_config)
    if init is not None:
        try:
            initializer, initargs = init.load()  # after the main module: it may name what that defines
            initializer(*initargs)
        except BaseException as exc:
            import logging

            logging.getLogger("concurrent.futures").critical("Exception in initializer:", exc_info=True)
            _strip_own_frames(exc, _OWN_FRAMES)
            try:
                results.send_bytes(header.pack(wire.INIT_FAILED, 0, 0.0) + exceptions.capture(exc))
            except BaseException:  # pragma: no cover - the parent is gone
                pass
            return
    results.send_bytes(header.pack(wire.READY, 0, 0.0))
    size = header.size
    done = 0
    current = _Current
    while max_tasks is None or done < max_tasks:
        try:
            message = tasks.recv_bytes()
        except (EOFError, OSError):
            return
        if not message:
            return
        kind, task, _ = header.unpack_from(message)
        current.running = task
        start = monotonic()
        try:
            current.task = task  # from here on a stop request for this task raises StopRequested
            if task in current.stops:  # stopped before it started: never run it
                current.task = 0
                current.stops.discard(task)
                raise StopRequested(task_id=task)
            ok, data = RUNNERS[kind](message[size:])
            current.task = 0
        except StopRequested as stop:  # raised outside the user's code (the runner catches it inside)
            current.task = 0
            ok, data = False, exceptions.capture(stop)
        del message
        current.running = 0
        results.send_bytes(header.pack(wire.VALUE if ok else wire.RAISED, task, monotonic() - start) + data)
        del data
        done += 1


def forward_logs_setup(results: Any, log_config: logs.Config) -> Any:
    """Send this worker's log records to the parent (:mod:`futurekit._process.logs`); returns the pipe to send on."""
    return logs.install(results, log_config, _Current, STOP_SIGNAL)


#: Frames of this package's own runners, left out of remote tracebacks.
_OWN_FRAMES: frozenset[types.CodeType] = frozenset({_run_one.__code__, chunks.run_items.__code__, serve.__code__})
