"""Typing tests for the executor: checked by mypy (tests/test_static.py), never executed.

Must-fail lines are pinned with ``# type: ignore[code]``; with
warn_unused_ignores on, a line that stops failing is itself an error.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, assert_type

import futurekit as fk


def add(a: int, b: int = 0) -> int:
    return a + b


def greet(name: str, *, punct: str = "!") -> str:
    return name + punct


def nothing() -> None:
    return None


def on_progress(done: int, total: int | None) -> None:
    print(done, total)


def on_progress_str(done: str, total: int | None) -> None:
    print(done, total)


any_rows: list[Any] = [(1, 2)]
loose_rows: list[tuple[Any, ...]] = [(1, 2)]


ex = fk.threads(max_workers=2)
px = fk.processes(max_workers=2, mp_context="spawn", max_tasks_per_child=10)
wrapped = fk.Executor(ThreadPoolExecutor(), remote=False)

# ----------------------------------------------------------------------------- constructors
assert_type(ex, fk.Executor)
assert_type(px, fk.Executor)
assert_type(wrapped, fk.Executor)
base: concurrent.futures.Executor = ex  # a drop-in subclass
assert_type(ex.max_workers, int | None)
assert_type(ex.remote, bool)
assert_type(ex.inner, concurrent.futures.Executor)
fk.threads(max_workers="2")  # type: ignore[arg-type]
fk.processes(initargs=[1])  # type: ignore[arg-type]
fk.Executor(ThreadPoolExecutor(), remote="yes")  # type: ignore[arg-type]
fk.Executor(ThreadPoolExecutor(), True)  # type: ignore[call-arg]

# ----------------------------------------------------------------------------- submit (ParamSpec)
assert_type(ex.submit(add, 1), Future[int])
assert_type(ex.submit(add, 1, 2), Future[int])
assert_type(ex.submit(add, 1, b=2), Future[int])
assert_type(px.submit(greet, "a", punct="?"), Future[str])
assert_type(ex.submit(nothing), Future[None])
assert_type(ex.submit(len, "abc"), Future[int])
ex.submit(add, "1")  # type: ignore[arg-type]
ex.submit(add)  # type: ignore[call-arg]
ex.submit(add, 1, 2, 3)  # type: ignore[call-arg]
ex.submit(add, 1, c=2)  # type: ignore[call-arg]
ex.submit(greet, "a", "?")  # type: ignore[call-arg]
ex.submit(greet, "a", punct=1)  # type: ignore[arg-type]
ex.submit(fn=add, a=1)  # type: ignore[call-arg]
x: Future[str] = ex.submit(add, 1)  # type: ignore[arg-type]

# ----------------------------------------------------------------------------- map
assert_type(ex.map(add, [1, 2], [3, 4]), Iterator[int])
assert_type(ex.map(greet, ["a"], timeout=1.0, chunksize=2, buffersize=8, ordered=False), Iterator[str])
assert_type(px.map(add, range(10), chunksize=None), Iterator[int])
ex.map(add, [1], chunksize="2")  # type: ignore[arg-type]
ex.map(add, [1], buffersize=1.5)  # type: ignore[arg-type]
ex.map(add, [1], ordered=None)  # type: ignore[arg-type]
assert_type(ex.map(add, [1], progress=True), Iterator[int])
assert_type(ex.map(add, [1], progress=None), Iterator[int])
assert_type(ex.map(add, [1], progress=on_progress), Iterator[int])
assert_type(ex.map(add, [1], progress=lambda done, total: print(done, total or "?")), Iterator[int])
ex.map(add, [1], progress=1)  # type: ignore[arg-type]
ex.map(add, [1], progress="yes")  # type: ignore[arg-type]
ex.map(add, [1], progress=on_progress_str)  # type: ignore[arg-type]

# ----------------------------------------------------------------------------- starmap (TypeVarTuple)
# Each tuple row is checked against fn's parameters; rows that are lists are accepted unchecked.
assert_type(ex.starmap(add, [(1, 2), (3, 4)]), Iterator[int])
assert_type(ex.starmap(add, [(1,)]), Iterator[int])  # b has a default
assert_type(ex.starmap(add, zip([1, 2], [3, 4], strict=True)), Iterator[int])
assert_type(ex.starmap(add, enumerate([5, 6])), Iterator[int])
assert_type(ex.starmap(greet, [("a",), ("b",)]), Iterator[str])
assert_type(ex.starmap(nothing, [()]), Iterator[None])
assert_type(px.starmap(add, iter([(1, 2)]), timeout=1.0, chunksize=2, buffersize=8, ordered=False), Iterator[int])
assert_type(ex.starmap(add, [(1, 2)], progress=on_progress), Iterator[int])
assert_type(ex.starmap(add, [[1, 2], [3]]), Iterator[int])  # list rows: unchecked
assert_type(ex.starmap(add, any_rows), Iterator[int])
assert_type(ex.starmap(add, loose_rows), Iterator[int])
ex.starmap(add, [("1", 2)])  # type: ignore[arg-type]
ex.starmap(add, [(1, 2, 3)])  # type: ignore[arg-type]
ex.starmap(add, [()])  # type: ignore[arg-type]
ex.starmap(greet, [(1,)])  # type: ignore[arg-type]
ex.starmap(add, [1, 2])  # type: ignore[list-item]
ex.starmap(add, [(1, 2)], [(3, 4)])  # type: ignore[call-overload]
ex.starmap(add, [(1, 2)], chunksize="2")  # type: ignore[call-overload]
ex.starmap(add, [(1, 2)], progress=1)  # type: ignore[call-overload]
y: Iterator[str] = ex.starmap(add, [(1, 2)])  # type: ignore[arg-type]

# ----------------------------------------------------------------------------- shutdown / with
ex.shutdown()
ex.shutdown(wait=False, cancel_futures=True)
ex.shutdown(False, True)  # type: ignore[call-arg]
with fk.threads() as inside:
    assert_type(inside, fk.Executor)
