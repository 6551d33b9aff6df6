"""Parent-side bookkeeping for process pools: task futures, crash attribution, pool replacement.

A :class:`Supervisor` owns the inner process pool of a remote ``Executor``. It
sends each task as ``(runner, task_id, payload)`` and converts the raw outcome in
a done-callback on the inner future. When the inner pool breaks (a worker died),
it waits until every worker of the broken pool is reaped, reads the shared
table the workers wrote (see :mod:`futurekit._worker`), and:

* fails the task the dead worker was running with ``WorkerCrashedError``
  (naming the task and the exit code or signal);
* fails the tasks that were running on the *other* workers (the stdlib
  terminates them all) with ``WorkerCrashedError`` saying they were
  interrupted; they are not retried, because they may have had side effects;
* resubmits every task that had not started to a fresh pool, where it runs.

Only supervisors created by ``processes()`` can replace their pool; a pool
handed in by the user is not replaced, and its broken tasks fail with
``WorkerCrashedError`` (no exit code known).
"""

from __future__ import annotations

import logging
import pickle
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import _base as _futures_base
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from . import _calls, _remote, _worker
from ._errors import WorkerCrashedError

_log = logging.getLogger("futurekit")

Runner = Callable[[int, bytes], tuple[bool, bytes]]
Decoder = Callable[[bytes, Callable[[], str]], Any]

# A pool that breaks this many times in a row without any task to blame (every
# worker dying before it ran anything) is declared broken for good.
_MAX_FRUITLESS_RESTARTS = 3


class Table:
    """The shared table workers write task starts into (layout in ``futurekit._worker``)."""

    def __init__(self, ctx: Any, max_workers: int) -> None:
        # After the break is detected, the stdlib stops feeding its call queue
        # (max_workers + 1 items), so a surviving worker can start only a few more
        # tasks before it is terminated; a ring twice that long still holds every
        # started task whose result was lost, with a margin.
        self.ring_size = 2 * (max_workers + 2)
        # Two rows per worker: rows of workers replaced under max_tasks_per_child
        # are reclaimed once the old process is gone.
        self.rows = 2 * max_workers + 2
        width = _worker.ROW_HEADER + self.ring_size
        self.array: Any = ctx.Array("q", _worker.HEADER + self.rows * width, lock=False)
        self.lock: Any = ctx.Lock()

    def initargs(
        self, initializer: Callable[..., object] | None, initargs: tuple[Any, ...]
    ) -> tuple[Any, ...]:
        """Arguments for ``_worker.init_worker``."""
        return (self.array, self.lock, self.rows, self.ring_size, initializer, initargs)

    def read(self) -> tuple[dict[int, int], dict[int, int], int, int]:
        """Return (latest task id per pid, pid per started task id, initializer failures, untracked)."""
        data = list(self.array)
        width = _worker.ROW_HEADER + self.ring_size
        latest: dict[int, int] = {}
        started: dict[int, int] = {}
        for row in range(self.rows):
            base = _worker.HEADER + row * width
            pid, count = data[base], data[base + 1]
            if pid == 0 or count == 0:
                continue
            ring = data[base + _worker.ROW_HEADER : base + width]
            for n in range(max(0, count - self.ring_size), count):
                started[ring[n % self.ring_size]] = pid
            latest[pid] = ring[(count - 1) % self.ring_size]
        return latest, started, data[0], data[1]


