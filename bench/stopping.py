"""Stopping benchmark: cancel() of a running task on fk.processes(), and what the machinery costs (run as a script).

    .venv/bin/python bench/stopping.py            # full run (about 2 minutes)
    .venv/bin/python bench/stopping.py --quick    # fewer trials and rounds (about 30 s)
    .venv/bin/python bench/stopping.py --parts 1  # one part only

Part 1 - latency from ``future.cancel()`` of a RUNNING task to the next queued task *starting*, on a pool of
one worker. Each trial submits a long task A and a short task B behind it, waits until A runs (A writes a
flag file), takes the time, calls ``A.cancel()`` and waits for B, which returns the time it started and its
worker's pid. The latency is B's start minus the time taken just before ``cancel()``; the pids tell whether
the worker was replaced. Cases:

  * fk soft stop (default ``stop_grace=1.0``): A is a pure-Python loop, or A sleeps in ``time.sleep``;
    ``StopRequested`` is raised in it and the same worker runs B.
  * fk kill after the grace: A catches ``BaseException`` in a loop (ignores the stop), ``stop_grace=0.05``:
    the worker is killed and replaced; also shown minus the grace.
  * fk kill at once: ``stop_grace=0``, A a pure-Python loop.
  * pebble ``ProcessPool``: ``cancel()`` of its running task (pebble ends that worker and starts another).

The cases run round-robin (one trial of each per round), so load drift on a shared machine hits them alike;
tables show medians with the interquartile range, and per-round ratios to pebble. B's timestamp is
``time.monotonic()`` taken in the worker and compared with the parent's: Python leaves the reference point of
``time.monotonic()`` undefined (comparable only within one process in general), but on Linux it is
``CLOCK_MONOTONIC``, one clock for the whole system, so the two are comparable. Elsewhere the script falls
back to ``time.time()`` (system-wide too, but it can be stepped by clock adjustments). Target: soft stop to
next task started <= 50 ms median. ``multiprocessing.Pool`` and ``ProcessPoolExecutor`` cannot stop a
running task at all (stated, not measured).

Part 2 - cost of the stop machinery on the normal path: ``ex.submit(trivial)`` x N then wait all (us/task) and
``list(ex.map(trivial, range(M)))`` (items/s) on ``fk.processes(max_workers=2)``, the current code of this
checkout against the code before the stopping feature (commit ``7f1612c``, checked out with ``git worktree
add`` into a temporary directory under /tmp, removed at the end). Each round runs the workloads once in a
fresh subprocess importing futurekit from this checkout and once in another importing it from the old one
(``PYTHONPATH`` set to that root; the child checks where futurekit came from, in itself and in a worker),
alternating which goes first. Within a child each workload runs a few times after a warm-up and the median
counts. The table shows per-round paired ratios (time now / time before: above 1.00 means now is slower),
median and IQR. Target: not slower by more than 2% (median paired ratio <= 1.02). The machinery and the
child's workloads are in bench/_compare.py, shared with bench/byvalue.py.

Every pool uses the "forkserver" start method (futurekit's default on Linux) and is warmed up before timing.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from _compare import normal_path, parse_args, quartiles, spread, table

BEFORE_COMMIT = "7f1612c"
SOFT_TARGET_MS = 50.0
KILL_GRACE = 0.05

# On Linux time.monotonic() is CLOCK_MONOTONIC, one system-wide clock, so a worker's reading is comparable
# with the parent's. Python only promises that within one process; elsewhere use the (system-wide, but
# adjustable) wall clock.
clock: Callable[[], float] = time.monotonic if sys.platform.startswith("linux") else time.time
CLOCK_NAME = "time.monotonic() (CLOCK_MONOTONIC)" if sys.platform.startswith("linux") else "time.time()"


# --- task functions (module level: picklable by reference) ------------------------------------


def _started(flag: str) -> None:
    """Tell the parent this task runs: write this worker's pid to ``flag`` (renamed into place: never partial)."""
    tmp = flag + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(os.getpid()))
    os.replace(tmp, flag)


