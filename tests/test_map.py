"""Tests for the lazy, bounded, chunked map (futurekit._map.iter_map)."""

from __future__ import annotations

import concurrent.futures as cf
import copy
import gc
import itertools
import threading
import time
import weakref
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

import executor_helpers as h
import pytest
from executor_helpers import Kit, on_processes, on_threads
from map_helpers import CountingInput, CtrlC, ItemError, Recorder, Token, add, fail_on_7, inc, spin

import futurekit as fk
from futurekit import _map
from futurekit._map import iter_map
from futurekit._process import chunks as _chunks
from futurekit._process.chunks import run_items
from futurekit._process.payload import decode_chunk

WAIT = 10.0
W = 2  # workers in every executor here (the executor fixture's default)
WIN = _map.WINDOW_PER_WORKER * W  # chunks in flight with the default window

SubmitChunk = Callable[[Callable[..., Any], list[Any]], "cf.Future[Any]"]


def drain(it: Iterable[Any], got: list[Any]) -> None:
    """Append each value of ``it`` to ``got``, until it ends or raises (the values before an error are kept)."""
    for value in it:
        got.append(value)


def run(
    submit: SubmitChunk,
    fn: Callable[..., Any],
    *iterables: Iterable[Any],
    timeout: float | None = WAIT,
    chunksize: int | None = None,
    buffersize: int | None = None,
    ordered: bool = True,
    workers: int = W,
    auto_chunk: bool = True,
) -> Iterator[Any]:
    return iter_map(
        submit,
        fn,
        tuple(iterables),
        timeout=timeout,
        chunksize=chunksize,
        buffersize=buffersize,
        ordered=ordered,
        workers=workers,
        auto_chunk=auto_chunk,
    )


class GatedCall:
    """fn for thread pools: records each item that starts, blocks until opened (``opened.set()``)."""

    def __init__(self, free: Iterable[int] = ()) -> None:
        self.opened = threading.Event()
        self.started: list[int] = []
        self.free = set(free)
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)

    def __call__(self, x: int) -> int:
        with self.cond:
            self.started.append(x)
            self.cond.notify_all()
        if x not in self.free:
            assert self.opened.wait(WAIT)
        return x

    def wait_started(self, count: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.started) >= count, WAIT)


# --- order, shapes, empty input ---------------------------------------------------------------


@pytest.mark.parametrize("chunksize", [None, 1, 7])
@pytest.mark.parametrize("auto_chunk", [True, False])
def test_results_in_input_order(executor: fk.Executor, chunksize: int | None, auto_chunk: bool) -> None:
    rec = Recorder(executor)
    assert list(run(rec, inc, range(300), chunksize=chunksize, auto_chunk=auto_chunk)) == list(range(1, 301))
    assert sum(rec.sizes) == 300


def test_empty_input_submits_nothing(executor: fk.Executor) -> None:
    rec = Recorder(executor)
    assert list(run(rec, inc, [])) == []
    assert list(run(rec, inc, [], ordered=False)) == []
    assert list(run(rec, add, [], range(10), buffersize=3)) == []
    assert rec.sizes == []


@pytest.mark.parametrize("ordered", [True, False])
def test_multiple_iterables_stop_at_shortest(executor: fk.Executor, ordered: bool) -> None:
    rec = Recorder(executor)
    out = list(run(rec, add, range(10), range(100, 105), ordered=ordered))
    assert sorted(out) == [100, 102, 104, 106, 108]
    if ordered:
        assert out == [100, 102, 104, 106, 108]
    # an infinite second iterable is fine: zip stops at the shortest
    assert list(run(rec, add, range(3), itertools.count(10), chunksize=2)) == [10, 12, 14]


@on_threads
def test_arguments_validated_at_call_time(executor: fk.Executor) -> None:
    rec = Recorder(executor)
    for kwargs in ({"chunksize": 0}, {"buffersize": 0}, {"chunksize": -1}, {"chunksize": 5, "buffersize": 4}):
        with pytest.raises(ValueError, match=r"chunksize|buffersize"):
            run(rec, inc, range(10), **kwargs)  # type: ignore[arg-type]
    assert rec.sizes == []


# --- laziness and bounds -----------------------------------------------------------------------