class TaskFuture(Future[Any]):
    """The caller's future of a process-pool task; mirrors the inner future's running()/cancel().

    It is never RUNNING itself; ``running()`` reports the inner future's state and
    ``cancel()`` cancels the inner future first and refuses if the inner refuses.
    """

    _inner: Future[Any] | None = None

    def cancel(self) -> bool:
        with self._condition:
            inner = self._inner
            if inner is None:  # not sent yet, or waiting for a replacement pool
                return self._cancel_self()
        if inner.cancel():
            self._cancel_self()
            return True
        return self.cancelled()

    def running(self) -> bool:
        with self._condition:
            if self._state != _futures_base.PENDING:
                return False
            inner = self._inner
        return inner is not None and inner.running()

    def _cancel_self(self) -> bool:
        """Cancel this future and notify waiters at once (it never runs itself)."""
        if not Future.cancel(self):
            return False
        with self._condition:
            if self._state == _futures_base.CANCELLED:
                self.set_running_or_notify_cancel()
        return True

    def __repr__(self) -> str:
        if self.running():
            return f"<{type(self).__name__} at {id(self):#x} state=running>"
        return super().__repr__()


class Task:
    """One submitted task: what to run, how to decode its outcome, and its future."""

    __slots__ = ("decode", "describe", "future", "id", "payload", "runner")

    def __init__(
        self, task_id: int, runner: Runner, payload: bytes, decode: Decoder, describe: Callable[[], str]
    ) -> None:
        self.id = task_id
        self.runner = runner
        self.payload = payload
        self.decode = decode
        self.describe = describe
        self.future = TaskFuture()


class _Generation:
    """One inner pool and what was learnt when it broke."""

    def __init__(self, pool: Any, table: Table | None) -> None:
        self.pool = pool
        self.table = table
        self.lock = threading.Lock()  # never held while calling into the pool
        self.broken: list[Task] = []
        self.recovering = False
        self.processes: dict[int, Any] = {}
        self.dead: set[int] | None = None  # pids already dead when the break was first seen
        self.shutdown_lock = threading.Lock()
        self.waited = False
        # The pool's manager thread: it runs the done-callbacks of a broken pool. The
        # stdlib forgets it once shut down without waiting, so it is kept here.
        self.manager: threading.Thread | None = None
        self.live_processes: dict[int, Any] = {}

    def remember_manager(self) -> None:
        """Keep a reference to the pool's manager thread while the pool still has one."""
        thread = getattr(self.pool, "_executor_manager_thread", None)
        if isinstance(thread, threading.Thread):
            self.manager = thread
        procs = getattr(self.pool, "_processes", None)
        if isinstance(procs, dict):
            self.live_processes = procs  # the stdlib's own dict, which its manager keeps updating

    def join_manager(self) -> None:
        """Wait until the manager thread has run every callback and reaped every worker."""
        thread = self.manager
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def shutdown(self, wait: bool, cancel_futures: bool = False) -> None:
        """Shut this pool down; serialised, since the stdlib's shutdown is not safe to run concurrently."""
        with self.shutdown_lock:
            if self.waited:
                return
            self.remember_manager()
            if cancel_futures and accepts_cancel_futures(self.pool):
                self.pool.shutdown(wait=wait, cancel_futures=True)
            else:
                self.pool.shutdown(wait=wait)
            self.waited = wait


def decode_value(data: bytes, describe: Callable[[], str]) -> Any:
    """Decode a single call's pickled return value (SerializationError naming the task if it fails)."""
    try:
        return pickle.loads(data)
    except BaseException:
        return _calls.load_result(data, describe())


def decode_chunk(data: bytes, describe: Callable[[], str]) -> tuple[list[Any], BaseException | None, float]:
    """Decode a map() chunk's result (values, captured error or None, seconds), rebuilding the error."""
    try:
        values, captured, seconds = pickle.loads(data)
    except BaseException:
        values, captured, seconds = _calls.load_result(data, describe())
    return values, (None if captured is None else _remote.rebuild(captured)), seconds


def _settle(future: TaskFuture, value: Any = None, exc: BaseException | None = None) -> None:
    """Settle the caller's future, tolerating a concurrent cancel()."""
    try:
        if exc is None:
            future.set_result(value)
        else:
            future.set_exception(exc)
    except _futures_base.InvalidStateError:
        pass
    finally:
        future._inner = None  # break the cycle future -> inner -> its callback -> task -> future


