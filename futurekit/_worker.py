"""Child-side code of process pools: the task runners and futurekit's own pool worker loop.

Everything here runs inside worker processes and is referenced by the parent
only by name (module-level functions pickle by reference). The runners never
raise: a task's outcome always travels as ``(ok, bytes)``.
"""

from __future__ import annotations

import os
import pickle
import threading
from collections.abc import Callable
from struct import Struct
from time import monotonic
from typing import Any

from . import _calls, _chunks, _remote


def watch_parent() -> None:
    """Exit this worker as soon as its parent dies, even if the parent was SIGKILLed.

    A worker blocked on the call queue never notices a dead parent by itself.
    The parent's sentinel reports its death under "spawn" and "forkserver";
    under "fork" sibling workers inherit each other's copy of it, so the thread
    also checks once a second whether the process that forked this one is gone.
    """
    import multiprocessing
    import multiprocessing.connection

    parent = multiprocessing.parent_process()
    if parent is None:  # pragma: no cover - always set in a pool worker
        return
    sentinel = parent.sentinel
    ppid = os.getppid()

    def watch() -> None:
        try:
            while not multiprocessing.connection.wait([sentinel], timeout=1.0):
                if os.getppid() != ppid:
                    break
        except BaseException:  # pragma: no cover - interpreter shutting down
            return
        os._exit(1)

    threading.Thread(target=watch, name="futurekit-parent-watch", daemon=True).start()


def run_task(payload: bytes) -> tuple[bool, bytes]:
    """Run one call serialised by ``_calls.dump_call``; never raises (see ``_calls.run_call``)."""
    return _calls.run_call(payload)


def run_chunk(payload: bytes) -> tuple[bool, bytes]:
    """Run a map() chunk (futurekit._chunks.run_chunk); never raises.

    The payload is ``dump_call(fn, tuple_of_items, {})``. Returns ``(True, pickle of
    (values, captured_error_or_None, seconds))``, or ``(False, captured error)`` when the chunk
    itself could not be run.
    """
    try:
        fn, items, _kwargs = pickle.loads(payload)
    except BaseException as exc:
        return False, _calls.payload_error(f"a map() chunk of {_calls.guess_name(payload)}", exc)
    values, failure, seconds, _size = _chunks.run_chunk(fn, items)
    captured = None
    if failure is not None:
        tb = failure.__traceback__
        if tb is not None and tb.tb_frame.f_code is _MAP_RUN_CHUNK_CODE:
            failure.__traceback__ = tb.tb_next  # start at the user's function
        del tb
        captured = _remote.capture(failure)
        del failure
    try:
        return True, pickle.dumps((_chunks.scalar_batch(values), captured, seconds), _remote.PROTOCOL)
    except BaseException:
        pass
    # Some value cannot be pickled: keep the values before it, and fail that item.
    user_fn = fn.fn if isinstance(fn, _chunks.Star) else fn
    for index, value in enumerate(values):
        ok, data = _calls.dump_result(user_fn, value)
        if not ok:
            try:
                return True, pickle.dumps((values[:index], data, seconds), _remote.PROTOCOL)
            except BaseException as exc:  # pragma: no cover - values[:index] all pickled one by one
                return False, _remote.capture(exc)
    # Each value pickles alone but not together (e.g. a __reduce__ with side effects).
    return False, _remote.capture(_calls.unpicklable_result_error(user_fn, values))


_MAP_RUN_CHUNK_CODE = _chunks.run_chunk.__code__


# --- futurekit's own pool (futurekit._pool): the worker's main loop ------------------------------

#: Header of every message between the pool (futurekit._pool) and a worker: a task id, a small integer
#: (parent -> worker: the index of the runner in RUNNERS; worker -> parent: 1 if the runner
#: returned ok) and the seconds the task ran (worker -> parent). The payload follows.
HEADER = Struct("<qBd")
#: Task ids of the worker's own messages: its initializer ran / raised (payload: the captured error).
READY = -1
INIT_FAILED = -2
RUNNERS: tuple[Callable[[bytes], tuple[bool, bytes]], ...] = (run_task, run_chunk)


def serve(
    tasks: Any,
    results: Any,
    initializer: Callable[..., object] | None,
    initargs: tuple[Any, ...],
    max_tasks: int | None,
) -> None:
    """A pool worker's main loop: run each task it is handed, in order, and send back its outcome.

    An empty message, the parent closing its end, or ``max_tasks`` tasks run
    make it return (the process then exits with code 0).
    """
    watch_parent()
    if initializer is not None:
        try:
            initializer(*initargs)
        except BaseException as exc:
            import logging

            logging.getLogger("concurrent.futures").critical("Exception in initializer:", exc_info=True)
            try:
                results.send_bytes(HEADER.pack(INIT_FAILED, 0, 0.0) + _remote.capture(exc))
            except BaseException:  # pragma: no cover - the parent is gone
                pass
            return
    results.send_bytes(HEADER.pack(READY, 1, 0.0))
    header_size = HEADER.size
    done = 0
    while max_tasks is None or done < max_tasks:
        try:
            message = tasks.recv_bytes()
        except (EOFError, OSError):
            return
        if not message:
            return
        task_id, runner, _ = HEADER.unpack_from(message)
        start = monotonic()
        ok, data = RUNNERS[runner](message[header_size:])
        del message
        results.send_bytes(HEADER.pack(task_id, ok, monotonic() - start) + data)
        del data
        done += 1