@on_threads
def test_eager_start_runs_first_window_before_consumption(executor: fk.Executor) -> None:
    gate = GatedCall()
    source = CountingInput(range(100))
    it = run(Recorder(executor), gate, source, buffersize=5, auto_chunk=False)
    gate.wait_started(W)  # the workers started without anyone calling next()
    assert source.pulled == 5
    gate.opened.set()
    assert list(it) == list(range(100))


@pytest.mark.parametrize(
    ("chunksize", "auto_chunk", "bound"),
    [
        (1, False, (WIN + 1) * 1),
        (10, False, (WIN + 1) * 10),
        (None, False, (WIN + 1) * _map.LOCAL_MAX_CHUNK),
        (None, True, (WIN + 1) * _map.MAX_AUTO_CHUNK),
    ],
)
@on_threads
def test_default_window_is_bounded_on_infinite_input(
    executor: fk.Executor, chunksize: int | None, auto_chunk: bool, bound: int
) -> None:
    source = CountingInput(itertools.count())
    it = run(Recorder(executor), inc, source, chunksize=chunksize, auto_chunk=auto_chunk)
    ahead = []
    for consumed, value in enumerate(itertools.islice(it, 3000), start=1):
        assert value == consumed
        ahead.append(source.pulled - consumed)
    assert max(ahead) <= bound
    if chunksize is not None:
        assert max(ahead) >= WIN * chunksize  # the window is actually used
    pulled = source.pulled
    del it
    assert source.pulled == pulled


@on_processes
def test_default_window_bounded_on_infinite_input_processes(executor: fk.Executor) -> None:
    source = CountingInput(itertools.count())
    it = run(Recorder(executor), inc, source)
    for consumed, value in enumerate(itertools.islice(it, 20000), start=1):
        assert value == consumed
        assert source.pulled - consumed <= (WIN + 1) * _map.MAX_AUTO_CHUNK


