"""The executor contract, written once and run for every executor kind (thread, fork, forkserver, spawn)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import multiprocessing
import pickle
import threading
import traceback
import weakref
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import executor_helpers as h
import pytest
from executor_helpers import NOT_DASK, TIMEOUT, Kit, on_kinds, on_processes, on_remote

import futurekit as fk
from futurekit._process.pool import ProcessPool

# -- basics -------------------------------------------------------------------------------------------------


def test_submit_returns_result(executor: fk.Executor) -> None:
    assert executor.submit(h.add, 1, 2).result(timeout=TIMEOUT) == 3
    assert executor.submit(h.add, 1, b=5).result(timeout=TIMEOUT) == 6


def test_exception_arrives_as_its_own_type(executor: fk.Executor) -> None:
    fut = executor.submit(h.fail, "boom")
    with pytest.raises(h.CustomError, match="boom") as info:
        fut.result(timeout=TIMEOUT)
    names = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert "fail" in names  # the worker's own frame, also for processes


def test_many_tasks(executor: fk.Executor) -> None:
    futures = [executor.submit(h.square, i) for i in range(200)]
    assert [f.result(timeout=TIMEOUT) for f in futures] == [i * i for i in range(200)]


def test_done_callback_runs_once_with_the_future(executor: fk.Executor) -> None:
    seen: list[Future[int]] = []
    called = threading.Event()
    fut = executor.submit(h.add, 2, 2)

    def callback(f: Future[int]) -> None:
        seen.append(f)
        called.set()

    fut.add_done_callback(callback)
    assert called.wait(TIMEOUT)
    assert fut.result(timeout=TIMEOUT) == 4
    assert seen == [fut]


def test_wait_and_as_completed(executor: fk.Executor) -> None:
    futures = [executor.submit(h.add, i, i) for i in range(10)]
    done, not_done = concurrent.futures.wait(futures, timeout=TIMEOUT)
    assert len(done) == 10
    assert not not_done
    assert sorted(f.result() for f in concurrent.futures.as_completed(futures, timeout=TIMEOUT)) == [
        2 * i for i in range(10)
    ]


def test_asyncio_run_in_executor_and_wrap_future(executor: fk.Executor) -> None:
    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        a = await asyncio.wait_for(loop.run_in_executor(executor, h.add, 1, 2), TIMEOUT)
        b = await asyncio.wait_for(asyncio.wrap_future(executor.submit(h.square, 7)), TIMEOUT)
        return a, b

    assert asyncio.run(main()) == (3, 49)


def test_repr_and_properties(kit: Kit) -> None:
    assert kit.ex.max_workers == 2
    assert kit.ex.remote is (kit.kind != "thread")
    text = repr(kit.ex)
    assert text.startswith("<futurekit.Executor")
    assert "max_workers=2" in text
    assert "running" in text
    kit.ex.shutdown()
    assert "shut down" in repr(kit.ex)


# -- from the stdlib's own executor tests ------------------------------------------------------------------------


def test_submit_keyword_arguments(executor: fk.Executor) -> None:
    assert executor.submit(h.add, 2, b=8).result(timeout=TIMEOUT) == 10
    with pytest.raises(TypeError):
        executor.submit(fn=h.add, a=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        executor.submit(a=1)  # type: ignore[call-arg]


def test_map_exception_like_the_stdlib(executor: fk.Executor) -> None:
    it = executor.map(divmod, [1, 1, 1, 1], [2, 3, 0, 5])
    assert next(it) == (0, 1)
    assert next(it) == (0, 1)
    with pytest.raises(ZeroDivisionError):
        next(it)


def test_shutdown_race_issue12456(executor: fk.Executor) -> None:
    executor.map(str, [2] * 3)
    executor.shutdown()


def test_no_stale_references(executor: fk.Executor) -> None:
    obj = h.MyObject()
    collected = threading.Event()
    ref = weakref.ref(obj, lambda _: collected.set())
    executor.submit(obj.my_method)  # the future is discarded at once
    del obj
    if not collected.wait(TIMEOUT / 3):
        gc.collect()  # report cycles separately from leaks
        pytest.fail("reference kept " + ("until a gc pass" if ref() is None else "for good"))


# -- shutdown -------------------------------------------------------------------------------------------------


def test_submit_and_map_after_shutdown_raise_runtime_error(executor: fk.Executor) -> None:
    executor.shutdown()
    with pytest.raises(RuntimeError):
        executor.submit(h.add, 1, 2)
    with pytest.raises(RuntimeError):
        executor.map(h.square, [1, 2])


def test_shutdown_is_idempotent(executor: fk.Executor) -> None:
    fut = executor.submit(h.add, 1, 1)
    executor.shutdown(wait=True)
    executor.shutdown(wait=True)
    executor.shutdown(wait=False, cancel_futures=True)
    assert fut.result(timeout=0) == 2


def test_context_manager_waits_and_shuts_down(executor: fk.Executor) -> None:
    with executor as ex:
        assert ex is executor
        fut = ex.submit(h.square, 5)
    assert fut.done()
    assert fut.result() == 25
    with pytest.raises(RuntimeError):
        executor.submit(h.add, 1, 2)


def test_shutdown_wait_false_then_tasks_still_complete(kit: Kit) -> None:
    fut = kit.ex.submit(h.block, "x")
    kit.wait_started()
    kit.ex.shutdown(wait=False)
    kit.release.set()
    assert fut.result(timeout=TIMEOUT) == "x"


# Not on dask: the scheduler takes in a new task's graph asynchronously, so a cancel sent right after
# submit can reach it first and miss the task, which then runs (docs/scaling-out.md); tests/test_dask.py
# checks the cancellation dask does guarantee.
@on_kinds(*NOT_DASK)
def test_shutdown_cancel_futures_cancels_pending_only(kit: Kit) -> None:
    running = [kit.ex.submit(h.block, i) for i in range(2)]
    kit.wait_started(2)
    queued = [kit.ex.submit(h.block, i) for i in range(2, 10)]
    kit.ex.shutdown(wait=False, cancel_futures=True)
    kit.release.set()
    kit.ex.shutdown(wait=True)
    assert [f.result(timeout=TIMEOUT) for f in running] == [0, 1]
    assert queued[-1].cancelled()
    finished = [f for f in queued if not f.cancelled()]
    assert all(f.result(timeout=0) is not None for f in finished)
    # Exactly the tasks that were not cancelled ran (the running two were already counted).
    assert kit.count_started() == len(finished)
    assert all(f.done() for f in queued)


# -- cancellation mirrors the stdlib ----------------------------------------------------------------------------


# Not on dask: the scheduler takes in a new task's graph asynchronously, so a cancel sent right after
# submit can reach it first and miss the task, which then runs (docs/scaling-out.md); tests/test_dask.py
# checks the cancellation dask does guarantee.
@on_kinds(*NOT_DASK)
def test_pending_future_can_be_cancelled_running_cannot_on_threads(kit: Kit) -> None:
    running = [kit.ex.submit(h.block, i) for i in range(2)]
    kit.wait_started(2)
    # Process pools move up to max_workers + 1 tasks into their call queue, where they count as running.
    queued = [kit.ex.submit(h.block, i) for i in range(2, 8)]
    last = queued[-1]
    assert not last.running()
    assert last.cancel() is True
    assert last.cancelled()
    assert last.done()
    with pytest.raises(CancelledError):
        last.result(timeout=0)
    for f in running:
        assert f.running() is True
    if kit.kind == "thread":  # threads cannot be stopped: the stdlib's rule (processes: tests/test_stopping.py)
        for f in running:
            assert f.cancel() is False
            assert not f.cancelled()
            assert not f.done()
    kit.release.set()
    if kit.kind == "thread":
        assert [f.result(timeout=TIMEOUT) for f in running] == [0, 1]
    assert [f.result(timeout=TIMEOUT) for f in queued[:-1]] == list(range(2, 7))
    kit.ex.shutdown(wait=True)
    assert kit.count_started() == 5  # the cancelled task never ran
    finished = queued[0]
    assert finished.cancel() is False  # finished futures refuse


def test_cancel_runs_callbacks_and_as_completed_sees_it(kit: Kit) -> None:
    running = [kit.ex.submit(h.block, i) for i in range(2)]
    kit.wait_started(2)
    queued = [kit.ex.submit(h.block, i) for i in range(2, 8)]
    called = threading.Event()
    queued[-1].add_done_callback(lambda f: called.set())
    assert queued[-1].cancel()
    assert called.wait(TIMEOUT)
    kit.release.set()
    everything = [*running, *queued]
    assert set(concurrent.futures.as_completed(everything, timeout=TIMEOUT)) == set(everything)
    done, not_done = concurrent.futures.wait(everything, timeout=TIMEOUT)
    assert not not_done
    assert queued[-1] in done


# -- map ------------------------------------------------------------------------------------------------------


def test_map_in_order(executor: fk.Executor) -> None:
    assert list(executor.map(h.square, range(50))) == [i * i for i in range(50)]
    assert list(executor.map(h.add, range(5), range(10, 100))) == [i + i + 10 for i in range(5)]
    assert list(executor.map(h.square, [])) == []


def test_map_unordered(executor: fk.Executor) -> None:
    assert sorted(executor.map(h.square, range(30), ordered=False)) == [i * i for i in range(30)]


def test_map_free_reference(executor: fk.Executor) -> None:
    """CPython's test_free_reference (issue #14406): map keeps no reference to a result it has yielded."""
    options: list[dict[str, Any]] = [{}, {"chunksize": 5}, {"buffersize": 3}, {"ordered": False, "chunksize": 4}]
    for kwargs in options:
        seen = 0
        for obj in executor.map(h.make_dummy, range(10), **kwargs):
            wr = weakref.ref(obj)
            del obj
            if wr() is not None:  # a full collection only if refcounting did not free it (each costs ~0.1 s here)
                gc.collect()
            assert wr() is None, kwargs
            seen += 1
        assert seen == 10


