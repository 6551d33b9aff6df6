"""Stopping running work on fk.processes(): cancel(), the combinators, task_timeout, terminate/kill, with and Ctrl-C.

Every claim that a task was stopped is shown by the task's own evidence
(tests/stop_helpers.py): its ``finally`` block ran, so its loop has ended, and
the same worker (soft stop) or a new one (kill) runs the next task.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pytest
import stop_helpers as h

import futurekit as fk

TIMEOUT = 30.0
TESTS = str(Path(__file__).resolve().parent)


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    """Poll ``predicate`` until it holds (what a task leaves in a file cannot be waited on otherwise)."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


def started(path: Path) -> int:
    """Wait until the task working on ``path`` started; its worker's pid."""
    marker = Path(str(path) + ".started")
    wait_for(lambda: marker.exists() and marker.read_text() != "", f"{path.name} to start")
    return int(marker.read_text())


def finished(path: Path) -> None:
    """Wait until the task working on ``path`` ran its finally block: its loop is over."""
    fin = Path(str(path) + ".fin")
    wait_for(fin.exists, f"{path.name}'s finally block")


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def pool1() -> Iterator[fk.Executor]:
    ex = fk.processes(max_workers=1, stop_grace=5.0)
    yield ex
    ex.kill_workers()
    ex.shutdown(wait=True)


@pytest.fixture
def pool2() -> Iterator[fk.Executor]:
    ex = fk.processes(max_workers=2, stop_grace=5.0)
    yield ex
    ex.kill_workers()
    ex.shutdown(wait=True)


# --- cancel() ----------------------------------------------------------------------------------


def test_cancel_stops_a_running_task_softly(pool1: fk.Executor, tmp_path: Path) -> None:
    path = tmp_path / "spin"
    f = pool1.submit(h.spin, str(path))
    behind = pool1.submit(h.pid)
    worker = started(path)
    assert f.running()
    assert f.cancel() is True
    assert f.cancelled()
    assert f.done()
    with pytest.raises(CancelledError):
        f.result(timeout=0)
    finished(path)  # StopRequested was raised inside it: its finally block ran
    assert behind.result(timeout=TIMEOUT) == worker  # soft stop: the same worker took the next task
    size = path.stat().st_size
    assert pool1.submit(h.pid).result(timeout=TIMEOUT) == worker
    assert path.stat().st_size == size  # nothing appended since: the loop is over


def test_a_task_that_ignores_the_stop_is_killed_after_the_grace(tmp_path: Path) -> None:
    with fk.processes(max_workers=1, stop_grace=0.2) as ex:
        path = tmp_path / "stubborn"
        f = ex.submit(h.stubborn, str(path))
        old = started(path)
        behind = ex.submit(h.pid)
        assert f.cancel() is True
        new = behind.result(timeout=TIMEOUT)
        assert new != old  # a new worker replaced the killed one
        assert gone(old)
        assert "StopRequested" in path.read_text()  # the soft stop came first, and was ignored
        assert ex.submit(h.tagged, 1).result(timeout=TIMEOUT) == (1, new)  # the pool goes on


def test_stop_grace_zero_kills_at_once(tmp_path: Path) -> None:
    with fk.processes(max_workers=1, stop_grace=0) as ex:
        path = tmp_path / "spin"
        f = ex.submit(h.spin, str(path))
        old = started(path)
        assert f.cancel() is True
        assert ex.submit(h.pid).result(timeout=TIMEOUT) != old
        assert not Path(str(path) + ".fin").exists()  # killed: no finally block ran


def test_cancel_running_false_keeps_the_stdlib_rule(tmp_path: Path) -> None:
    with fk.processes(max_workers=1, cancel_running=False) as ex:
        path = tmp_path / "nap"
        f = ex.submit(h.nap, 0.3)
        wait_for(f.running, "the task to be handed to the worker")
        assert f.cancel() is False
        assert not f.cancelled()
        assert f.result(timeout=TIMEOUT) == 0.3
        del path


def test_a_task_handed_over_but_not_started_never_runs(pool1: fk.Executor, tmp_path: Path) -> None:
    # A short first task lets the pool hand the worker a second one ahead (it is RUNNING, not started).
    assert pool1.submit(h.pid).result(timeout=TIMEOUT) > 0
    path = tmp_path / "spin"
    first = pool1.submit(h.spin, str(path))
    started(path)
    ahead = pool1.submit(h.mark, str(tmp_path / "ahead"))
    assert ahead.cancel() is True
    assert first.cancel() is True
    finished(path)
    assert pool1.submit(h.mark, str(tmp_path / "after")).result(timeout=TIMEOUT)
    assert not (tmp_path / "ahead").exists()


