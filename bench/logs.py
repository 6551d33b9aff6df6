"""Worker logs benchmark: what forwarding a log record from a fk.processes() worker to the parent costs (a script).

    .venv/bin/python bench/logs.py            # full run (about 1 minute)
    .venv/bin/python bench/logs.py --quick    # fewer rounds and records (about 15 s)

Compared in the same run, each on a pool of one "forkserver" worker, warmed up:

  * fk: ``fk.processes(forward_logs=True)`` (the default): the worker's root logger has futurekit's
    forwarder, which sends each record on the worker's result pipe as it is emitted; the parent's reader
    thread calls ``logging.getLogger(name).handle(record)``.
  * recipe: the stdlib's usual recipe (the logging cookbook's "logging to a single file from multiple
    processes"): ``fk.processes(forward_logs=False)`` whose initializer puts a
    ``logging.handlers.QueueHandler`` over a ``multiprocessing.Queue`` on the worker's root logger, and a
    ``QueueListener`` thread in the parent that hands each record to the sink.

In both, the sink is one counting handler in the parent (no I/O), on the logger ``bench`` (propagate off);
the listener of the recipe calls it directly. Each trial is one task that logs N records
(``log.warning("record %d of %s", i, "bench")``) and returns the time it spent doing so, measured in the
worker. Columns:

  * worker us/record: that time / N, the cost the task pays per record (for the recipe, only the enqueueing:
    pickling and writing happen on the queue's feeder thread, in parallel).
  * end to end records/s: N / (time from ``submit`` until the task's result is back *and* the sink has
    counted all N records). fk hands each record to the sink before the task's result (same pipe, in order).
  * dropped us/record: a task that logs N records at DEBUG while the level is WARNING (the parent's level,
    which fk's workers take at start), which ``isEnabledFor`` rejects before any record is made.

The cases run round-robin (one trial of each per round); tables show the median and the interquartile range
(IQR) over the rounds.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import multiprocessing
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import futurekit as fk  # noqa: E402 - after the path setup above

NAME = "bench"


def log_many(count: int, level: int) -> float:
    """In a worker: log ``count`` records at ``level`` on the ``bench`` logger; return the seconds it took."""
    log = logging.getLogger(NAME)
    start = time.perf_counter()
    for i in range(count):
        log.log(level, "record %d of %s", i, "bench")
    return time.perf_counter() - start


def install_queue_handler(queue: Any) -> None:
    """The recipe's worker side: the root logger sends to ``queue`` only, at the parent's level."""
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(queue)]
    root.setLevel(logging.WARNING)


class Sink(logging.Handler):
    """Counts records; ``wait(n)`` returns once it has counted ``n`` since the last ``reset``."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.cond = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.cond:
            self.count += 1
            self.cond.notify_all()

    def reset(self) -> None:
        with self.cond:
            self.count = 0

    def wait(self, n: int) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: self.count >= n, timeout=120):
                raise TimeoutError(f"only {self.count} of {n} records arrived")


def trial(ex: fk.Executor, sink: Sink, count: int, level: int) -> tuple[float, float]:
    """(seconds in the worker, seconds end to end) for one task logging ``count`` records at ``level``."""
    sink.reset()
    start = time.perf_counter()
    worker_seconds = ex.submit(log_many, count, level).result(timeout=300)
    if level >= logging.WARNING:
        sink.wait(count)
    return worker_seconds, time.perf_counter() - start


def summary(values: list[float]) -> str:
    """Median and IQR."""
    if len(values) < 2:
        return f"{values[0]:10.3f}"
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return f"{median:10.3f} (IQR {q1:.3f}-{q3:.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and records")
    args = parser.parse_args()
    rounds, count = (3, 5_000) if args.quick else (9, 20_000)

    bench = logging.getLogger(NAME)
    bench.setLevel(logging.WARNING)
    bench.propagate = False
    sink = Sink()
    bench.addHandler(sink)

    ctx = multiprocessing.get_context("forkserver")
    queue: Any = ctx.Queue()
    listener = logging.handlers.QueueListener(queue, sink)
    listener.start()
    pools = {
        "fk": fk.processes(1, mp_context=ctx),
        "recipe": fk.processes(
            1, mp_context=ctx, forward_logs=False, initializer=install_queue_handler, initargs=(queue,)
        ),
    }
    try:
        for ex in pools.values():  # warm up: start the worker, import everything
            trial(ex, sink, 1000, logging.WARNING)
            trial(ex, sink, 1000, logging.DEBUG)
        worker: dict[str, list[float]] = {name: [] for name in pools}
        rate: dict[str, list[float]] = {name: [] for name in pools}
        dropped: dict[str, list[float]] = {name: [] for name in pools}
        for _ in range(rounds):
            for name, ex in pools.items():
                in_worker, total = trial(ex, sink, count, logging.WARNING)
                worker[name].append(in_worker / count * 1e6)
                rate[name].append(count / total)
                in_worker, _total = trial(ex, sink, count, logging.DEBUG)
                dropped[name].append(in_worker / count * 1e6)
    finally:
        for ex in pools.values():
            ex.shutdown()
        listener.stop()

    print(f"Python {sys.version.split()[0]}, {count} records per trial, {rounds} rounds, medians (IQR)")
    print(f"{'case':<8} {'worker us/record':>32} {'end to end records/s':>40} {'dropped us/record':>32}")
    for name in pools:
        print(
            f"{name:<8} {summary(worker[name]):>32} {summary([r / 1000 for r in rate[name]]) + ' k':>40} "
            f"{summary(dropped[name]):>32}"
        )
    ratio = [a / b for a, b in zip(rate["fk"], rate["recipe"], strict=True)]
    print(f"fk / recipe end-to-end rate, per round: {summary(ratio)}")


if __name__ == "__main__":
    main()
