"""Shared benchmark machinery: statistics and tables, and the normal path now vs an older commit.

Imported by bench/stopping.py and bench/byvalue.py (``bench/`` is ``sys.path[0]`` when they run as scripts).

The comparison with an older commit: ``git worktree add`` checks that commit out into a temporary directory
under /tmp (removed at the end); each paired round runs the workloads once in a fresh subprocess importing
futurekit from this checkout and once in another importing it from the old one (``PYTHONPATH`` set to that
root; the child checks where futurekit came from, in itself and in a worker), alternating which goes first.
The child is this file run as a script (``--child N,M,REPS``): ``ex.submit(trivial)`` x N then wait all,
and ``list(ex.map(trivial, range(M)))``, on ``fk.processes(max_workers=2, mp_context="forkserver")``, each
REPS times after a warm-up; the median of each counts. Ratios are paired per round (time now / time before).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OVERHEAD_TARGET = 1.02

Run = dict[str, float]
# The normal-path workloads (submit N, map M, REPS runs in each child), full and --quick.
NORMAL_PATH_SIZES = {False: (4_000, 600_000, 5), True: (3_000, 400_000, 3)}


# --- task functions (module level: picklable by reference) ------------------------------------


def trivial(x: int = 0) -> int:
    return x + 1


def futurekit_file() -> str:
    import futurekit

    return str(futurekit.__file__)


# --- statistics and tables ----------------------------------------------------------------------


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """(Q1, median, Q3); with a single value all three are that value."""
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, med, q3 = statistics.quantiles(values, n=4)
    return q1, med, q3


def ratio(value: float) -> str:
    """``1.04x``; small ratios keep three decimals (``0.004x``), so they do not print as zero."""
    return f"{value:.2f}x" if value >= 0.1 else f"{value:.3f}x"


def spread(values: Sequence[float]) -> str:
    """Median ratio and IQR, e.g. ``1.04x (IQR 0.95-1.12x)``."""
    q1, med, q3 = quartiles(values)
    return f"{ratio(med)} (IQR {ratio(q1)[:-1]}-{ratio(q3)})"


def table(title: str, header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "  " + "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    print(f"\n{title}")
    print(line(header))
    print(line(["-" * w for w in widths]))
    for r in rows:
        print(line(r))
    sys.stdout.flush()


def paired_ratios(times: Sequence[float], base: Sequence[float]) -> list[float]:
    """Per-round ratios ``times / base`` (e.g. now / before)."""
    return [a / b for a, b in zip(times, base, strict=True)]


def verdicts(named_ratios: Sequence[tuple[str, Sequence[float]]], target: float = OVERHEAD_TARGET) -> str:
    """``submit 1.003x -> met; map 1.031x -> NOT met (...)``: median paired ratio against ``target``."""
    out = []
    for name, ratios in named_ratios:
        q1, med, q3 = quartiles(ratios)
        verdict = "met" if med <= target else "NOT met"
        if q1 <= target < q3:
            verdict += " (the IQR straddles the target: within the noise)"
        out.append(f"{name} {med:.3f}x -> {verdict}")
    return "; ".join(out)


# --- an older commit, fresh subprocesses, paired rounds -----------------------------------------


def git(*args: str) -> None:
    subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True)


@contextmanager
def worktree(commit: str) -> Iterator[Path]:
    """``commit`` checked out (detached) in a temporary directory under /tmp; removed afterwards."""
    old = Path(tempfile.mkdtemp(prefix="fk-before-"))
    try:
        git("worktree", "add", "--detach", str(old), commit)
        yield old
    finally:
        try:
            git("worktree", "remove", "--force", str(old))
        except subprocess.CalledProcessError:
            shutil.rmtree(old, ignore_errors=True)
            git("worktree", "prune")


def run_child(root: Path, script: Path, child_arg: str) -> Run:
    """Run ``script --child child_arg`` in a fresh interpreter importing futurekit from ``root``.

    The child prints one JSON object last, with ``file`` and ``worker_file`` (where futurekit came from, in
    the child and in one of its workers: both must be under ``root``) and the timings (floats).
    """
    env = dict(os.environ, PYTHONPATH=str(root))
    argv = [sys.executable, str(script), "--child", child_arg]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child for {root} failed ({proc.returncode}):\n{proc.stderr}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    expected = str(root / "futurekit" / "__init__.py")
    file, worker_file = out.pop("file"), out.pop("worker_file")
    if file != expected or worker_file != expected:
        raise RuntimeError(f"child for {root} imported futurekit from {file} (worker: {worker_file})")
    return {key: float(value) for key, value in out.items()}


def paired_rounds(rounds: int, before: str, run: Callable[[Path], Run]) -> tuple[list[Run], list[Run]]:
    """``run(root)`` for this checkout and for ``before``, ``rounds`` times, alternating which goes first."""
    now_runs: list[Run] = []
    old_runs: list[Run] = []
    with worktree(before) as old:
        for r in range(rounds):
            if r % 2 == 0:
                now_runs.append(run(ROOT))
                old_runs.append(run(old))
            else:
                old_runs.append(run(old))
                now_runs.append(run(ROOT))
    return now_runs, old_runs


# --- the normal path: submit and map of a trivial task on fk.processes() ------------------------


def normal_path_child(n_submit: int, m_map: int, reps: int) -> None:
    """Run in a fresh subprocess: time the two workloads with whatever futurekit PYTHONPATH gives; print JSON."""
    import futurekit as fk

    submit_times: list[float] = []
    map_times: list[float] = []
    with fk.processes(max_workers=2, mp_context="forkserver") as ex:
        worker_file = ex.submit(futurekit_file).result(timeout=60)
        for _ in range(2):  # warm-up: both workers started, both paths run
            cf.wait([ex.submit(trivial) for _ in range(1000)])
            list(ex.map(trivial, range(20_000)))
        for _ in range(reps):
            t0 = time.perf_counter()
            cf.wait([ex.submit(trivial) for _ in range(n_submit)])
            t1 = time.perf_counter()
            list(ex.map(trivial, range(m_map)))
            t2 = time.perf_counter()
            submit_times.append(t1 - t0)
            map_times.append(t2 - t1)
    out = {
        "file": str(fk.__file__),
        "worker_file": worker_file,
        "submit": statistics.median(submit_times),
        "map": statistics.median(map_times),
    }
    print(json.dumps(out))


def normal_path(title: str, feature: str, before: str, rounds: int, quick: bool) -> None:
    """Print the table of the normal path now vs ``before`` (the commit before ``feature``), and the verdicts."""
    n_submit, m_map, reps = NORMAL_PATH_SIZES[quick]
    script = Path(__file__).resolve()
    child_arg = f"{n_submit},{m_map},{reps}"
    now_runs, old_runs = paired_rounds(rounds, before, lambda root: run_child(root, script, child_arg))

    def median_of(runs: list[Run], key: str) -> float:
        return statistics.median(run[key] for run in runs)

    submit_ratios = paired_ratios([r["submit"] for r in now_runs], [r["submit"] for r in old_runs])
    map_ratios = paired_ratios([r["map"] for r in now_runs], [r["map"] for r in old_runs])
    rows = [
        (
            f"submit(trivial) x {n_submit:,}, wait all",
            f"{median_of(old_runs, 'submit') / n_submit * 1e6:.1f} us/task",
            f"{median_of(now_runs, 'submit') / n_submit * 1e6:.1f} us/task",
            spread(submit_ratios),
        ),
        (
            f"list(map(trivial, range({m_map:,})))",
            f"{m_map / median_of(old_runs, 'map'):,.0f} items/s",
            f"{m_map / median_of(now_runs, 'map'):,.0f} items/s",
            spread(map_ratios),
        ),
    ]
    table(
        f"{title}: normal path, fk.processes(max_workers=2), now vs before {feature} ({before}), "
        f"{rounds} paired rounds (fresh subprocess each, median of {reps} runs in each)",
        ("workload", f"before ({before})", "now", "time now/before (>1: slower)"),
        rows,
    )
    print(
        f"  target: not slower by more than 2% (median paired ratio <= {OVERHEAD_TARGET:.2f}): "
        + verdicts((("submit", submit_ratios), ("map", map_ratios)))
    )


# --- command line ---------------------------------------------------------------------------------


def parse_args(doc: str, quick_help: str, before: str, counts: Sequence[tuple[str, str]]) -> argparse.Namespace:
    """The scripts' common options (--quick, --parts, --before) and ``counts`` (integer options: name, help).

    Prints the machine line first. ``parts`` comes back as a set of integers.
    """
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--parts", default="1,2", help="comma-separated parts to run (default 1,2)")
    for name, text in counts:
        parser.add_argument(name, type=int, default=None, help=text)
    parser.add_argument("--before", default=before, help=f"part 2 baseline commit (default {before})")
    args = parser.parse_args()
    args.parts = {int(x) for x in args.parts.split(",")}
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {sys.platform}")
    return args


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        n, m, k = (int(x) for x in sys.argv[2].split(","))
        normal_path_child(n, m, k)
    else:
        sys.exit(f"usage: {sys.argv[0]} --child N,M,REPS (run by bench/stopping.py and bench/byvalue.py)")