@pytest.mark.parametrize(
    ("buffersize", "chunksize", "auto_chunk"),
    [(1, None, False), (7, None, False), (7, 3, False), (9, 3, False), (64, None, True), (5, 5, True)],
)
@pytest.mark.parametrize("ordered", [True, False])
@on_threads
def test_explicit_buffersize_caps_read_ahead_exactly(
    executor: fk.Executor, buffersize: int, chunksize: int | None, auto_chunk: bool, ordered: bool
) -> None:
    source = CountingInput(itertools.count())
    rec = Recorder(executor)
    it = run(rec, inc, source, buffersize=buffersize, chunksize=chunksize, auto_chunk=auto_chunk, ordered=ordered)
    ahead = [source.pulled]
    seen = []
    for consumed, value in enumerate(itertools.islice(it, 2000), start=1):
        seen.append(value)
        ahead.append(source.pulled - consumed)
    assert max(ahead) <= buffersize
    step = chunksize or 1
    if chunksize is None:
        cap = _map.MAX_AUTO_CHUNK if auto_chunk else _map.LOCAL_MAX_CHUNK
        step = max(1, min(cap, buffersize // WIN))
        assert max(rec.sizes) <= step
    assert max(ahead) > buffersize - step  # the cap is reached up to one chunk's granularity
    if buffersize % step == 0:
        assert max(ahead) == buffersize
    if ordered:
        assert seen == list(range(1, 2001))
    else:
        assert len(set(seen)) == 2000


# --- chunk sizes -------------------------------------------------------------------------------


@pytest.mark.parametrize("ordered", [True, False])
def test_explicit_chunksize_is_honoured_exactly(executor: fk.Executor, ordered: bool) -> None:
    rec = Recorder(executor)
    assert sorted(run(rec, inc, range(23), chunksize=5, ordered=ordered)) == list(range(1, 24))
    assert rec.sizes == [5, 5, 5, 5, 3]
    rec = Recorder(executor)
    assert list(run(rec, inc, range(10), chunksize=1, buffersize=4)) == list(range(1, 11))
    assert rec.sizes == [1] * 10


@on_threads
def test_thread_default_batches_quick_items_a_little(executor: fk.Executor) -> None:
    rec = Recorder(executor)
    assert list(run(rec, inc, range(3000), auto_chunk=False)) == list(range(1, 3001))
    assert rec.sizes[0] == 1
    assert max(rec.sizes) <= _map.LOCAL_MAX_CHUNK


@on_threads
def test_thread_default_keeps_slow_items_alone(executor: fk.Executor) -> None:
    rec = Recorder(executor)
    # 2 ms of CPU each: a chunk of n items takes >= 2n ms, over the 1 ms target, so no batching
    assert list(run(rec, spin, [0.002] * 30, auto_chunk=False)) == [0.002] * 30
    assert rec.sizes == [1] * 30


class FakeClock:
    """Replaces _map.monotonic: every reading advances by ``step`` seconds."""

    def __init__(self, step: float) -> None:
        self.now = 1000.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def inline_submit(fn: Callable[..., Any], chunk: list[Any]) -> cf.Future[Any]:
    """Runs the chunk at once in the calling thread."""
    fut: cf.Future[Any] = cf.Future()
    fut.set_result(run_items(fn, chunk))
    return fut


@pytest.mark.parametrize(("auto_chunk", "cap"), [(True, _map.MAX_AUTO_CHUNK), (False, _map.LOCAL_MAX_CHUNK)])
def test_auto_chunk_sizes_follow_measured_latency(monkeypatch: pytest.MonkeyPatch, auto_chunk: bool, cap: int) -> None:
    sizes: list[int] = []

    def submit(fn: Callable[..., Any], chunk: list[Any]) -> cf.Future[Any]:
        sizes.append(len(chunk))
        return inline_submit(fn, chunk)

    # quick: every chunk takes 1 us however big -> geometric growth up to the cap
    monkeypatch.setattr(_chunks, "monotonic", FakeClock(1e-6))  # the worker's clock
    n = 200_000
    assert sum(run(submit, inc, range(n), auto_chunk=auto_chunk)) == n * (n + 1) // 2
    assert sizes[:WIN] == [1] * WIN  # the first window is submitted before anything was measured
    for k, size in enumerate(sizes):  # growth bounded by the evidence: MAX_GROWTH x all items before
        assert size <= max(1, sum(sizes[:k]) * _map.MAX_GROWTH)
    first_full = sizes.index(cap)
    assert first_full <= 3 * WIN  # within a few windows
    assert all(size == cap for size in sizes[first_full:-1])  # then full chunks; only the last may be short
    # slow: every chunk takes 1 s -> one item per chunk
    sizes.clear()
    monkeypatch.setattr(_chunks, "monotonic", FakeClock(1.0))  # the worker's clock
    assert list(run(submit, inc, range(50), auto_chunk=auto_chunk, timeout=None)) == list(range(1, 51))
    assert sizes == [1] * 50


def test_auto_chunks_keep_messages_near_the_byte_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        _chunks, "monotonic", FakeClock(1e-6)
    )  # the worker's clock; quick items: time alone would give the cap
    monkeypatch.setattr(_map, "TARGET_CHUNK_BYTES", 10_000)
    sizes: list[int] = []

    def submit(fn: Callable[..., Any], chunk: list[Any]) -> cf.Future[Any]:
        sizes.append(len(chunk))
        values, err, seconds, _ = run_items(fn, chunk)
        fut: cf.Future[Any] = cf.Future()
        fut.set_result((values, err, seconds, 1000 * len(chunk)))  # as if each item pickled to 1 kB
        return fut

    assert sum(run(submit, inc, range(5000))) == 5000 * 5001 // 2
    assert sizes[:WIN] == [1] * WIN
    assert max(sizes) == 10  # 10 kB per chunk


def test_decode_chunk_reports_the_bytes_sent_and_received() -> None:
    import pickle

    data = pickle.dumps(([1, 2], None, 0.5))
    assert decode_chunk(data, str, 7) == ([1, 2], None, 0.5, 7 + len(data))


@on_processes
def test_auto_chunks_start_small_and_grow(executor: fk.Executor) -> None:
    rec = Recorder(executor)
    n = 60000
    assert sum(run(rec, inc, range(n))) == n * (n + 1) // 2
    assert rec.sizes[0] == 1
    assert max(rec.sizes) >= 16  # (exact growth is pinned with a fake clock below; this is a real executor)
    assert max(rec.sizes) <= _map.MAX_AUTO_CHUNK
    assert len(rec.sizes) < 100  # far fewer tasks than items
    # growth is bounded by MAX_GROWTH times the items of the chunks before
    for k, size in enumerate(rec.sizes):
        assert size <= max(1, sum(rec.sizes[:k]) * _map.MAX_GROWTH)


def test_auto_default_bound_is_reached_and_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        _chunks, "monotonic", FakeClock(1e-6)
    )  # the worker's clock; quick items: chunks grow to the cap
    monkeypatch.setattr(_map, "MAX_AUTO_CHUNK", 64)
    source = CountingInput(itertools.count())
    it = run(inline_submit, inc, source)
    ahead = []
    for consumed, value in enumerate(itertools.islice(it, 5000), start=1):
        assert value == consumed
        ahead.append(source.pulled - consumed)
    assert WIN * 64 <= max(ahead) <= (WIN + 1) * 64


