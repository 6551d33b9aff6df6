"""futurekit's own process pool (futurekit._process): hand-over policy, crash requeue, stopping, initializer failure."""

from __future__ import annotations

import concurrent.futures as cf
import gc
import multiprocessing
import sys
import threading
import traceback
import weakref
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import wait
from typing import Any

import executor_helpers as h
import pytest
from executor_helpers import TIMEOUT, Kit, on_processes

import futurekit as fk
from futurekit._process import engine as _engine
from futurekit._process.payload import decode_value
from futurekit._process.pool import ProcessPool

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX exit codes")


# --- the hand-over policy, on a pool state with stand-in workers (no processes) ----------------


def _state(
    max_workers: int, loads: list[tuple[int, float]], spawning: int = 0
) -> tuple[_engine.Engine, list[_engine.Worker]]:
    state = _engine.Engine(multiprocessing.get_context("spawn"), max_workers, None, (), None)
    workers = []
    for load, last in loads:
        w = _engine.Worker(None, Any, Any, None, None)  # type: ignore[arg-type]
        w.assigned.extend(_engine.Task(i, b"", decode_value, str, state.Future()) for i in range(load))
        w.last_seconds = last
        workers.append(w)
    state.workers = workers
    state.spawning = spawning
    return state, workers


def _close(state: _engine.Engine) -> None:
    state.begin_shutdown(False)


def test_an_idle_worker_is_picked_first() -> None:
    state, (_busy, idle) = _state(2, [(1, 0.001), (0, 0.001)])
    try:
        assert state.pick() is idle
    finally:
        _close(state)


def test_a_busy_worker_gets_a_task_ahead_only_when_the_pool_is_full_and_its_last_task_was_short() -> None:
    cases = [
        # (max_workers, [(tasks handed, last task seconds)], spawning, who is picked)
        (2, [(1, 0.001), (1, 0.001)], 0, 0),  # full, short: the first busy worker
        (2, [(1, 0.001)], 0, None),  # the pool can still grow: wait for a new worker
        (2, [(1, 0.001)], 1, None),  # a worker is starting: wait for it
        (1, [(1, 1.0)], 0, None),  # its last task was long: never queue behind it
        (1, [(1, float("inf"))], 0, None),  # it never finished a task yet
        (1, [(2, 0.001)], 0, None),  # at most PREFETCH tasks per worker
        (2, [(1, 1.0), (1, 0.001)], 0, 1),  # the one whose last task was short
    ]
    for max_workers, loads, spawning, expected in cases:
        state, workers = _state(max_workers, loads, spawning)
        try:
            picked = state.pick()
            assert picked is (None if expected is None else workers[expected]), (max_workers, loads, spawning)
        finally:
            _close(state)


def test_stopping_or_exhausted_workers_are_never_picked() -> None:
    state, (stopping, spent) = _state(2, [(0, 0.001), (0, 0.001)])
    stopping.stopping = True
    spent.budget = 0
    try:
        assert state.pick() is None
    finally:
        _close(state)


# --- with real worker processes -----------------------------------------------------------------


@on_processes
@pytest.mark.executor_options(max_workers=1)
def test_a_task_handed_ahead_to_a_dying_worker_runs_elsewhere(kit: Kit) -> None:
    # One worker whose last task was short: the pool is full, so the task after the culprit is
    # handed to it ahead. The worker dies: only the culprit fails; the other one runs once, elsewhere.
    assert kit.ex.submit(h.square, 3).result(timeout=TIMEOUT) == 9
    culprit = kit.ex.submit(h.crash_when_released, 6)
    kit.wait_started()
    behind = kit.ex.submit(h.mark, 41)
    kit.release.set()
    exc = culprit.exception(timeout=TIMEOUT)
    assert isinstance(exc, fk.WorkerCrashedError)
    assert exc.exitcode == 6
    assert behind.result(timeout=TIMEOUT) == 41
    kit.ex.shutdown(wait=True)
    assert kit.count_started() == 1


@on_processes
@pytest.mark.executor_options(max_workers=1)
def test_cancelling_a_queued_task_wakes_wait_at_once(kit: Kit) -> None:
    running = kit.ex.submit(h.block)
    kit.wait_started()
    queued = kit.ex.submit(h.square, 2)
    assert queued.cancel()
    assert queued.cancelled()
    done, _ = cf.wait([queued], timeout=TIMEOUT)
    assert done == {queued}
    kit.release.set()
    assert running.result(timeout=TIMEOUT) is None


@on_processes
@pytest.mark.executor_options(max_workers=1)
def test_shutdown_waiting_from_a_done_callback_does_not_deadlock(executor: fk.Executor) -> None:
    called = threading.Event()

    def on_done(_: cf.Future[Any]) -> None:
        executor.shutdown(wait=True)  # runs on the pool's reader thread
        called.set()

    executor.submit(h.square, 4).add_done_callback(on_done)
    assert called.wait(TIMEOUT)
    executor.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        executor.submit(h.square, 1)


