"""The showcase behind ``python -m futurekit``.

Its task functions live in this importable module (not in ``__main__``) so that
worker processes started by forkserver or spawn can import them by name.
"""

from __future__ import annotations

import importlib.util
import time
import traceback
from typing import Any

import futurekit as fk


def _slow_square(x: int) -> int:
    time.sleep(0.05 * x)
    return x * x


def _abs(x: int) -> int:
    """abs() for ints: abs itself is generic, which pyright cannot solve through map()'s Callable[..., T]."""
    return abs(x)


def _power(base: int, exponent: int) -> int:
    """base ** exponent, taking about a millisecond: enough for a progress bar to move."""
    time.sleep(0.001)
    return int(base**exponent)


def _parse(line: str) -> int:
    return _validate(line.strip())


def _validate(text: str) -> int:
    try:
        return int(text)
    except ValueError as exc:
        raise ValueError(f"line {text!r} is not a number") from exc


_INSTALL_TQDM = "pip install 'futurekit[progress]'"
_INSTALL_DASK = "pip install 'futurekit[dask]'"


def _first(title: str) -> None:
    print(f"\n== {title}")


def main() -> int:
    """Run the showcase and return the exit status."""
    print(f"futurekit {fk.__version__}: combinators for any executor, errors that never get lost.")

    with fk.threads(max_workers=4) as ex:
        _first("gather: wait for all, typed as a tuple; never blocks a thread")
        t0 = time.perf_counter()
        both = fk.gather(ex.submit(_slow_square, 2), ex.submit(str.upper, "done"))
        print(f"   gather(square(2), upper('done')) -> {both.result(timeout=10)}  in {time.perf_counter() - t0:.2f}s")

        _first("race: first to settle wins, the losers are cancelled")
        winner = fk.race(ex.submit(_slow_square, 3), ex.submit(_slow_square, 1))
        print(f"   race(square(3) slow, square(1) fast) -> {winner.result(timeout=10)}")

        _first("chain / then: compose without callbacks; 200,000 hops, no RecursionError")
        root = ex.submit(_slow_square, 1)
        f = fk.chain(root, lambda v: ex.submit(_slow_square, v + 1))  # 1 -> square(2) = 4
        g = fk.then(f, lambda v: v + 1)
        for _ in range(200_000):
            g = fk.then(g, lambda v: v)
        print(f"   chain(square(1), x -> square(x+1)) then +1, then 200,000 more hops -> {g.result(timeout=60)}")

        _first("timeout: a deadline on any future (one shared timer thread)")
        late = fk.timeout(ex.submit(_slow_square, 4), 0.05)
        try:
            late.result(timeout=10)
        except TimeoutError:
            print("   timeout(square(4) takes 0.2s, 0.05s) -> TimeoutError, and the input was cancelled")

    with fk.processes(max_workers=2) as pool:
        _first("processes().map: lazy, bounded, chunked automatically")
        t0 = time.perf_counter()
        total = sum(pool.map(_abs, (-i for i in range(100_000))))
        print(f"   sum(map(abs, 100,000 lazy items)) = {total}  in {time.perf_counter() - t0:.2f}s")

        _first("processes().starmap: one row of arguments per item, with a progress bar")
        rows = [(i, 2) for i in range(1_000)]  # a list has a len(): the bar shows the total
        if importlib.util.find_spec("tqdm") is not None:
            squares = sum(pool.starmap(_power, rows, progress=True))
        else:
            print(f"   (no tqdm: {_INSTALL_TQDM} shows a bar here)")
            squares = sum(pool.starmap(_power, rows))
        print(f"   sum(starmap(power, [(i, 2) for i < 1,000])) = {squares}")

        _first("a child's exception re-raises as its own type, with the child's frames")
        try:
            pool.submit(_parse, "12x").result(timeout=60)
        except ValueError as exc:
            print(f"   {type(exc).__name__}: {exc}   (cause: {exc.__cause__!r})")
            print("   full traceback, as the worker raised it:")
            text = "".join(traceback.format_exception(exc))
            print("     " + text.rstrip().replace("\n", "\n     "))

    _cluster()
    return 0


def _cluster() -> None:
    """The same combinators and map on a small local dask cluster, or one line on how to get dask."""
    _first("futurekit.dask.executor(client): the same code on a dask.distributed cluster")
    if importlib.util.find_spec("distributed") is None:
        print(f"   (no dask: {_INSTALL_DASK} runs this part on a local 2-worker cluster)")
        return
    import distributed

    t0 = time.perf_counter()
    # Worker processes, as a real cluster has: the error below crosses a process boundary. They start
    # in about half a second here; 127.0.0.1 only, and no fixed dashboard port.
    cluster: Any = distributed.LocalCluster(  # type: ignore[no-untyped-call]  # dask's constructors are untyped
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
    )
    try:
        client: Any = distributed.Client(cluster)  # type: ignore[no-untyped-call]  # as above
        try:
            _on_cluster(client, t0)
        finally:
            client.close()
    finally:
        cluster.close()


def _on_cluster(client: Any, t0: float) -> None:
    """The showcase's cluster part, on a connected client (imports futurekit.dask, which needs dask)."""
    import futurekit.dask

    with futurekit.dask.executor(client) as ex:
        print(f"   LocalCluster of 2 worker processes up in {time.perf_counter() - t0:.2f}s")
        both = fk.gather(ex.submit(_slow_square, 2), ex.submit(str.upper, "done"))
        print(f"   gather(square(2), upper('done')) -> {both.result(timeout=60)}")
        t0 = time.perf_counter()
        total = sum(ex.map(_abs, (-i for i in range(100_000))))
        print(f"   sum(map(abs, 100,000 lazy items)) = {total}  in {time.perf_counter() - t0:.2f}s")
        try:
            ex.submit(_parse, "12x").result(timeout=60)
        except ValueError as exc:
            print(f"   {type(exc).__name__}: {exc}   (raised on a dask worker; its frames:)")
            text = "".join(traceback.format_exception(exc))
            print("     " + text.rstrip().replace("\n", "\n     "))