def spin(flag: str) -> None:
    """A pure-Python loop: stopped softly (StopRequested is raised between bytecodes)."""
    _started(flag)
    while True:
        pass


def sleeper(flag: str) -> None:
    """Blocked in time.sleep: the stop signal interrupts the sleep."""
    _started(flag)
    time.sleep(600)


def stubborn(flag: str) -> None:
    """Ignores every stop request (catches BaseException in a loop): only a kill ends it."""
    _started(flag)
    while True:
        try:
            while True:
                pass
        except BaseException:
            pass


def stamp() -> tuple[float, int]:
    """The next task: when it started (see ``clock``) and in which worker."""
    return clock(), os.getpid()


# --- helpers ------------------------------------------------------------------------------------


def ctx() -> Any:
    return multiprocessing.get_context("forkserver")


def milliseconds(seconds: float) -> str:
    """Milliseconds: one decimal, two below 1 ms."""
    return f"{seconds * 1000:.1f}" if abs(seconds) >= 0.001 else f"{seconds * 1000:.2f}"


def ms(values: Sequence[float]) -> tuple[str, str]:
    """Median and IQR of seconds, in milliseconds."""
    q1, med, q3 = quartiles(values)
    return milliseconds(med), f"{milliseconds(q1)}-{milliseconds(q3)}"


# --- part 1: cancel() of a running task -> next task started ------------------------------------

Submit = Callable[..., cf.Future[Any]]


@dataclass
class StopCase:
    """One way of stopping a running task: a one-worker pool, how to submit to it, and the task to stop."""

    name: str
    submit: Submit
    close: Callable[[], None]
    task: Callable[[str], None]
    grace: float | None  # fk's stop_grace (subtracted in "beyond grace"); None: not a grace-then-kill case
    soft: bool = False  # a soft-stop case (the target applies)
    latencies: list[float] = field(default_factory=list)
    replaced: int = 0


def fk_case(name: str, task: Callable[[str], None], grace: float | None, soft: bool = False) -> StopCase:
    import futurekit as fk

    ex = fk.processes(max_workers=1, mp_context="forkserver", stop_grace=1.0 if grace is None else grace)

    def close() -> None:  # nothing runs by now, unless a trial failed: then do not wait for its endless task
        ex.kill_workers()
        ex.shutdown()

    return StopCase(name, ex.submit, close, task, grace, soft)


def pebble_case(name: str) -> StopCase:
    import pebble

    pool = pebble.ProcessPool(max_workers=1, context=ctx())

    def submit(fn: Callable[..., Any], *args: Any) -> cf.Future[Any]:
        return pool.schedule(fn, args=args)

    def close() -> None:
        unannotated: Any = pool  # pebble's stop() and join() have no annotations
        unannotated.stop()
        unannotated.join()

    return StopCase(name, submit, close, spin, None)


def trial(case: StopCase, flag: str) -> None:
    """Run A, cancel it once it runs, record how long until B (queued behind it) started."""
    a = case.submit(case.task, flag)
    b = case.submit(stamp)
    deadline = time.monotonic() + 60
    while not os.path.exists(flag):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{case.name}: the task to stop never started")
        time.sleep(0.0005)
    time.sleep(0.005)  # well inside its loop (or sleep)
    t0 = clock()
    if not a.cancel():
        raise RuntimeError(f"{case.name}: cancel() of a running task returned False")
    started, pid = b.result(timeout=60)
    case.latencies.append(started - t0)
    with open(flag) as f:
        if int(f.read()) != pid:
            case.replaced += 1
    if not a.cancelled():
        raise RuntimeError(f"{case.name}: the stopped task's future is not cancelled")


