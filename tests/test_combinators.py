"""Behaviour of each combinator: values, errors, cancellation, ordering, bad input."""

from __future__ import annotations

import math
import threading
from concurrent.futures import CancelledError, Executor, Future, ThreadPoolExecutor
from typing import Any

import pytest
from _combinator_helpers import WAIT, CountingExecutor, OddFuture, no_logged_errors, pending, pool

import futurekit as fk
from futurekit import _timers

pytestmark = pytest.mark.usefixtures("no_logged_errors")
__all__ = ["no_logged_errors", "pool"]  # fixtures, re-exported for pytest


# ----------------------------------------------------------------------------- constructors


def test_completed_failed_cancelled() -> None:
    assert fk.completed(3).result(timeout=0) == 3
    err = ValueError("x")
    f = fk.failed(err)
    assert f.done()
    assert f.exception(timeout=0) is err
    c = fk.cancelled()
    assert c.cancelled()
    assert c.done()
    with pytest.raises(CancelledError):
        c.result(timeout=0)
    # Outputs are plain futures.
    assert type(fk.completed(1)) is Future


def test_failed_rejects_non_instances() -> None:
    with pytest.raises(TypeError, match=r"failed\(\): exc must be an exception instance, got class ValueError"):
        fk.failed(ValueError)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"failed\(\): exc must be an exception instance, got 'boom'"):
        fk.failed("boom")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- then / chain


def test_then_maps_value_and_never_flattens() -> None:
    src: Future[int] = Future()
    out = fk.then(src, lambda x: x * 2)
    assert not out.done()
    assert not out.running()
    src.set_result(21)
    assert out.result(timeout=WAIT) == 42
    inner = fk.completed("inner")
    nested = fk.then(fk.completed(1), lambda _: inner)
    assert nested.result(timeout=WAIT) is inner


def test_then_passes_errors_and_cancellation_without_calling_fn() -> None:
    calls: list[object] = []
    err = KeyError("k")
    out = fk.then(fk.failed(err), calls.append)
    assert out.exception(timeout=WAIT) is err
    src: Future[int] = Future()
    out2 = fk.then(src, calls.append)
    assert src.cancel()
    assert out2.cancelled()
    assert calls == []


@pytest.mark.parametrize("exc", [ValueError("bad"), KeyboardInterrupt(), SystemExit(3)])
def test_then_user_exception_fails_output(exc: BaseException) -> None:
    def boom(_: int) -> int:
        raise exc

    out = fk.then(fk.completed(1), boom)
    assert out.exception(timeout=WAIT) is exc
    src: Future[int] = Future()
    out2 = fk.then(src, boom)
    src.set_result(1)  # the callback runs here; nothing may escape into set_result
    assert out2.exception(timeout=WAIT) is exc


def test_chain_flattens_and_relays_inner_outcome() -> None:
    inner: Future[str] = Future()
    src: Future[int] = Future()
    out = fk.chain(src, lambda x: inner)
    src.set_result(1)
    assert not out.done()
    inner.set_result("v")
    assert out.result(timeout=WAIT) == "v"
    err = OSError("inner failed")
    assert fk.chain(fk.completed(1), lambda _: fk.failed(err)).exception(timeout=WAIT) is err
    assert fk.chain(fk.completed(1), lambda _: fk.cancelled()).cancelled()


def test_chain_non_future_return_fails_with_type_error() -> None:
    out: Future[Any] = fk.chain(fk.completed(1), _bad(lambda x: x + 1))
    exc = out.exception(timeout=WAIT)
    assert isinstance(exc, TypeError)
    assert "chain(): fn must return a future, got 2 (int)" in str(exc)


def test_chain_non_future_with_broken_repr_still_fails_output() -> None:
    class BadRepr:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    out: Future[Any] = fk.chain(fk.completed(1), _bad(lambda _: BadRepr()))
    exc = out.exception(timeout=WAIT)
    assert isinstance(exc, TypeError)
    assert "(BadRepr)" in str(exc)


def test_chain_accepts_odd_futurelike_inner() -> None:
    inner = OddFuture()
    out = fk.chain(fk.completed(0), lambda _: inner)
    inner.set_result("odd")
    assert out.result(timeout=WAIT) == "odd"


