"""Child-side task runners for process pools, and the bookkeeping that attributes crashes.

Everything here runs inside worker processes and is referenced by the parent
only by name (module-level functions pickle by reference).

Crash attribution: every worker claims one row of a shared integer table when
it starts (see :mod:`futurekit._crash` for the layout) and writes the id of each
task it starts into a small ring in that row *before* running it. When a worker
dies, the parent reads the table once every worker of the broken pool has been
reaped, so it knows exactly which tasks were started, and on which worker.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
from collections.abc import Callable
from typing import Any

from . import _calls, _map, _remote

# Layout of the shared table (kept in sync with futurekit._crash):
#   [0]            number of workers whose initializer raised
#   [1]            number of workers that found no free row (untracked)
#   then rows of   [pid, started_count, ring[0], ..., ring[ring_size - 1]]
HEADER = 2
ROW_HEADER = 2

_table: Any = None
_row_base = -1
_ring_size = 0


def init_worker(
    table: Any,
    lock: Any,
    rows: int,
    ring_size: int,
    initializer: Callable[..., object] | None,
    initargs: tuple[Any, ...],
) -> None:
    """Initializer of every supervised worker: claim a row, watch the parent, run the user's initializer."""
    global _table, _row_base, _ring_size
    _watch_parent()
    _table, _ring_size = table, ring_size
    width = ROW_HEADER + ring_size
    pid = os.getpid()
    with lock:
        for row in range(rows):
            base = HEADER + row * width
            owner = table[base]
            if owner == 0 or (owner != pid and not _alive(owner)):
                table[base] = pid
                table[base + 1] = 0
                _row_base = base
                break
        else:
            table[1] += 1
    if initializer is not None:
        try:
            initializer(*initargs)
        except BaseException:
            with lock:
                table[0] += 1
            raise  # the stdlib logs it and the worker exits: the parent sees a broken pool


def _alive(pid: int) -> bool:
    """Whether a process with this pid exists (POSIX only; elsewhere rows are never reclaimed)."""
    if sys.platform == "win32":  # pragma: no cover - os.kill(pid, 0) would terminate it on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # pragma: no cover - exists but not ours
        return True
    return True


def _watch_parent() -> None:
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


def _record(task_id: int) -> None:
    """Note in this worker's row that ``task_id`` starts now."""
    base = _row_base
    if base >= 0:
        table = _table
        count = table[base + 1]
        table[base + ROW_HEADER + count % _ring_size] = task_id
        table[base + 1] = count + 1


def run_task(task_id: int, payload: bytes) -> tuple[bool, bytes]:
    """Run one call serialised by ``_calls.dump_call``; never raises (see ``_calls.run_call``)."""
    _record(task_id)
    return _calls.run_call(payload)


def run_chunk(task_id: int, payload: bytes) -> tuple[bool, bytes]:
    """Run a map() chunk (futurekit._map.run_chunk); never raises.

    The payload is ``dump_call(fn, tuple_of_items, {})``. Returns ``(True, pickle of
    (values, captured_error_or_None, seconds))``, or ``(False, captured error)`` when the chunk
    itself could not be run.
    """
    _record(task_id)
    try:
        fn, items, _kwargs = pickle.loads(payload)
    except BaseException as exc:
        return False, _calls.payload_error(f"a map() chunk of {_calls.guess_name(payload)}", exc)
    values, failure, seconds = _map.run_chunk(fn, items)
    captured = None
    if failure is not None:
        tb = failure.__traceback__
        if tb is not None and tb.tb_frame.f_code is _MAP_RUN_CHUNK_CODE:
            failure.__traceback__ = tb.tb_next  # start at the user's function
        del tb
        captured = _remote.capture(failure)
        del failure
    try:
        return True, pickle.dumps((values, captured, seconds), _remote.PROTOCOL)
    except BaseException:
        pass
    # Some value cannot be pickled: keep the values before it, and fail that item.
    user_fn = fn.fn if isinstance(fn, _map.Star) else fn
    for index, value in enumerate(values):
        ok, data = _calls.dump_result(user_fn, value)
        if not ok:
            try:
                return True, pickle.dumps((values[:index], data, seconds), _remote.PROTOCOL)
            except BaseException as exc:  # pragma: no cover - values[:index] all pickled one by one
                return False, _remote.capture(exc)
    # Each value pickles alone but not together (e.g. a __reduce__ with side effects).
    return False, _remote.capture(_calls.unpicklable_result_error(user_fn, values))


_MAP_RUN_CHUNK_CODE = _map.run_chunk.__code__