@on_processes
def test_auto_chunks_stay_small_for_slow_items(executor: fk.Executor) -> None:
    rec = Recorder(executor)
    assert list(run(rec, spin, [0.005] * 40)) == [0.005] * 40
    # a chunk of n items takes >= 5n ms, so n * TARGET / latency <= TARGET / 5 ms items
    assert max(rec.sizes) <= max(1, int(_map.TARGET_CHUNK_SECONDS / 0.005))


@on_processes
def test_auto_chunks_respect_explicit_buffersize(executor: fk.Executor) -> None:
    rec = Recorder(executor)
    source = CountingInput(range(5000))
    for consumed, _ in enumerate(run(rec, inc, source, buffersize=100), start=1):
        assert source.pulled - consumed <= 100
    assert max(rec.sizes) <= 100 // WIN


# --- ordered=False -----------------------------------------------------------------------------


@on_threads
def test_unordered_yields_as_completed(executor: fk.Executor) -> None:
    gate = GatedCall(free=range(1, 10))  # item 0 blocks, the rest run freely
    it = run(Recorder(executor), gate, range(10), ordered=False, chunksize=1, auto_chunk=False)
    first = [next(it) for _ in range(9)]
    assert sorted(first) == list(range(1, 10))
    gate.opened.set()
    assert list(it) == [0]


@on_threads
def test_ordered_waits_for_the_head(executor: fk.Executor) -> None:
    gate = GatedCall(free=range(1, 4))
    it = run(Recorder(executor), gate, range(4), chunksize=1, auto_chunk=False, timeout=None)
    gate.wait_started(4)  # all started; 1..3 are done, 0 blocks
    done = threading.Event()
    got: list[int] = []

    def consume() -> None:
        got.extend(it)
        done.set()

    t = threading.Thread(target=consume)
    t.start()
    assert not done.wait(0.05)  # nothing may be yielded before item 0
    assert got == []
    gate.opened.set()
    assert done.wait(WAIT)
    t.join(WAIT)
    assert got == [0, 1, 2, 3]


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunksize", [None, 1, 3, 50])
@pytest.mark.parametrize("buffersize", [None, 6])
def test_error_raised_at_its_item_after_earlier_results(
    executor: fk.Executor, chunksize: int | None, buffersize: int | None
) -> None:
    if chunksize is not None and buffersize is not None and chunksize > buffersize:
        chunksize = buffersize
    it = run(Recorder(executor), fail_on_7, range(100), chunksize=chunksize, buffersize=buffersize)
    got: list[int] = []
    with pytest.raises(ItemError, match="item 7") as info:
        drain(it, got)
    assert got == list(range(7))
    assert list(it) == []  # the iteration is over
    if not executor.remote:  # the worker's frame is in the traceback
        assert any(tb.name == "fail_on" for tb in _frames(info.value.__traceback__))


def _frames(tb: Any) -> list[Any]:
    import traceback

    return list(traceback.extract_tb(tb))


@on_threads
def test_unordered_error_raised_in_completion_order(executor: fk.Executor) -> None:
    it = run(Recorder(executor), fail_on_7, range(8), ordered=False, auto_chunk=False, buffersize=8)
    got: list[int] = []
    with pytest.raises(ItemError):
        drain(it, got)
    assert set(got) <= set(range(7))


@on_threads
def test_error_cancels_the_rest(executor: fk.Executor) -> None:
    gate = GatedCall(free=[0])
    rec = Recorder(executor)

    def fn(x: int) -> int:
        if x == 1:
            raise ItemError("one")
        return gate(x)

    it = run(rec, fn, range(20), buffersize=10, chunksize=1, auto_chunk=False)
    assert next(it) == 0
    with pytest.raises(ItemError):
        next(it)
    gate.opened.set()
    cf.wait(rec.futures, WAIT)
    assert sum(f.cancelled() for f in rec.futures) >= 10 - 2 - W
    assert len(gate.started) <= 2 + W + 1


