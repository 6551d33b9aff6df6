"""The semantics contract (the rules 1-9 of docs/semantics.md): each test fails if its rule breaks."""

from __future__ import annotations

import sys
import threading
import tracemalloc
import weakref
from concurrent.futures import CancelledError, Future, InvalidStateError, ThreadPoolExecutor
from typing import Any

import pytest
from _combinator_helpers import WAIT, CountingExecutor, no_logged_errors, pending, pool
from timer_helpers import FakeClock, fake_clock

import futurekit as fk
from futurekit import _timers

pytestmark = pytest.mark.usefixtures("no_logged_errors")
__all__ = ["fake_clock", "no_logged_errors", "pool"]  # fixtures, re-exported for pytest

HOPS = 200_000


def _inc(x: int) -> int:
    return x + 1


# ----------------------------------------------------------------------------- rule 1: never blocks


def test_combinators_inside_a_single_worker_pool_do_not_deadlock() -> None:
    with ThreadPoolExecutor(max_workers=1) as ex:

        def outer() -> Future[int]:
            # Runs on the only worker: composing futures of the same pool must not wait on them.
            a = ex.submit(lambda: 1)
            b = ex.submit(lambda: 2)
            return fk.then(fk.gather(a, b), sum)

        out = fk.chain(ex.submit(outer), lambda inner: inner)
        assert out.result(timeout=WAIT) == 3


# ----------------------------------------------------------------------------- rule 2: no recursion limit


def _assert_default_recursion_limit() -> None:
    assert sys.getrecursionlimit() <= 1000 or sys.getrecursionlimit() == 1000