def test_stops_never_hit_the_wrong_task() -> None:
    """1,000 cancels racing 1,000 completions on 2 workers: no task but its own is stopped, no worker killed."""
    with fk.processes(max_workers=2) as ex:
        warm = {f.result(timeout=TIMEOUT) for f in [ex.submit(h.nap_pid, 0.3) for _ in range(2)]}
        assert len(warm) == 2
        futures: list[Future[tuple[int, int]]] = []
        outcomes: dict[int, bool] = {}
        ready = threading.Semaphore(0)

        def canceller() -> None:
            for i in range(1000):
                assert ready.acquire(timeout=TIMEOUT)
                if i % 3 == 0:  # every third on the spot: queued, handed over, running or done
                    outcomes[i] = futures[i].cancel()
                elif i % 3 == 1:  # the rest once they may have finished
                    futures[i - 1].done()
                    outcomes[i] = futures[i].cancel()

        thread = threading.Thread(target=canceller)
        thread.start()
        for i in range(1000):
            futures.append(ex.submit(h.tagged, i))
            ready.release()
        thread.join(TIMEOUT)
        assert not thread.is_alive()
        pids: set[int] = set()
        for i, f in enumerate(futures):
            if outcomes.get(i):
                assert f.cancelled()
                continue
            value, worker = f.result(timeout=TIMEOUT)
            assert value == i  # its own value
            pids.add(worker)
        assert sum(outcomes.values()) > 0
        live = {ex.submit(h.pid).result(timeout=TIMEOUT) for _ in range(20)}
    assert pids | live <= warm  # no worker was killed: the same two processes throughout


# --- the combinators stop what they no longer need ----------------------------------------------


def test_timeout_stops_the_task(pool1: fk.Executor, tmp_path: Path) -> None:
    path = tmp_path / "spin"
    f = pool1.submit(h.spin, str(path))
    started(path)
    with pytest.raises(TimeoutError):
        fk.timeout(f, 0.1).result(timeout=TIMEOUT)
    assert f.cancelled()
    finished(path)


def test_race_stops_the_loser(pool2: fk.Executor, tmp_path: Path) -> None:
    path = tmp_path / "spin"
    loser = pool2.submit(h.spin, str(path))
    started(path)
    assert fk.race(loser, pool2.submit(h.tagged, 7)).result(timeout=TIMEOUT)[0] == 7
    finished(path)
    assert loser.cancelled()


def test_first_success_stops_the_losers(pool2: fk.Executor, tmp_path: Path) -> None:
    path = tmp_path / "spin"
    loser = pool2.submit(h.spin, str(path))
    started(path)
    assert fk.first_success(loser, pool2.submit(h.tagged, 8)).result(timeout=TIMEOUT)[0] == 8
    finished(path)


@pytest.mark.parametrize("combinator", ["gather", "gather_all"])
def test_a_failing_gather_stops_the_siblings(pool2: fk.Executor, tmp_path: Path, combinator: str) -> None:
    path = tmp_path / "spin"
    sibling = pool2.submit(h.spin, str(path))
    started(path)
    failing = pool2.submit(h.fail, "boom")
    both: list[Future[Any]] = [sibling, failing]
    out: Future[Any] = fk.gather(*both) if combinator == "gather" else fk.gather_all(both)
    with pytest.raises(ValueError, match="boom"):
        out.result(timeout=TIMEOUT)
    finished(path)
    assert sibling.cancelled()


@pytest.mark.parametrize("how", ["close", "break"])
def test_leaving_a_map_stops_the_chunks_in_flight(pool2: fk.Executor, tmp_path: Path, how: str) -> None:
    paths = [str(tmp_path / "quick"), str(tmp_path / "spin1"), str(tmp_path / "spin2")]
    it = pool2.map(h.spin_or_return, paths, chunksize=1)
    if how == "close":
        assert next(it) == paths[0]
        started(tmp_path / "spin1")
        it.close()  # type: ignore[attr-defined]
    else:
        for value in it:
            assert value == paths[0]
            started(tmp_path / "spin1")
            break
        del it
    finished(tmp_path / "spin1")


# --- a deadline per task --------------------------------------------------------------------------