def test_then_chain_with_executor_run_fn_on_executor(pool: ThreadPoolExecutor) -> None:
    counting = CountingExecutor(pool)
    src: Future[int] = Future()
    main = threading.current_thread().name
    seen: list[str] = []

    def record(x: int) -> int:
        seen.append(threading.current_thread().name)
        return x + 1

    out = fk.then(src, record, executor=counting)
    out2 = fk.chain(out, lambda x: fk.completed(x * 10), executor=counting)
    src.set_result(1)
    assert out2.result(timeout=WAIT) == 20
    assert counting.submits == 2
    assert seen
    assert all(name.startswith("combinator-test") for name in seen)
    assert main not in seen


def test_then_without_executor_runs_inline() -> None:
    src: Future[int] = Future()
    threads: list[threading.Thread] = []
    out = fk.then(src, lambda x: threads.append(threading.current_thread()))
    done = threading.Event()

    def complete() -> None:
        src.set_result(1)
        done.set()

    t = threading.Thread(target=complete)
    t.start()
    assert done.wait(WAIT)
    t.join(WAIT)
    assert out.done()
    assert threads == [t]
    # Already-done input: runs in the calling thread, before then() returns.
    here: list[threading.Thread] = []
    fk.then(fk.completed(1), lambda _: here.append(threading.current_thread()))
    assert here == [threading.current_thread()]


def test_executor_submit_failure_fails_output() -> None:
    ex = ThreadPoolExecutor(max_workers=1)
    ex.shutdown()
    out = fk.then(fk.completed(1), lambda x: x, executor=ex)
    assert isinstance(out.exception(timeout=WAIT), RuntimeError)


def test_cancel_then_output_cancels_executor_task(pool: ThreadPoolExecutor) -> None:
    gate = threading.Event()
    blocker = pool.submit(gate.wait, WAIT)  # occupy workers so the task stays queued
    blockers = [pool.submit(gate.wait, WAIT) for _ in range(3)]
    tasks: list[Future[Any]] = []

    class Recording(Executor):
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
            task = pool.submit(fn, *args)
            tasks.append(task)
            return task

    out = fk.then(fk.completed(1), lambda x: x, executor=Recording())
    assert len(tasks) == 1
    assert out.cancel()
    assert tasks[0].cancelled()
    gate.set()
    assert blocker.result(timeout=WAIT)
    assert all(b.result(timeout=WAIT) for b in blockers)


# ----------------------------------------------------------------------------- recover


def test_recover_matching_and_non_matching() -> None:
    assert fk.recover(fk.failed(KeyError("k")), lambda e: "dflt", KeyError).result(timeout=WAIT) == "dflt"
    assert fk.recover(fk.completed(5), lambda e: 0).result(timeout=WAIT) == 5
    err = ValueError("v")
    out = fk.recover(fk.failed(err), lambda e: 0, KeyError)
    assert out.exception(timeout=WAIT) is err
    # Default (Exception,): a BaseException passes through.
    kb = KeyboardInterrupt()
    assert fk.recover(fk.failed(kb), lambda e: 0).exception(timeout=WAIT) is kb
    # Several types.
    assert fk.recover(fk.failed(OSError()), lambda e: 1, KeyError, OSError).result(timeout=WAIT) == 1
    # fn gets the exception itself.
    got: list[BaseException] = []
    fk.recover(fk.failed(err), got.append).result(timeout=WAIT)
    assert got == [err]


def test_recover_user_exception_fails_output() -> None:
    second = RuntimeError("handler broke")

    def handler(_: BaseException) -> int:
        raise second

    assert fk.recover(fk.failed(ValueError()), handler).exception(timeout=WAIT) is second


def test_recover_cancellation_only_when_named() -> None:
    assert fk.recover(fk.cancelled(), lambda e: "x").cancelled()
    assert fk.recover(fk.cancelled(), lambda e: "x", Exception).cancelled()
    out = fk.recover(fk.cancelled(), lambda e: type(e).__name__, CancelledError)
    assert out.result(timeout=WAIT) == "CancelledError"


def test_recover_with_executor(pool: ThreadPoolExecutor) -> None:
    counting = CountingExecutor(pool)
    out = fk.recover(fk.failed(KeyError()), lambda e: "ok", executor=counting)
    assert out.result(timeout=WAIT) == "ok"
    assert counting.submits == 1
    # No submit for a value.
    assert fk.recover(fk.completed(1), lambda e: 0, executor=counting).result(timeout=WAIT) == 1
    assert counting.submits == 1


# ----------------------------------------------------------------------------- gather / gather_all


def test_gather_orders_results_by_argument() -> None:
    a: Future[int] = Future()
    b: Future[str] = Future()
    out = fk.gather(a, b)
    b.set_result("b")
    assert not out.done()
    a.set_result(1)
    assert out.result(timeout=WAIT) == (1, "b")
    assert fk.gather().result(timeout=WAIT) == ()
    assert fk.gather(fk.completed(1)).result(timeout=WAIT) == (1,)


