"""The executor kinds under test, and module-level functions that worker processes import by reference.

Every behaviour of the executor contract runs once per kind through the ``executor`` fixture
(tests/conftest.py): ``thread`` is ``fk.threads()``; ``fork``, ``forkserver`` and ``spawn`` are
``fk.processes()`` under that start method. The generic worker functions (:func:`add`, :func:`pid`,
:func:`fail_on`, :class:`TwoArgError`) live here once; map_helpers and remote_helpers re-export them.

Cross-process synchronisation uses multiprocessing primitives handed to each
worker at start-up through the pool's initializer (:func:`install`), since they
cannot travel as task arguments.
"""

from __future__ import annotations

import ctypes
import importlib.util
import multiprocessing
import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import pytest

import futurekit as fk

TIMEOUT = 30

#: Every executor kind, in the order (and with the ids) the ``executor`` fixture runs them.
KINDS = ("thread", "fork", "forkserver", "spawn", "dask")
#: The kinds whose workers are processes of futurekit's own pool (crashes, pickling across the boundary).
PROCESS_KINDS = ("fork", "forkserver", "spawn")
#: The kinds whose tasks cross a process boundary: the process pools and the dask cluster.
REMOTE_KINDS = (*PROCESS_KINDS, "dask")

#: Every kind but the dask cluster (for behaviours dask cannot offer; each use says why).
NOT_DASK = tuple(kind for kind in KINDS if kind != "dask")

#: Whether dask.distributed is installed (the ``dask`` kind is skipped, saying so, where it is not).
HAVE_DASK = importlib.util.find_spec("distributed") is not None

#: Set by scripts/test-all for the secondary Pythons: the comma-separated kinds to run there.
KINDS_ENV = "FUTUREKIT_EXECUTOR_KINDS"

# Python 3.12+ warns when a process with threads forks: a pool forks replacement workers from
# its reader thread (82 such warnings in the fork parameters of test_crash and test_executor
# on 3.13). fork is the start method under test for that parameter, so that one warning is
# expected there and ignored by name; every other warning still fails the test.
# Note that filterwarnings = error alone would not surface it: when a filter turns this warning
# into an exception, CPython (3.12.1, 3.13.0 checked) clears it inside os.fork(), since the
# child already exists, and the warning vanishes unseen. Ignoring it here says so on purpose.
_FORK_WARNING = (
    r"ignore:This process \(pid=\d+\) is multi-threaded, use of fork\(\) may lead to deadlocks in the child"
    ":DeprecationWarning"
)

_started: Any = None  # a multiprocessing Semaphore: released once per started blocking task
_release: Any = None  # a multiprocessing Semaphore: one permit per blocking task allowed to finish
_init_value: Any = None


class CustomError(Exception):
    """A module-level exception type, so it can be rebuilt in the parent."""


class ItemError(Exception):
    """Raised by :func:`fail_on` for the chosen item."""


class TwoArgError(Exception):
    """A custom ``__init__`` with two required arguments (breaks plain pickling)."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"code {code}: {detail}")
        self.code = code
        self.detail = detail


def install(started: Any, release: Any) -> None:
    """Initializer: keep the shared primitives in this worker."""
    global _started, _release
    _started, _release = started, release


def set_init_value(value: object) -> None:
    """Initializer recording its argument (checked by :func:`get_init_value`)."""
    global _init_value
    _init_value = value


def get_init_value() -> object:
    """Return what the initializer recorded."""
    return _init_value


def thread_init_value() -> object:
    """Return the calling thread's initializer value (thread pools)."""
    return getattr(_local, "value", None)


_local = threading.local()


def set_thread_value(value: object) -> None:
    """Thread-pool initializer: record a value for the calling worker thread."""
    _local.value = value


def add(a: int, b: int = 0) -> int:
    """Return a + b (the happy path)."""
    return a + b


def square(x: int) -> int:
    """Return x * x."""
    return x * x


def pid() -> int:
    """Return this worker's pid."""
    return os.getpid()


def fail(message: str) -> None:
    """Raise CustomError(message)."""
    raise CustomError(message)


def fail_two_arg(code: int = 7, detail: str = "seven") -> NoReturn:
    """Raise TwoArgError(code, detail)."""
    raise TwoArgError(code, detail)


def fail_on(x: int, bad: int) -> int:
    """Return x, or raise ItemError for ``bad``."""
    if x == bad:
        raise ItemError(f"item {x}")
    return x


def block(tag: object = None) -> object:
    """Signal that this task started, then wait until released; return ``tag``."""
    _started.release()
    if not _release.acquire(timeout=60):
        raise TimeoutError("block() was never released")
    return tag