@on_threads
def test_chunk_future_failure_fails_its_items(executor: fk.Executor) -> None:
    calls = 0

    def submit(fn: Callable[..., Any], chunk: list[Any]) -> cf.Future[Any]:
        nonlocal calls
        calls += 1
        if calls == 3:  # the third chunk's task "crashes"
            fut: cf.Future[Any] = cf.Future()
            fut.set_exception(cf.process.BrokenProcessPool("worker died"))
            return fut
        return executor.submit(run_items, fn, chunk)

    got: list[int] = []
    with pytest.raises(cf.process.BrokenProcessPool):
        drain(run(submit, inc, range(20), chunksize=2), got)
    assert got == [1, 2, 3, 4]


@on_threads
def test_cancelled_chunk_raises_cancelled_error(executor: fk.Executor) -> None:
    gate = GatedCall()
    rec = Recorder(executor)
    it = run(rec, gate, range(10), buffersize=6, chunksize=1, auto_chunk=False)
    gate.wait_started(W)
    assert rec.futures[3].cancel()
    gate.opened.set()
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(cf.CancelledError):
        next(it)


@on_threads
def test_submit_error_first_chunk_raises_from_map(executor: fk.Executor) -> None:
    executor.shutdown()
    with pytest.raises(RuntimeError):
        run(Recorder(executor), inc, range(10))


@on_threads
def test_submit_error_later_chunk_raises_in_order(executor: fk.Executor) -> None:
    calls = 0

    def submit(fn: Callable[..., Any], chunk: list[Any]) -> cf.Future[Any]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise TypeError("cannot pickle")
        return executor.submit(run_items, fn, chunk)

    it = run(submit, inc, range(10), chunksize=3)
    assert [next(it) for _ in range(3)] == [1, 2, 3]
    with pytest.raises(TypeError, match="cannot pickle"):
        next(it)
    assert calls == 2


def failing_input(n: int, exc: BaseException) -> Generator[int, None, None]:
    yield from range(n)
    raise exc


@pytest.mark.parametrize("chunksize", [None, 1, 3])
@pytest.mark.parametrize("ordered", [True, False])
def test_input_error_raised_after_earlier_results(executor: fk.Executor, chunksize: int | None, ordered: bool) -> None:
    rec = Recorder(executor)
    it = run(rec, inc, failing_input(5, LookupError("input broke")), chunksize=chunksize, ordered=ordered)
    got: list[int] = []
    with pytest.raises(LookupError, match="input broke"):
        drain(it, got)
    assert sorted(got) == [1, 2, 3, 4, 5]  # every item read before the error was run and yielded
    assert sum(rec.sizes) == 5


@on_threads
def test_input_error_at_first_item_is_raised_on_next(executor: fk.Executor) -> None:
    rec = Recorder(executor)
    it = run(rec, inc, failing_input(0, LookupError("empty")))
    with pytest.raises(LookupError):
        next(it)
    assert rec.sizes == []


# --- timeout -----------------------------------------------------------------------------------


@on_threads
def test_timeout_from_the_call_raises_timeout_error(executor: fk.Executor) -> None:
    gate = GatedCall(free=[0])
    rec = Recorder(executor)
    start = time.monotonic()
    it = run(rec, gate, range(10), timeout=0.3, chunksize=1, auto_chunk=False)
    assert next(it) == 0
    with pytest.raises(TimeoutError):
        next(it)
    elapsed = time.monotonic() - start
    assert 0.3 <= elapsed < 0.3 + WAIT
    assert issubclass(cf.TimeoutError, TimeoutError)
    assert list(it) == []  # over, and the rest was cancelled
    gate.opened.set()
    cf.wait(rec.futures, WAIT)
    assert any(f.cancelled() for f in rec.futures)


@on_threads
def test_timeout_does_not_fire_on_ready_results(executor: fk.Executor) -> None:
    rec = Recorder(executor)
    it = run(rec, inc, range(5), timeout=0.0, buffersize=5, auto_chunk=False)
    assert not cf.wait(rec.futures, WAIT).not_done
    assert list(it) == [1, 2, 3, 4, 5]