def test_map_raises_at_the_failing_item(executor: fk.Executor) -> None:
    it = executor.map(h.fail_on, range(10), [4] * 10, chunksize=3)
    assert [next(it) for _ in range(4)] == [0, 1, 2, 3]
    with pytest.raises(h.ItemError, match="item 4"):
        next(it)


def test_map_timeout(kit: Kit) -> None:
    it = kit.ex.map(h.block, [1], timeout=0.2)
    with pytest.raises(TimeoutError):
        next(it)
    kit.release.set()


def test_map_honours_chunksize_exactly(executor: fk.Executor, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    original = executor._submit_chunk

    def recording(fn: Callable[..., Any], chunk: list[Any]) -> Future[Any]:
        sizes.append(len(chunk))
        return original(fn, chunk)

    monkeypatch.setattr(executor, "_submit_chunk", recording)
    assert list(executor.map(h.square, range(10), chunksize=3)) == [i * i for i in range(10)]
    assert sizes == [3, 3, 3, 1]


@pytest.mark.parametrize("name", ["chunksize", "buffersize"])
def test_map_rejects_bad_sizes(executor: fk.Executor, name: str) -> None:
    bad: list[tuple[object, type[Exception]]] = [(0, ValueError), (-1, ValueError), ("3", TypeError)]
    for value, error in bad:
        kwargs: dict[str, Any] = {name: value}
        with pytest.raises(error):
            executor.map(h.square, [1], **kwargs)


def test_map_closing_early_cancels_pending(kit: Kit) -> None:
    it = kit.ex.map(h.block, range(100), buffersize=8, chunksize=1)
    kit.wait_started(2)
    close = getattr(it, "close")
    close()
    kit.release.set()
    kit.ex.shutdown(wait=True)
    assert kit.count_started() <= 8 - 2  # nothing beyond the window ever ran


# -- construction -----------------------------------------------------------------------------------------------


def test_threads_forwards_initializer() -> None:
    with fk.threads(1, thread_name_prefix="fkt", initializer=h.set_thread_value, initargs=(5,)) as ex:
        assert ex.submit(h.thread_init_value).result(timeout=TIMEOUT) == 5
        name = ex.submit(lambda: threading.current_thread().name).result(timeout=TIMEOUT)
        assert name.startswith("fkt")


def test_processes_forwards_initializer() -> None:
    with fk.processes(1, mp_context="spawn", initializer=h.set_init_value, initargs=(7,)) as ex:
        assert ex.submit(h.get_init_value).result(timeout=60) == 7


@on_kinds("forkserver", "spawn")  # max_tasks_per_child refuses fork, as the stdlib's pool does
@pytest.mark.executor_options(max_workers=1, max_tasks_per_child=2)
def test_processes_max_tasks_per_child_replaces_workers(executor: fk.Executor) -> None:
    pids = [executor.submit(h.pid).result(timeout=TIMEOUT) for _ in range(6)]
    assert len(set(pids)) == 3


@pytest.mark.parametrize(
    ("factory", "error"),
    [
        (lambda: fk.threads(0), ValueError),
        (lambda: fk.threads(-1), ValueError),
        (lambda: fk.threads(1, initializer=5), TypeError),  # type: ignore[arg-type]
        (lambda: fk.processes(0), ValueError),
        (lambda: fk.processes(-2), ValueError),
        (lambda: fk.processes(1, max_tasks_per_child=0), ValueError),
        (lambda: fk.processes(1, initializer=5), TypeError),  # type: ignore[arg-type]
        (lambda: fk.processes(1, mp_context="no-such-method"), ValueError),
        (lambda: fk.Executor(object()), TypeError),  # type: ignore[arg-type]
    ],
)
def test_bad_arguments_raise_like_the_stdlib(factory: Callable[[], object], error: type[Exception]) -> None:
    with pytest.raises(error):
        factory()


def test_default_start_method_is_not_fork() -> None:
    with fk.processes(1) as ex:
        inner = ex.inner
        assert isinstance(inner, ProcessPool)
        assert inner._mp_context.get_start_method() in ("forkserver", "spawn")


def test_wrapping_a_thread_pool_returns_its_own_futures() -> None:
    inner = ThreadPoolExecutor(1)
    with fk.Executor(inner) as ex:
        assert not ex.remote
        assert ex.inner is inner
        fut = ex.submit(h.add, 1, 2)
        assert type(fut) is Future
        assert fut.result(timeout=TIMEOUT) == 3


def test_wrapping_a_process_pool_is_remote_by_default() -> None:
    with fk.Executor(ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("forkserver"))) as ex:
        assert ex.remote
        with pytest.raises(h.CustomError):
            ex.submit(h.fail, "x").result(timeout=TIMEOUT)
        assert ex.submit(lambda: 1).result(timeout=TIMEOUT) == 1  # by value
        with pytest.raises(fk.SerializationError, match="argument 0"):
            ex.submit(h.identity, threading.Lock())


