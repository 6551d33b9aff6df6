"""Worker crashes: attribution, pool replacement, resubmission of unstarted tasks, no hang anywhere."""

from __future__ import annotations

import multiprocessing
import os
import re
import select
import signal
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import executor_helpers as h
import pytest
from executor_helpers import PROCESS_KINDS, TIMEOUT, Kit, on_kinds, on_processes

import futurekit as fk

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and exit codes")


def crashed(fut: Future[Any]) -> fk.WorkerCrashedError:
    exc = fut.exception(timeout=TIMEOUT)
    assert isinstance(exc, fk.WorkerCrashedError), repr(exc)
    assert isinstance(exc, BrokenProcessPool)
    return exc


@pytest.mark.parametrize(
    ("crash", "exitcode", "signal_name"),
    [
        (h.exit_now, 3, None),
        (h.kill_self, -signal.SIGKILL, "SIGKILL"),
        (h.segfault, -signal.SIGSEGV, "SIGSEGV"),
    ],
    ids=["os._exit(3)", "SIGKILL", "segfault"],
)
@on_processes
def test_crash_fails_its_task_and_names_it(
    executor: fk.Executor, crash: Callable[[], None], exitcode: int, signal_name: str | None
) -> None:
    exc = crashed(executor.submit(crash))
    assert exc.exitcode == exitcode
    assert exc.signal_name == signal_name
    assert exc.task is not None
    assert crash.__name__ in exc.task
    assert crash.__name__ in str(exc)
    # A new worker took the dead one's place: later submissions work.
    assert executor.submit(h.add, 1, 2).result(timeout=TIMEOUT) == 3
    assert "running" in repr(executor)


@on_processes
@pytest.mark.executor_options(max_workers=1)
def test_unstarted_tasks_are_resubmitted_and_run(kit: Kit) -> None:
    worker = kit.ex.submit(h.pid).result(timeout=TIMEOUT)
    victim = kit.ex.submit(h.block, "never")
    kit.wait_started()
    # With one worker busy, these wait in the pool (some already in its call queue, counted as running).
    waiting = [kit.ex.submit(h.square, i) for i in range(6)]
    os.kill(worker, signal.SIGKILL)
    exc = crashed(victim)
    assert exc.exitcode == -signal.SIGKILL
    assert exc.task is not None
    assert "block" in exc.task
    assert [f.result(timeout=TIMEOUT) for f in waiting] == [i * i for i in range(6)]


@on_processes
def test_tasks_running_on_other_workers_are_not_disturbed(kit: Kit) -> None:
    other = kit.ex.submit(h.block, "other")
    kit.wait_started()
    culprit = kit.ex.submit(h.crash_after_start, 5)
    later = kit.ex.submit(h.add, 20, 22)
    exc = crashed(culprit)
    assert exc.exitcode == 5
    assert exc.task is not None
    assert "crash_after_start" in exc.task
    assert later.result(timeout=TIMEOUT) == 42  # had not started: ran on the replacement worker
    assert other.running()
    assert not other.done()
    kit.release.set()
    assert other.result(timeout=TIMEOUT) == "other"


@on_processes
@pytest.mark.executor_options(max_workers=1)
def test_crash_in_map_fails_the_items_of_that_chunk(executor: fk.Executor) -> None:
    # One worker: chunks run one after another, so the earlier ones have finished when [4, 5] crashes.
    it = executor.map(h.crash_on, range(8), [5] * 8, chunksize=2)
    got = [next(it) for _ in range(4)]
    assert got == [0, 1, 2, 3]
    with pytest.raises(fk.WorkerCrashedError) as info:
        next(it)
    assert info.value.exitcode == 7
    assert info.value.task is not None
    assert "crash_on" in info.value.task
    assert "more items" in info.value.task
    assert list(executor.map(h.square, range(4))) == [0, 1, 4, 9]


@on_processes
@pytest.mark.executor_options(max_workers=1)
def test_shutdown_right_after_a_crash_does_not_hang(kit: Kit) -> None:
    worker = kit.ex.submit(h.pid).result(timeout=TIMEOUT)
    victim = kit.ex.submit(h.block)
    kit.wait_started()
    waiting = [kit.ex.submit(h.square, i) for i in range(5)]
    os.kill(worker, signal.SIGKILL)
    kit.ex.shutdown(wait=True)
    assert victim.done()
    assert all(f.done() for f in waiting)
    assert crashed(victim).exitcode == -signal.SIGKILL
    assert [f.result(timeout=0) for f in waiting] == [i * i for i in range(5)]
    with pytest.raises(RuntimeError):
        kit.ex.submit(h.add, 1, 1)


