"""progress= on Executor.map, Executor.starmap and fk.as_completed: a callable, or a tqdm bar (progress=True)."""

from __future__ import annotations

import concurrent.futures as cf
import gc
import itertools
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import pytest
from executor_helpers import on_threads
from map_helpers import ItemError, add, fail_on_7, inc

import futurekit as fk

WAIT = 10.0


def drain(it: Iterable[Any], got: list[Any]) -> None:
    """Append each value of ``it`` to ``got``, until it ends or raises (the values before an error are kept)."""
    for value in it:
        got.append(value)


class Calls:
    """A progress callable recording each ``(done, total)`` and the thread it was called in."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []
        self.threads: set[int] = set()

    def __call__(self, done: int, total: int | None) -> None:
        self.calls.append((done, total))
        self.threads.add(threading.get_ident())

    def check(self, done: int, total: int | None) -> None:
        """Counts only grow; the last two calls (the last items, then the end) say ``done``; all in this thread."""
        counts = [d for d, _ in self.calls]
        assert counts == sorted(counts)
        assert {t for _, t in self.calls} == {total}
        assert self.calls[-2:] == [(done, total), (done, total)]
        assert self.threads == {threading.get_ident()}  # the consuming thread, never an engine's


class RecordingBar:
    """Stands in for ``tqdm.auto.tqdm``: records what futurekit asks of its bars."""

    bars: ClassVar[list[RecordingBar]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs
        self.n = 0
        self.closed = 0
        self.threads = {threading.get_ident()}
        RecordingBar.bars.append(self)

    def update(self, n: int = 1) -> None:
        self.n += n
        self.threads.add(threading.get_ident())

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
def bars(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[RecordingBar]]:
    """The bars progress=True makes while the test runs (tqdm.auto.tqdm replaced by RecordingBar)."""
    monkeypatch.setattr("tqdm.auto.tqdm", RecordingBar)
    RecordingBar.bars = []
    yield RecordingBar.bars
    RecordingBar.bars = []


# --- a callable ------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunksize", [None, 1, 7])
def test_callable_counts_items_with_a_total(executor: fk.Executor, chunksize: int | None) -> None:
    calls = Calls()
    assert list(executor.map(inc, range(300), chunksize=chunksize, progress=calls)) == list(range(1, 301))
    calls.check(300, 300)
    if chunksize == 7:  # counted per chunk, in items, not in chunks
        assert [d for d, _ in calls.calls[:-2]] == list(range(7, 300, 7))


@pytest.mark.parametrize("chunksize", [None, 4])
def test_callable_counts_items_without_a_total(executor: fk.Executor, chunksize: int | None) -> None:
    calls = Calls()
    source = (i for i in range(250))  # a generator has no len(): the total is unknown, and it is not counted
    assert sum(executor.map(inc, source, chunksize=chunksize, progress=calls)) == 250 * 251 // 2
    calls.check(250, None)


def test_total_is_the_shortest_input_and_unknown_if_any_has_no_length(executor: fk.Executor) -> None:
    calls = Calls()
    assert list(executor.map(add, range(10), [1, 2, 3], progress=calls)) == [1, 3, 5]
    calls.check(3, 3)
    calls = Calls()
    assert list(executor.map(add, range(3), itertools.count(), progress=calls)) == [0, 2, 4]
    calls.check(3, None)


def test_explicit_buffersize_counts_each_item(executor: fk.Executor) -> None:
    calls = Calls()
    assert list(executor.map(inc, range(20), buffersize=4, progress=calls)) == list(range(1, 21))
    assert calls.calls == [(d, 20) for d in range(1, 21)] + [(20, 20)]


def test_starmap_counts_rows(executor: fk.Executor) -> None:
    calls = Calls()
    rows = [(i, i) for i in range(100)]
    assert list(executor.starmap(add, rows, chunksize=3, progress=calls)) == [2 * i for i in range(100)]
    calls.check(100, 100)
    calls = Calls()
    assert sorted(executor.starmap(add, iter(rows), ordered=False, progress=calls)) == [2 * i for i in range(100)]
    calls.check(100, None)


@pytest.mark.parametrize("chunksize", [1, 50])
def test_closing_early_counts_the_items_taken(executor: fk.Executor, chunksize: int) -> None:
    calls = Calls()
    it = executor.map(inc, range(1000), chunksize=chunksize, progress=calls)
    assert [next(it) for _ in range(30)] == list(range(1, 31))  # in the middle of a chunk of 50
    it.close()  # type: ignore[attr-defined]
    calls.check(30, 1000)
    assert calls.calls.count((30, 1000)) == 2  # counted at close, then the end
    it.close()  # type: ignore[attr-defined]
    assert calls.calls[-1] == (30, 1000)  # once


def test_an_item_error_ends_the_count_before_it(executor: fk.Executor) -> None:
    calls = Calls()
    got: list[int] = []
    with pytest.raises(ItemError):
        drain(executor.map(fail_on_7, range(100), chunksize=3, progress=calls), got)
    assert got == list(range(7))
    calls.check(7, 100)


def test_the_end_is_reported_even_for_an_empty_input(executor: fk.Executor) -> None:
    calls = Calls()
    assert list(executor.map(inc, [], progress=calls)) == []
    assert calls.calls == [(0, 0)]


@on_threads
def test_an_error_in_the_callable_reaches_the_consumer_and_stops_the_map(executor: fk.Executor) -> None:
    def broken(done: int, total: int | None) -> None:
        if done >= 5:
            raise LookupError("progress broke")

    got: list[int] = []
    with pytest.raises(LookupError, match="progress broke"):
        drain(executor.map(inc, range(100), chunksize=5, progress=broken), got)
    assert got == [1, 2, 3, 4, 5]


@on_threads
def test_progress_off_calls_nothing(executor: fk.Executor, bars: list[RecordingBar]) -> None:
    for off in (None, False):
        assert list(executor.map(inc, range(10), progress=off)) == list(range(1, 11))
        assert list(executor.starmap(add, [(1, 2)], progress=off)) == [3]
        assert len(list(fk.as_completed([fk.completed(1)], progress=off))) == 1
    assert bars == []


# --- a tqdm bar (progress=True) ------------------------------------------------------------------------


def test_a_bar_counts_items_and_is_closed_at_the_end(executor: fk.Executor, bars: list[RecordingBar]) -> None:
    assert sum(executor.map(inc, range(500), progress=True)) == 500 * 501 // 2
    assert sum(executor.starmap(add, ((i, 1) for i in range(40)), chunksize=8, progress=True)) == 40 * 41 // 2
    first, second = bars
    assert first.kwargs["total"] == 500
    assert second.kwargs["total"] is None
    assert (first.n, second.n) == (500, 40)
    assert first.closed == second.closed == 1
    assert first.threads == second.threads == {threading.get_ident()}


@on_threads
def test_a_bar_is_closed_when_the_iterator_raises_is_closed_or_dropped(
    executor: fk.Executor, bars: list[RecordingBar], gc_disabled: None
) -> None:
    with pytest.raises(ItemError):
        list(executor.map(fail_on_7, range(100), chunksize=2, progress=True))
    it = executor.map(inc, range(100), chunksize=10, progress=True)
    assert next(it) == 1
    it.close()  # type: ignore[attr-defined]
    dropped = executor.map(inc, range(100), progress=True)
    del dropped  # never consumed: refcounting alone closes its bar
    held = threading.Event()
    try:
        with pytest.raises(TimeoutError):
            list(executor.map(held.wait, [WAIT], timeout=0.05, progress=True))
    finally:
        held.set()
    raised, closed, never_consumed, timed_out = bars
    assert (raised.n, closed.n, never_consumed.n, timed_out.n) == (7, 1, 0, 0)
    assert [bar.closed for bar in bars] == [1, 1, 1, 1]


@on_threads
def test_a_real_tqdm_bar_is_drawn_on_stderr(executor: fk.Executor, capsys: pytest.CaptureFixture[str]) -> None:
    assert list(executor.map(inc, range(50), chunksize=5, progress=True)) == list(range(1, 51))
    err = capsys.readouterr().err
    assert "50/50" in err
    assert "100%" in err


def test_missing_tqdm_raises_import_error_at_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # as if tqdm were not installed (restored after the test)
    with fk.threads(max_workers=1) as ex:
        for call in (
            lambda: ex.map(inc, range(3), progress=True),
            lambda: ex.starmap(add, [(1, 2)], progress=True),
            lambda: fk.as_completed([fk.completed(1)], progress=True),
        ):
            with pytest.raises(ImportError, match=r"pip install 'futurekit\[progress\]'") as info:
                call()
            assert info.value.name == "tqdm"


@pytest.mark.parametrize("wrong", [1, 0, "yes", 0.5, [True]])
def test_progress_of_a_wrong_type_raises_type_error_at_the_call(wrong: object) -> None:
    with fk.threads(max_workers=1) as ex:
        with pytest.raises(TypeError, match="progress must be"):
            ex.map(inc, range(3), progress=wrong)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="progress must be"):
            ex.starmap(add, [(1, 2)], progress=wrong)  # type: ignore[call-overload]
        with pytest.raises(TypeError, match="progress must be"):
            fk.as_completed([fk.completed(1)], progress=wrong)  # type: ignore[arg-type]


# --- as_completed --------------------------------------------------------------------------------------


def test_as_completed_counts_the_futures_taken() -> None:
    futures = [fk.completed(i) for i in range(5)]
    calls = Calls()
    assert len(list(fk.as_completed([*futures, futures[0]], timeout=WAIT, progress=calls))) == 5
    assert calls.calls == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5), (5, 5)]  # duplicates are not counted


def test_as_completed_counts_in_the_consuming_thread_as_futures_finish_elsewhere() -> None:
    late: cf.Future[int] = cf.Future()
    futures: list[fk.FutureLike[int]] = [fk.completed(i) for i in range(4)]
    calls = Calls()
    it = fk.as_completed([*futures, late], timeout=WAIT, progress=calls)
    assert {id(next(it)) for _ in range(4)} == {id(f) for f in futures}
    assert calls.calls == [(1, 5), (2, 5), (3, 5)]  # the 4th is counted when the consumer comes back
    finisher = threading.Thread(target=late.set_result, args=(9,))
    finisher.start()
    assert next(it) is late
    finisher.join(WAIT)
    assert list(it) == []
    calls.check(5, 5)


def test_as_completed_bar_is_closed_on_close_and_when_dropped_unstarted(bars: list[RecordingBar]) -> None:
    futures = [fk.completed(i) for i in range(4)]
    assert len(list(fk.as_completed(futures, progress=True))) == 4
    it = fk.as_completed(futures, progress=True)
    next(it)
    it.close()  # type: ignore[attr-defined]
    unstarted = fk.as_completed(futures, progress=True)
    unstarted.close()  # type: ignore[attr-defined]
    dropped = fk.as_completed(futures, progress=True)
    del dropped
    gc.collect()
    assert [(bar.kwargs["total"], bar.n, bar.closed) for bar in bars] == [(4, 4, 1), (4, 1, 1), (4, 0, 1), (4, 0, 1)]


def test_as_completed_timeout_closes_the_bar(bars: list[RecordingBar]) -> None:
    never: cf.Future[int] = cf.Future()
    it = fk.as_completed([fk.completed(1), never], timeout=0.01, progress=True)
    assert next(it).result() == 1
    with pytest.raises(TimeoutError):
        next(it)
    (bar,) = bars
    assert (bar.kwargs["total"], bar.n, bar.closed) == (2, 1, 1)