def test_a_pool_dropped_without_shutdown_lets_its_workers_exit() -> None:
    pool = ProcessPool(1, multiprocessing.get_context("forkserver"))
    assert pool.submit(h.square, 5).result(timeout=TIMEOUT) == 25
    state = pool._engine
    sentinels = [w.process.sentinel for w in state.workers]
    ref = weakref.ref(pool)
    del pool
    gc.collect()
    assert ref() is None
    assert state.finished.wait(TIMEOUT)
    assert len(wait(sentinels, timeout=TIMEOUT)) == len(sentinels)


def test_initializer_failure_chains_the_initializers_exception() -> None:
    with fk.processes(1, initializer=h.failing_init) as ex:
        exc = ex.submit(h.add, 1, 2).exception(timeout=TIMEOUT)
        assert isinstance(exc, BrokenProcessPool)
        assert "RuntimeError: initializer failed on purpose" in str(exc)
        cause = exc.__cause__
        assert isinstance(cause, RuntimeError)
        assert "failing_init" in [frame.name for frame in traceback.extract_tb(cause.__traceback__)]


def test_workers_start_on_demand_up_to_max_workers() -> None:
    with fk.processes(3, mp_context="forkserver") as ex:
        inner: Any = ex.inner
        assert inner._engine.workers == []
        assert ex.submit(h.square, 2).result(timeout=TIMEOUT) == 4
        assert len(inner._engine.workers) == 1  # one task, one worker
        assert sorted(ex.map(h.square, range(50))) == [i * i for i in range(50)]
        assert len(inner._engine.workers) <= 3


def test_interpreter_exit_waits_for_pending_tasks_and_refuses_new_ones(tmp_path: Any) -> None:
    import subprocess
    from pathlib import Path

    tests_dir = str(Path(__file__).resolve().parent)
    target = str(tmp_path / "out.txt")
    code = (
        f"import sys; sys.path.insert(0, {tests_dir!r}); import executor_helpers; "
        f"executor_helpers.exit_main({target!r})"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert Path(target).read_text(encoding="utf-8") == "apple"  # the pending task ran before exit
    assert "cannot schedule new futures after interpreter shutdown" in proc.stdout
    assert not Path(target + ".late").exists()


def _resubmit(pool: fk.Executor) -> None:
    pool.submit(_resubmit, pool)


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")  # 3.12+: fork() of a threaded process
def test_fork_workers_exit_although_the_parent_runs_threads() -> None:
    # bpo-45021's scenario: a forked worker inherits the parent's pool objects (and locks other
    # threads held at fork time); at its exit it must not touch them, or it hangs.
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork start method")
    with fk.threads(1) as busy:
        busy.submit(_resubmit, busy)  # keeps a thread submitting while workers are forked
        for _ in range(10):
            with fk.processes(1, mp_context="fork") as workers:
                assert workers.submit(h.square, 3).result(timeout=TIMEOUT) == 9


def test_threads_that_cannot_start_break_the_pool_without_hanging(monkeypatch: pytest.MonkeyPatch) -> None:
    # As at interpreter exit (CPython's test_python_finalization_error): thread creation fails.
    original = threading.Thread.start

    def start(self: threading.Thread) -> None:
        if self.name == "futurekit-pool-reader":
            raise RuntimeError("can't create new thread at interpreter shutdown")
        original(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    with fk.processes(2) as ex:
        with pytest.raises(BrokenProcessPool, match="threads could not be started") as info:
            list(ex.map(h.square, range(10)))
        assert isinstance(info.value.__cause__, RuntimeError)
        with pytest.raises(BrokenProcessPool):
            ex.submit(h.square, 1)
    inner: Any = ex.inner
    assert inner._engine.finished.is_set()


@pytest.mark.parametrize("method", ["forkserver", "fork"])
def test_a_failing_initializer_is_logged_in_the_worker(method: str) -> None:
    # The worker that reported the failure is left to exit by itself, so what it logged is flushed.
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method")
    ctx = multiprocessing.get_context(method)
    log_queue = ctx.Queue()
    try:
        with fk.processes(1, mp_context=ctx, initializer=h.init_fail_logging, initargs=(log_queue,)) as ex:
            exc = ex.submit(h.square, 2).exception(timeout=TIMEOUT)
            assert isinstance(exc, BrokenProcessPool)
            assert "error in initializer" in str(exc)
        record = log_queue.get(timeout=TIMEOUT)
        message = record.getMessage()  # QueueHandler folds the traceback into the message
        assert "Exception in initializer" in message
        assert "ValueError: error in initializer" in message
    finally:
        log_queue.close()
        log_queue.join_thread()