@on_processes
@pytest.mark.executor_options(max_workers=1)
def test_shutdown_cancel_futures_right_after_a_crash(kit: Kit) -> None:
    worker = kit.ex.submit(h.pid).result(timeout=TIMEOUT)
    victim = kit.ex.submit(h.block)
    kit.wait_started()
    waiting = [kit.ex.submit(h.block, i) for i in range(5)]  # cannot finish before the gate opens
    os.kill(worker, signal.SIGKILL)
    kit.ex.shutdown(wait=False, cancel_futures=True)
    kit.release.set()
    kit.ex.shutdown(wait=True)
    assert crashed(victim).exitcode == -signal.SIGKILL
    for f in waiting:  # each was either cancelled or ran (those already in a call queue)
        assert f.done()
        assert f.cancelled() or f.result(timeout=0) in range(5)
    assert waiting[-1].cancelled()


# Every stage a call and its result cross, times every way of failing there (raise, SystemExit,
# segfault): the error arrives as a clear exception, nothing hangs, and the pool keeps working.
# (A segfault while pickling the argument or unpickling the result would kill the caller itself.)
_SE, _CRASH = fk.SerializationError, fk.WorkerCrashedError


@pytest.mark.parametrize(
    ("what", "when", "how", "expected", "message"),
    [
        ("argument", "pickle", "error", _SE, "cannot send argument 0 of executor_helpers.identity"),
        ("argument", "pickle", "exit", _SE, "cannot send argument 0 of executor_helpers.identity"),
        ("argument", "unpickle", "error", _SE, "could not unpickle the call to executor_helpers.identity"),
        ("argument", "unpickle", "exit", _SE, "could not unpickle the call to executor_helpers.identity"),
        ("argument", "unpickle", "segfault", _CRASH, "SIGSEGV"),
        ("result", "pickle", "error", _SE, "result of executor_helpers.make_bomb (type executor_helpers.Bomb)"),
        ("result", "pickle", "exit", _SE, "result of executor_helpers.make_bomb (type executor_helpers.Bomb)"),
        ("result", "pickle", "segfault", _CRASH, "SIGSEGV"),
        ("result", "unpickle", "error", _SE, "cannot be unpickled in the caller"),
        ("result", "unpickle", "exit", _SE, "cannot be unpickled in the caller"),
    ],
)
@on_processes
def test_pickling_and_crash_matrix(
    executor: fk.Executor, what: str, when: str, how: str, expected: type[Exception], message: str
) -> None:
    # An argument is pickled in the caller and unpickled in the worker; a result the other way round.
    ex = executor
    if what == "argument" and when == "pickle":
        with pytest.raises(expected, match=re.escape(message)):
            ex.submit(h.identity, h.Bomb(when, how))
    else:
        fut = ex.submit(h.identity, h.Bomb(when, how)) if what == "argument" else ex.submit(h.make_bomb, when, how)
        err = fut.exception(timeout=TIMEOUT)
        assert err is not None
        assert type(err) is expected, repr(err)
        assert message in str(err)
        if expected is _SE and how == "exit":
            assert isinstance(err.__cause__, SystemExit)  # what went wrong is kept, not swallowed
    # Nothing is broken: the same pool runs the next call, and shuts down without hanging.
    assert ex.submit(h.add, 2, 3).result(timeout=TIMEOUT) == 5
    ex.shutdown(wait=True)


def _workers(ex: fk.Executor) -> dict[int, Any]:
    """The live worker processes of an fk.processes() executor, by pid."""
    inner: Any = ex.inner
    workers: dict[int, Any] = inner._processes
    return workers


def _kill(process: Any) -> None:
    """SIGKILL a worker process and wait until it is gone."""
    os.kill(process.pid, signal.SIGKILL)
    assert wait([process.sentinel], timeout=TIMEOUT), "the killed worker did not exit"


@on_kinds(*PROCESS_KINDS)
@pytest.mark.executor_options(max_workers=1)
def test_a_worker_killed_between_tasks_fails_no_task(executor: fk.Executor) -> None:
    # It was idle: the task submitted next never reached it and runs on its replacement,
    # whether or not the pool noticed the death before handing that task out.
    for i in range(5):
        worker = executor.submit(h.pid).result(timeout=TIMEOUT)
        _kill(_workers(executor)[worker])
        assert executor.submit(h.square, i).result(timeout=TIMEOUT) == i * i


@on_kinds(*PROCESS_KINDS)
@pytest.mark.executor_options(max_workers=3)
def test_idle_workers_dying_together_do_not_break_the_pool(kit: Kit) -> None:
    # Only workers that die before running any task count toward "broken for good".
    with kit.ex as ex:
        blocked = [ex.submit(h.block, i) for i in range(3)]  # one per worker: all three start and run
        kit.wait_started(3)
        kit.release.set()
        assert [f.result(timeout=TIMEOUT) for f in blocked] == [0, 1, 2]
        workers = list(_workers(ex).values())
        assert len(workers) == 3
        for process in workers:
            _kill(process)
        assert [ex.submit(h.square, i).result(timeout=TIMEOUT) for i in range(4)] == [0, 1, 4, 9]