def test_then_chain_over_done_futures_200k_hops() -> None:
    _assert_default_recursion_limit()
    f: Future[int] = fk.completed(0)
    for _ in range(HOPS // 2):
        f = fk.then(f, _inc)
    for _ in range(HOPS // 2):
        f = fk.chain(f, lambda x: fk.completed(x + 1))
    assert f.result(timeout=WAIT) == HOPS


@pytest.mark.parametrize("kind", ["then", "chain"])
def test_chain_built_on_pending_root_200k_hops(kind: str) -> None:
    root: Future[int] = Future()
    f: Future[int] = root
    if kind == "then":
        for _ in range(HOPS):
            f = fk.then(f, _inc)
    else:
        for _ in range(HOPS):
            f = fk.chain(f, lambda x: fk.completed(x + 1))
    done = threading.Event()
    f.add_done_callback(lambda _: done.set())
    worker = threading.Thread(target=root.set_result, args=(0,))
    worker.start()  # completed from another thread: the whole chain drains there, iteratively
    assert done.wait(WAIT), "the chain stalled"
    worker.join(WAIT)
    assert f.result(timeout=0) == HOPS


def test_chain_with_pending_inner_futures_200k_hops() -> None:
    # Every hop returns a future that is still pending when the hop runs; completing them
    # in order unwinds through the output chain with no recursion.
    hops = HOPS // 4  # far beyond any recursion limit; kept smaller for the suite's time budget
    inners = [pending() for _ in range(hops)]
    it = iter(inners)
    root = pending()
    f: Future[Any] = root
    for _ in range(hops):
        f = fk.chain(f, lambda _: next(it))
    root.set_result(0)
    for i, inner in enumerate(inners):
        inner.set_result(i)
    assert f.result(timeout=WAIT) == hops - 1


def test_cancelling_tail_of_200k_hop_chain_reaches_root() -> None:
    root = pending()
    f: Future[Any] = root
    for _ in range(HOPS):
        f = fk.then(f, _inc)
    assert f.cancel()
    assert root.cancelled()


def test_nested_gather_and_race_200k_deep_on_pending_root() -> None:
    root = pending()
    f: Future[Any] = root
    for i in range(HOPS // 4):
        f = fk.gather(f) if i % 2 else fk.race(f)
    root.set_result(1)
    value = f.result(timeout=WAIT)
    for _ in range(HOPS // 8):
        value = value[0]
    assert value == 1


# ----------------------------------------------------------------------------- rule 3: nothing is lost


@pytest.mark.parametrize("exc", [ValueError("v"), KeyboardInterrupt(), GeneratorExit()])
def test_user_exceptions_fail_outputs_and_are_not_logged(exc: BaseException, pool: ThreadPoolExecutor) -> None:
    def boom(_: object) -> Any:
        raise exc

    for executor in (None, pool):
        for src_value in ("done", "pending"):
            src = fk.completed(1) if src_value == "done" else pending()
            outs = [
                fk.then(src, boom, executor=executor),
                fk.chain(src, boom, executor=executor),
                fk.recover(fk.then(src, boom), boom, BaseException, executor=executor),
            ]
            if not src.done():
                src.set_result(1)
            for out in outs:
                assert out.exception(timeout=WAIT) is exc


# ----------------------------------------------------------------------------- rule 4: nothing set twice


ROUNDS = 150


def _racing_outputs(src: Future[int], inner: Future[int]) -> list[Future[Any]]:
    return [
        fk.then(src, _inc),
        fk.chain(src, lambda _: inner),
        fk.recover(src, lambda e: -1),
        fk.gather(src, fk.completed(2)),
        fk.gather_all([src, src]),
        fk.race(src, pending()),
        fk.first_success(src, pending()),
        fk.timeout(src, 60),
    ]


def _set_input(fut: Future[int], value: int) -> None:
    """Complete an input, which cancellation flowing up from an output may have cancelled first."""
    try:
        fut.set_result(value)
    except InvalidStateError:
        assert fut.cancelled()


def test_cancel_racing_completion_never_raises_or_loses(no_logged_errors: list[Any]) -> None:
    """Two threads per round: one completes the inputs, one cancels every output, released together."""
    barrier = threading.Barrier(3, timeout=WAIT)
    work: list[tuple[Future[int], Future[int], list[Future[Any]]]] = []
    errors: list[BaseException] = []

    def completer() -> None:
        for _ in range(ROUNDS):
            barrier.wait()
            src, inner, _outs = work[-1]
            try:
                _set_input(src, 1)
                _set_input(inner, 10)
            except BaseException as error:  # pragma: no cover - the test fails below
                errors.append(error)
            barrier.wait()

    def canceller() -> None:
        for _ in range(ROUNDS):
            barrier.wait()
            _src, _inner, outs = work[-1]
            try:
                for out in outs:
                    out.cancel()
            except BaseException as error:  # pragma: no cover - recorded for the assertion below; never expected
                errors.append(error)
            barrier.wait()

    threads = [threading.Thread(target=completer), threading.Thread(target=canceller)]
    for t in threads:
        t.start()
    try:
        for _ in range(ROUNDS):
            src: Future[int] = Future()
            inner: Future[int] = Future()
            work.append((src, inner, _racing_outputs(src, inner)))
            barrier.wait()
            barrier.wait()
            outs = work[-1][2]
            for out in outs:
                assert out.done()
            expected = [2, 10, 1, (1, 2), [1, 1], 1, 1, 1]
            for out, want in zip(outs, expected, strict=True):
                if not out.cancelled():
                    assert out.result(timeout=0) == want  # a value that got through is the right one
    finally:
        for t in threads:
            t.join(WAIT)
    assert not errors
    assert not any(isinstance(r.exc_info and r.exc_info[1], InvalidStateError) for r in no_logged_errors)


def test_cancel_racing_user_fn_on_executor(pool: ThreadPoolExecutor) -> None:
    started = threading.Event()
    release = threading.Event()

    def slow(x: int) -> int:
        started.set()
        assert release.wait(WAIT)
        return x

    out = fk.then(fk.completed(1), slow, executor=pool)
    assert started.wait(WAIT)
    assert out.cancel()  # outputs are never RUNNING: cancellable while fn runs
    release.set()
    pool.shutdown(wait=True)
    assert out.cancelled()


# ----------------------------------------------------------------------------- rule 5: cancellation both ways


def test_cancel_chain_output_cancels_inner_future() -> None:
    inner = pending()
    out = fk.chain(fk.completed(1), lambda _: inner)
    assert out.cancel()
    assert inner.cancelled()


def test_cancel_propagates_through_a_tree() -> None:
    leaves = [pending() for _ in range(4)]
    tree = fk.then(fk.gather(fk.race(leaves[0], leaves[1]), fk.first_success(leaves[2], leaves[3])), str)
    assert tree.cancel()
    assert all(leaf.cancelled() for leaf in leaves)


def test_cancelled_leaf_cancels_every_output_downstream() -> None:
    leaf = pending()
    a = fk.then(leaf, _inc)
    b = fk.gather(a, pending())
    c = fk.timeout(fk.chain(b, lambda t: fk.completed(t)), 60)
    assert leaf.cancel()
    assert a.cancelled()
    assert b.cancelled()
    assert c.cancelled()
    with pytest.raises(CancelledError):
        c.result(timeout=0)


# ----------------------------------------------------------------------------- rule 7: no leaks


def _refs(*objs: object) -> list[weakref.ref[Any]]:
    return [weakref.ref(o) for o in objs]


def _all_dead(refs: list[weakref.ref[Any]]) -> bool:
    return all(r() is None for r in refs)


def _settle_leaves(outcome: str, a: Future[Any], b: Future[Any], inner: Future[Any]) -> None:
    err = OSError("input")  # not raised: no traceback of ours
    for fut, value in ((a, 1), (b, 2), (inner, 3)):
        if fut.done():  # cancelled by a race or a fail-fast gather
            continue
        if outcome == "error" and fut is not inner:
            fut.set_exception(err)
        else:
            fut.set_result(value)


@pytest.mark.usefixtures("gc_disabled")
@pytest.mark.parametrize("outcome", ["value", "error", "cancel_input", "cancel_output", "user_error"])
def test_settled_combinators_are_freed_by_refcounting(outcome: str) -> None:
    def fn(x: Any) -> Any:
        if outcome == "user_error":
            raise RuntimeError("user")
        return x

    def build() -> tuple[list[weakref.ref[Any]], list[Future[Any]], list[Future[Any]]]:
        a, b, inner = pending(), pending(), pending()
        outs: list[Future[Any]] = [
            fk.then(a, fn),
            fk.chain(a, lambda x: inner),
            fk.recover(a, fn),
            fk.gather(a, b),
            fk.gather(a, b, return_exceptions=True),
            fk.gather_all([a, b]),
            fk.race(a, b),
            fk.first_success(a, b),
            fk.timeout(a, 60),
        ]
        return _refs(a, b, inner, *outs), [a, b, inner], outs

    refs, inputs, outs = build()
    a, b, inner = inputs
    if outcome == "cancel_output":
        cancelled = [out.cancel() for out in outs]  # later ones may be cancelled already, through a
        assert cancelled[0]
    elif outcome == "cancel_input":
        a.cancel()
        b.cancel()
        inner.cancel()
    else:
        _settle_leaves(outcome, a, b, inner)
    assert all(out.done() for out in outs)
    del a, b, inner, inputs, outs
    assert _all_dead(refs), [r() for r in refs if r() is not None]


@pytest.mark.usefixtures("gc_disabled")
@pytest.mark.parametrize("executor", [None, "pool"])
def test_user_exception_raised_inline_forms_no_cycle(executor: str | None, pool: ThreadPoolExecutor) -> None:
    """fn raising while it runs inline in the caller's stack (done input): the traceback must not
    hold the output through futurekit's own frames."""

    def boom(_: object) -> Any:
        raise RuntimeError("user")

    ex = pool if executor else None

    def build() -> list[weakref.ref[Future[Any]]]:
        outs = [
            fk.then(fk.completed(1), boom, executor=ex),
            fk.chain(fk.completed(1), boom, executor=ex),
            fk.recover(fk.failed(KeyError()), boom, executor=ex),
        ]
        assert all(isinstance(out.exception(timeout=WAIT), RuntimeError) for out in outs)
        refs = [weakref.ref(out) for out in outs]
        # This frame is in the tracebacks (fn ran inline, below it), so it must not keep the
        # outputs either, as any caller's frame would: that cycle would be the caller's own.
        del outs
        return refs

    refs = build()
    assert _all_dead(refs)


@pytest.mark.usefixtures("gc_disabled")
def test_pending_output_does_not_hold_finished_inputs() -> None:
    a, b = pending(), pending()
    ref_a = weakref.ref(a)
    first = fk.first_success(a, b)
    a.set_exception(OSError("a"))  # first_success keeps waiting for b
    a2, b2, inner = pending(), pending(), pending()
    ref_a2 = weakref.ref(a2)
    g2 = fk.gather(a2, b2)
    g3 = fk.gather_all([b2, a2], return_exceptions=True)
    c2 = fk.chain(a2, lambda _: inner)
    a2.set_result(1)
    del a, a2
    assert ref_a() is None
    assert ref_a2() is None
    assert not first.done()
    assert not g2.done()
    assert not g3.done()
    assert not c2.done()
    b.set_result(2)
    b2.set_result(2)
    inner.set_result(3)
    assert first.result(timeout=WAIT) == 2
    assert g2.result(timeout=WAIT) == (1, 2)
    assert g3.result(timeout=WAIT) == [2, 1]
    assert c2.result(timeout=WAIT) == 3


@pytest.mark.usefixtures("gc_disabled")
def test_timeout_drops_references_when_input_finishes_early() -> None:
    src = pending()
    out = fk.timeout(src, 3600)
    refs = _refs(src, out)
    src.set_result(1)
    del src, out
    assert _all_dead(refs)  # the far deadline's heap entry holds nothing any more


@pytest.mark.usefixtures("gc_disabled")
def test_as_completed_closed_early_holds_nothing() -> None:
    fs = [pending() for _ in range(3)]
    refs = _refs(*fs)
    it = fk.as_completed(fs)
    fs[1].set_result(1)
    assert next(it) is fs[1]
    it.close()  # type: ignore[attr-defined]
    del it
    del fs
    assert _all_dead(refs)


# ----------------------------------------------------------------------------- rule 8: timers are cheap


def test_timeout_over_10000_futures_uses_at_most_one_thread() -> None:
    before = {t.ident for t in threading.enumerate()}
    inputs = [pending() for _ in range(10_000)]
    base_pending = _timers._scheduler.pending()
    outs = [fk.timeout(f, 3600) for f in inputs]
    new_threads = [t for t in threading.enumerate() if t.ident not in before]
    assert len(new_threads) <= 1
    assert all(t.name == "futurekit-timer" for t in new_threads)
    assert _timers._scheduler.pending() == base_pending + 10_000
    for i, f in enumerate(inputs):
        f.set_result(i)
    assert [o.result(timeout=0) for o in outs[:3]] == [0, 1, 2]
    assert _timers._scheduler.pending() == base_pending
    with _timers._scheduler._cond:
        assert len(_timers._scheduler._heap) < 10_000  # compacted as entries died


def test_many_short_timeouts_all_fire_on_one_thread(fake_clock: FakeClock) -> None:
    names: set[str] = set()
    lock = threading.Lock()
    inputs = [pending() for _ in range(200)]
    tick = 1 / 64  # deadlines of 0 to 9 ticks; binary fractions, so the clock adds up exactly
    outs = [fk.timeout(f, tick * (i % 10)) for i, f in enumerate(inputs)]

    def record(_: object) -> None:
        with lock:
            names.add(threading.current_thread().name)

    for out in outs:
        out.add_done_callback(record)
    fake_clock.advance(4.5 * tick)  # the deadlines of 0 to 4 ticks have passed, those of 5 to 9 have not
    assert [out.done() for out in outs] == [i % 10 < 5 for i in range(200)]
    fake_clock.advance(4.5 * tick)
    for out in outs:
        assert isinstance(out.exception(timeout=0), TimeoutError)
    assert all(f.cancelled() for f in inputs)
    assert names <= {"futurekit-timer", threading.current_thread().name}


def _thread_of(scheduler: _timers._Scheduler) -> threading.Thread | None:
    with scheduler._cond:
        return scheduler._thread


def test_timer_thread_exits_when_idle_and_restarts(monkeypatch: pytest.MonkeyPatch, fake_clock: FakeClock) -> None:
    # A private scheduler, so deadlines left by other tests cannot keep its thread busy; with
    # IDLE_EXIT at 0 its thread exits as soon as it has nothing left to do.
    monkeypatch.setattr(_timers, "IDLE_EXIT", 0.0)
    scheduler = fake_clock.scheduler()
    fired = [threading.Event(), threading.Event()]
    scheduler.schedule(0.01, lambda e: e.set(), fired[0])
    first = scheduler._thread
    assert first is not None
    assert first.name == "futurekit-timer"
    assert first.daemon
    assert not fired[0].is_set()
    fake_clock.advance(0.01)
    assert fired[0].is_set()
    first.join(WAIT)  # idle: it ends by itself
    assert not first.is_alive()
    assert _thread_of(scheduler) is None
    scheduler.schedule(0.01, lambda e: e.set(), fired[1])  # a new deadline starts a new thread
    second = _thread_of(scheduler)
    assert second is not None
    assert second is not first
    fake_clock.advance(0.01)
    assert fired[1].is_set()
    second.join(WAIT)
    assert not second.is_alive()


def test_timer_cancel_drops_references_and_compacts() -> None:
    scheduler = _timers._Scheduler()
    payloads = [pending() for _ in range(1000)]
    refs = _refs(*payloads)
    handles = [scheduler.schedule(3600, lambda _: None, p) for p in payloads]
    assert scheduler.pending() == 1000
    del payloads
    for h in handles:
        h.cancel()
        assert not h.active
    assert _all_dead(refs)  # cancelled entries hold nothing
    assert scheduler.pending() == 0
    with scheduler._cond:
        heap_size = len(scheduler._heap)
        scheduler._cond.notify()  # wake its thread: nothing is live, so it exits after IDLE_EXIT
    assert heap_size < 1000 // 2 + 70  # compacted as most entries died


# ----------------------------------------------------------------------------- rule 9: user functions off the engine


def test_executor_keeps_user_fn_off_the_completing_thread(pool: ThreadPoolExecutor) -> None:
    counting = CountingExecutor(pool)
    src = pending()
    ran_on: list[str] = []
    out = fk.then(src, lambda x: ran_on.append(threading.current_thread().name), executor=counting)
    engine = threading.Thread(target=src.set_result, args=(1,), name="engine")
    engine.start()
    engine.join(WAIT)
    out.result(timeout=WAIT)
    assert ran_on
    assert ran_on[0].startswith("combinator-test")


# ----------------------------------------------------------------------------- scale


@pytest.mark.slow
def test_gather_all_one_million_done_or_pending() -> None:
    # Completes correctly, half done and half pending, without RecursionError. How its time
    # grows with N is bench/combinators.py's business (the gather_all table's linearity line).
    n = 1_000_000
    futures: list[Future[int]] = [Future() for _ in range(n)]
    for i in range(0, n, 2):
        futures[i].set_result(i)
    out = fk.gather_all(futures)
    assert not out.done()
    for i in range(1, n, 2):
        futures[i].set_result(i)
    result = out.result(timeout=WAIT)
    assert len(result) == n
    assert result[12345] == 12345
    assert result[-1] == n - 1


def test_gather_all_memory_per_element() -> None:
    n = 100_000
    futures: list[Future[int]] = [Future() for _ in range(n)]
    tracemalloc.start()
    try:
        out = fk.gather_all(futures)
        current, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert current / n <= 200, f"{current / n:.0f} bytes per element"
    for i, f in enumerate(futures):
        f.set_result(i)
    assert out.result(timeout=WAIT)[-1] == n - 1
