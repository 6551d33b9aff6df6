"""futurekit's own process pool, the inner executor of :func:`futurekit.processes`.

Why not ``ProcessPoolExecutor``: each of its tasks crosses three parent threads
(the submitter, its manager thread and its call queue's feeder thread) and
costs ~75 us of parent CPU, five times ``multiprocessing.Pool``'s; a dying
worker breaks the whole pool, terminating the tasks the other workers run; and
it cannot say which task a dead worker was running.

Here every worker has two one-way pipes of its own. In the parent:

* ``submit`` appends the task to a FIFO queue and notifies the *sender* thread
  (one per pool), which hands queued tasks to idle workers. A busy worker is
  handed a second task ahead (``PREFETCH``), so that it does not wait for the
  parent between tasks, only when no other worker can come (the pool has all
  its workers) and its last task ran under ``PREFETCH_BELOW_SECONDS``: a task
  never waits behind a long one while a worker could take it. Handing a task
  over marks its future running; from then on it cannot be cancelled.
* The *reader* thread (one per pool) waits on every worker's result pipe and
  process sentinel, decodes each result and settles its future, so
  done-callbacks run on it. It also replaces dead workers.
* A worker runs the tasks it was handed strictly in order. When it dies, the
  oldest task it was handed and had not finished is the one it was running:
  that task fails with :class:`~futurekit.WorkerCrashedError` (naming it, with
  the exit code or signal); the tasks queued behind it had not started and go
  back to the front of the queue; the other workers carry on untouched; a new
  worker takes the dead one's place.

Workers start on demand, one per submitted task while none is idle, up to
``max_workers``; each reports READY once its initializer ran, so a worker
that dies before that (say, in the initializer) is not blamed on a task. If an
initializer raises, the pool is broken for good, as the stdlib's is.

Stopping: ``shutdown`` lets the sender hand out every queued task, then tells
each worker to exit after its last one (an empty message); the reader ends
once every worker has exited. A pool dropped without ``shutdown`` shuts down
without waiting; at interpreter exit every pool still running is shut down and
waited for, as the stdlib's are.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import _base as _futures_base
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import Connection, wait
from typing import Any, ParamSpec, TypeVar

from . import _calls, _remote, _worker
from ._errors import WorkerCrashedError
from ._settle import set_exception, set_result

_log = logging.getLogger("futurekit")

P = ParamSpec("P")
T = TypeVar("T")

#: Tasks handed to one worker and not yet finished: the one it runs and the next.
PREFETCH = 2
#: A busy worker is handed a second task only if its last task ran shorter than this.
PREFETCH_BELOW_SECONDS = 0.02
#: Workers dying this many times in a row before running any task break the pool for good.
MAX_FRUITLESS_DEATHS = 3

Decoder = Callable[[bytes, Callable[[], str]], Any]
Runner = Callable[[bytes], tuple[bool, bytes]]
Settle = tuple["PoolFuture", BaseException]


class PoolFuture(Future[Any]):
    """A task's future. ``cancel()`` notifies ``concurrent.futures.wait`` at once, since
    nothing else would while the task sits in the queue."""

    def cancel(self) -> bool:
        if not Future.cancel(self):
            return False
        with self._condition:
            if self._state == _futures_base.CANCELLED:
                self.set_running_or_notify_cancel()
        return True

    def start(self) -> bool:
        """Mark it running (it is being handed to a worker); False if it was cancelled."""
        with self._condition:
            state = self._state
            if state == _futures_base.PENDING:
                return self.set_running_or_notify_cancel()
            if state == _futures_base.CANCELLED:
                self.set_running_or_notify_cancel()
            return state == _futures_base.RUNNING


class _Task:
    """One submitted task: its message for the worker, how to decode the outcome, and its future."""

    __slots__ = ("decode", "describe", "future", "message")

    def __init__(self, message: bytes, decode: Decoder, describe: Callable[[], str]) -> None:
        self.message = message
        self.decode = decode
        self.describe = describe
        self.future = PoolFuture()


class _Worker:
    """A worker process, the parent's ends of its two pipes, and the tasks handed to it."""

    __slots__ = (
        "budget", "eof", "last_seconds", "lost", "process", "ran", "ready", "results", "sent", "stopping", "tasks"
    )

    def __init__(self, process: Any, tasks: Connection, results: Connection, budget: int | None) -> None:
        self.process = process
        self.tasks = tasks  # parent -> worker
        self.results = results  # worker -> parent
        self.sent: deque[_Task] = deque()  # handed over and not finished, oldest first
        self.budget = budget  # tasks it may still be handed (max_tasks_per_child), None: unlimited
        self.ready = False  # its initializer ran
        self.ran = False  # it finished a task
        self.lost = False  # a send to it failed: it is dead, its sentinel will say so
        self.stopping = False  # told to exit: hand it nothing more
        self.eof = False  # its result pipe is closed: it is exiting (its sentinel says when it is gone)
        self.last_seconds = float("inf")  # how long its last task ran (none yet: long)

    def usable(self) -> bool:
        return not self.stopping and not self.lost and self.budget != 0