def test_wrapping_loky_with_remote_true() -> None:
    loky = pytest.importorskip("loky")
    with fk.Executor(loky.ProcessPoolExecutor(1), remote=True) as ex:
        assert ex.submit(h.add, 2, 3).result(timeout=60) == 5
        with pytest.raises(h.CustomError):
            ex.submit(h.fail, "x").result(timeout=60)
        assert list(ex.map(h.square, range(5))) == [0, 1, 4, 9, 16]


# -- process boundary -------------------------------------------------------------------------------------------


def _local_function() -> int:
    return 1


@on_remote
def test_lambdas_and_closures_run_by_value(executor: fk.Executor) -> None:
    offset = 10

    def local(x: int) -> int:
        return x + offset

    assert executor.submit(lambda: 1).result(timeout=TIMEOUT) == 1
    assert executor.submit(local, 1).result(timeout=TIMEOUT) == 11
    assert list(executor.map(lambda x: x * 2, [1, 2], chunksize=1)) == [2, 4]
    assert executor.submit(h.identity, lambda: 5).result(timeout=TIMEOUT)() == 5  # type: ignore[operator]


@on_remote
def test_unsendable_call_raises_serialization_error_at_submit(executor: fk.Executor) -> None:
    with pytest.raises(fk.SerializationError, match=r"argument 0 of executor_helpers\.add \(type _thread\.lock\)"):
        executor.submit(h.add, threading.Lock())  # type: ignore[arg-type]
    with pytest.raises(fk.SerializationError):
        executor.map(h.identity, [threading.Lock()])
    assert executor.submit(h.add, 1, 2).result(timeout=TIMEOUT) == 3


