"""Executor.starmap: map's engine, one row of arguments per item, on every executor kind."""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from executor_helpers import on_threads
from map_helpers import CountingInput, ItemError, add, fail_on

import futurekit as fk
from futurekit import _map
from futurekit._process.chunks import Star

W = 2  # workers in every executor here (the executor fixture's default)
WIN = _map.WINDOW_PER_WORKER * W  # chunks in flight with the default window
WAIT = 10.0


def drain(it: Iterable[Any], got: list[Any]) -> None:
    """Append each value of ``it`` to ``got``, until it ends or raises (the values before an error are kept)."""
    for value in it:
        got.append(value)


def rows(n: int | None = None) -> Iterator[tuple[int, int]]:
    """Lazy rows (i, 10 * i), infinite when ``n`` is None."""
    source = itertools.count() if n is None else range(n)
    return ((i, 10 * i) for i in source)


class ChunkSizes:
    """Stands in for an executor's ``_submit_chunk``: records each chunk's size and function, then submits it."""

    def __init__(self, executor: fk.Executor) -> None:
        self.submit = executor._submit_chunk
        self.sizes: list[int] = []
        self.fns: list[Callable[..., Any]] = []
        self.lock = threading.Lock()

    def __call__(self, fn: Callable[..., Any], chunk: list[Any]) -> cf.Future[Any]:
        with self.lock:
            self.sizes.append(len(chunk))
            self.fns.append(fn)
        return self.submit(fn, chunk)


# --- results --------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunksize", [None, 1, 7])
def test_results_in_input_order(executor: fk.Executor, chunksize: int | None) -> None:
    assert list(executor.starmap(add, rows(300), chunksize=chunksize)) == [11 * i for i in range(300)]


def test_rows_of_any_shape(executor: fk.Executor) -> None:
    # Rows of different shapes or lengths type-check as Any: tuple rows are checked against fn's parameters.
    mixed: list[Any] = [(1, 2), [3, 4], (5,), range(6, 8)]
    assert list(executor.starmap(add, mixed)) == [3, 7, 5, 13]
    assert list(executor.starmap(add, zip(range(5), range(100, 103), strict=False))) == [100, 102, 104]
    lengths: list[tuple[Any, ...]] = [(2, 10), (3, 3, 5)]
    assert list(executor.starmap(pow, lengths, chunksize=2)) == [1024, 2]
    assert list(executor.starmap(add, [])) == []
    assert list(executor.starmap(add, iter([]), ordered=False)) == []


def test_a_one_tuple_row_is_one_argument(executor: fk.Executor) -> None:
    # Unlike map(fn, items), each row is unpacked: a row holding a tuple passes that tuple as one argument.
    assert list(executor.starmap(len, [((1, 2, 3),), ("ab",)])) == [3, 2]


def test_ordered_false_yields_every_result(executor: fk.Executor) -> None:
    got = list(executor.starmap(add, rows(500), ordered=False))
    assert sorted(got) == [11 * i for i in range(500)]