def test_gather_fail_fast_cancels_rest() -> None:
    a, b, c = pending(), pending(), pending()
    out = fk.gather(a, b, c)
    err = ValueError("b failed")
    b.set_exception(err)
    assert out.exception(timeout=WAIT) is err
    assert a.cancelled()
    assert c.cancelled()


def test_gather_cancelled_input_cancels_output_and_rest() -> None:
    a, b = pending(), pending()
    out = fk.gather(a, b)
    assert a.cancel()
    assert out.cancelled()
    assert b.cancelled()


def test_gather_return_exceptions() -> None:
    a, b, c = pending(), pending(), pending()
    out = fk.gather(a, b, c, return_exceptions=True)
    err = KeyError("k")
    a.set_exception(err)
    assert b.cancel()
    assert not out.done()
    c.set_result(3)
    r = out.result(timeout=WAIT)
    assert r[0] is err
    assert isinstance(r[1], CancelledError)
    assert r[2] == 3


def test_gather_cancel_output_cancels_inputs() -> None:
    a, b = pending(), pending()
    a.set_result(1)
    out = fk.gather(a, b)
    assert out.cancel()
    assert b.cancelled()
    assert not a.cancelled()


def test_gather_same_future_twice() -> None:
    a = pending()
    out = fk.gather(a, a)
    a.set_result(7)
    assert out.result(timeout=WAIT) == (7, 7)


def test_gather_all_list_and_iterables() -> None:
    fs = [pending() for _ in range(5)]
    out = fk.gather_all(iter(fs))
    for i, f in reversed(list(enumerate(fs))):
        f.set_result(i)
    assert out.result(timeout=WAIT) == [0, 1, 2, 3, 4]
    assert fk.gather_all([]).result(timeout=WAIT) == []
    err = OSError()
    r = fk.gather_all([fk.completed(1), fk.failed(err)], return_exceptions=True).result(timeout=WAIT)
    assert r == [1, err]
    assert fk.gather_all([fk.completed(1), fk.failed(err)]).exception(timeout=WAIT) is err


def test_gather_mixed_done_and_pending_and_odd_futures() -> None:
    odd = OddFuture()
    p = pending()
    inputs: list[fk.FutureLike[int]] = [fk.completed(0), odd, p, fk.completed(3)]
    out = fk.gather_all(inputs)
    p.set_result(2)
    assert not out.done()
    odd.set_result(1)
    assert out.result(timeout=WAIT) == [0, 1, 2, 3]


def test_gather_done_failure_stops_registration() -> None:
    err = ValueError()
    later = pending()
    out = fk.gather(fk.failed(err), later)
    assert out.exception(timeout=WAIT) is err
    assert later.cancelled()


# ----------------------------------------------------------------------------- race / first_success


def test_race_first_value_error_or_cancel_wins() -> None:
    a, b = pending(), pending()
    out = fk.race(a, b)
    b.set_result("b")
    assert out.result(timeout=WAIT) == "b"
    assert a.cancelled()
    a, b = pending(), pending()
    out = fk.race(a, b)
    err = OSError()
    a.set_exception(err)
    assert out.exception(timeout=WAIT) is err
    assert b.cancelled()
    a, b = pending(), pending()
    out = fk.race(a, b)
    assert a.cancel()
    assert out.cancelled()
    assert b.cancelled()


def test_race_done_inputs_first_argument_wins() -> None:
    assert fk.race(fk.completed(1), fk.completed(2)).result(timeout=WAIT) == 1
    p = pending()
    assert fk.race(p, fk.completed(2)).result(timeout=WAIT) == 2
    assert p.cancelled()


def test_race_cancel_output_cancels_inputs() -> None:
    a, b = pending(), pending()
    out = fk.race(a, b)
    assert out.cancel()
    assert a.cancelled()
    assert b.cancelled()


def test_first_success_value_wins_and_errors_grouped_in_input_order() -> None:
    a, b, c = pending(), pending(), pending()
    out = fk.first_success(a, b, c)
    a.set_exception(OSError("a"))
    c.set_result("c")
    assert out.result(timeout=WAIT) == "c"
    assert b.cancelled()

    a, b, c = pending(), pending(), pending()
    out = fk.first_success(a, b, c)
    ea, eb = OSError("a"), ValueError("b")
    c.set_exception(KeyError("c"))
    b.set_exception(eb)
    a.set_exception(ea)
    group = out.exception(timeout=WAIT)
    assert isinstance(group, ExceptionGroup)
    assert list(group.exceptions)[:2] == [ea, eb]
    assert isinstance(group.exceptions[2], KeyError)