class _ExitOnPickle:
    def __reduce__(self) -> tuple[Any, ...]:
        raise SystemExit("raised while pickling")


@on_remote
def test_base_exception_while_pickling_does_not_hang(executor: fk.Executor) -> None:
    with pytest.raises(fk.SerializationError):
        executor.submit(h.add, _ExitOnPickle())  # type: ignore[arg-type]
    assert executor.submit(h.add, 1, 1).result(timeout=TIMEOUT) == 2


@on_remote
def test_unpicklable_result_fails_only_that_task(executor: fk.Executor) -> None:
    fut = executor.submit(h.unpicklable_result)
    with pytest.raises(fk.SerializationError, match="unpicklable_result"):
        fut.result(timeout=TIMEOUT)
    assert executor.submit(h.add, 1, 1).result(timeout=TIMEOUT) == 2


@on_remote
def test_unpicklable_result_in_map_fails_only_that_item(executor: fk.Executor) -> None:
    it = executor.map(h.lock_or_value, [1, 2, 3, 4], chunksize=4)
    assert next(it) == 1
    with pytest.raises(fk.SerializationError, match="lock_or_value"):
        next(it)
    assert executor.submit(h.add, 1, 1).result(timeout=TIMEOUT) == 2


@on_remote
def test_exception_with_required_init_args_fails_only_that_task(executor: fk.Executor) -> None:
    fut = executor.submit(h.fail_two_arg, 1, "two")
    exc = fut.exception(timeout=TIMEOUT)
    assert isinstance(exc, (h.TwoArgError, fk.RemoteError))
    assert "code 1: two" in str(exc)
    assert executor.submit(h.add, 1, 1).result(timeout=TIMEOUT) == 2