@on_kinds("forkserver", "spawn")  # max_tasks_per_child refuses fork, as the stdlib's pool does
@pytest.mark.executor_options(max_workers=1, max_tasks_per_child=2)
def test_crash_with_max_tasks_per_child(executor: fk.Executor) -> None:
    with executor as ex:
        assert [ex.submit(h.square, i).result(timeout=TIMEOUT) for i in range(5)] == [0, 1, 4, 9, 16]
        exc = crashed(ex.submit(h.exit_now, 9))
        assert exc.exitcode == 9
        assert exc.task is not None
        assert "exit_now" in exc.task
        assert ex.submit(h.add, 1, 1).result(timeout=TIMEOUT) == 2


@on_processes
def test_nothing_lost_and_nothing_run_twice_around_a_crash(kit: Kit) -> None:
    before = [kit.ex.submit(h.mark, i) for i in range(60)]
    culprit = kit.ex.submit(h.exit_now, 3)
    after = [kit.ex.submit(h.mark, i) for i in range(60, 120)]
    crash = crashed(culprit)
    assert crash.exitcode == 3
    # Only the culprit fails: the other worker was never disturbed, and the task queued behind
    # the culprit (not started) was handed to the replacement worker.
    assert [f.result(timeout=TIMEOUT) for f in before + after] == list(range(120))
    kit.ex.shutdown(wait=True)
    assert kit.count_started() == 120  # each ran exactly once


@on_processes
def test_concurrent_submitters_around_a_crash(kit: Kit) -> None:
    import threading

    barrier = threading.Barrier(5)
    futures: list[list[Future[int]]] = [[] for _ in range(4)]

    def submitter(k: int) -> None:
        barrier.wait(TIMEOUT)
        futures[k].extend(kit.ex.submit(h.mark, k * 1000 + i) for i in range(40))

    threads = [threading.Thread(target=submitter, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    barrier.wait(TIMEOUT)
    culprit = kit.ex.submit(h.exit_now, 3)
    for t in threads:
        t.join(TIMEOUT)
        assert not t.is_alive()
    assert crashed(culprit).exitcode == 3
    for k, batch in enumerate(futures):
        assert [f.result(timeout=TIMEOUT) for f in batch] == [k * 1000 + i for i in range(40)]
    kit.ex.shutdown(wait=True)
    assert kit.count_started() == 160  # each ran exactly once


def test_initializer_failure_surfaces_as_broken_pool() -> None:
    with fk.processes(1, initializer=h.failing_init) as ex:
        exc = ex.submit(h.add, 1, 2).exception(timeout=TIMEOUT)
        assert isinstance(exc, BrokenProcessPool)
        assert "initializer" in str(exc)
        with pytest.raises(BrokenProcessPool):
            ex.submit(h.add, 1, 2)


def test_workers_dying_at_start_end_in_broken_pool_not_a_loop() -> None:
    with fk.processes(1, initializer=h.exit_now, initargs=(4,)) as ex:
        exc = ex.submit(h.add, 1, 2).exception(timeout=TIMEOUT)
        assert isinstance(exc, BrokenProcessPool)
        assert "without running any task" in str(exc)
        assert "4" in str(exc)


def test_crash_in_a_user_supplied_pool_is_attributed_without_replacement() -> None:
    inner = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("forkserver"))
    with fk.Executor(inner) as ex:
        exc = crashed(ex.submit(h.exit_now, 3))
        assert exc.task is not None
        assert "exit_now" in exc.task
        assert isinstance(exc.__cause__, BrokenProcessPool)
        with pytest.raises(BrokenProcessPool):
            ex.submit(h.add, 1, 2)


@on_processes
def test_crash_error_pickles(executor: fk.Executor) -> None:
    import pickle

    exc = crashed(executor.submit(h.exit_now, 3))
    again = pickle.loads(pickle.dumps(exc))
    assert isinstance(again, fk.WorkerCrashedError)
    assert again.exitcode == 3
    assert again.task == exc.task


@pytest.mark.parametrize("method", ["forkserver", "fork"])
def test_workers_exit_when_the_parent_is_sigkilled(method: str) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method")
    tests_dir = str(Path(__file__).resolve().parent)
    code = (
        f"import sys; sys.path.insert(0, {tests_dir!r}); import executor_helpers; "
        f"executor_helpers.orphan_main({method!r})"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    try:
        line = proc.stdout.readline()  # the workers inherit stdout: read one line, never wait for EOF
    finally:
        proc.stdout.close()
        proc.wait(TIMEOUT)
    assert proc.returncode == -signal.SIGKILL
    pids = [int(p) for p in line.split()]
    assert pids
    fds = []
    for pid in pids:
        try:
            fds.append(os.pidfd_open(pid))
        except ProcessLookupError:
            continue  # already gone
    try:
        for fd in fds:
            ready, _, _ = select.select([fd], [], [], 10)
            assert ready, "a worker outlived its SIGKILLed parent"
    finally:
        for fd in fds:
            os.close(fd)
        for pid in pids:  # never leave a worker behind, even when the test fails
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
