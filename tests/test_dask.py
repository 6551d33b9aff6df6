"""futurekit.dask: the guarantees of the cluster adapter that the executor contract does not already cover.

The generic contract (submit, map, shutdown, remote errors...) runs on the ``dask`` kind of the
``executor`` fixture in test_executor.py and test_map.py; here are the cluster's own: no dedup,
keyword arguments that dask would swallow, where callbacks run, dead workers, closed clients, a
scheduler that goes away, cancellation, and the combinators over cluster futures.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import BrokenExecutor, CancelledError
from typing import Any

import executor_helpers as h
import pytest
from executor_helpers import HAVE_DASK, TIMEOUT, Kit, on_cluster

import futurekit as fk

pytestmark = pytest.mark.skipif(not HAVE_DASK, reason="dask.distributed is not installed (pip install '.[dask]')")


def echo(*args: object, **kwargs: object) -> tuple[tuple[object, ...], dict[str, object]]:
    """Return what the function was called with."""
    return args, kwargs


def count_calls(path: str) -> int:
    """Append a line to ``path`` and return the number of lines (how many times this ran)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write("x\n")
    with open(path, encoding="utf-8") as f:
        return len(f.readlines())


def wait_event(event: Any, timeout: float) -> bool:
    """Wait for a manager Event (a task that blocks until the test lets it go)."""
    return bool(event.wait(timeout))


def deep_fail(n: int) -> None:
    """Raise CustomError from n frames deep."""
    if n == 0:
        h.fail("deep")
    deep_fail(n - 1)


@pytest.fixture
def client(dask_cluster: Any) -> Any:
    return dask_cluster.client


@on_cluster
def test_every_keyword_reaches_the_function(executor: fk.Executor) -> None:
    kwargs = {"key": 1, "workers": 2, "priority": 3, "retries": 4, "resources": 5, "pure": 6, "fn": 7}
    assert executor.submit(echo, 0, **kwargs).result(timeout=TIMEOUT) == ((0,), kwargs)


@on_cluster
def test_identical_calls_are_never_merged(executor: fk.Executor, tmp_path: Any) -> None:
    path = str(tmp_path / "calls")
    first = executor.submit(count_calls, path)
    second = executor.submit(count_calls, path)
    assert sorted([first.result(timeout=TIMEOUT), second.result(timeout=TIMEOUT)]) == [1, 2]


@on_cluster
def test_remote_errors_keep_their_type_and_the_workers_frames(executor: fk.Executor) -> None:
    with pytest.raises(h.CustomError, match="deep") as info:
        executor.submit(deep_fail, 3).result(timeout=TIMEOUT)
    text = "".join(traceback.format_exception(info.value))
    assert text.count("in deep_fail") == 4
    with pytest.raises(h.TwoArgError) as two:
        executor.submit(h.fail_two_arg, 3, "three").result(timeout=TIMEOUT)
    assert (two.value.code, two.value.detail) == (3, "three")


@on_cluster
def test_an_unsendable_function_raises_at_submit(executor: fk.Executor) -> None:
    lock = threading.Lock()
    with pytest.raises(fk.SerializationError):
        executor.submit(h.identity, lock)


@on_cluster
def test_a_worker_dying_mid_task_fails_it_with_worker_crashed_error(executor: fk.Executor) -> None:
    with pytest.raises(fk.WorkerCrashedError, match=r"executor_helpers\.exit_now\(4\)") as info:
        executor.submit(h.exit_now, 4).result(timeout=TIMEOUT)
    assert info.value.task == "executor_helpers.exit_now(4)"
    # The cluster replaced the worker: later tasks run.
    assert executor.submit(h.add, 1, 2).result(timeout=TIMEOUT) == 3