def test_explicit_chunksize_is_honoured_exactly(executor: fk.Executor, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = ChunkSizes(executor)
    monkeypatch.setattr(executor, "_submit_chunk", recorder)
    assert list(executor.starmap(add, rows(23), chunksize=5)) == [11 * i for i in range(23)]
    assert recorder.sizes == [5, 5, 5, 5, 3]
    assert all(isinstance(fn, Star) and fn.fn is add for fn in recorder.fns)  # one Star per chunk, C-speed unpacking


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunksize", [None, 1, 4])
@pytest.mark.parametrize("ordered", [True, False])
def test_error_raised_at_its_row_with_the_worker_frames(
    executor: fk.Executor, chunksize: int | None, ordered: bool
) -> None:
    got: list[int] = []
    with pytest.raises(ItemError, match="item 7") as info:
        drain(executor.starmap(fail_on, ((i, 7) for i in range(50)), chunksize=chunksize, ordered=ordered), got)
    if ordered:
        assert got == list(range(7))
    else:
        assert 7 not in got
    assert any(frame.name == "fail_on" for frame in traceback.extract_tb(info.value.__traceback__))


def test_a_row_that_does_not_fit_fails_at_its_place(executor: fk.Executor) -> None:
    got: list[int] = []
    too_long: list[tuple[Any, ...]] = [(1, 2), (3, 4), (1, 2, 3), (5, 6)]
    with pytest.raises(TypeError, match="add"):
        drain(executor.starmap(add, too_long, chunksize=2), got)
    assert got == [3, 7]
    got.clear()
    with pytest.raises(TypeError):
        drain(executor.starmap(add, [(1, 2), 5]), got)  # type: ignore[list-item]  # not a row at all
    assert got == [3]


def test_input_error_raised_after_earlier_results(executor: fk.Executor) -> None:
    def broken() -> Iterator[tuple[int, int]]:
        yield from rows(5)
        raise LookupError("input broke")

    got: list[int] = []
    with pytest.raises(LookupError, match="input broke"):
        drain(executor.starmap(add, broken(), chunksize=2), got)
    assert got == [0, 11, 22, 33, 44]


# --- laziness and bounds --------------------------------------------------------------------------


def test_lazy_on_an_infinite_input_reads_at_most_buffersize_ahead(executor: fk.Executor) -> None:
    source = CountingInput(rows())
    it = executor.starmap(add, source, buffersize=9, chunksize=3)
    ahead = [source.pulled]
    for consumed, value in enumerate(itertools.islice(it, 300)):
        assert value == 11 * consumed
        ahead.append(source.pulled - (consumed + 1))
    assert max(ahead) == 9
    it.close()  # type: ignore[attr-defined]
    pulled = source.pulled
    assert list(it) == []
    assert source.pulled == pulled


def test_default_window_is_bounded_on_an_infinite_input(executor: fk.Executor) -> None:
    source = CountingInput(rows())
    it = executor.starmap(add, source)
    cap = _map.MAX_AUTO_CHUNK if executor.remote else _map.LOCAL_MAX_CHUNK
    for consumed, value in enumerate(itertools.islice(it, 5000)):
        assert value == 11 * consumed
        assert source.pulled - (consumed + 1) <= (WIN + 1) * cap
    it.close()  # type: ignore[attr-defined]


@on_threads
def test_close_cancels_what_has_not_started(executor: fk.Executor) -> None:
    gate = threading.Event()
    started: list[int] = []

    def held(i: int, _: int) -> int:
        started.append(i)
        assert gate.wait(WAIT)
        return i

    it = executor.starmap(held, rows(), buffersize=6, chunksize=1)
    it.close()  # type: ignore[attr-defined]  # closed before a result was asked for: the window runs on
    gate.set()
    it = executor.starmap(held, rows(100), buffersize=6, chunksize=1)
    assert next(it) == 0
    it.close()  # type: ignore[attr-defined]
    executor.shutdown(wait=True)
    assert len(started) <= 6 + 7  # nothing beyond the two windows ran


# --- arguments ------------------------------------------------------------------------------------


def test_arguments_are_checked_at_the_call(executor: fk.Executor) -> None:
    bad_values: list[dict[str, Any]] = [{"chunksize": 0}, {"buffersize": 0}, {"chunksize": -1}]
    for kwargs in [*bad_values, {"chunksize": 5, "buffersize": 4}]:
        with pytest.raises(ValueError, match=r"chunksize|buffersize"):
            executor.starmap(add, rows(), **kwargs)
    bad_types: list[dict[str, Any]] = [{"chunksize": "2"}, {"buffersize": 1.5}, {"chunksize": True}]
    for kwargs in bad_types:
        with pytest.raises(TypeError, match=r"chunksize|buffersize"):
            executor.starmap(add, rows(), **kwargs)
    with pytest.raises(TypeError, match="progress"):
        executor.starmap(add, rows(), progress="yes")  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        executor.starmap(add, 5)  # type: ignore[call-overload]  # not iterable
    with pytest.raises(TypeError):
        executor.starmap(add, rows(), rows())  # type: ignore[call-overload]  # one iterable of rows, not several


def test_after_shutdown_raises_runtime_error(executor: fk.Executor) -> None:
    executor.shutdown()
    source = CountingInput(rows())
    with pytest.raises(RuntimeError, match="shutdown"):
        executor.starmap(add, source)
    assert source.pulled == 0