@on_remote
def test_raising_callback_does_not_break_the_pool(executor: fk.Executor) -> None:
    fut = executor.submit(h.add, 1, 1)

    def bad(f: Future[int]) -> None:
        raise SystemExit("callback")

    fut.add_done_callback(bad)
    assert fut.result(timeout=TIMEOUT) == 2
    assert executor.submit(h.add, 2, 2).result(timeout=TIMEOUT) == 4


@on_processes
def test_process_future_pickle_roundtrip_of_errors(executor: fk.Executor) -> None:
    exc = executor.submit(h.fail, "again").exception(timeout=TIMEOUT)
    assert isinstance(exc, h.CustomError)
    assert isinstance(pickle.loads(pickle.dumps(exc)), h.CustomError)


def test_broken_for_good_submit_raises_broken_process_pool() -> None:
    with fk.processes(1, initializer=h.failing_init) as ex:
        fut = ex.submit(h.add, 1, 2)
        assert isinstance(fut.exception(timeout=60), BrokenProcessPool)
        with pytest.raises(BrokenProcessPool):
            ex.submit(h.add, 1, 2)
        assert "broken" in repr(ex)


def test_map_submits_without_iteration_like_the_stdlib() -> None:
    """CPython's test_map_submits_without_iteration (issue 11777): a map never iterated still runs."""
    finished: list[int] = []
    lock = threading.Lock()

    def record_finished(n: int) -> None:
        with lock:
            finished.append(n)

    ex = fk.threads(max_workers=5)
    ex.map(record_finished, range(10))
    ex.shutdown(wait=True)
    assert sorted(finished) == list(range(10))


def test_private_attributes_of_the_inner_executor_stay_reachable() -> None:
    # Code (and the stdlib's own tests) peeking at a pool's internals keeps working through the wrapper.
    with fk.threads(2, thread_name_prefix="peek") as ex:
        assert ex.submit(h.add, 1, 2).result(timeout=TIMEOUT) == 3
        threads: Any = getattr(ex, "_threads")
        assert threads
        assert all(t.name.startswith("peek") for t in threads)
        assert getattr(ex, "_broken") is False
        with pytest.raises(AttributeError):
            getattr(ex, "no_such_attribute")
        with pytest.raises(AttributeError):
            getattr(ex, "_no_such_attribute")
    with fk.processes(1) as pex:
        pid = pex.submit(h.pid).result(timeout=TIMEOUT)
        assert list(getattr(pex, "_processes")) == [pid]
        assert getattr(pex, "_broken") is False