def test_task_timeout_fails_the_task_and_stops_it(tmp_path: Path) -> None:
    with fk.processes(max_workers=1, task_timeout=0.2) as ex:
        path = tmp_path / "spin"
        f = ex.submit(h.spin, str(path))
        with pytest.raises(fk.TaskTimeoutError) as info:
            f.result(timeout=TIMEOUT)
        err = info.value
        assert isinstance(err, TimeoutError)
        assert "stop_helpers.spin(" in err.task
        assert err.seconds >= 0.2
        assert err.limit == 0.2
        assert "task_timeout=0.2" in str(err)
        finished(path)
        assert ex.submit(h.tagged, 3).result(timeout=TIMEOUT)[0] == 3  # short tasks are untouched


def test_task_timeout_error_pickles() -> None:
    import pickle

    err = pickle.loads(pickle.dumps(fk.TaskTimeoutError(task="f(1)", seconds=1.5, limit=1.0)))
    assert (err.task, err.seconds, err.limit) == ("f(1)", 1.5, 1.0)


@pytest.mark.parametrize("how", ["terminate_workers", "kill_workers"])
def test_terminate_and_kill_workers(tmp_path: Path, how: str) -> None:
    ex = fk.processes(max_workers=2)
    paths = [tmp_path / "a", tmp_path / "b"]
    running = [ex.submit(h.spin, str(p)) for p in paths]
    pids = [started(p) for p in paths]
    queued = ex.submit(h.mark, str(tmp_path / "queued"))
    getattr(ex, how)()
    for f in running:
        with pytest.raises(fk.WorkerCrashedError):
            f.result(timeout=TIMEOUT)
    with pytest.raises(BrokenProcessPool):
        queued.result(timeout=TIMEOUT)
    with pytest.raises(RuntimeError):
        ex.submit(h.pid)
    ex.shutdown(wait=True)
    assert all(gone(p) for p in pids)
    assert not (tmp_path / "queued").exists()


@pytest.mark.parametrize("how", ["terminate_workers", "kill_workers"])
def test_terminate_fails_a_task_handed_over_but_not_started(tmp_path: Path, how: str) -> None:
    """A task already in a killed worker's pipe fails; it is not requeued for a worker that never comes."""
    ex = fk.processes(max_workers=1)
    # A short first task lets the pool hand the worker a second one ahead (in its pipe, not started).
    assert ex.submit(h.pid).result(timeout=TIMEOUT) > 0
    path = tmp_path / "spin"
    first = ex.submit(h.spin, str(path))
    started(path)
    ahead = ex.submit(h.mark, str(tmp_path / "ahead"))
    inner: Any = ex.inner
    wait_for(lambda: len(inner._engine.workers[0].assigned) == 2, "the second task handed to the worker")
    getattr(ex, how)()
    with pytest.raises(BrokenProcessPool):
        ahead.result(timeout=TIMEOUT)
    with pytest.raises(fk.WorkerCrashedError):
        first.result(timeout=TIMEOUT)
    joined = threading.Thread(target=ex.shutdown, daemon=True)
    joined.start()
    joined.join(TIMEOUT)
    assert not joined.is_alive(), "shutdown(wait=True) hung after " + how
    assert not (tmp_path / "ahead").exists()


def test_threads_have_no_workers_to_terminate() -> None:
    with fk.threads(max_workers=1) as ex, pytest.raises(NotImplementedError, match="process pool"):
        ex.terminate_workers()


# --- leaving with -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_leaving_with_by_an_exception_cancels_what_has_not_started(kind: str, tmp_path: Path) -> None:
    queued: list[Future[str]] = []
    firsts: list[Future[float]] = []
    executor = fk.threads(max_workers=1) if kind == "thread" else fk.processes(max_workers=1)
    with pytest.raises(LookupError, match="leaving"), executor as ex:  # noqa: PT012 - the with block is what is tested
        first = ex.submit(h.nap, 0.2)
        firsts.append(first)
        wait_for(first.running, "the first task to run")
        queued = [ex.submit(h.mark, str(tmp_path / f"q{i}")) for i in range(5)]
        raise LookupError("leaving")
    assert firsts[0].result(timeout=0) == 0.2  # running tasks finish (threads cannot be stopped)
    assert all(f.cancelled() for f in queued)
    assert list(tmp_path.iterdir()) == []