def part1(trials: int) -> None:
    cases = [
        fk_case("fk soft stop, pure-Python loop (stop_grace=1.0)", spin, None, soft=True),
        fk_case("fk soft stop, time.sleep (stop_grace=1.0)", sleeper, None, soft=True),
        fk_case(f"fk kill after grace, ignores StopRequested (stop_grace={KILL_GRACE})", stubborn, KILL_GRACE),
        fk_case("fk kill at once, pure-Python loop (stop_grace=0)", spin, 0.0),
        pebble_case("pebble ProcessPool cancel(), pure-Python loop"),
    ]
    pebble_row = cases[-1]
    flags = tempfile.mkdtemp(prefix="fk-stopping-")
    try:
        for case in cases:  # warm up: the worker started, the code paths run once
            case.submit(stamp).result(timeout=60)
            trial(case, os.path.join(flags, f"warm-{id(case)}"))
            case.latencies.clear()
            case.replaced = 0
        for r in range(trials):
            for i, case in enumerate(cases):
                trial(case, os.path.join(flags, f"{r}-{i}"))
    finally:
        for case in cases:
            case.close()
        shutil.rmtree(flags, ignore_errors=True)

    rows: list[tuple[str, ...]] = []
    for case in cases:
        med, iqr = ms(case.latencies)
        beyond = "-" if case.grace is None else ms([x - case.grace for x in case.latencies])[0]
        ratio = (
            "1.00x"
            if case is pebble_row
            else spread([x / p for x, p in zip(case.latencies, pebble_row.latencies, strict=True)])
        )
        rows.append((case.name, med, iqr, beyond, ratio, f"{case.replaced}/{len(case.latencies)}"))
    table(
        f"Part 1: cancel() of a running task -> next queued task started, 1 worker, {trials} trials per case",
        ("case", "median ms", "IQR ms", "beyond grace ms", "vs pebble (per round)", "worker replaced"),
        rows,
    )
    print(f"  clock: {CLOCK_NAME}, read in the worker and in the parent")
    print(
        "  multiprocessing.Pool / concurrent.futures.ProcessPoolExecutor: cannot do this (not measured): "
        "Future.cancel() of a running task returns False and the task runs on (Pool's AsyncResult has no "
        "cancel at all); the only way out is ending the whole pool (Pool.terminate(), or 3.14's "
        "ProcessPoolExecutor.terminate_workers()/kill_workers()), every task with it."
    )
    print(
        "  the kill rows include starting the replacement worker (forkserver), as pebble's row does; "
        "'beyond grace' is the latency minus stop_grace."
    )
    print(
        "  a pure-Python loop holds the GIL: the worker's control thread waits for it (up to "
        f"sys.getswitchinterval() = {sys.getswitchinterval() * 1000:.0f} ms) before it can signal the main thread."
    )
    soft = [c for c in cases if c.soft]
    verdict = "met" if all(quartiles(c.latencies)[1] * 1000 <= SOFT_TARGET_MS for c in soft) else "NOT met"
    got = ", ".join(f"{c.name.split(', ')[1].split(' (')[0]} {ms(c.latencies)[0]} ms" for c in soft)
    print(f"  target: soft stop -> next task started <= {SOFT_TARGET_MS:.0f} ms median: {got} -> {verdict}")


# --- part 2: cost on the normal path, now vs before the feature ---------------------------------


def main() -> None:
    args = parse_args(
        __doc__ or "",
        "fewer trials and rounds, smaller workloads",
        BEFORE_COMMIT,
        [
            ("--trials", "part 1 trials per case (default 30, quick 10)"),
            ("--rounds", "part 2 paired rounds (default 20, quick 8)"),
        ],
    )
    if 1 in args.parts:
        part1(args.trials or (10 if args.quick else 30))
    if 2 in args.parts:
        normal_path("Part 2", "stopping", args.before, args.rounds or (8 if args.quick else 20), args.quick)


if __name__ == "__main__":
    main()