class _State:
    """Everything the pool's two threads share.

    The threads hold this object, never the ``ProcessPool``, so dropping the
    pool object runs its finaliser (a shutdown without waiting).
    """

    def __init__(
        self,
        ctx: Any,
        max_workers: int,
        initializer: Callable[..., object] | None,
        initargs: tuple[Any, ...],
        max_tasks_per_child: int | None,
    ) -> None:
        self.ctx = ctx
        self.max_workers = max_workers
        self.initializer = initializer
        self.initargs = initargs
        self.max_tasks_per_child = max_tasks_per_child
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)  # the sender waits on it
        self.queue: deque[_Task] = deque()  # submitted, not yet handed to a worker
        self.workers: list[_Worker] = []
        self.spawning = 0  # workers being started
        self.shutdown = False
        self.broken: str | None = None
        self.broken_cause: BaseException | None = None
        self.fruitless = 0
        self.threads: list[threading.Thread] = []
        self.finished = threading.Event()  # the reader has ended: every worker exited
        self.wake_r, self.wake_w = os.pipe()  # wakes the reader (a worker was added; shutdown)
        os.set_blocking(self.wake_w, False)
        self.wake_lock = threading.Lock()
        self.wake_open = True
        self.pid = os.getpid()  # a forked child inherits this object but none of its threads

    # --- with self.lock held ----------------------------------------------------------------

    def wake_reader(self) -> None:
        with self.wake_lock:
            if self.wake_open:
                try:
                    os.write(self.wake_w, b"x")
                except BlockingIOError:  # full: the reader has wake-ups pending anyway
                    pass

    def close_wake_pipe(self) -> None:
        with self.wake_lock:
            if self.wake_open:
                self.wake_open = False
                os.close(self.wake_r)
                os.close(self.wake_w)

    def to_spawn(self) -> int:
        """How many workers to start now: one per queued task no idle worker will take."""
        if self.broken is not None or not self.queue:
            return 0
        usable = [w for w in self.workers if w.usable()]
        room = self.max_workers - len(usable) - self.spawning
        idle = sum(1 for w in usable if not w.sent)
        return max(0, min(room, len(self.queue) - idle - self.spawning))

    def break_pool(self, reason: str, exiting: _Worker | None = None) -> list[Settle]:
        """Declare the pool broken for good; returns the futures to fail (outside the lock).

        Every worker is terminated, as the stdlib does, except ``exiting``, which
        is exiting by itself (its initializer raised) and must be let flush what it logged.
        """
        if self.broken is not None:
            return []
        self.broken = "process pool is broken: " + reason
        tasks = list(self.queue)
        self.queue.clear()
        for w in self.workers:
            tasks.extend(w.sent)
            w.sent.clear()
            w.stopping = True
            if w is exiting:
                continue
            try:
                w.process.terminate()
            except BaseException:  # pragma: no cover - already reaped
                pass
        self.cond.notify_all()
        failures: list[Settle] = []
        for task in tasks:
            err = BrokenProcessPool(self.broken)
            err.__cause__ = self.broken_cause
            failures.append((task.future, err))
        return failures

    def pick(self) -> _Worker | None:
        """The worker to hand the next task to, or None to keep it queued.

        An idle worker if there is one. Otherwise a busy worker gets a second task
        (so it does not wait for the parent between tasks) only when no other worker
        can come: the pool has all its workers and none is starting, and only if
        that worker's last task was short. A long task never has another one
        waiting behind it while a worker could be idle.
        """
        busy: _Worker | None = None
        usable = 0
        for w in self.workers:
            if not w.usable():
                continue
            usable += 1
            load = len(w.sent)
            if load == 0:
                return w
            short = w.last_seconds < PREFETCH_BELOW_SECONDS
            if load < PREFETCH and short and (busy is None or load < len(busy.sent)):
                busy = w
        if usable + self.spawning < self.max_workers or self.spawning:
            return None
        return busy

    # --- starting workers -------------------------------------------------------------------

    def start_workers(self, count: int) -> None:
        """Start ``count`` workers (the caller reserved them in ``spawning``); holds no lock."""
        for _ in range(count):
            failures: list[Settle] = []
            try:
                worker = self._start_one()
            except BaseException as err:
                with self.lock:
                    self.spawning -= 1
                    failures = self.break_pool(f"starting a worker process failed: {err!r}")
                _settle_all(failures)
                if not isinstance(err, Exception):
                    raise
                return
            with self.lock:
                self.spawning -= 1
                self.workers.append(worker)
                self.wake_reader()
                self.cond.notify_all()

    def _start_one(self) -> _Worker:
        tasks_r, tasks_w = self.ctx.Pipe(duplex=False)
        results_r, results_w = self.ctx.Pipe(duplex=False)
        process = self.ctx.Process(
            target=_worker.serve,
            args=(tasks_r, results_w, self.initializer, self.initargs, self.max_tasks_per_child),
            name="futurekit-worker",
        )
        try:
            process.start()
        except BaseException:
            for conn in (tasks_r, tasks_w, results_r, results_w):
                conn.close()
            raise
        tasks_r.close()
        results_w.close()
        return _Worker(process, tasks_w, results_r, self.max_tasks_per_child)

    # --- the sender thread ------------------------------------------------------------------

    def send_loop(self) -> None:
        """Hand queued tasks to workers with a free slot; tell workers to exit at shutdown."""
        while True:
            task: _Task | None = None
            target: _Worker | None = None
            stop: list[_Worker] = []
            with self.lock:
                while True:
                    if self.finished.is_set():
                        return
                    if self.queue:
                        target = self.pick()
                        if target is not None:
                            break
                    elif self.shutdown:
                        stop = [w for w in self.workers if not w.stopping]
                        for w in stop:
                            w.stopping = True
                        if stop:
                            break
                    self.cond.wait()
                if target is not None:
                    task = self.queue.popleft()
                    if not task.future.start():
                        continue  # cancelled while queued
                    target.sent.append(task)
                    if target.budget is not None:
                        target.budget -= 1
            for w in stop:
                try:
                    w.tasks.send_bytes(b"")
                except OSError:  # it died; the reader deals with it
                    pass
            if target is not None and task is not None:
                try:
                    target.tasks.send_bytes(task.message)
                except OSError:
                    self._unsend(target, task)

    def _unsend(self, w: _Worker, task: _Task) -> None:
        """Sending ``task`` to ``w`` failed: ``w`` died (between tasks, say) and never got it.

        The task goes back to the front of the queue, not blamed for a death it
        did not cause, unless the reader already buried ``w`` and dealt with it.
        """
        with self.lock:
            w.lost = True  # hand it nothing more; the reader buries it when its sentinel fires
            if task in w.sent:
                w.sent.remove(task)
                self.queue.appendleft(task)
            self.wake_reader()  # it may start the dead worker's replacement now
            self.cond.notify_all()

    # --- the reader thread ------------------------------------------------------------------

    def read_loop(self) -> None:
        """Settle results, attribute deaths, replace dead workers; ends once every worker exited."""
        try:
            while True:
                with self.lock:
                    if self.shutdown and not self.workers and not self.spawning and not self.queue:
                        break
                    workers = list(self.workers)
                owner: dict[Any, _Worker] = {}
                for w in workers:
                    if not w.eof:
                        owner[w.results] = w
                    owner[w.process.sentinel] = w
                ready = wait([*owner, self.wake_r])
                if self.wake_r in ready:
                    os.read(self.wake_r, 4096)
                dead: list[_Worker] = []
                for obj in ready:
                    sender = owner.get(obj)
                    if sender is None or sender in dead:
                        continue
                    if obj is not sender.results:
                        dead.append(sender)  # its sentinel: the process is gone
                    elif not self._receive(sender):
                        sender.eof = True  # closing down; bury it once its sentinel fires
                for w in dead:
                    self._bury(w)
                with self.lock:
                    count = self.to_spawn()
                    self.spawning += count
                if count:
                    self.start_workers(count)
        except BaseException:  # pragma: no cover - defensive: never lose tasks silently
            _log.exception("futurekit: the process pool's reader thread failed")
            with self.lock:
                failures = self.break_pool("its reader thread failed (see the log)")
            _settle_all(failures)
            raise
        finally:
            self.close_wake_pipe()
            with self.lock:
                self.finished.set()
                self.cond.notify_all()

    def _receive(self, w: _Worker) -> bool:
        """Read and handle one message from ``w``; False if its pipe is closed (it exited)."""
        try:
            data = w.results.recv_bytes()
        except (EOFError, OSError):
            return False
        task_id, ok, seconds = _worker.HEADER.unpack_from(data)
        if task_id == _worker.READY:
            w.ready = True
            return True
        if task_id == _worker.INIT_FAILED:
            self._init_failed(data[_worker.HEADER.size :], w)
            return True
        with self.lock:
            if not w.sent:  # the pool broke meanwhile and already failed this task
                return True
            task = w.sent.popleft()
            w.last_seconds = seconds
            w.ran = True
            self.fruitless = 0
            self.cond.notify()
        body = data[_worker.HEADER.size :]
        del data
        future = task.future
        try:
            if ok:
                set_result(future, task.decode(body, task.describe))
            else:
                set_exception(future, _remote.rebuild(body))
        except BaseException as err:  # a failing decode fails only this task
            if future.done():  # a done-callback raised a BaseException: keep the pool alive
                _log.error("futurekit: a done-callback of %r raised", future, exc_info=err)
            else:
                set_exception(future, err)
        return True

    def _bury(self, w: _Worker) -> None:
        """``w`` exited: take what it sent before dying, then fail or requeue what it was handed."""
        try:
            while not w.eof and w.results.poll() and self._receive(w):
                pass
        except (EOFError, OSError):
            pass
        w.process.join()  # its sentinel fired: it has exited, this only reaps it
        code = w.process.exitcode
        failures: list[Settle] = []
        with self.lock:
            if w in self.workers:
                self.workers.remove(w)
            sent = list(w.sent)
            w.sent.clear()
            if sent and w.ready:
                culprit = sent.pop(0)
                err = WorkerCrashedError(
                    f"worker process {w.process.pid} died", task=culprit.describe(), exitcode=code
                )
                failures.append((culprit.future, err))
            # The rest had not started (a worker runs its tasks in order): back to the front.
            for task in reversed(sent):
                self.queue.appendleft(task)
            if not w.stopping and w.budget != 0 and self.broken is None and not failures and not w.ran:
                self.fruitless += 1  # died before running anything
                if self.fruitless >= MAX_FRUITLESS_DEATHS:
                    failures += self.break_pool(
                        f"worker processes died {self.fruitless} times in a row without running any "
                        f"task (exit codes: {code})"
                    )
            self.cond.notify_all()
        w.tasks.close()
        w.results.close()
        _settle_all(failures)

    def _init_failed(self, captured: bytes, w: _Worker) -> None:
        """``w``'s initializer raised: the pool is broken for good, as the stdlib's."""
        cause = _remote.rebuild(captured)
        with self.lock:
            self.broken_cause = cause
            failures = self.break_pool(
                f"the pool's initializer raised in a worker process: {type(cause).__name__}: {cause}", exiting=w
            )
        _settle_all(failures)

    # --- stopping ---------------------------------------------------------------------------

    def begin_shutdown(self, cancel_futures: bool) -> list[_Task]:
        """Mark the pool shut down; returns the queued tasks to cancel (outside the lock)."""
        with self.lock:
            self.shutdown = True
            cancelled: list[_Task] = []
            if cancel_futures:
                cancelled = list(self.queue)
                self.queue.clear()
            if not self.threads:  # never started: nothing will close the wake pipe
                self.close_wake_pipe()
                self.finished.set()
            else:
                self.wake_reader()
            self.cond.notify_all()
        return cancelled

    def join(self) -> None:
        """Wait until every task is done and every worker exited.

        From one of the pool's own threads (a done-callback calling
        ``shutdown(wait=True)``) it returns at once: waiting there would deadlock.
        """
        if threading.current_thread() in self.threads:
            return
        for thread in self.threads:
            if thread.ident is not None:  # started
                thread.join()