def _script(mode: str, tmp_path: Path) -> subprocess.Popen[str]:
    call = f"stop_helpers.ctrl_c_main({str(tmp_path)!r}, {mode!r})"
    code = f"import sys; sys.path.insert(0, {TESTS!r}); import stop_helpers; {call}"
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _ready(proc: subprocess.Popen[str]) -> list[int]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("ready"), line + (proc.stderr.read() if proc.stderr else "")
    return [int(p) for p in line.split()[1:]]


def test_ctrl_c_in_with_stops_running_tasks_and_returns(tmp_path: Path) -> None:
    proc = _script("spin", tmp_path)
    try:
        pids = _ready(proc)
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=TIMEOUT)
        elapsed = time.monotonic() - start
    finally:
        proc.kill()
    assert "interrupted" in out, err
    assert "alive 0" in out, out + err  # no worker outlived the pool
    assert elapsed < 0.5 + 1.0 + 2.0  # stop_grace + 1 s, plus room for a loaded machine
    assert all(gone(p) for p in pids)
    assert (tmp_path / "task0.fin").exists()  # soft stop: the running tasks' finally blocks ran
    assert (tmp_path / "task1.fin").exists()
    assert sorted(p.name for p in tmp_path.glob("*.started")) == [
        "task0.started",
        "task1.started",
    ]  # nothing queued ran


def test_a_second_ctrl_c_kills_the_workers(tmp_path: Path) -> None:
    proc = _script("stubborn", tmp_path)  # tasks that ignore the soft stop, stop_grace=30
    try:
        pids = _ready(proc)
        proc.send_signal(signal.SIGINT)
        wait_for(lambda: (tmp_path / "task0").exists() and (tmp_path / "task1").exists(), "the soft stops")
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=TIMEOUT)
        elapsed = time.monotonic() - start
    finally:
        proc.kill()
    assert "alive 0" in out, out + err
    assert elapsed < 10.0  # not the 30 s grace
    assert all(gone(p) for p in pids)


def test_a_ctrl_c_during_the_first_ones_cleanup_counts_as_the_second(tmp_path: Path) -> None:
    """A KeyboardInterrupt raised while another was handled (say, in a map's cleanup) kills at once."""
    ex = fk.processes(max_workers=2, stop_grace=30.0)
    paths = [tmp_path / "a", tmp_path / "b"]
    running = [ex.submit(h.stubborn, str(p)) for p in paths]
    queued = ex.submit(h.mark, str(tmp_path / "queued"))
    pids = [started(p) for p in paths]
    second = KeyboardInterrupt()
    second.__context__ = KeyboardInterrupt()
    start = time.monotonic()
    ex.__exit__(KeyboardInterrupt, second, None)
    assert time.monotonic() - start < 10.0  # not the 30 s grace
    wait_for(lambda: all(gone(p) for p in pids), "the workers killed")
    assert all(f.cancelled() for f in [*running, queued])
    assert not (tmp_path / "queued").exists()


# --- what cannot be waited for -------------------------------------------------------------------


def test_waiting_on_the_pools_own_result_thread_raises_deadlock_error(pool2: fk.Executor, tmp_path: Path) -> None:
    path = tmp_path / "spin"
    pending = pool2.submit(h.spin, str(path))
    started(path)
    out = fk.then(pool2.submit(h.tagged, 1), lambda _: pending.result())
    err = out.exception(timeout=TIMEOUT)
    assert isinstance(err, fk.DeadlockError)
    assert "executor=" in str(err)
    assert pending.cancel()
    # Polling with timeout=0 stays allowed: it cannot hang.
    probe = fk.then(pool2.submit(h.tagged, 2), lambda _: pool2.submit(h.nap, 0.5).done())
    assert probe.result(timeout=TIMEOUT) is False


# --- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"stop_grace": -1}, ValueError, "stop_grace"),
        ({"stop_grace": math.nan}, ValueError, "stop_grace"),
        ({"stop_grace": "1"}, TypeError, "stop_grace"),
        ({"stop_grace": True}, TypeError, "stop_grace"),
        ({"task_timeout": 0}, ValueError, "task_timeout"),
        ({"task_timeout": -0.5}, ValueError, "task_timeout"),
        ({"task_timeout": math.nan}, ValueError, "task_timeout"),
        ({"task_timeout": "soon"}, TypeError, "task_timeout"),
        ({"cancel_running": 1}, TypeError, "cancel_running"),
    ],
)
def test_bad_stop_arguments(kwargs: dict[str, Any], error: type[Exception], name: str) -> None:
    with pytest.raises(error, match=name):
        fk.processes(max_workers=1, **kwargs)
