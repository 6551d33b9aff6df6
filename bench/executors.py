"""Executor benchmark: futurekit vs the stdlib and peers (not a test; run it as a script).

    .venv/bin/python bench/executors.py            # full run (several minutes)
    .venv/bin/python bench/executors.py --quick    # smaller sizes, fewer repeats
    .venv/bin/python bench/executors.py --parts 1,3 --repeats 7

Parts:
  1. 1e5 trivial tasks (x + 1): tasks/s of fk.processes().map (defaults, lazy generator input; and
     ordered=False) vs ProcessPoolExecutor.map, multiprocessing.Pool.map/imap/imap_unordered, loky,
     joblib, mpire, pebble. Ratios vs Pool.map and Pool.imap_unordered(chunksize=N/8).
  2. CPU-bound ~5 ms tasks: speedup over serial (same process) for fk and every peer.
  3. fk.threads().submit overhead vs a bare ThreadPoolExecutor.submit.
  4. Error path: a 20-frame-deep exception raised in a child, through fk.processes().submit (real frames)
     vs ProcessPoolExecutor.submit (stdlib string traceback) and vs tblib's data form over the same stdlib
     pool (real frames, no column positions): time per error.
  5. The remote-traceback codec alone, in one process, on the same 20-frame error: futurekit's capture +
     rebuild (to bytes and back; code cache cleared, and warm) vs traceback.format_exception (what the
     stdlib's pool does to an error) vs tblib (pickle with pickling_support, then unpickle): time per
     error, and the median of the per-round ratios to the stdlib. Target: capture + rebuild <= 0.80x.

Part 1 then runs the target cases again back to back, round after round, and prints the median and
interquartile range of the per-round ratios: load drift on a shared machine moves medians taken over
the whole part, and cancels out within one round. Part 1 also times futurekit's map engine
(futurekit._map.iter_map, compact chunk protocol) over a bare ProcessPoolExecutor, which separates the
engine's cost from the executor layer's (payload pickling in submit, remote-traceback capture, crash
attribution).

Every pool is created and warmed up before timing (start-up excluded); process pools use the
"forkserver" start method (futurekit's default on Linux), except mpire (its default, fork) and joblib/loky
(loky's own). Each figure is the median of ``--repeats`` runs, and the repeats of all cases of a part run
round-robin, so a change in machine load hits every case alike; ratios are computed within this one run.
On a shared machine medians damp the noise, they do not remove it: compare ratios, not absolute rates.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import multiprocessing
import os
import pickle
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

WORKERS = 2


# --- task functions (module level: picklable by reference) ------------------------------------


def inc(x: int) -> int:
    return x + 1


def noop() -> None:
    return None


def work(n: int) -> int:
    s = 0
    for i in range(n):
        s += i * i
    return s


def deep(depth: int) -> None:
    if depth <= 1:
        raise ValueError("deep failure")
    deep(depth - 1)


def deep_tblib(depth: int) -> bytes:
    """``deep`` run the tblib way over a stdlib pool: the child pickles the exception with its traceback as
    tblib data (per-instance ``pickling_support.install``, never the global one) and returns the bytes, since
    ProcessPoolExecutor clears ``__traceback__`` of a raised exception before pickling it."""
    import pickle

    from tblib import pickling_support

    try:
        deep(depth)
    except ValueError as exc:
        pickling_support.install(exc)
        return pickle.dumps(exc)
    raise AssertionError("deep() did not raise")


# --- helpers ------------------------------------------------------------------------------------


def consume(it: Any) -> None:
    collections.deque(it, maxlen=0)


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def rounds(cases: list[tuple[str, Callable[[], object]]], count: int) -> list[dict[str, float]]:
    """Seconds per case for each of ``count`` rounds; a round runs every case once, back to back."""
    runs = []
    for _ in range(count):
        took: dict[str, float] = {}
        for name, fn in cases:
            t0 = time.perf_counter()
            fn()
            took[name] = time.perf_counter() - t0
        runs.append(took)
    return runs


def interleaved(cases: list[tuple[str, Callable[[], object]]], repeats: int) -> dict[str, float]:
    """Median seconds per case; the repeats run round-robin, so drift in machine load hits every case alike."""
    runs = rounds(cases, repeats)
    return {name: statistics.median([run[name] for run in runs]) for name, _ in cases}


def paired_ratios(
    cases: list[tuple[str, Callable[[], object]]], pairs: list[tuple[str, str]], count: int
) -> dict[tuple[str, str], list[float]]:
    """Speed ratio of each (a, b) pair per round (b's time / a's time: > 1 means a is faster).

    Every round runs all cases back to back, so each ratio compares runs made within a fraction of a
    second of each other: the load drift that moves medians taken over a whole part cancels out.
    """
    runs = rounds(cases, count)
    return {(a, b): [run[b] / run[a] for run in runs] for a, b in pairs}


def spread(values: list[float]) -> str:
    """Median and interquartile range of at least two values, e.g. ``1.04x (IQR 0.95-1.12x, 9 rounds)``."""
    q1, med, q3 = statistics.quantiles(values, n=4)
    return f"{med:.2f}x (IQR {q1:.2f}-{q3:.2f}x, {len(values)} rounds)"


def gen(n: int) -> Iterator[int]:
    """A lazy input (a generator, not a sized sequence)."""
    yield from range(n)


def table(title: str, header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print(
        "  "
        + "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths, strict=False)))
    )
    print("  " + "  ".join("-" * w for w in widths))
    for r in rows:
        print(
            "  "
            + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=False)))
        )
    sys.stdout.flush()


def ctx() -> Any:
    return multiprocessing.get_context("forkserver")


class Pools:
    """Warm pools of every kind, created once."""

    def __init__(self) -> None:
        import futurekit as fk

        self.fk = fk.processes(WORKERS)
        self.ppe = cf.ProcessPoolExecutor(WORKERS, mp_context=ctx())
        self.pool = ctx().Pool(WORKERS)
        self.loky: Any = None
        self.mpire: Any = None
        self.pebble: Any = None
        try:
            import loky  # type: ignore[import-untyped]

            self.loky = loky.get_reusable_executor(max_workers=WORKERS)
        except ImportError:  # that peer is not installed: its row is skipped
            pass
        try:
            import mpire

            self.mpire = mpire.WorkerPool(n_jobs=WORKERS, keep_alive=True)  # type: ignore[attr-defined]
        except ImportError:  # that peer is not installed: its row is skipped
            pass
        try:
            import pebble

            self.pebble = pebble.ProcessPool(max_workers=WORKERS, context=ctx())
        except ImportError:  # that peer is not installed: its row is skipped
            pass
        self.warm()

    def warm(self) -> None:
        for _ in range(2):
            consume(self.fk.map(inc, range(2000)))
            consume(self.ppe.map(inc, range(200)))
            self.pool.map(inc, range(200))
            if self.loky is not None:
                consume(self.loky.map(inc, range(200)))
            if self.mpire is not None:
                self.mpire.map(inc, range(200))
            if self.pebble is not None:
                consume(self.pebble.map(inc, range(200)).result())
            try:
                import joblib  # type: ignore[import-untyped]

                joblib.Parallel(n_jobs=WORKERS)(joblib.delayed(inc)(x) for x in range(200))
            except ImportError:  # that peer is not installed: its row is skipped
                pass

    def close(self) -> None:
        self.fk.shutdown()
        self.ppe.shutdown()
        self.pool.close()
        self.pool.join()
        if self.mpire is not None:
            self.mpire.terminate()
        if self.pebble is not None:
            self.pebble.close()
            self.pebble.join()
        if self.loky is not None:
            self.loky.shutdown()


def fk_engine_over_ppe(ppe: cf.ProcessPoolExecutor, fn: Callable[..., Any], n: int, ordered: bool) -> None:
    """futurekit's map engine (compact chunk protocol) over a bare stdlib pool, without the remote-traceback
    layer of fk.processes(): separates the engine's cost from the executor's."""
    from futurekit._map import iter_map
    from futurekit._process.chunks import run_items

    def submit(f: Callable[..., Any], chunk: list[Any]) -> cf.Future[Any]:
        return ppe.submit(run_items, f, chunk)

    consume(
        iter_map(
            submit,
            fn,
            (gen(n),),
            timeout=None,
            chunksize=None,
            buffersize=None,
            ordered=ordered,
            workers=WORKERS,
            auto_chunk=True,
        )
    )


# --- part 1 -------------------------------------------------------------------------------------


def part1(p: Pools, n: int, n_small: int, repeats: int) -> None:
    import joblib

    good = max(1, n // 8)
    cases: list[tuple[str, int, Callable[[], object]]] = [
        ("fk.processes().map (defaults, generator input)", n, lambda: consume(p.fk.map(inc, gen(n)))),
        ("fk.processes().map(ordered=False)", n, lambda: consume(p.fk.map(inc, gen(n), ordered=False))),
        ("fk map engine over bare ProcessPoolExecutor", n, lambda: fk_engine_over_ppe(p.ppe, inc, n, True)),
        ("fk map engine over bare PPE, ordered=False", n, lambda: fk_engine_over_ppe(p.ppe, inc, n, False)),
        (f"ProcessPoolExecutor.map(chunksize={good})", n, lambda: consume(p.ppe.map(inc, range(n), chunksize=good))),
        (
            f"ProcessPoolExecutor.map(chunksize=1) [N={n_small}]",
            n_small,
            lambda: consume(p.ppe.map(inc, range(n_small))),
        ),
        ("multiprocessing.Pool.map (default chunksize)", n, lambda: p.pool.map(inc, range(n))),
        (f"Pool.imap(chunksize={good})", n, lambda: consume(p.pool.imap(inc, range(n), chunksize=good))),
        (
            f"Pool.imap_unordered(chunksize={good})",
            n,
            lambda: consume(p.pool.imap_unordered(inc, range(n), chunksize=good)),
        ),
        # The same lazy generator fk reads (Pool.map lists it first; imap reads it in a thread).
        ("Pool.map over the same generator", n, lambda: p.pool.map(inc, gen(n))),
        (
            f"Pool.imap_unordered(chunksize={good}), same generator",
            n,
            lambda: consume(p.pool.imap_unordered(inc, gen(n), chunksize=good)),
        ),
        (
            "joblib.Parallel(n_jobs=2) (auto batching)",
            n,
            lambda: joblib.Parallel(n_jobs=WORKERS)(joblib.delayed(inc)(x) for x in range(n)),
        ),
    ]
    if p.loky is not None:
        cases.append(
            (
                f"loky reusable executor .map(chunksize={good})",
                n,
                lambda: consume(p.loky.map(inc, range(n), chunksize=good)),
            )
        )
    if p.mpire is not None:
        cases.append(("mpire WorkerPool.map (default chunking)", n, lambda: p.mpire.map(inc, range(n))))
    if p.pebble is not None:
        cases.append(
            (
                f"pebble ProcessPool.map(chunksize={good})",
                n,
                lambda: consume(p.pebble.map(inc, range(n), chunksize=good).result()),
            )
        )
    medians = interleaved([(name, fn) for name, _, fn in cases], repeats)
    rates = {name: count / medians[name] for name, count, _ in cases}
    base_map = rates["multiprocessing.Pool.map (default chunksize)"]
    base_unord = rates[f"Pool.imap_unordered(chunksize={good})"]
    rows = [
        (name, f"{rate:,.0f}", f"{rate / base_map:.2f}x", f"{rate / base_unord:.2f}x") for name, rate in rates.items()
    ]
    table(
        f"Part 1: {n:,} trivial tasks (x + 1), {WORKERS} workers, median of {repeats}",
        ("case", "tasks/s", "vs Pool.map", "vs imap_unordered"),
        rows,
    )
    fk_ordered = rates["fk.processes().map (defaults, generator input)"]
    fk_unordered = rates["fk.processes().map(ordered=False)"]
    print(
        f"  targets: fk ordered >= 1.00x Pool.map -> {fk_ordered / base_map:.2f}x; "
        f"fk ordered=False >= 1.00x Pool.imap_unordered -> {fk_unordered / base_unord:.2f}x"
    )
    print(
        f"  same lazy input for both: fk ordered vs Pool.map "
        f"{fk_ordered / rates['Pool.map over the same generator']:.2f}x; fk ordered=False vs imap_unordered "
        f"{fk_unordered / rates[f'Pool.imap_unordered(chunksize={good}), same generator']:.2f}x"
    )
    # The target cases again, back to back in each round: per-round ratios (robust to load drift).
    by_name = {name: fn for name, _, fn in cases}
    fk_o, fk_u = "fk.processes().map (defaults, generator input)", "fk.processes().map(ordered=False)"
    pmap, unord = "multiprocessing.Pool.map (default chunksize)", f"Pool.imap_unordered(chunksize={good})"
    same = "Pool.map over the same generator"
    pairs = [(fk_o, pmap), (fk_u, unord), (fk_o, same)]
    ratios = paired_ratios(
        [(name, by_name[name]) for name in (fk_o, pmap, fk_u, unord, same)], pairs, max(9, 3 * repeats)
    )
    print("  paired rounds (median of per-round ratios):")
    print(f"    fk ordered vs Pool.map                 {spread(ratios[(fk_o, pmap)])}")
    print(f"    fk ordered=False vs imap_unordered     {spread(ratios[(fk_u, unord)])}")
    print(f"    fk ordered vs Pool.map, same generator {spread(ratios[(fk_o, same)])}")


# --- part 2 -------------------------------------------------------------------------------------


def calibrate(seconds: float) -> int:
    n = 10000
    while True:
        t0 = time.perf_counter()
        work(n)
        dt = time.perf_counter() - t0
        if dt > 0.002:
            return max(1, int(n * seconds / dt))
        n *= 2


def part2(p: Pools, tasks: int, repeats: int) -> None:
    import joblib

    k = calibrate(0.005)
    args = [k] * tasks
    cases: list[tuple[str, Callable[[], object]]] = [
        ("serial (this process)", lambda: [work(a) for a in args]),
        ("fk.processes().map (defaults, generator input)", lambda: consume(p.fk.map(work, iter(args)))),
        ("fk.processes().map(ordered=False)", lambda: consume(p.fk.map(work, iter(args), ordered=False))),
        ("ProcessPoolExecutor.map(chunksize=1)", lambda: consume(p.ppe.map(work, args))),
        ("multiprocessing.Pool.map (default chunksize)", lambda: p.pool.map(work, args)),
        ("Pool.imap (chunksize=1)", lambda: consume(p.pool.imap(work, args))),
        ("Pool.imap_unordered (chunksize=1)", lambda: consume(p.pool.imap_unordered(work, args))),
        ("joblib.Parallel(n_jobs=2)", lambda: joblib.Parallel(n_jobs=WORKERS)(joblib.delayed(work)(a) for a in args)),
    ]
    if p.loky is not None:
        cases.append(("loky reusable executor .map", lambda: consume(p.loky.map(work, args))))
    if p.mpire is not None:
        cases.append(("mpire WorkerPool.map", lambda: p.mpire.map(work, args)))
    if p.pebble is not None:
        cases.append(("pebble ProcessPool.map", lambda: consume(p.pebble.map(work, args).result())))
    medians = interleaved(cases, repeats)  # serial runs interleaved too: load drift hits it alike
    serial = medians["serial (this process)"]
    rows = [(name, f"{t * 1000:.0f}", f"{serial / t:.2f}x") for name, t in medians.items()]
    table(
        f"Part 2: {tasks} CPU-bound tasks of ~5 ms, {WORKERS} workers, median of {repeats}",
        ("case", "ms", "speedup"),
        rows,
    )
    print("  target: fk >= 1.95x (2 cores; needs an otherwise idle machine)")


# --- part 3 -------------------------------------------------------------------------------------


def part3(n: int, repeats: int) -> None:
    import futurekit as fk

    def run(ex: cf.Executor) -> None:
        futures = [ex.submit(noop) for _ in range(n)]
        cf.wait(futures)

    with cf.ThreadPoolExecutor(WORKERS) as bare, fk.threads(WORKERS) as wrapped:
        run(bare)
        run(wrapped)
        t_bare: list[float] = []
        t_fk: list[float] = []
        for _ in range(repeats):  # interleaved, so drift hits both alike
            t_bare.append(median_time(lambda: run(bare), 1))
            t_fk.append(median_time(lambda: run(wrapped), 1))
    b, f = statistics.median(t_bare), statistics.median(t_fk)
    table(
        f"Part 3: submit + completion of {n:,} no-op tasks on {WORKERS} threads, median of {repeats}",
        ("case", "us/task", "ratio"),
        [
            ("ThreadPoolExecutor.submit", f"{b / n * 1e6:.2f}", "1.00x"),
            ("fk.threads().submit", f"{f / n * 1e6:.2f}", f"{f / b:.2f}x"),
        ],
    )
    print("  target: <= 1.10x")


# --- part 4 -------------------------------------------------------------------------------------


def part4(p: Pools, n: int, repeats: int) -> None:
    depth = 20

    def errors(
        ex: cf.Executor,
        task: Callable[[int], object] = deep,
        rebuild: Callable[[cf.Future[Any]], BaseException | None] = cf.Future.exception,
    ) -> None:
        futures = [ex.submit(task, depth) for _ in range(n)]
        for f in futures:
            exc = rebuild(f)
            assert isinstance(exc, ValueError)

    def tblib_rebuild(f: cf.Future[Any]) -> BaseException:
        exc = pickle.loads(f.result())  # rebuilt with tblib's frames
        assert exc.__traceback__ is not None
        return exc  # type: ignore[no-any-return]

    def errors_tblib(ex: cf.Executor) -> None:
        errors(ex, deep_tblib, tblib_rebuild)

    def successes(ex: cf.Executor) -> None:
        futures = [ex.submit(inc, 1) for _ in range(n)]
        for f in futures:
            f.result()

    errors(p.fk)
    errors(p.ppe)
    errors_tblib(p.ppe)
    import traceback

    sample = p.fk.submit(deep, depth).exception()
    frames = len(traceback.extract_tb(sample.__traceback__)) if sample is not None else 0
    rows: list[tuple[str, str, str]] = []
    m = interleaved(
        [
            ("std", lambda: errors(p.ppe)),
            ("fk", lambda: errors(p.fk)),
            ("tblib", lambda: errors_tblib(p.ppe)),
            ("std_ok", lambda: successes(p.ppe)),
            ("fk_ok", lambda: successes(p.fk)),
        ],
        repeats,
    )
    t_std, t_fk, t_tblib, t_std_ok, t_fk_ok = m["std"], m["fk"], m["tblib"], m["std_ok"], m["fk_ok"]
    rows.append(("ProcessPoolExecutor.submit, error (string traceback)", f"{t_std / n * 1e6:.0f}", "1.00x"))
    rows.append(
        (f"fk.processes().submit, error ({frames} real frames)", f"{t_fk / n * 1e6:.0f}", f"{t_fk / t_std:.2f}x")
    )
    rows.append(
        ("ProcessPoolExecutor + tblib data, error (real frames)", f"{t_tblib / n * 1e6:.0f}", f"{t_tblib / t_std:.2f}x")
    )
    rows.append(
        ("ProcessPoolExecutor.submit, success (reference)", f"{t_std_ok / n * 1e6:.0f}", f"{t_std_ok / t_std:.2f}x")
    )
    rows.append(("fk.processes().submit, success (reference)", f"{t_fk_ok / n * 1e6:.0f}", f"{t_fk_ok / t_std:.2f}x"))
    table(
        f"Part 4: {n} errors {depth} frames deep raised in a child, {WORKERS} workers, median of {repeats}",
        ("case", "us/task", "vs stdlib error"),
        rows,
    )
    print("  target: fk error <= 0.80x stdlib error")


# --- part 5 -------------------------------------------------------------------------------------


def part5(number: int, repeats: int) -> None:
    import copyreg
    import traceback

    from futurekit._process import exceptions
    from futurekit._process import frames as frame_codec

    depth = 20
    exc: BaseException = ValueError("deep() did not raise")
    try:
        deep(depth)
    except ValueError as caught:
        exc = caught
    frames = len(traceback.extract_tb(exc.__traceback__))

    def loop(fn: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            for _ in range(number):
                fn()

        return run

    def fk_cold() -> None:
        frame_codec._CODE_CACHE.clear()  # no help from the cache of rebuilt code objects
        exceptions.rebuild(exceptions.capture(exc))

    cases: list[tuple[str, Callable[[], object]]] = [
        ("std", loop(lambda: traceback.format_exception(exc))),
        ("fk_cold", loop(fk_cold)),
        ("fk_warm", loop(lambda: exceptions.rebuild(exceptions.capture(exc)))),
    ]
    dispatch = dict(copyreg.dispatch_table)
    try:
        try:
            from tblib import pickling_support

            tblib_exc = ValueError("deep failure")
            tblib_exc.__traceback__ = exc.__traceback__
            pickling_support.install(tblib_exc)  # registers its reducers in copyreg: restored below
            cases.append(("tblib", loop(lambda: pickle.loads(pickle.dumps(tblib_exc)))))
        except ImportError:  # that peer is not installed: its row is skipped
            pass
        for _, fn in cases:
            fn()  # warm up
        pairs = [("fk_cold", "std"), ("fk_warm", "std")] + ([("tblib", "std")] if len(cases) > 3 else [])
        runs = rounds(cases, repeats)
    finally:
        copyreg.dispatch_table.clear()
        copyreg.dispatch_table.update(dispatch)
    median = {name: statistics.median(run[name] for run in runs) for name, _ in cases}
    ratios = {(a, b): [run[a] / run[b] for run in runs] for a, b in pairs}
    labels = {
        "std": "traceback.format_exception (stdlib: text)",
        "fk_cold": "futurekit capture + rebuild, code cache cleared",
        "fk_warm": "futurekit capture + rebuild, code cache warm",
        "tblib": "tblib pickle + unpickle (per-instance install)",
    }
    rows = [("traceback.format_exception (stdlib: text)", f"{median['std'] / number * 1e6:.0f}", "1.00x")]
    for a, _ in pairs:
        rows.append((labels[a], f"{median[a] / number * 1e6:.0f}", spread(ratios[(a, "std")])))
    table(
        f"Part 5: the codec alone, one {frames}-frame error, {number} per round, {repeats} rounds (in process)",
        ("case", "us/error", "vs stdlib (median of per-round ratios)"),
        rows,
    )
    print("  target: futurekit capture + rebuild (cache cleared) <= 0.80x stdlib")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes and 3 repeats")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per case (default 7, quick 3)")
    parser.add_argument("--parts", default="1,2,3,4,5", help="comma-separated parts to run")
    parser.add_argument("-n", type=int, default=None, help="part 1 task count (default 100000, quick 20000)")
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 7)
    parts = {int(x) for x in args.parts.split(",")}
    n = args.n or (20_000 if args.quick else 100_000)
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {WORKERS} workers")
    if 3 in parts:
        part3(20_000 if args.quick else 100_000, repeats)
    if 5 in parts:
        part5(200 if args.quick else 500, max(repeats, 5))
    if parts & {1, 2, 4}:
        p = Pools()
        try:
            if 1 in parts:
                part1(p, n, 2000 if args.quick else 5000, repeats)
            if 2 in parts:
                part2(p, 100 if args.quick else 200, repeats)
            if 4 in parts:
                part4(p, 300 if args.quick else 1000, repeats)
        finally:
            p.close()


if __name__ == "__main__":
    main()
