"""Combinator benchmark: futurekit against the floor and against more-executors.

Run:  .venv/bin/python bench/combinators.py [--quick]

Measures, and prints as tables:

1. ``fk.gather_all`` per element, for N = 1e3 .. 1e6 input futures, in two
   modes: *pending* (inputs pending while the aggregate is built, then
   completed one by one with ``set_result``; the time covers building and
   completing) and *done* (inputs already done; the time covers building).
   Against (a) the floor, a raw ``add_done_callback`` countdown (lock-protected
   counter and results list, ``set_result`` at zero) and (b) more-executors'
   ``f_sequence``. Also the cost of completing the inputs with no aggregate at
   all ("inputs only"), so the aggregate's own overhead can be read off.
   Memory: bytes per element that the aggregate allocates beyond the input
   futures themselves (tracemalloc), held while pending and at peak.
2. ``fk.then`` and ``fk.chain`` per hop, over chains of 1e2 .. 2e5 hops on a
   pending root (built, then the root completed) and on a done root, against a
   minimal trampolined ``add_done_callback`` chain written here (the floor) and
   more-executors' ``f_map`` / ``f_flat_map``. A chain that raises, stalls
   (its end never settles) or exceeds the time budget is marked, never waited
   on forever.
3. ``import futurekit`` time: ``-X importtime`` cumulative, and wall time over
   a bare interpreter start, medians over several fresh processes.

Every cell runs in its own subprocess with a timeout (a recursion crash or a
stall cannot take the benchmark down), reports the median over repeats, and
times with the garbage collector disabled (as ``timeit`` does). Ratios are
against the floor; the targets from the project brief are checked at the end.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from functools import partial
from typing import Any

# Targets (from the project brief).
GATHER_RATIO_TARGET = 1.3
GATHER_BYTES_TARGET = 200
HOP_RATIO_TARGET = 1.5
IMPORT_MS_TARGET = 30.0

VALUE = object()  # one shared result value: no per-element allocation for results


# --------------------------------------------------------------------------- floors written here


def raw_countdown(fs: Sequence[Future[Any]]) -> Future[list[Any]]:
    """The floor for gather: per input a partial as callback, then a lock, a counter, a list.

    Public Future API only (one ``result()`` per input); fails on the first
    error; no cancellation either way.
    """
    out: Future[list[Any]] = Future()
    n = len(fs)
    results: list[Any] = [None] * n
    lock = threading.Lock()
    remaining = [n]

    def on_done(index: int, f: Future[Any]) -> None:
        try:
            value = f.result()
        except BaseException as exc:
            with lock:
                if remaining[0] < 0:
                    return
                remaining[0] = -1
            out.set_exception(exc)
            return
        with lock:
            results[index] = value
            remaining[0] -= 1
            if remaining[0]:
                return
        out.set_result(results)

    if not n:
        out.set_result(results)
    for index, f in enumerate(fs):
        f.add_done_callback(partial(on_done, index))
    return out


class _TrampolineLocal(threading.local):
    queue: deque[tuple[Callable[[Any], None], Any]] | None = None


_tl = _TrampolineLocal()


def _trampoline(fn: Callable[[Any], None], arg: Any) -> None:
    queue = _tl.queue
    if queue is not None:
        queue.append((fn, arg))
        return
    queue = _tl.queue = deque()
    try:
        fn(arg)
        while queue:
            f, a = queue.popleft()
            f(a)
    finally:
        _tl.queue = None


def raw_then(src: Future[Any], fn: Callable[[Any], Any]) -> Future[Any]:
    """The floor for then: an add_done_callback hop, run through a trampoline."""
    out: Future[Any] = Future()

    def step(s: Future[Any]) -> None:
        try:
            out.set_result(fn(s.result()))
        except BaseException as exc:
            out.set_exception(exc)

    src.add_done_callback(lambda s: _trampoline(step, s))
    return out


def raw_then_cancel(src: Future[Any], fn: Callable[[Any], Any]) -> Future[Any]:
    """raw_then plus the back-link rule 5 needs: cancelling the output cancels the input."""
    out: Future[Any] = Future()

    def step(s: Future[Any]) -> None:
        try:
            value = fn(s.result())
        except BaseException as exc:
            if not out.done():
                out.set_exception(exc)
            return
        if not out.done():
            out.set_result(value)

    def on_out(o: Future[Any]) -> None:
        if o.cancelled():
            src.cancel()

    src.add_done_callback(lambda s: _trampoline(step, s))
    out.add_done_callback(on_out)
    return out


def raw_chain(src: Future[Any], fn: Callable[[Any], Future[Any]]) -> Future[Any]:
    """The floor for chain: like raw_then, then one more hop to copy the inner future."""
    out: Future[Any] = Future()

    def copy(inner: Future[Any]) -> None:
        exc = inner.exception()
        if exc is None:
            out.set_result(inner.result())
        else:
            out.set_exception(exc)

    def step(s: Future[Any]) -> None:
        try:
            inner = fn(s.result())
        except BaseException as exc:
            out.set_exception(exc)
            return
        inner.add_done_callback(lambda i: _trampoline(copy, i))

    src.add_done_callback(lambda s: _trampoline(step, s))
    return out


def inc(x: int) -> int:
    return x + 1


def inc_future(x: int) -> Future[int]:
    f: Future[int] = Future()
    f.set_result(x + 1)
    return f


# --------------------------------------------------------------------------- cells (run in a child)


def _gather_builder(method: str) -> Callable[[list[Future[Any]]], Any] | None:
    if method == "futurekit":
        import futurekit as fk

        return fk.gather_all
    if method == "raw":
        return raw_countdown
    if method == "more_executors":
        from more_executors.futures import f_sequence

        return f_sequence
    if method == "inputs-only":
        return None
    raise ValueError(method)


def _make_inputs(n: int, done: bool) -> list[Future[Any]]:
    fs: list[Future[Any]] = [Future() for _ in range(n)]
    if done:
        for f in fs:
            f.set_result(VALUE)
    return fs


def _check_gather(out: Any, n: int) -> None:
    if out is None:
        return
    if not out.done():
        raise RuntimeError("aggregate did not settle")
    result = out.result(timeout=0)
    if len(result) != n:
        raise RuntimeError(f"aggregate has {len(result)} results, expected {n}")


def _time_gather(build: Callable[[list[Future[Any]]], Any] | None, n: int, done: bool) -> float:
    """One timed run: build the aggregate (and complete the inputs if pending)."""
    fs = _make_inputs(n, done)
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        out = build(fs) if build is not None else None
        if not done:
            for f in fs:
                f.set_result(VALUE)
        t1 = time.perf_counter()
    finally:
        gc.enable()
    _check_gather(out, n)
    return t1 - t0


def _memory_gather(build: Callable[[list[Future[Any]]], Any] | None, n: int, done: bool) -> tuple[float, float]:
    """Bytes per element the aggregate allocates beyond its inputs: (held while pending, peak)."""
    fs = _make_inputs(n, done)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        out = build(fs) if build is not None else None
        held = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.reset_peak()
        if not done:
            for f in fs:
                f.set_result(VALUE)
        peak = max(tracemalloc.get_traced_memory()[1] - before, held)
    finally:
        tracemalloc.stop()
    _check_gather(out, n)
    return held / n, peak / n


def _interleaved(
    methods: list[str], once: Callable[[str], float], samples: int, inner: int, per: int
) -> dict[str, Any]:
    """Time every method in turn within each sample, so load changes hit all alike.

    Returns per-method medians (seconds per element) and, under "paired", for
    each ordered pair "a/b" the median over samples of a's time divided by b's
    time in the same sample.
    """
    for m in methods:
        once(m)  # warm-up
    times: dict[str, list[float]] = {m: [] for m in methods}
    for k in range(samples):
        order = methods[k % len(methods) :] + methods[: k % len(methods)]  # rotate who goes first
        for m in order:
            times[m].append(sum(once(m) for _ in range(inner)) / inner / per)
    result: dict[str, Any] = {m: {"median": statistics.median(ts), "samples": ts} for m, ts in times.items()}
    result["paired"] = {
        f"{a}/{b}": statistics.median(x / y for x, y in zip(times[a], times[b], strict=False) if y > 0)
        for a in methods
        for b in methods
        if a != b
    }
    return result


def cell_gather(methods: list[str], mode: str, n: int, samples: int, min_elements: int) -> dict[str, Any]:
    """Per-element times (interleaved) and memory of several gather methods."""
    builders = {m: _gather_builder(m) for m in methods}
    done = mode == "done"
    result = _interleaved(methods, lambda m: _time_gather(builders[m], n, done), samples, max(1, min_elements // n), n)
    for m in methods:
        held, peak = _memory_gather(builders[m], n, done)
        result[m].update(held_bytes=held, peak_bytes=peak)
    return result


def _hop_builder(method: str) -> Callable[[Any], Any]:
    if method in ("then", "chain"):
        import futurekit as fk

        return (lambda f: fk.then(f, inc)) if method == "then" else (lambda f: fk.chain(f, inc_future))
    if method == "raw-then":
        return lambda f: raw_then(f, inc)
    if method == "raw-then+cancel":
        return lambda f: raw_then_cancel(f, inc)
    if method == "raw-chain":
        return lambda f: raw_chain(f, inc_future)
    if method in ("f_map", "f_flat_map"):
        from more_executors.futures import f_flat_map, f_map

        return (lambda f: f_map(f, inc)) if method == "f_map" else (lambda f: f_flat_map(f, inc_future))
    raise ValueError(method)


def _run_chain(hop: Callable[[Any], Any], hops: int, pending: bool) -> tuple[float, Future[Any]]:
    root: Future[int] = Future()
    if not pending:
        root.set_result(0)
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        end = root
        for _ in range(hops):
            end = hop(end)
        if pending:
            root.set_result(0)
        t1 = time.perf_counter()
    finally:
        gc.enable()
    return t1 - t0, end


def _chain_error(end: Future[Any], hops: int) -> str | None:
    if not end.done():
        return "stalled: the end of the chain never settled"
    exc = end.exception(timeout=0)
    if exc is not None:
        return f"failed: {type(exc).__name__}"
    if end.result(timeout=0) != hops:
        return f"wrong result {end.result(timeout=0)!r}, expected {hops}"
    return None


def cell_hops(methods: list[str], mode: str, hops: int, samples: int, min_elements: int) -> dict[str, Any]:
    """Per-hop times (interleaved) of chains of ``hops`` hops."""
    builders = {m: _hop_builder(m) for m in methods}
    logging.getLogger("concurrent.futures").disabled = True  # stalled chains log per hop

    def once(m: str) -> float:
        elapsed, end = _run_chain(builders[m], hops, mode == "pending")
        error = _chain_error(end, hops)
        if error is not None:
            raise RuntimeError(f"{m}: {error}")
        return elapsed

    return _interleaved(methods, once, samples, max(1, min_elements // hops), hops)


def cell_probe(method: str, limit: int) -> dict[str, Any]:
    """Longest chain (up to ``limit`` hops) that settles when built on a pending root."""
    hop = _hop_builder(method)
    logging.getLogger("concurrent.futures").disabled = True
    lo, hi = 0, limit + 1  # lo works (trivially), hi fails
    first_error = ""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        _, end = _run_chain(hop, mid, pending=True)
        error = _chain_error(end, mid)
        if error is None:
            lo = mid
        else:
            hi = mid
            first_error = first_error or error
    return {"max_hops": lo, "limit": limit, "error": first_error}


def run_child(spec: str) -> None:
    args = json.loads(spec)
    kind = args.pop("kind")
    cells: dict[str, Callable[..., dict[str, Any]]] = {"gather": cell_gather, "hops": cell_hops, "probe": cell_probe}
    try:
        result = cells[kind](**args)
    except RecursionError as exc:
        result = {"error": f"RecursionError: {exc}"}
    except Exception as exc:
        result = {"error": f"{exc}" if isinstance(exc, RuntimeError) else f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result))


# --------------------------------------------------------------------------- the parent


def run_cell(kind: str, timeout: float, **args: Any) -> dict[str, Any]:
    spec = json.dumps({"kind": kind, **args})
    try:
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--cell", spec],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timeout (> {timeout:.0f} s)"}
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": f"crashed (exit {proc.returncode}): {tail[:80]}"}
    lines = proc.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {"error": "no output"}


def fmt_ns(seconds: float) -> str:
    return f"{seconds * 1e9:8.0f}"


def fmt_n(n: int) -> str:
    exp = len(str(n)) - 1
    return f"1e{exp}" if n == 10**exp else (f"{n // 1000}k" if n % 1000 == 0 else str(n))


def _fmt_cell(r: dict[str, Any], m: str) -> str:
    if m in r and isinstance(r[m], dict) and "median" in r[m]:
        return fmt_ns(r[m]["median"])
    return f"{'FAIL':>8}"


def _paired(r: dict[str, Any], a: str, b: str) -> float:
    return float(r.get("paired", {}).get(f"{a}/{b}", float("nan")))


def bench_gather(sizes: list[int], samples: int, min_elements: int, timeout: float) -> list[str]:
    misses: list[str] = []
    print(
        "\n== gather_all: ns per element (median); fk/raw = median of paired ratios;"
        " bytes per element beyond the inputs"
    )
    print("   inputs = completing the inputs with no aggregate (pending mode only); f_seq = more_executors.f_sequence")
    print(
        f"{'mode':8} {'N':>5} | {'futurekit':>9} {'raw':>8} {'inputs':>8} {'f_seq':>8} | "
        f"{'fk/raw':>6} {'f_seq/raw':>9} | {'fk held':>7} {'fk peak':>7} {'raw peak':>8} {'fseq peak':>9}"
    )
    nan = float("nan")
    for mode in ("pending", "done"):
        per_n: dict[int, float] = {}
        for n in sizes:
            ours = ["futurekit", "raw"] + (["inputs-only"] if mode == "pending" else [])
            r = run_cell("gather", timeout, methods=ours, mode=mode, n=n, samples=samples, min_elements=min_elements)
            mex = run_cell(
                "gather",
                timeout,
                methods=["more_executors"],
                mode=mode,
                n=n,
                samples=samples,
                min_elements=min_elements,
            )
            r["more_executors"] = mex.get("more_executors", {"error": mex.get("error", "?")})
            ratio = _paired(r, "futurekit", "raw")
            fk_med = r.get("futurekit", {}).get("median")
            raw_med = r.get("raw", {}).get("median")
            mex_med = r["more_executors"].get("median")
            mex_ratio = mex_med / raw_med if mex_med and raw_med else nan
            peak = {m: r.get(m, {}).get("peak_bytes", nan) for m in ("futurekit", "raw", "more_executors")}
            held = r.get("futurekit", {}).get("held_bytes", nan)
            inputs = _fmt_cell(r, "inputs-only") if mode == "pending" else f"{'-':>8}"
            print(
                f"{mode:8} {fmt_n(n):>5} | {_fmt_cell(r, 'futurekit'):>9} {_fmt_cell(r, 'raw')} {inputs} "
                f"{_fmt_cell(r, 'more_executors')} | "
                f"{ratio:6.2f} {mex_ratio:9.2f} | {held:7.0f} {peak['futurekit']:7.0f} {peak['raw']:8.0f} "
                f"{peak['more_executors']:9.0f}"
            )
            for key in ("error",):
                if key in r:
                    print(f"         futurekit/raw cell: {r[key]}")
                    misses.append(f"gather_all {mode} N={fmt_n(n)}: {r[key]}")
            if "error" in r["more_executors"]:
                print(f"         more_executors: {r['more_executors']['error']}")
            if fk_med is not None:
                per_n[n] = fk_med
            if ratio == ratio and ratio > GATHER_RATIO_TARGET:
                misses.append(
                    f"gather_all {mode} N={fmt_n(n)}: {ratio:.2f}x raw countdown (target <= {GATHER_RATIO_TARGET}x)"
                )
            fk_mem = max(held, peak["futurekit"])
            if fk_mem == fk_mem and fk_mem > GATHER_BYTES_TARGET:
                misses.append(
                    f"gather_all {mode} N={fmt_n(n)}: {fk_mem:.0f} B/element (target <= {GATHER_BYTES_TARGET})"
                )
        if len(per_n) >= 2:
            lo, hi = min(per_n), max(per_n)
            growth = per_n[hi] / per_n[lo]
            worst = max(per_n, key=lambda k: per_n[k])
            extra_ns = (per_n[worst] - per_n[lo]) * 1e9
            print(
                f"         linearity ({mode}): ns/element at {fmt_n(hi)} is {growth:.2f}x that at {fmt_n(lo)}; "
                f"worst {fmt_n(worst)} at {per_n[worst] / per_n[lo]:.2f}x (+{extra_ns:.0f} ns/element)"
            )
            # Non-linear means the per-element cost grows with N by a real amount; a
            # few tens of ns from cache misses on large, scattered inputs is not that.
            if per_n[worst] / per_n[lo] > 1.5 and extra_ns > 100:
                misses.append(
                    f"gather_all {mode}: per-element time grows {per_n[worst] / per_n[lo]:.2f}x "
                    f"(+{extra_ns:.0f} ns) from {fmt_n(lo)} to {fmt_n(worst)} (not linear)"
                )
    return misses


def bench_hops(hop_counts: list[int], samples: int, min_elements: int, timeout: float) -> list[str]:
    misses: list[str] = []
    nan = float("nan")
    print("\n== then / chain: ns per hop (median); fk/raw = median of paired ratios to the trampolined raw chain")
    print("   raw+cancel: the raw then-chain plus an output->input cancel link (what rule 5 costs), for reference")
    print(
        f"{'op':6} {'root':8} {'hops':>5} | {'futurekit':>9} {'raw':>8} {'raw+cncl':>8} {'more_ex':>8} | "
        f"{'fk/raw':>6} {'fk/r+c':>6} {'mex/raw':>7}"
    )
    for fk_m, raw_m, mex_m in (("then", "raw-then", "f_map"), ("chain", "raw-chain", "f_flat_map")):
        probe = run_cell("probe", timeout, method=mex_m, limit=2000)
        for mode in ("pending", "done"):
            for hops in hop_counts:
                ours = [fk_m, raw_m] + (["raw-then+cancel"] if fk_m == "then" else [])
                r = run_cell(
                    "hops", timeout, methods=ours, mode=mode, hops=hops, samples=samples, min_elements=min_elements
                )
                mex = run_cell(
                    "hops", timeout, methods=[mex_m], mode=mode, hops=hops, samples=samples, min_elements=min_elements
                )
                r[mex_m] = mex.get(mex_m, {"error": mex.get("error", "?")})
                ratio = _paired(r, fk_m, raw_m)
                ratio_c = _paired(r, fk_m, "raw-then+cancel")
                raw_med = r.get(raw_m, {}).get("median")
                mex_med = r[mex_m].get("median")
                mex_ratio = mex_med / raw_med if mex_med and raw_med else nan
                cancel_col = _fmt_cell(r, "raw-then+cancel") if fk_m == "then" else f"{'-':>8}"
                print(
                    f"{fk_m:6} {mode:8} {fmt_n(hops):>5} | {_fmt_cell(r, fk_m):>9} {_fmt_cell(r, raw_m)} {cancel_col} "
                    f"{_fmt_cell(r, mex_m)} | {ratio:6.2f} {ratio_c:6.2f} {mex_ratio:7.2f}"
                )
                if "error" in r:
                    print(f"         {fk_m}/{raw_m} cell: {r['error']}")
                    misses.append(f"{fk_m} {mode} root, {fmt_n(hops)} hops: {r['error']}")
                if "error" in r[mex_m]:
                    print(f"         {r[mex_m]['error']}")
                if ratio == ratio and ratio > HOP_RATIO_TARGET:
                    misses.append(
                        f"{fk_m} {mode} root, {fmt_n(hops)} hops: {ratio:.2f}x raw chain"
                        f" (target <= {HOP_RATIO_TARGET}x)"
                    )
        if "max_hops" in probe:
            what = f"works up to {probe['max_hops']} hops" + (
                f", then {probe['error']}" if probe["error"] else f" (all <= {probe['limit']} tried)"
            )
        else:
            what = f"probe failed: {probe.get('error')}"
        print(f"         {mex_m} on a pending root {what}")
    return misses


def bench_import(runs: int) -> list[str]:
    # No PYTHON* variables: in particular PYTHONDONTWRITEBYTECODE would make every
    # run recompile the modules whose .pyc is stale.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    pattern = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s+)(\S.*)$")
    cumulative: dict[str, list[float]] = {}
    selfs: dict[str, list[float]] = {}
    wall_import: list[float] = []
    wall_bare: list[float] = []
    subprocess.run([sys.executable, "-c", "import futurekit"], env=env, timeout=60, check=True)  # write .pyc files
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import futurekit"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=True,
        )
        for line in proc.stderr.splitlines():
            m = pattern.match(line)
            if m:
                name = m.group(4).strip()
                selfs.setdefault(name, []).append(int(m.group(1)) / 1000)
                cumulative.setdefault(name, []).append(int(m.group(2)) / 1000)
        for code, sink in (("import futurekit", wall_import), ("pass", wall_bare)):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=env, timeout=60, check=True)
            sink.append((time.perf_counter() - t0) * 1000)
    med = {name: statistics.median(v) for name, v in cumulative.items()}
    cum = med.get("futurekit", float("nan"))
    base = med.get("concurrent.futures", 0.0)
    wall = statistics.median(wall_import) - statistics.median(wall_bare)
    print(f"\n== import futurekit (fresh processes, .pyc files written, medians of {runs})")
    print(
        f"   -X importtime cumulative:  {cum:6.1f} ms   (of which concurrent.futures {base:.1f} ms;"
        f" futurekit beyond it {cum - base:.1f} ms)"
    )
    print(
        f"   wall, over a bare start:   {wall:6.1f} ms   (bare interpreter start {statistics.median(wall_bare):.1f} ms)"
    )
    own = sorted(((v, n) for n, v in med.items() if n.startswith("futurekit.")), reverse=True)
    print("   futurekit modules (cumulative): " + ", ".join(f"{n} {v:.1f}" for v, n in own))
    heavy = sorted(((statistics.median(v), n) for n, v in selfs.items()), reverse=True)[:8]
    print("   heaviest modules (self time):   " + ", ".join(f"{n} {v:.1f}" for v, n in heavy))
    return (
        [f"import futurekit: {cum:.1f} ms cumulative (target <= {IMPORT_MS_TARGET} ms)"]
        if cum > IMPORT_MS_TARGET
        else []
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller sizes and fewer repeats (about two minutes; the full run takes 15-30)",
    )
    parser.add_argument("--cell", help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=("gather", "hops", "import"), action="append", help="run only these parts")
    args = parser.parse_args(argv)
    if args.cell:
        run_child(args.cell)
        return 0

    if args.quick:
        sizes, hop_counts, samples, min_elements, timeout, import_runs = (
            [10**3, 10**4, 10**5],
            [100, 10**4, 5 * 10**4],
            3,
            20_000,
            60.0,
            3,
        )
    else:
        sizes, hop_counts, samples, min_elements = (
            [10**3, 10**4, 10**5, 10**6],
            [100, 10**3, 10**4, 5 * 10**4, 2 * 10**5],
            5,
            50_000,
        )
        timeout, import_runs = 300.0, 9
    parts = args.only or ["gather", "hops", "import"]
    import platform

    import futurekit

    print(
        f"futurekit {futurekit.__version__} on {platform.python_implementation()} {platform.python_version()},"
        f" {os.cpu_count()} CPUs"
    )
    print(f"medians of {samples} samples; each sample covers >= {min_elements:,} elements/hops; GC off while timing")
    misses: list[str] = []
    started = time.perf_counter()
    if "gather" in parts:
        misses += bench_gather(sizes, samples, min_elements, timeout)
    if "hops" in parts:
        misses += bench_hops(hop_counts, samples, min_elements, timeout)
    if "import" in parts:
        misses += bench_import(import_runs)
    print(f"\n== targets ({time.perf_counter() - started:.0f} s)")
    if misses:
        for miss in misses:
            print("   MISS " + miss)
    else:
        print("   all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