class Supervisor:
    """Sends tasks to an inner process pool; attributes crashes and replaces a broken pool."""

    def __init__(
        self,
        pool: Any,
        *,
        factory: Callable[[], tuple[Any, Table]] | None = None,
        table: Table | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._gen = _Generation(pool, table)
        self._factory = factory
        self._next_id = 0
        self._shutdown = False
        self._cancel_futures = False
        self._limbo: list[Task] = []
        self._recovery: threading.Thread | None = None
        self._broken_reason: str | None = None
        self._fruitless = 0
        self._waiting = 0  # shutdown(wait=True) calls in progress
        self._live: dict[int, Task] = {}  # tasks not yet settled (for cancel_futures on pools without it)

    @property
    def pool(self) -> Any:
        """The current inner pool."""
        return self._gen.pool

    @property
    def broken(self) -> str | None:
        """Why the pool is broken for good, or None."""
        return self._broken_reason

    def submit(self, runner: Runner, payload: bytes, decode: Decoder, describe: Callable[[], str]) -> TaskFuture:
        """Send one task; its future is returned at once."""
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if self._broken_reason is not None:
                raise BrokenProcessPool(self._broken_reason)
            self._next_id += 1
            task = Task(self._next_id, runner, payload, decode, describe)
            self._live[task.id] = task
            try:
                self._send(self._gen, task)
            except BaseException:
                del self._live[task.id]
                raise
        return task.future

    def _send(self, gen: _Generation, task: Task) -> None:
        """Submit ``task`` to ``gen``'s pool (caller holds ``self._lock``); a broken pool parks it."""
        if gen.recovering:
            self._limbo.append(task)
            return
        try:
            inner = gen.pool.submit(task.runner, task.id, task.payload)
        except BrokenProcessPool:
            if self._factory is None:
                raise
            self._limbo.append(task)
            self._start_recovery(gen)
            return
        task.future._inner = inner
        inner.add_done_callback(lambda f: self._on_done(gen, task, f))

    def _on_done(self, gen: _Generation, task: Task, inner: Future[Any]) -> None:
        """Done-callback on the inner future (runs on the pool's manager thread); never raises."""
        future = task.future
        try:
            if inner.cancelled():
                self._live.pop(task.id, None)
                future._cancel_self()
                future._inner = None
                return
            exc = inner.exception()
            if isinstance(exc, BrokenProcessPool) and not isinstance(exc, WorkerCrashedError):
                self._on_broken(gen, task, exc)
                return
            self._live.pop(task.id, None)
            if exc is None:
                ok, data = inner.result()
                if ok:
                    value = task.decode(data, task.describe)
                    _settle(future, value)
                else:
                    _settle(future, exc=_remote.rebuild(data))
            else:
                _settle(future, exc=exc)
        except BaseException as err:  # a failing decode fails only this task
            if future.done():  # a user's done-callback raised a BaseException: keep the pool alive
                _log.error("futurekit: a done-callback of %r raised", future, exc_info=err)
            else:
                _settle(future, exc=err)

    def _on_broken(self, gen: _Generation, task: Task, exc: BrokenProcessPool) -> None:
        """An inner future failed because its pool broke: record it, start the recovery once."""
        if self._factory is None:
            crash = WorkerCrashedError(
                "a worker process of the pool died abruptly (the pool is broken)", task=_describe(task)
            )
            crash.__cause__ = exc
            self._live.pop(task.id, None)
            _settle(task.future, exc=crash)
            return
        with gen.lock:
            gen.broken.append(task)
            if not gen.processes:
                # Snapshot now, before the stdlib terminates the surviving workers:
                # the workers already dead at this moment are the ones that crashed.
                procs = getattr(gen.pool, "_processes", None) or gen.live_processes
                gen.processes = dict(procs)
                gen.dead = _dead_now(gen.processes)
        self._start_recovery(gen)

    def _start_recovery(self, gen: _Generation) -> None:
        with gen.lock:
            if gen.recovering:
                return
            gen.recovering = True
            if gen.manager is None:
                gen.remember_manager()
        thread = threading.Thread(target=self._recover, args=(gen,), name="futurekit-pool-recovery", daemon=True)
        self._recovery = thread
        thread.start()

    def _recover(self, gen: _Generation) -> None:
        """Runs on its own thread: wait for the broken pool to be reaped, then attribute and resubmit."""
        try:
            self._recover_inner(gen)
        except BaseException:  # pragma: no cover - defensive: never lose the tasks silently
            _log.exception("futurekit: recovering from a broken process pool failed")
            with gen.lock:
                tasks = list(gen.broken)
            with self._lock:
                tasks += self._limbo
                self._limbo = []
                self._broken_reason = "recovering from a broken process pool failed"
            for task in tasks:
                _settle(task.future, exc=BrokenProcessPool(self._broken_reason))

    def _recover_inner(self, gen: _Generation) -> None:
        try:
            gen.shutdown(wait=True)
        except BaseException:  # pragma: no cover - defensive
            _log.exception("futurekit: shutting down a broken process pool failed")
        gen.join_manager()  # every callback has run and every worker is reaped
        # A task submitted while the stdlib was marking its pool broken can be left with
        # an inner future nobody will ever settle (CPython 3.11 sets _broken outside
        # the submit lock). The manager thread is gone, so any inner future still
        # pending now is orphaned: treat it as failed by the crash.
        with self._lock:
            orphans = [
                t for t in self._live.values() if t.future._inner is not None and not t.future._inner.done()
            ]
        with gen.lock:
            known = {t.id for t in gen.broken}
            gen.broken.extend(t for t in orphans if t.id not in known)
            broken = sorted(gen.broken, key=lambda t: t.id)
            if not gen.processes:
                gen.processes = dict(getattr(gen.pool, "_processes", None) or gen.live_processes)
            snapshot = gen.dead
        # Every worker is reaped now: exit codes are final.
        exitcodes = {pid: _exitcode(proc) for pid, proc in gen.processes.items()}
        if snapshot:
            dead = set(snapshot)
        else:  # broke before any snapshot: the crashed ones are those the stdlib did not terminate
            dead = {pid for pid, code in exitcodes.items() if code is not None and code != -signal.SIGTERM}
        assert gen.table is not None
        latest, started, init_failures, untracked = gen.table.read()
        running_on_dead = {latest[pid]: pid for pid in dead if pid in latest}

        failures: list[tuple[Task, BaseException]] = []
        resubmit: list[Task] = []
        blamed: list[str] = []
        for task in broken:
            if task.id in running_on_dead:
                pid = running_on_dead[task.id]
                code = exitcodes.get(pid)
                failures.append((task, WorkerCrashedError(f"worker process {pid} died", task=_describe(task), exitcode=code)))
                blamed.append(f"process {pid} ({_describe(task)})")
        culprit = ", ".join(blamed) if blamed else "another worker process"
        for task in broken:
            if task.id in running_on_dead:
                continue
            if task.id in started or untracked:
                msg = (
                    f"interrupted because {culprit} died; the pool was restarted but this task "
                    f"was not retried, since it may have had side effects"
                )
                failures.append((task, WorkerCrashedError(msg, task=_describe(task))))
            else:
                resubmit.append(task)

        reason: str | None = None
        if init_failures:
            reason = "the pool's initializer raised in a worker process (see that process's log)"
        elif blamed:
            self._fruitless = 0
        else:
            self._fruitless += 1
            if self._fruitless >= _MAX_FRUITLESS_RESTARTS:
                codes = sorted(str(exitcodes[p]) for p in dead)
                reason = (
                    f"worker processes died {self._fruitless} times in a row without running any "
                    f"task (exit codes: {', '.join(codes) or 'unknown'})"
                )

        new_gen: _Generation | None = None
        with self._lock:
            pending = resubmit + self._limbo
            self._limbo = []
            if reason is not None:
                self._broken_reason = "process pool is broken: " + reason
                for task in pending:
                    failures.append((task, BrokenProcessPool(self._broken_reason)))
                pending = []
            elif self._shutdown and self._cancel_futures:
                for task in pending:
                    self._live.pop(task.id, None)
                    task.future._cancel_self()
                pending = []
            if pending or not self._shutdown:
                if reason is None:
                    assert self._factory is not None
                    new_pool, table = self._factory()
                    new_gen = _Generation(new_pool, table)
                    self._gen = new_gen
                    for task in sorted(pending, key=lambda t: t.id):
                        with task.future._condition:
                            if task.future._state == _futures_base.PENDING:
                                self._send(new_gen, task)
            # A waiting shutdown() shuts the new pool down itself (the stdlib cannot
            # wait for a pool once it was shut down without waiting).
            shutting_down = self._shutdown and self._waiting == 0
        for task, err in failures:
            self._live.pop(task.id, None)
            _settle(task.future, exc=err)
        if shutting_down and new_gen is not None:
            new_gen.shutdown(wait=False)

    def shutdown(self, wait: bool, cancel_futures: bool) -> None:
        """Shut the current pool down (and any replacement a running recovery makes)."""
        with self._lock:
            self._shutdown = True
            self._cancel_futures = self._cancel_futures or cancel_futures
            cancel_futures = self._cancel_futures  # sticky: a later shutdown() does not undo it
            if cancel_futures:
                for task in self._limbo:
                    self._live.pop(task.id, None)
                    task.future._cancel_self()
                self._limbo = []
            if wait:
                self._waiting += 1
        try:
            self._shutdown_pools(wait, cancel_futures)
        finally:
            if wait:
                with self._lock:
                    self._waiting -= 1

    def _shutdown_pools(self, wait: bool, cancel_futures: bool) -> None:
        if cancel_futures and not accepts_cancel_futures(self._gen.pool):
            for task in list(self._live.values()):
                task.future.cancel()
        done: list[_Generation] = []
        while True:
            gen = self._gen
            if not any(g is gen for g in done):
                gen.shutdown(wait, cancel_futures)
                done.append(gen)
            recovery = self._recovery
            if wait and recovery is not None and recovery.is_alive():
                if recovery is threading.current_thread():  # pragma: no cover - from a callback it runs
                    return
                recovery.join()
                continue
            if self._gen is gen:
                break
        if wait:
            # The stdlib cannot wait once shut down without waiting: wait for our own tasks too.
            _futures_base.wait([t.future for t in list(self._live.values())])


def accepts_cancel_futures(inner: object) -> bool:
    """Whether ``inner.shutdown`` takes ``cancel_futures`` (loky's does not)."""
    import inspect

    try:
        params = inspect.signature(getattr(inner, "shutdown")).parameters
    except (TypeError, ValueError, AttributeError):
        return False
    return "cancel_futures" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _dead_now(processes: dict[int, Any]) -> set[int]:
    """Pids whose process has already exited (its sentinel is ready), without reaping anything."""
    try:
        from multiprocessing.connection import wait

        by_sentinel = {proc.sentinel: pid for pid, proc in processes.items()}
        return {by_sentinel[s] for s in wait(list(by_sentinel), timeout=0)}
    except BaseException:  # pragma: no cover - defensive: fall back on exit codes later
        return set()


def _exitcode(proc: Any) -> int | None:
    try:
        code = proc.exitcode
    except BaseException:  # pragma: no cover - defensive
        return None
    return code if isinstance(code, int) else None


def _describe(task: Task) -> str:
    try:
        return task.describe()
    except BaseException:  # pragma: no cover - describe_call never raises
        return f"task {task.id}"
