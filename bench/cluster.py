"""Cluster benchmark: futurekit.dask against dask's own client API and Client.get_executor() (not a test).

    .venv/bin/python bench/cluster.py            # full run
    .venv/bin/python bench/cluster.py --quick    # smaller sizes, fewer repeats

One LocalCluster (2 worker processes of 1 thread, 127.0.0.1 only) serves every case, in one run:

1. Per-task overhead, latency: ``submit`` then ``result()``, one task at a time (trivial task):
   futurekit.dask.executor vs client.submit(pure=False) vs client.get_executor().submit, and
   fk.processes(2) as a reference. Target: the adapter adds <= 10 % to client.submit.
2. Per-task overhead, throughput: submit N tasks, then wait for all (client.gather for dask's own).
3. map over N trivial items (x + 1): the adapter's lazy batched map vs client.map + client.gather vs
   client.get_executor().map, and fk.processes(2).map. client.map and get_executor().map send one dask
   task per item (about 1.7 ms each on a 2-CPU machine), so they run on ``--map-direct`` items and
   the table gives items/s for every case. Target: the adapter's map beats client.map.

Each figure is the median of ``--repeats`` runs taken round-robin across the cases of a part.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import dask
from distributed import Client, LocalCluster

import futurekit as fk
import futurekit.dask


def inc(x: int) -> int:
    return x + 1


def _median_of(cases: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    runs: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, case in cases.items():
            runs[name].append(case())
    return {name: statistics.median(values) for name, values in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--map-items", type=int, default=None)
    parser.add_argument("--map-direct", type=int, default=None)
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 5)
    latency_n = 50 if args.quick else 200
    throughput_n = 200 if args.quick else 1000
    map_items = args.map_items or (10_000 if args.quick else 100_000)
    map_direct = args.map_direct or (1_000 if args.quick else 5_000)

    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
        )
    client = Client(cluster)
    ex = futurekit.dask.executor(client)
    native = client.get_executor(pure=False)
    procs = fk.processes(2)
    for warm in (ex, procs):
        list(warm.map(inc, range(1000)))
    client.gather([client.submit(inc, i, pure=False) for i in range(100)])

    def latency(submit: Callable[[int], object], get: Callable[[object], object]) -> Callable[[], float]:
        def run() -> float:
            t0 = time.perf_counter()
            for i in range(latency_n):
                get(submit(i))
            return (time.perf_counter() - t0) / latency_n * 1e6

        return run

    def result(f: object) -> object:
        return f.result(timeout=60)  # type: ignore[attr-defined]

    part1 = _median_of(
        {
            "futurekit.dask submit": latency(lambda i: ex.submit(inc, i), result),
            "client.submit": latency(lambda i: client.submit(inc, i, pure=False), result),
            "get_executor().submit": latency(lambda i: native.submit(inc, i), result),
            "fk.processes(2) submit": latency(lambda i: procs.submit(inc, i), result),
        },
        repeats,
    )

    def throughput(kind: str) -> Callable[[], float]:
        def run() -> float:
            t0 = time.perf_counter()
            if kind == "fk":
                fs = [ex.submit(inc, i) for i in range(throughput_n)]
                for f in fs:
                    f.result(timeout=120)
            elif kind == "client":
                client.gather([client.submit(inc, i, pure=False) for i in range(throughput_n)])
            elif kind == "native":
                for f in [native.submit(inc, i) for i in range(throughput_n)]:
                    f.result(timeout=120)
            else:
                for f in [procs.submit(inc, i) for i in range(throughput_n)]:
                    f.result(timeout=120)
            return (time.perf_counter() - t0) / throughput_n * 1e6

        return run

    part2 = _median_of(
        {
            "futurekit.dask submit": throughput("fk"),
            "client.submit + gather": throughput("client"),
            "get_executor().submit": throughput("native"),
            "fk.processes(2) submit": throughput("procs"),
        },
        repeats,
    )

    def mapping(kind: str) -> Callable[[], float]:
        n = map_direct if kind in ("client", "native") else map_items

        def run() -> float:
            t0 = time.perf_counter()
            if kind == "fk":
                total = sum(ex.map(inc, range(n)))
            elif kind == "procs":
                total = sum(procs.map(inc, range(n)))
            elif kind == "client":
                total = sum(client.gather(client.map(inc, range(n), pure=False)))
            else:
                total = sum(native.map(inc, range(n)))
            assert total == n * (n + 1) // 2
            return n / (time.perf_counter() - t0)

        return run

    part3 = _median_of(
        {
            f"futurekit.dask map ({map_items:,} items)": mapping("fk"),
            f"client.map + gather ({map_direct:,} items)": mapping("client"),
            f"get_executor().map ({map_direct:,} items)": mapping("native"),
            f"fk.processes(2) map ({map_items:,} items)": mapping("procs"),
        },
        max(1, repeats // 2),
    )

    print(f"dask {dask.__version__}; LocalCluster 2 workers x 1 thread; median of {repeats} rounds")
    print("\n| 1. submit + result, one at a time | µs per task | vs client.submit |\n| --- | ---: | ---: |")
    base = part1["client.submit"]
    for name, value in part1.items():
        print(f"| {name} | {value:,.0f} | {value / base:.2f}x |")
    print("\n| 2. submit N, then wait for all | µs per task | vs client.submit + gather |\n| --- | ---: | ---: |")
    base = part2["client.submit + gather"]
    for name, value in part2.items():
        print(f"| {name} | {value:,.0f} | {value / base:.2f}x |")
    print("\n| 3. map, trivial items | items/s | vs client.map |\n| --- | ---: | ---: |")
    base = next(v for k, v in part3.items() if k.startswith("client.map"))
    for name, value in part3.items():
        print(f"| {name} | {value:,.0f} | {value / base:.1f}x |")

    ex.shutdown()
    native.shutdown()
    procs.shutdown()
    client.close()
    cluster.close()


if __name__ == "__main__":
    main()