def test_first_success_base_exception_group_and_cancelled_input() -> None:
    a, b = pending(), pending()
    out = fk.first_success(a, b)
    assert b.cancel()
    kb = KeyboardInterrupt()
    a.set_exception(kb)
    group = out.exception(timeout=WAIT)
    assert isinstance(group, BaseExceptionGroup)
    assert not isinstance(group, ExceptionGroup)
    assert group.exceptions[0] is kb
    assert isinstance(group.exceptions[1], CancelledError)


def test_first_success_cancel_output_cancels_inputs() -> None:
    a, b = pending(), pending()
    out = fk.first_success(a, b)
    assert out.cancel()
    assert a.cancelled()
    assert b.cancelled()


@pytest.mark.parametrize("combinator", [fk.race, fk.first_success])
def test_race_and_first_success_need_inputs(combinator: Any) -> None:
    with pytest.raises(ValueError, match="needs at least one future"):
        combinator()


# ----------------------------------------------------------------------------- timeout


def test_timeout_passes_value_through_and_drops_deadline() -> None:
    src: Future[int] = Future()
    out = fk.timeout(src, 60)
    src.set_result(5)
    assert out.result(timeout=WAIT) == 5
    assert fk.timeout(fk.completed(1), 0).result(timeout=WAIT) == 1
    err = KeyError()
    assert fk.timeout(fk.failed(err), 1).exception(timeout=WAIT) is err


def test_timeout_expires_and_cancels_input() -> None:
    src: Future[int] = Future()
    out = fk.timeout(src, 0.05)
    exc = out.exception(timeout=WAIT)
    assert type(exc) is TimeoutError
    assert src.cancelled()
    with pytest.raises(TimeoutError):
        out.result(timeout=0)


def test_timeout_infinite_never_schedules() -> None:
    src: Future[int] = Future()
    before = _timers._scheduler.pending()
    out = fk.timeout(src, math.inf)
    assert _timers._scheduler.pending() == before
    src.set_result(1)
    assert out.result(timeout=WAIT) == 1


def test_timeout_cancel_output_cancels_input_and_timer() -> None:
    src: Future[int] = Future()
    before = _timers._scheduler.pending()
    out = fk.timeout(src, 60)
    assert _timers._scheduler.pending() == before + 1
    assert out.cancel()
    assert src.cancelled()
    assert _timers._scheduler.pending() == before


def test_timeout_cancelled_input_cancels_output() -> None:
    src: Future[int] = Future()
    out = fk.timeout(src, 60)
    assert src.cancel()
    assert out.cancelled()


def test_timeout_thread_named() -> None:
    src: Future[int] = Future()
    fired = threading.Event()
    names: list[str] = []

    def record(_: object) -> None:
        names.append(threading.current_thread().name)
        fired.set()

    out = fk.timeout(src, 0.01)
    out.add_done_callback(record)
    assert fired.wait(WAIT)
    assert names == ["futurekit-timer"]


# ----------------------------------------------------------------------------- as_completed


def test_as_completed_yields_same_objects_in_completion_order(pool: ThreadPoolExecutor) -> None:
    a, b, c = pending(), OddFuture(), pending()
    c.set_result("c")  # done first: yielded first
    inputs: list[fk.FutureLike[Any]] = [a, b, c, a]
    it = fk.as_completed(inputs)
    assert next(it) is c
    b.set_result("b")
    assert next(it) is b
    a.set_result("a")
    assert next(it) is a
    with pytest.raises(StopIteration):
        next(it)


def test_as_completed_timeout_measured_from_call() -> None:
    a = pending()
    it = fk.as_completed([fk.completed(1), a], timeout=0.05)
    assert next(it).done()
    with pytest.raises(TimeoutError, match=r"1 \(of 2\) futures unfinished"):
        next(it)
    assert not a._done_callbacks, "the iterator's callback must be unregistered"  # type: ignore[attr-defined]


def test_as_completed_close_unregisters() -> None:
    a, b = pending(), pending()
    odd = OddFuture()
    inputs: list[fk.FutureLike[Any]] = [fk.completed(0), a, b, odd]
    it = fk.as_completed(inputs)
    next(it)
    assert len(a._done_callbacks) == 1  # type: ignore[attr-defined]
    it.close()  # type: ignore[attr-defined]
    assert a._done_callbacks == []  # type: ignore[attr-defined]
    assert b._done_callbacks == []  # type: ignore[attr-defined]
    odd.set_result(1)  # a left-over callback on a non-stdlib future is inert
    a.set_result(1)