# --- close, break, del, KeyboardInterrupt ------------------------------------------------------


@on_threads
def test_dropping_a_never_consumed_iterator_lets_its_first_window_run(executor: fk.Executor) -> None:
    """As the stdlib's map runs every task of an iterator never consumed (issue 11777), the first
    window runs; but no more input is read, so an unbounded input costs nothing."""
    gate = GatedCall(free=[0])
    rec = Recorder(executor)
    source = CountingInput(iter(range(1000)))
    it = run(rec, gate, source, buffersize=12, chunksize=1, auto_chunk=False)
    gate.wait_started(W + 1)
    del it
    gate.opened.set()
    assert not cf.wait(rec.futures, WAIT).not_done
    assert sorted(gate.started) == list(range(12))  # the whole first window ran, nothing was cancelled
    assert not any(f.cancelled() for f in rec.futures)
    assert source.pulled == 12


@pytest.mark.parametrize("how", ["close", "break", "del", "never-consumed-close"])
@on_threads
def test_closing_early_cancels_pending(executor: fk.Executor, how: str) -> None:
    gate = GatedCall(free=[0])  # item 0 finishes, items 1 and 2 then block both workers
    rec = Recorder(executor)
    it = run(rec, gate, range(1000), buffersize=12, chunksize=1, auto_chunk=False)
    gate.wait_started(W + 1)
    start = time.monotonic()
    if how == "close":
        it.close()  # type: ignore[attr-defined]
    elif how == "break":
        for value in it:
            assert value == 0
            break
        del it
    elif how == "del":
        assert next(it) == 0
        del it
    else:
        it.close()  # type: ignore[attr-defined]
    elapsed = time.monotonic() - start
    assert elapsed < 2.0
    gate.opened.set()
    cf.wait(rec.futures, WAIT)
    cancelled = sum(f.cancelled() for f in rec.futures)
    assert sorted(gate.started) == [0, 1, 2]  # only the tasks already running ran
    assert cancelled == len(rec.futures) - 3
    assert len(rec.futures) == (13 if how in ("break", "del") else 12)


@on_threads
def test_gated_pending_tasks_never_run_after_close(executor: fk.Executor) -> None:
    gate = GatedCall()
    rec = Recorder(executor)
    it = run(rec, gate, range(100), buffersize=20, chunksize=1, auto_chunk=False)
    gate.wait_started(W)
    it.close()  # type: ignore[attr-defined]
    gate.opened.set()
    executor.shutdown(wait=True)
    assert sorted(gate.started) == [0, 1]
    assert sum(f.cancelled() for f in rec.futures) == 18