def mark(i: int) -> int:
    """Count one start on the shared semaphore and return i."""
    _started.release()
    return i


def exit_now(code: int = 3) -> None:
    """Kill this worker with os._exit(code)."""
    os._exit(code)


def kill_self() -> None:
    """Kill this worker with SIGKILL."""
    os.kill(os.getpid(), signal.SIGKILL)


def segfault() -> None:
    """Crash this worker with a segmentation fault.

    Quietly: a worker forked from the test run inherits pytest's faulthandler, which would print
    every thread's stack for this intended crash.
    """
    import faulthandler

    faulthandler.disable()
    ctypes.string_at(0)


def crash_after_start(code: int = 5) -> None:
    """Signal that this task started, then os._exit(code)."""
    _started.release()
    os._exit(code)


def crash_when_released(code: int) -> None:
    """Signal that this task started, wait until released, then os._exit(code)."""
    _started.release()
    _release.acquire(timeout=60)
    os._exit(code)


def crash_on(x: int, bad: int) -> int:
    """Return x, or kill this worker for ``bad``."""
    if x == bad:
        os._exit(7)
    return x


def _refuse() -> None:
    raise pickle.UnpicklingError("refused on purpose")


def _exit_nine() -> None:
    raise SystemExit(9)


#: What a :class:`Bomb` does: raise an error, raise SystemExit, or kill the process with a segfault.
BOMB_ACTIONS: dict[str, Callable[[], None]] = {"error": _refuse, "exit": _exit_nine, "segfault": segfault}


class Bomb:
    """An object that goes off when pickled (``when="pickle"``) or when unpickled (``when="unpickle"``)."""

    def __init__(self, when: str, how: str) -> None:
        self.when = when
        self.how = how

    def __reduce__(self) -> tuple[Callable[[], None], tuple[()]]:
        action = BOMB_ACTIONS[self.how]
        if self.when == "pickle":
            action()
        return action, ()


def make_bomb(when: str, how: str) -> Bomb:
    """Return a :class:`Bomb`: the worker pickles it to send it back."""
    return Bomb(when, how)


def identity(x: object) -> object:
    """Return x."""
    return x


def failing_init() -> None:
    """An initializer that raises."""
    raise RuntimeError("initializer failed on purpose")


def unpicklable_result() -> object:
    """Return a value that cannot be pickled."""
    return threading.Lock()


def lock_or_value(x: int) -> object:
    """Return x, or an unpicklable lock for 2."""
    return threading.Lock() if x == 2 else x