@on_cluster
def test_callbacks_never_run_on_the_clients_threads_and_a_slow_one_stalls_nothing(
    kit: Kit, client: Any, dask_cluster: Any
) -> None:
    import futurekit.dask

    seen: list[str] = []
    entered = threading.Event()
    leave = threading.Event()

    def slow(value: object) -> object:
        seen.append(threading.current_thread().name)
        entered.set()
        leave.wait(1.0)  # blocks for a second unless released: the cluster must go on meanwhile
        return value

    out = fk.then(kit.ex.submit(h.add, 1), slow)
    assert entered.wait(TIMEOUT)
    # While the continuation blocks: the client, dask's callback thread and another executor all work.
    assert client.submit(h.add, 2, 3, pure=False).result(timeout=TIMEOUT) == 5
    done = threading.Event()
    client.submit(h.add, 4, pure=False).add_done_callback(lambda _: done.set())
    assert done.wait(TIMEOUT)
    with futurekit.dask.executor(client) as other:
        assert other.submit(h.add, 6).result(timeout=TIMEOUT) == 6
    leave.set()
    assert out.result(timeout=TIMEOUT) == 1
    assert seen == ["futurekit-dask-settler"]


@on_cluster
def test_cancel_a_task_waiting_for_a_worker(kit: Kit, client: Any) -> None:
    running = [kit.ex.submit(h.block, i) for i in range(2)]
    kit.wait_started(2)
    queued = kit.ex.submit(h.mark, 99)
    # Wait until the scheduler holds the task (it takes in a graph asynchronously), then cancel it.
    inner = getattr(queued, "inner")
    deadline = time.monotonic() + TIMEOUT
    while str(inner.key) not in client.run_on_scheduler(_scheduler_keys):
        assert time.monotonic() < deadline, "the scheduler never saw the task"
        threading.Event().wait(0.01)
    assert queued.running() is False
    assert all(f.running() for f in running)
    assert queued.cancel() is True
    assert queued.cancelled()
    with pytest.raises(CancelledError):
        queued.result(timeout=0)
    kit.release.set()
    assert [f.result(timeout=TIMEOUT) for f in running] == [0, 1]
    _wait_until_no_worker_holds(client, [str(inner.key)])
    assert kit.count_started() == 0  # mark(99) never ran
    assert running[0].cancel() is False  # finished futures refuse


@on_cluster
def test_cancel_right_after_submit_never_runs_the_task(kit: Kit, client: Any) -> None:
    # Both worker threads are busy, so no mark() can begin before its cancel() returns: none may begin after.
    running = [kit.ex.submit(h.block, i) for i in range(2)]
    kit.wait_started(2)
    queued = [kit.ex.submit(h.mark, i) for i in range(20)]
    keys = [str(getattr(f, "inner").key) for f in queued]
    assert [f.cancel() for f in queued] == [True] * 20
    assert all(f.cancelled() for f in queued)
    kit.release.set()
    assert [f.result(timeout=TIMEOUT) for f in running] == [0, 1]
    _wait_until_no_worker_holds(client, keys)
    assert kit.count_started() == 0
    assert kit.ex.submit(h.add, 1).result(timeout=TIMEOUT) == 1


def _wait_until_no_worker_holds(client: Any, keys: list[str]) -> None:
    """Wait until no worker holds any of ``keys``: a task that began would have counted its start by then."""
    deadline = time.monotonic() + TIMEOUT
    wanted = set(keys)
    while any(wanted & set(held) for held in client.run(_worker_keys).values()):
        assert time.monotonic() < deadline, "a worker still holds a cancelled task"
        threading.Event().wait(0.01)


def _worker_keys(dask_worker: Any) -> list[str]:
    return [str(k) for k in dask_worker.state.tasks]


def _scheduler_keys(dask_scheduler: Any) -> list[str]:
    return [str(k) for k in dask_scheduler.tasks]


@on_cluster
def test_per_call_options_and_unknown_options(executor: fk.Executor) -> None:
    import futurekit.dask

    f = futurekit.dask.submit(executor, {"priority": 5, "retries": 1}, echo, priority=1, key=2)
    assert f.result(timeout=TIMEOUT) == ((), {"priority": 1, "key": 2})
    with pytest.raises(TypeError, match="unknown cluster option"):
        futurekit.dask.submit(executor, {"pure": True}, echo)
    with pytest.raises(TypeError, match=r"futurekit\.dask\.executor"):
        futurekit.dask.submit(fk.threads(1), {}, echo)