class InterruptingInput:
    """Input that raises KeyboardInterrupt when item ``at`` is pulled."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.pulled = 0

    def __iter__(self) -> Iterator[int]:
        return self

    def __next__(self) -> int:
        if self.pulled == self.at:
            raise KeyboardInterrupt
        self.pulled += 1
        return self.pulled - 1


@on_threads
def test_keyboard_interrupt_from_input_cancels_and_returns(executor: fk.Executor) -> None:
    gate = GatedCall(free=[0, 1, 2])  # 3 and 4 then block both workers
    rec = Recorder(executor)
    it = run(rec, gate, InterruptingInput(8), buffersize=6, chunksize=1, auto_chunk=False)
    gate.wait_started(W + 3)
    start = time.monotonic()
    got: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        drain(it, got)  # refilling after item 2 pulls item 8, which interrupts
    assert time.monotonic() - start < 2.0
    assert got == [0, 1]
    gate.opened.set()
    cf.wait(rec.futures, WAIT)
    assert len(rec.futures) == 8
    assert sorted(gate.started) == [0, 1, 2, 3, 4]
    assert sum(f.cancelled() for f in rec.futures) == 3
    assert list(it) == []


@on_threads
def test_ctrl_c_while_waiting_cancels_and_returns(executor: fk.Executor) -> None:
    """A real SIGINT delivered while the consumer waits for a result."""
    gate = GatedCall()
    rec = Recorder(executor)
    it = run(rec, gate, range(100), buffersize=10, chunksize=1, auto_chunk=False, timeout=None)
    gate.wait_started(W)
    assert CtrlC().interrupt(it, WAIT) < 2.0  # cancelled and returned within 2 s of Ctrl-C
    gate.opened.set()
    cf.wait(rec.futures, WAIT)
    assert sum(f.cancelled() for f in rec.futures) == 10 - W
    assert sorted(gate.started) == [0, 1]


@on_processes
def test_ctrl_c_while_waiting_on_a_process_pool_cancels_what_has_not_started(kit: Kit) -> None:
    it = kit.ex.map(h.block, range(20), chunksize=1)
    kit.wait_started(2)  # both workers busy with a blocked task; the rest of the window is queued
    assert CtrlC().interrupt(it, WAIT) < 2.0
    kit.release.set()
    kit.ex.shutdown(wait=True)
    assert kit.count_started() == 0  # nothing queued ran after Ctrl-C (the two blocked ones were counted)


@on_threads
def test_keyboard_interrupt_during_map_call(executor: fk.Executor) -> None:
    gate = GatedCall()
    rec = Recorder(executor)
    with pytest.raises(KeyboardInterrupt):
        run(rec, gate, InterruptingInput(5), buffersize=10, chunksize=1, auto_chunk=False)
    gate.opened.set()
    cf.wait(rec.futures, WAIT)
    assert len(rec.futures) == 5
    assert sum(f.cancelled() for f in rec.futures) + len(gate.started) == 5


@on_threads
def test_keyboard_interrupt_in_consumer_cancels_pending(executor: fk.Executor) -> None:
    gate = GatedCall(free=[0])
    rec = Recorder(executor)

    def consume() -> None:
        for value in run(rec, gate, range(100), buffersize=10, chunksize=1, auto_chunk=False):
            assert value == 0
            raise KeyboardInterrupt  # e.g. Ctrl-C while handling a result

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        consume()
    assert time.monotonic() - start < 2.0
    gate.opened.set()
    cf.wait(rec.futures, WAIT)
    assert sum(f.cancelled() for f in rec.futures) >= 10 - W - 1


# --- hygiene -----------------------------------------------------------------------------------


@on_threads
def test_dropped_iterator_is_freed_without_gc(executor: fk.Executor, gc_disabled: None) -> None:
    gate = GatedCall()
    it = run(Recorder(executor), gate, range(100), buffersize=8, auto_chunk=False)
    ref = weakref.ref(it)
    try:
        del it
        assert ref() is None  # chunk callbacks do not keep the iterator alive
    finally:
        gate.opened.set()


@pytest.mark.parametrize(
    ("chunksize", "buffersize", "ordered"),
    [(None, None, True), (4, None, True), (4, None, False), (1, 3, True), (None, 8, False)],
)
def test_yielded_results_are_not_kept_by_the_iterator(
    executor: fk.Executor, chunksize: int | None, buffersize: int | None, ordered: bool
) -> None:
    """Issue #14406 (stdlib test_free_reference): a result is freed once the consumer drops it."""
    it = run(Recorder(executor), Token, range(30), chunksize=chunksize, buffersize=buffersize, ordered=ordered)
    seen = set()
    for obj in it:
        seen.add(obj.value)
        ref = weakref.ref(obj)
        del obj
        if ref() is not None:  # a full collection only if refcounting did not free it (each costs ~0.1 s here)
            gc.collect()
        assert ref() is None
    assert seen == set(range(30))


@on_threads
def test_close_in_the_middle_of_a_batch_stops_and_drops_it(executor: fk.Executor) -> None:
    live: weakref.WeakSet[Token] = weakref.WeakSet()

    def make(value: int) -> Token:
        token = Token(value)
        live.add(token)
        return token

    it = run(Recorder(executor), make, range(10), chunksize=10, auto_chunk=False)
    first = next(it)
    assert first.value == 0
    gc.collect()
    assert len(live) == 10  # the rest of the batch waits in the iterator
    it.close()  # type: ignore[attr-defined]
    assert list(it) == []  # the half-yielded batch stops at once
    gc.collect()
    assert list(live) == [first]  # and is dropped


@on_processes
def test_scale_processes_ordered_and_unordered(executor: fk.Executor) -> None:
    n = 100_000
    assert sum(run(Recorder(executor), inc, iter(range(n)))) == n * (n + 1) // 2
    assert sum(run(Recorder(executor), inc, iter(range(n)), ordered=False)) == n * (n + 1) // 2