def test_as_completed_empty_and_cancelled() -> None:
    assert list(fk.as_completed([])) == []
    c = fk.cancelled()
    assert list(fk.as_completed([c], timeout=WAIT)) == [c]


# ----------------------------------------------------------------------------- bad input


class _NotAFuture:
    pass


def _bad(value: object) -> Any:
    """Pass a wrong value past the type checker (these tests check the runtime checks)."""
    return value


@pytest.mark.parametrize(
    ("call", "exc_type", "message"),
    [
        (lambda: fk.then(_bad(3), lambda x: x), TypeError, r"then\(\): f must be a future, got 3"),
        (lambda: fk.then(fk.completed(1), _bad(3)), TypeError, r"then\(\): fn must be callable, got 3"),
        (lambda: fk.chain(fk.completed(1), _bad(None)), TypeError, r"chain\(\): fn must be callable, got None"),
        (lambda: fk.then(fk.completed(1), str, executor=_bad(3)), TypeError, r"then\(\): executor must be"),
        (
            lambda: fk.recover(fk.completed(1), str, _bad(3)),
            TypeError,
            r"recover\(\): exc_types\[0\] must be an exception class",
        ),
        (lambda: fk.recover(fk.completed(1), str, KeyError, _bad(int)), TypeError, r"exc_types\[1\]"),
        (lambda: fk.gather(fk.completed(1), _bad("x")), TypeError, r"gather\(\): argument 2 must be a future, got 'x'"),
        (lambda: fk.gather_all([fk.completed(1), _bad(2)]), TypeError, r"gather_all\(\): argument 2 must be a future"),
        (lambda: fk.gather(fk.completed(1), return_exceptions=_bad(1)), TypeError, r"return_exceptions must be a bool"),
        (lambda: fk.race(_bad(_NotAFuture())), TypeError, r"race\(\): argument 1 must be a future"),
        (lambda: fk.first_success(fk.completed(1), _bad(5)), TypeError, r"first_success\(\): argument 2"),
        (lambda: fk.timeout(fk.completed(1), _bad("1")), TypeError, r"timeout\(\): seconds must be a number"),
        (lambda: fk.timeout(fk.completed(1), True), TypeError, r"seconds must be a number"),
        (lambda: fk.timeout(fk.completed(1), -1), ValueError, r"timeout\(\): seconds must be >= 0, got -1"),
        (lambda: fk.timeout(fk.completed(1), math.nan), ValueError, r"seconds must be >= 0, got nan"),
        (lambda: fk.timeout(_bad(None), 1), TypeError, r"timeout\(\): f must be a future"),
        (lambda: fk.as_completed([_bad(1)]), TypeError, r"as_completed\(\): item 1 must be a future"),
        (lambda: fk.as_completed([], timeout=-1), ValueError, r"as_completed\(\): timeout must be >= 0"),
        (lambda: fk.as_completed([], timeout=_bad("1")), TypeError, r"timeout must be a number"),
    ],
)
def test_bad_input_raises_at_once(call: Any, exc_type: type[BaseException], message: str) -> None:
    with pytest.raises(exc_type, match=message):
        call()


def test_bad_input_registers_nothing() -> None:
    good = pending()
    with pytest.raises(TypeError):
        fk.gather(good, good, _bad(3))
    with pytest.raises(TypeError):
        fk.gather_all([good, _bad(object())])
    with pytest.raises(TypeError):
        fk.race(good, _bad(1))
    with pytest.raises(TypeError):
        fk.then(good, _bad(1))
    with pytest.raises(ValueError, match="seconds must be >= 0"):
        fk.timeout(good, -1)
    with pytest.raises(TypeError):
        fk.recover(good, str, _bad(object))
    assert good._done_callbacks == []  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        fk.as_completed([good, _bad(2)])
    assert good._done_callbacks == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "make",
    [
        lambda src: fk.then(src, str),
        lambda src: fk.chain(src, lambda _: pending()),
        lambda src: fk.recover(src, str),
        lambda src: fk.gather(src),
        lambda src: fk.gather_all([src]),
        lambda src: fk.race(src),
        lambda src: fk.first_success(src),
        lambda src: fk.timeout(src, 60),
    ],
)
def test_outputs_are_never_running_and_cancel_reaches_input(make: Any) -> None:
    src = pending()
    out = make(src)
    assert type(out) is Future
    assert not out.running()
    assert not out.done()
    assert out.cancel()
    assert src.cancelled()