@on_cluster
def test_combinators_over_cluster_futures(executor: fk.Executor) -> None:
    both = fk.gather(executor.submit(h.add, 1, 2), executor.submit(h.square, 4))
    assert both.result(timeout=TIMEOUT) == (3, 16)
    assert fk.then(executor.submit(h.add, 1), lambda v: v * 10).result(timeout=TIMEOUT) == 10
    chained = fk.chain(executor.submit(h.add, 2), lambda v: executor.submit(h.square, v))
    assert chained.result(timeout=TIMEOUT) == 4
    recovered = fk.recover(executor.submit(h.fail, "x"), lambda e: str(e), h.CustomError)
    assert recovered.result(timeout=TIMEOUT) == "x"
    assert fk.race(executor.submit(h.add, 7), fk.failed(ValueError("late")).__class__()).result(timeout=TIMEOUT) == 7
    firsts = fk.first_success(executor.submit(h.fail, "a"), executor.submit(h.add, 5))
    assert firsts.result(timeout=TIMEOUT) == 5
    done = list(fk.as_completed([executor.submit(h.add, i) for i in range(5)], timeout=TIMEOUT))
    assert sorted(f.result() for f in done) == list(range(5))
    assert fk.timeout(executor.submit(h.add, 3), TIMEOUT).result(timeout=TIMEOUT) == 3


@on_cluster
def test_map_is_lazy_batched_and_unordered_on_request(executor: fk.Executor) -> None:
    import itertools

    read = 0

    def numbers() -> Iterator[int]:
        nonlocal read
        for i in itertools.count():
            read += 1
            yield i

    it: Any = executor.map(h.square, numbers(), buffersize=50)
    assert [next(it) for _ in range(10)] == [i * i for i in range(10)]
    assert read <= 10 + 50 + 1
    it.close()
    assert sorted(executor.map(h.square, range(2000), ordered=False)) == [i * i for i in range(2000)]


def test_a_closed_client_is_refused(dask_cluster: Any) -> None:
    from distributed import Client

    import futurekit.dask

    client: Any = Client(dask_cluster.cluster)
    ex = futurekit.dask.executor(client)
    client.close()
    with pytest.raises(RuntimeError, match="client is closed"):
        ex.submit(h.add, 1)
    with pytest.raises(RuntimeError, match="client is closed"):
        futurekit.dask.executor(client)
    ex.shutdown()


def test_shutdown_never_closes_a_client_it_did_not_create(client: Any) -> None:
    import futurekit.dask

    with futurekit.dask.executor(client) as ex:
        assert ex.submit(h.add, 1).result(timeout=TIMEOUT) == 1
    assert client.status == "running"
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(h.add, 1)


def test_an_executor_made_from_an_address_closes_its_own_client(dask_cluster: Any) -> None:
    import futurekit.dask

    ex = futurekit.dask.executor(dask_cluster.cluster.scheduler_address)
    own = getattr(ex.inner, "client")
    assert ex.submit(h.add, 5).result(timeout=TIMEOUT) == 5
    ex.shutdown()
    assert own.status == "closed"


def test_pending_futures_fail_within_the_poll_when_the_client_closes(dask_cluster: Any) -> None:
    from distributed import Client

    import futurekit.dask

    client: Any = Client(dask_cluster.cluster)
    ex = futurekit.dask.executor(client)
    started, release = dask_cluster.install_kit()
    pending = [ex.submit(h.block, i) for i in range(4)]
    assert started.acquire(timeout=TIMEOUT)
    t0 = time.monotonic()
    client.close()
    for f in pending:
        with pytest.raises(BrokenExecutor, match="dask"):
            f.result(timeout=TIMEOUT)
    assert time.monotonic() - t0 < 10
    for _ in range(10):
        release.release()
    ex.shutdown()


def test_pending_futures_fail_when_the_scheduler_goes_away(dask_cluster: Any) -> None:
    from distributed import Client, LocalCluster

    import futurekit.dask

    cluster = LocalCluster(n_workers=1, processes=False, dashboard_address=None)  # pyright: ignore[reportArgumentType] - None: no dashboard
    client: Any = Client(cluster, timeout=2)
    ex = futurekit.dask.executor(client)
    gate = dask_cluster.manager.Event()
    pending = ex.submit(wait_event, gate, TIMEOUT)
    try:
        t0 = time.monotonic()
        cluster.close()
        with pytest.raises(BrokenExecutor, match="dask"):
            pending.result(timeout=TIMEOUT)
        assert time.monotonic() - t0 < TIMEOUT
    finally:
        gate.set()
        ex.shutdown()
        client.close()