# --- through futurekit's executors: Executor.map wired to iter_map ---------------------------------


def test_fk_map_order_shapes_and_empty(executor: fk.Executor) -> None:
    assert list(executor.map(inc, iter(range(500)))) == list(range(1, 501))
    assert list(executor.map(add, range(10), range(100, 105))) == [100, 102, 104, 106, 108]
    assert list(executor.map(inc, [])) == []
    assert sorted(executor.map(inc, range(300), ordered=False)) == list(range(1, 301))
    assert list(executor.map(inc, range(23), chunksize=5)) == list(range(1, 24))


def test_fk_map_scalar_and_object_batches_stop_on_close(executor: fk.Executor) -> None:
    # Process pools send batches of plain numbers as tuples (scanned, not popped); others as lists.
    for fn in (inc, str):
        it = executor.map(fn, range(100), chunksize=50)
        assert [next(it) for _ in range(3)] == [fn(0), fn(1), fn(2)]
        it.close()  # type: ignore[attr-defined]
        assert list(it) == []
    values = [1, 2.5, None, True, 3j]
    assert list(executor.map(copy.copy, values, chunksize=5)) == values  # every scalar type


@pytest.mark.parametrize("chunksize", [None, 1, 4])
def test_fk_map_error_at_its_item_with_worker_frames(executor: fk.Executor, chunksize: int | None) -> None:
    got: list[int] = []
    with pytest.raises(ItemError, match="item 7") as info:
        drain(executor.map(fail_on_7, range(50), chunksize=chunksize), got)
    assert got == list(range(7))
    assert any(frame.name == "fail_on" for frame in _frames(info.value.__traceback__))


def test_fk_map_is_lazy_on_infinite_input(executor: fk.Executor) -> None:
    source = CountingInput(itertools.count())
    it = executor.map(inc, source)
    local = not executor.remote
    bound = (WIN + 1) * _map.LOCAL_MAX_CHUNK if local else (WIN + 1) * _map.MAX_AUTO_CHUNK
    for consumed, value in enumerate(itertools.islice(it, 5000), start=1):
        assert value == consumed
        assert source.pulled - consumed <= bound
    it.close()  # type: ignore[attr-defined]


def test_fk_map_explicit_buffersize_is_exact(executor: fk.Executor) -> None:
    source = CountingInput(itertools.count())
    it = executor.map(inc, source, buffersize=9, chunksize=3)
    ahead = [source.pulled]
    for consumed, value in enumerate(itertools.islice(it, 300), start=1):
        assert value == consumed
        ahead.append(source.pulled - consumed)
    assert max(ahead) == 9


def test_fk_map_input_error_after_earlier_results(executor: fk.Executor) -> None:
    got: list[int] = []
    with pytest.raises(LookupError):
        drain(executor.map(inc, failing_input(6, LookupError("input broke")), chunksize=4), got)
    assert got == [1, 2, 3, 4, 5, 6]


@on_threads
def test_fk_threads_map_close_cancels_pending(executor: fk.Executor) -> None:
    gate = GatedCall()
    with executor as ex:
        it = ex.map(gate, range(100), buffersize=10, chunksize=1)
        gate.wait_started(W)
        start = time.monotonic()
        it.close()  # type: ignore[attr-defined]
        assert time.monotonic() - start < 2.0
        gate.opened.set()
    assert sorted(gate.started) == [0, 1]


def test_a_dropped_executor_is_released_once_its_map_submitted_everything() -> None:
    # As the stdlib's test_del_shutdown: the map iterator outlives the executor's last reference.
    executor = fk.threads(5)
    res = executor.map(abs, range(-5, 5))
    threads = list(getattr(executor, "_threads"))
    ref = weakref.ref(executor)
    del executor
    gc.collect()
    assert ref() is None  # the iterator no longer holds it: everything was submitted
    for t in threads:
        t.join(WAIT)
        assert not t.is_alive()  # the thread executor shut down when it was collected
    assert list(res) == [abs(v) for v in range(-5, 5)]


def test_a_temporary_executor_maps_all_of_a_long_input() -> None:
    # fk.processes().map(...) on a long input: the iterator keeps the executor while it still submits.
    assert sum(fk.processes(2).map(inc, range(5000))) == 5000 * 5001 // 2
