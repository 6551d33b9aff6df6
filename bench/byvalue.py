"""By-value benchmark: what sending lambdas and closures with cloudpickle costs, and that the fast path did not slow.

    .venv/bin/python bench/byvalue.py            # full run (under 3 minutes)
    .venv/bin/python bench/byvalue.py --quick    # fewer rounds, smaller workloads (under 45 s)
    .venv/bin/python bench/byvalue.py --parts 1  # one part only

futurekit sends a call by reference with plain pickle when the workers can import what it names (the fast
path), and by value with cloudpickle otherwise: lambdas, closures, and ``__main__`` code when the workers cannot
import ``__main__`` (see ``futurekit._process.payload.dump_call``). Every function below does the same work,
``x + 1``:

  * module function: ``_compare.trivial``, at the top level of an importable module (bench/_compare.py);
  * script function: ``inc``, at the top level of this script (``__main__``, which futurekit's workers import:
    by reference for futurekit and the stdlib; cloudpickle sends ``__main__`` code by value, so loky does);
  * lambda: ``lambda x: x + 1`` (by value);
  * closure: ``add`` from ``adder(1)``, a nested function reading a cell (by value).

Part 1 - per-task cost: ``ex.submit(fn, i)`` for N tasks, then wait for all; microseconds per task. On
``fk.processes(max_workers=2)``, on loky's ``get_reusable_executor(max_workers=2)`` used directly (loky pickles
every call with cloudpickle: by reference for functions of importable modules, by value for the rest), and on the
stdlib's ``ProcessPoolExecutor(max_workers=2)`` (plain pickle: it cannot send a lambda or a closure at all; the
script tries once and prints the error). All pools are created and warmed up (every worker started, every function
sent once) before timing; then the cases run round-robin, one run of each per round, so load drift on a shared
machine hits them alike (each round starts at the next case). The table shows the median over rounds with the IQR,
and the per-round ratio to the module function on the same pool. The "call bytes" column is the size of
futurekit's pickled call ``fn(1)`` (``dump_call``). Then ``map`` throughput (items/s) on fk.processes,
``list(ex.map(fn, range(M)))``: lambda and closure vs the module function; map sends its items in chunks, each
chunk one pickled call of ``fn`` over the items, so the by-value cost is paid once a chunk, not once an item.

Part 2 - the fast path must not slow down: the submit and map workloads of bench/stopping.py part 2
(``submit(trivial)`` x N then wait all; ``list(map(trivial, range(M)))``; ``trivial`` by reference) on
``fk.processes(max_workers=2)``, this checkout vs commit ``742ce5a`` (the commit before by-value functions),
in paired rounds: each round runs both in fresh subprocesses (``PYTHONPATH`` set to this checkout or to a
temporary ``git worktree`` of the old commit under /tmp, removed at the end), alternating which goes first;
the table shows the median of the per-round ratios (time now / time before) and their IQR. Target: median
paired ratio <= 1.02 (not more than 2% slower). The machinery is bench/_compare.py, shared with
bench/stopping.py.

Every pool uses the "forkserver" start method (futurekit's default on Linux) except loky (its own, "loky").
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from _compare import normal_path, paired_ratios, parse_args, quartiles, spread, table, trivial

import futurekit as fk
from futurekit._process.payload import dump_call

BEFORE_COMMIT = "742ce5a"
WORKERS = 2
OPTIONS = [
    ("--rounds", "part 1 rounds (default 15, quick 5)"),
    ("--pairs", "part 2 paired rounds (default 16, quick 6)"),
]


# --- task functions -----------------------------------------------------------------------------


def inc(x: int = 0) -> int:
    """The script function: module level, but in ``__main__``."""
    return x + 1


def adder(k: int) -> Callable[[int], int]:
    def add(x: int = 0) -> int:
        return x + k

    return add


def functions() -> list[tuple[str, Callable[[int], int]]]:
    """The four functions of part 1, each computing ``x + 1``; built here, so the lambda is a fresh one."""
    return [
        ("module function", trivial),
        ("script function (__main__)", inc),
        ("lambda", lambda x: x + 1),
        ("closure", adder(1)),
    ]


def sent_as(pool: str, label: str) -> str:
    """How the function travels on that pool."""
    if label == "module function" or (label.startswith("script") and pool != "loky"):
        return "by reference"
    return "by value (cloudpickle)"


# --- part 1: per-task cost and map throughput ---------------------------------------------------


@dataclass
class Case:
    pool: str
    label: str
    fn: Callable[[int], int]
    ex: cf.Executor
    times: list[float] = field(default_factory=list)


def submit_all(case: Case, n: int) -> float:
    """Submit ``n`` tasks, wait for all; the seconds it took (every result checked)."""
    t0 = time.perf_counter()
    futures = [case.ex.submit(case.fn, i) for i in range(n)]
    cf.wait(futures)
    elapsed = time.perf_counter() - t0
    if futures[-1].result() != n:
        raise RuntimeError(f"{case.pool} {case.label}: wrong result")
    return elapsed


def map_all(case: Case, m: int) -> float:
    t0 = time.perf_counter()
    out = list(case.ex.map(case.fn, range(m)))
    elapsed = time.perf_counter() - t0
    if len(out) != m or out[-1] != m:
        raise RuntimeError(f"{case.label}: wrong map result")
    return elapsed


def us(values: Sequence[float]) -> tuple[str, str]:
    """Median and IQR of microseconds."""
    q1, med, q3 = quartiles(values)
    return f"{med:.1f}", f"{q1:.1f}-{q3:.1f}"


def stdlib_lambda_error(ex: cf.Executor) -> str:
    """What the stdlib's pool says to a lambda."""
    try:
        ex.submit(lambda x: x + 1, 1).result(timeout=60)
    except Exception as err:
        return f"{type(err).__module__}.{type(err).__qualname__}: {err}"
    return "it ran (unexpected)"