def _settle_all(failures: list[Settle]) -> None:
    """Fail each future, queued (pending) or handed to a worker (running); skip cancelled ones."""
    for future, err in failures:
        if future.start():
            set_exception(future, err)


def submit_call(
    submit_task: Callable[[Runner, bytes, Decoder, Callable[[], str]], Future[Any]],
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Future[Any]:
    """Pickle ``fn(*args, **kwargs)`` here (SerializationError at once) and submit it as one task."""
    payload = _calls.dump_call(fn, args, kwargs)
    return submit_task(_worker.run_task, payload, _calls.decode_value, lambda: _calls.describe_call(fn, args, kwargs))


_live: weakref.WeakSet[_State] = weakref.WeakSet()  # pools whose threads run
_exiting = False  # the interpreter is shutting down: no new tasks


def _shutdown_at_exit() -> None:
    """At interpreter exit, finish every running pool's work, as the stdlib does for its pools."""
    global _exiting
    _exiting = True
    # Only this process's pools: a child forked from here (a "fork" worker, or os.fork())
    # inherits the objects, but not their threads, and maybe a lock one of them held.
    states = [state for state in list(_live) if state.pid == os.getpid()]
    for state in states:
        state.begin_shutdown(False)
    for state in states:
        state.join()


_register = getattr(threading, "_register_atexit", None)
if _register is not None:  # runs before non-daemon threads are joined and before atexit hooks
    _register(_shutdown_at_exit)
else:  # pragma: no cover - CPython < 3.9
    import atexit

    atexit.register(_shutdown_at_exit)


class ProcessPool(concurrent.futures.Executor):
    """A process pool that attributes each worker death to the task it was running.

    The inner executor of :func:`futurekit.processes` (see this module's
    docstring for how it works). Use it through ``processes()``, which wraps
    it in :class:`futurekit.Executor`; its own ``submit`` behaves the same.

    Args:
        max_workers: Number of worker processes (at least 1).
        ctx: The multiprocessing context to start workers with.
        initializer: Called in each worker when it starts.
        initargs: Arguments for ``initializer``.
        max_tasks_per_child: Replace a worker after this many tasks.

    Example:
        >>> import multiprocessing
        >>> from futurekit._pool import ProcessPool
        >>> with ProcessPool(1, multiprocessing.get_context("spawn")) as pool:
        ...     pool.submit(divmod, 7, 2).result(timeout=60)
        (3, 1)

    Concurrency:
        Blocking: ``submit`` pickles the call in the calling thread and may
            start a worker process; it never waits for a task.
            ``shutdown(wait=True)`` blocks until every task finished.
        Callbacks: Done-callbacks run on the pool's reader thread (a
            cancelled future's in the cancelling thread).
        Thread safety: Every method is safe from any thread.
        Cancellation: A task can be cancelled until a worker is handed it
            (``running()`` turns True); not after.
    """

    def __init__(
        self,
        max_workers: int,
        ctx: Any,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        max_tasks_per_child: int | None = None,
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be greater than 0")
        if max_tasks_per_child is not None:
            if max_tasks_per_child < 1:
                raise ValueError("max_tasks_per_child must be >= 1")
            if ctx.get_start_method() == "fork":  # as the stdlib: forking a threaded parent is unsafe
                raise ValueError("max_tasks_per_child is incompatible with the 'fork' multiprocessing start method")
        self._max_workers = max_workers
        self._mp_context = ctx
        self._state = _State(ctx, max_workers, initializer, initargs, max_tasks_per_child)
        self._finalizer = weakref.finalize(self, _State.begin_shutdown, self._state, False)
        self._finalizer.atexit = False  # at exit, _shutdown_at_exit does it (in this process only)

    @property
    def broken(self) -> str | None:
        """Why the pool is broken for good, or None."""
        return self._state.broken

    @property
    def _broken(self) -> str | bool:
        """As ``ProcessPoolExecutor._broken``: the reason the pool is broken, or False."""
        return self._state.broken or False

    @property
    def _processes(self) -> dict[int, Any]:
        """As ``ProcessPoolExecutor._processes``: the live workers' processes by pid (a snapshot)."""
        with self._state.lock:
            return {w.process.pid: w.process for w in self._state.workers}

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` in a worker process; see the class docstring."""
        return submit_call(self.submit_task, fn, args, kwargs)

    def submit_task(self, runner: Runner, payload: bytes, decode: Decoder, describe: Callable[[], str]) -> Future[Any]:
        """Queue one pickled task (``runner`` is one of ``futurekit._worker.RUNNERS``)."""
        message = _worker.HEADER.pack(0, _worker.RUNNERS.index(runner), 0.0) + payload
        task = _Task(message, decode, describe)
        state = self._state
        with state.lock:
            if state.broken is not None:
                raise BrokenProcessPool(state.broken)
            if _exiting:
                raise RuntimeError("cannot schedule new futures after interpreter shutdown")
            if state.shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            state.queue.append(task)
            state.cond.notify()
            count = state.to_spawn()
            state.spawning += count
            start = not state.threads
            if start:
                state.threads = [
                    threading.Thread(target=state.send_loop, name="futurekit-pool-sender", daemon=True),
                    threading.Thread(target=state.read_loop, name="futurekit-pool-reader", daemon=True),
                ]
        if start:
            self._start_threads()
        if count:
            state.start_workers(count)
        return task.future

    def _start_threads(self) -> None:
        """Start the sender and reader; if either cannot start (say, at interpreter exit), break the pool."""
        state = self._state
        try:
            for thread in state.threads:
                thread.start()
        except BaseException as err:
            with state.lock:
                state.spawning = 0
                failures = state.break_pool(f"its threads could not be started: {err!r}")
                state.shutdown = True
                if state.threads[1].ident is None:  # no reader: nobody else ends the sender or closes the pipe
                    state.close_wake_pipe()
                    state.finished.set()
                    state.cond.notify_all()
            _settle_all(failures)
            raise BrokenProcessPool(state.broken) from err
        _live.add(state)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting tasks; the workers exit once the queued tasks are done (idempotent)."""
        state = self._state
        for task in state.begin_shutdown(cancel_futures):
            task.future.cancel()
        if wait:
            state.join()