def orphan_main(method: str) -> None:
    """Subprocess entry point: start a pool, print its worker pids, then SIGKILL this process."""
    ex = fk.processes(2, mp_context=method)
    futures = [ex.submit(block_briefly) for _ in range(2)]  # occupy both workers
    pids = {f.result(timeout=60) for f in futures}
    inner: Any = ex.inner
    pids |= {w.process.pid for w in inner._engine.workers}
    print(" ".join(str(p) for p in sorted(pids)), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def block_briefly() -> int:
    """Return this worker's pid (used to make the pool start its workers)."""
    return os.getpid()


class ReleaseGate:
    """Lets :func:`block` tasks finish. A semaphore, not an Event: a multiprocessing Event's set() hangs
    forever once a process waiting on it was killed (its Condition waits for the sleeper to wake)."""

    def __init__(self, semaphore: Any) -> None:
        self.semaphore = semaphore
        self._open = False

    def set(self) -> None:
        """Open the gate for every blocking task, now and later (idempotent)."""
        if not self._open:
            self._open = True
            for _ in range(1000):
                self.semaphore.release()


@dataclass
class Kit:
    """An executor under test plus the primitives its blocking tasks use (see :func:`block`)."""

    kind: str
    ex: fk.Executor
    started: Any
    release: ReleaseGate

    def wait_started(self, n: int = 1) -> None:
        """Wait until ``n`` more blocking tasks have started."""
        for _ in range(n):
            assert self.started.acquire(timeout=TIMEOUT), "a blocking task did not start"

    def count_started(self) -> int:
        """How many blocking tasks started and were not yet waited for."""
        n = 0
        while self.started.acquire(False):
            n += 1
        return n


def make_kit(kind: str, max_workers: int = 2, *, cluster: Any = None, **options: Any) -> Kit:
    """A fresh executor of ``kind`` (one of :data:`KINDS`) whose workers know the started/release primitives.

    Used by the ``executor`` fixture only: tests take ``executor`` (or ``kit``) instead of calling this.
    ``cluster`` is the session's ``cluster_helpers.Cluster`` for the ``dask`` kind.
    """
    if kind == "dask":
        if max_workers != 2 or options:
            pytest.skip("the dask kind runs on the session's fixed cluster of 2 workers, without pool options")
        import futurekit.dask

        shared: tuple[Any, Any] = cluster.install_kit()
        return Kit(kind, futurekit.dask.executor(cluster.client), shared[0], ReleaseGate(shared[1]))
    if kind == "thread":
        started: Any = threading.Semaphore(0)
        gate: Any = threading.Semaphore(0)
        ex = fk.threads(max_workers, initializer=install, initargs=(started, gate), **options)
    else:
        ctx = multiprocessing.get_context(kind)
        started = ctx.Semaphore(0)
        gate = ctx.Semaphore(0)
        ex = fk.processes(max_workers, mp_context=ctx, initializer=install, initargs=(started, gate), **options)
    return Kit(kind, ex, started, ReleaseGate(gate))


def _kind_param(kind: str, extra: Sequence[pytest.MarkDecorator] = ()) -> Any:
    """``kind`` as a parameter of the ``executor`` fixture, skipped where it cannot or should not run."""
    marks: list[Any] = list(extra)
    if kind == "dask":
        if not HAVE_DASK:
            marks.append(pytest.mark.skip(reason="dask.distributed is not installed (pip install -e '.[dev,dask]')"))
    elif kind != "thread" and kind not in multiprocessing.get_all_start_methods():
        marks.append(pytest.mark.skip(reason=f"no {kind} start method on {sys.platform}"))
    selected = os.environ.get(KINDS_ENV)
    if selected is not None and kind not in selected.split(","):
        reason = f"{KINDS_ENV}={selected}: scripts/test-all runs the {kind} kind on the primary Python only"
        marks.append(pytest.mark.skip(reason=reason))
    if kind == "fork":
        marks.append(pytest.mark.filterwarnings(_FORK_WARNING))
    return pytest.param(kind, id=kind, marks=marks)


def executor_params(*kinds: str, marks: Mapping[str, Sequence[pytest.MarkDecorator]] | None = None) -> list[Any]:
    """The ``executor`` fixture's parameters for ``kinds`` (ids, skips and the fork warning filter).

    ``marks`` adds marks to some kinds only (an xfail for a bug seen under one start method, say).
    """
    return [_kind_param(kind, (marks or {}).get(kind, ())) for kind in kinds]


def on_kinds(*kinds: str, marks: Mapping[str, Sequence[pytest.MarkDecorator]] | None = None) -> pytest.MarkDecorator:
    """Run a test with the ``executor`` fixture (and ``kit``) for ``kinds`` only, not all of :data:`KINDS`."""
    return pytest.mark.parametrize("executor", executor_params(*kinds, marks=marks), indirect=True)


#: For behaviours of futurekit's own worker processes only: crashes, pool internals.
on_processes = on_kinds(*PROCESS_KINDS)
#: For behaviours of every kind whose tasks cross a process boundary (pickling, remote errors).
on_remote = on_kinds(*REMOTE_KINDS)
#: For the dask cluster only.
on_cluster = on_kinds("dask")
#: For behaviours that need the task to share the test's memory (thread-only gates and counters).
on_threads = on_kinds("thread")


class Dummy:
    """A weak-referenceable result object."""

    def __init__(self, value: int) -> None:
        self.value = value


def make_dummy(value: int) -> Dummy:
    """Return a new Dummy."""
    return Dummy(value)


class MyObject:
    """An object whose bound method is submitted (stale reference test)."""

    def my_method(self) -> None:
        """Do nothing."""


def write_later(path: str, text: str, delay: float) -> None:
    """Write ``text`` to ``path`` after ``delay`` seconds (a task that outlives a short main script)."""
    import time

    time.sleep(delay)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def exit_main(path: str) -> None:
    """Subprocess entry point: leave a task pending and a submit for atexit; never shut down."""
    import atexit

    ex = fk.processes(1)
    ex.submit(write_later, path, "apple", 0.3)

    def late() -> None:
        try:
            ex.submit(write_later, path + ".late", "late", 0)
        except RuntimeError as exc:
            print(exc, flush=True)

    atexit.register(late)


def init_fail_logging(log_queue: Any) -> None:
    """An initializer that sends the 'concurrent.futures' log to ``log_queue``, then raises (as CPython's test_init)."""
    import logging
    from logging.handlers import QueueHandler

    logger = logging.getLogger("concurrent.futures")
    logger.addHandler(QueueHandler(log_queue))
    logger.setLevel("CRITICAL")
    logger.propagate = False
    raise ValueError("error in initializer")