def part1(rounds: int, n_submit: int, m_map: int) -> None:
    import loky  # type: ignore[import-untyped]

    ctx = multiprocessing.get_context("forkserver")
    fk_ex = fk.processes(max_workers=WORKERS, mp_context="forkserver")
    loky_ex: cf.Executor = loky.get_reusable_executor(max_workers=WORKERS)
    std_ex = cf.ProcessPoolExecutor(max_workers=WORKERS, mp_context=ctx)
    try:
        cases = [Case("fk.processes", label, fn, fk_ex) for label, fn in functions()]
        cases += [Case("loky", label, fn, loky_ex) for label, fn in functions()]
        cases += [Case("ProcessPoolExecutor", label, fn, std_ex) for label, fn in functions()[:2]]
        maps = [Case("fk.processes", label, fn, fk_ex) for label, fn in functions() if not label.startswith("script")]
        for case in cases:  # warm-up: every worker started, every function sent and run
            submit_all(case, max(200, n_submit // 10))
        for case in maps:
            map_all(case, max(20_000, m_map // 10))
        std_error = stdlib_lambda_error(std_ex)
        for r in range(rounds):  # each round starts at another case: no case always runs first
            for case in cases[r % len(cases) :] + cases[: r % len(cases)]:
                case.times.append(submit_all(case, n_submit) / n_submit * 1e6)
            for case in maps[r % len(maps) :] + maps[: r % len(maps)]:
                case.times.append(map_all(case, m_map))
    finally:
        fk_ex.shutdown()
        loky_ex.shutdown(wait=True)
        std_ex.shutdown()

    rows: list[tuple[str, ...]] = []
    for case in cases:
        base = next(c for c in cases if c.pool == case.pool and c.label == "module function")
        median, iqr = us(case.times)
        size = str(len(dump_call(case.fn, (1,), {}))) if case.pool == "fk.processes" else "-"
        vs = "1.00x" if case is base else spread(paired_ratios(case.times, base.times))
        rows.append((f"{case.pool}: {case.label}", sent_as(case.pool, case.label), size, median, iqr, vs))
    table(
        f"Part 1a: submit(fn, i) x {n_submit:,}, wait all, {WORKERS} workers, {rounds} rounds "
        "(median over rounds; ratio per round to the module function on the same pool)",
        ("pool: function", "sent", "call bytes", "us/task", "IQR us", "vs module function (per round)"),
        rows,
    )
    print(f"  ProcessPoolExecutor: lambda, closure: cannot send them (not measured); submitting a lambda: {std_error}")

    base = maps[0]
    rows = []
    for case in maps:
        rates = [m_map / t for t in case.times]
        q1, med, q3 = quartiles(rates)
        vs = "1.00x" if case is base else spread(paired_ratios(case.times, base.times))
        rows.append((case.label, sent_as(case.pool, case.label), f"{med:,.0f}", f"{q1:,.0f}-{q3:,.0f}", vs))
    table(
        f"Part 1b: list(fk.processes().map(fn, range({m_map:,}))) (chunked: by value once a chunk), "
        f"{WORKERS} workers, {rounds} rounds",
        ("function", "sent", "items/s", "IQR items/s", "time vs module function (per round)"),
        rows,
    )


# --- part 2: the fast path, now vs before by-value functions ------------------------------------


def main() -> None:
    args = parse_args(__doc__ or "", "fewer rounds, smaller workloads", BEFORE_COMMIT, OPTIONS)
    if 1 in args.parts:
        if args.quick:
            part1(args.rounds or 5, 1_000, 100_000)
        else:
            part1(args.rounds or 15, 3_000, 400_000)
    if 2 in args.parts:
        normal_path("Part 2", "by-value functions", args.before, args.pairs or (6 if args.quick else 16), args.quick)
        print(
            "  trivial is a function of the child's __main__ (bench/_compare.py run as a script), as in "
            "bench/stopping.py: its pickled call names __main__, so the current code also asks main_importable() "
            "on every call (part 1a: script function vs module function)."
        )


if __name__ == "__main__":
    main()
