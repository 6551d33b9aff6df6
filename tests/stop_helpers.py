"""Worker-side functions for tests/test_stopping.py (module level: worker processes import them by reference).

Each long task leaves evidence in files: ``<path>.started`` (holding the
worker's pid) when it starts, one byte appended to ``<path>`` per loop, and
``<path>.fin`` from its ``finally`` block. Every loop is bounded (60 s), so a
stop that fails shows up as a test failure, never as a hang.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

LIMIT = 60.0  # no task here runs longer, whatever happens


def _started(path: str) -> None:
    """Leave ``path.started`` holding this pid, whole or not at all (a test acts as soon as it sees it).

    Callers write it inside their ``try``: a stop sent once the file exists lands where the task handles it.
    """
    Path(path + ".started.tmp").write_text(str(os.getpid()))
    os.replace(path + ".started.tmp", path + ".started")


def spin(path: str) -> str:
    """Append to ``path`` until stopped (or LIMIT); the finally block leaves ``path.fin``."""
    try:
        _started(path)
        end = time.monotonic() + LIMIT
        while time.monotonic() < end:
            with open(path, "a") as out:
                out.write("x")
            time.sleep(0.005)
        return "ran to the end"
    finally:
        Path(path + ".fin").write_text("finally ran")


def spin_or_return(path: str) -> str:
    """``spin(path)``, except for a path ending in "quick", which returns at once (for map tests)."""
    if path.endswith("quick"):
        return path
    return spin(path)


def stubborn(path: str) -> str:
    """Ignore every stop: catch StopRequested (any BaseException) and go on; log each one caught to ``path``."""
    end = time.monotonic() + LIMIT
    first = True
    while time.monotonic() < end:
        try:
            if first:
                first = False
                _started(path)
            while time.monotonic() < end:
                time.sleep(0.005)
        except BaseException as exc:
            with open(path, "a") as out:
                out.write(type(exc).__name__ + "\n")
    return "ran to the end"


def mark(path: str) -> str:
    """Leave ``path`` (proof that this task ran) and return it."""
    Path(path).write_text("ran")
    return path


def pid() -> int:
    return os.getpid()


def tagged(i: int) -> tuple[int, int]:
    """About half a millisecond of work, then ``(i, pid)``."""
    end = time.perf_counter() + 0.0005
    while time.perf_counter() < end:
        pass
    return i, os.getpid()


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def fail(message: str) -> None:
    raise ValueError(message)


def ctrl_c_main(tmp: str, mode: str) -> None:
    """Body of the Ctrl-C scripts run by tests/test_stopping.py in a fresh interpreter.

    Two workers run long tasks (``spin``, or ``stubborn`` for mode "stubborn"),
    four more wait in the queue; prints "ready <pids>" once both started, then
    blocks consuming the map until the test sends SIGINT. After the ``with``
    block it prints how many workers are still alive.
    """
    import futurekit as fk

    fn = stubborn if mode == "stubborn" else spin
    grace = 30.0 if mode == "stubborn" else 0.5
    paths = [os.path.join(tmp, f"task{i}") for i in range(6)]
    pids: list[int] = []
    try:
        with fk.processes(max_workers=2, stop_grace=grace) as ex:
            it = ex.map(fn, paths, chunksize=1)
            deadline = time.monotonic() + LIMIT
            while not all(os.path.exists(p + ".started") for p in paths[:2]) and time.monotonic() < deadline:
                time.sleep(0.01)
            pids = [int(Path(p + ".started").read_text()) for p in paths[:2]]
            print("ready", *pids, flush=True)
            for _ in it:
                pass
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    alive = 0
    for p in pids:
        try:
            os.kill(p, 0)
        except ProcessLookupError:
            continue
        alive += 1
    print("alive", alive, flush=True)


def nap_pid(seconds: float) -> int:
    """Sleep, then return this worker's pid (to start several workers at once)."""
    time.sleep(seconds)
    return os.getpid()
