"""The engine of futurekit's process pool: its workers, its tasks and its two threads.

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

import itertools
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import _base as _futures_base
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import Connection, wait
from typing import Any

from .._errors import WorkerCrashedError
from .._settle import set_exception, set_result
from . import exceptions, wire, worker
from .payload import Decoder

_log = logging.getLogger("futurekit")

#: Tasks handed to one worker and not yet finished: the one it runs and the next.
PREFETCH = 2
#: A busy worker is handed a second task only if its last task ran shorter than this.
PREFETCH_BELOW_SECONDS = 0.02
#: Workers dying this many times in a row before running any task break the pool for good.
MAX_STARTUP_DEATHS = 3

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


class Task:
    """One submitted task: its id, its message for the worker, how to decode the outcome, and its future."""

    __slots__ = ("decode", "describe", "future", "id", "message")

    def __init__(self, task_id: int, message: bytes, decode: Decoder, describe: Callable[[], str]) -> None:
        self.id = task_id
        self.message = message  # wire.HEADER + payload
        self.decode = decode
        self.describe = describe
        self.future = PoolFuture()


class Worker:
    """A worker process, the parent's ends of its two pipes, and the tasks handed to it."""

    __slots__ = (
        "assigned",
        "budget",
        "eof",
        "last_seconds",
        "lost",
        "process",
        "ready",
        "results",
        "stopping",
        "tasks",
    )

    def __init__(self, process: Any, tasks: Connection, results: Connection, budget: int | None) -> None:
        self.process = process
        self.tasks = tasks  # parent -> worker
        self.results = results  # worker -> parent
        self.assigned: deque[Task] = deque()  # handed to it and not finished, oldest first
        self.budget = budget  # tasks it may still be handed (max_tasks_per_child), None: unlimited
        self.ready = False  # its initializer ran
        self.lost = False  # a send to it failed: it is dead, its sentinel will say so
        self.stopping = False  # told to exit: hand it nothing more
        self.eof = False  # its result pipe is closed: it is exiting (its sentinel says when it is gone)
        self.last_seconds = float("inf")  # how long its last task ran (none yet: long)

    def usable(self) -> bool:
        return not self.stopping and not self.lost and self.budget != 0

    @property
    def ran(self) -> bool:
        """Whether it finished a task (``last_seconds`` is set by each finished one)."""
        return self.last_seconds != float("inf")


class Engine:
    """The process pool's engine: its workers, its queue and its two threads, and everything they share.

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
        self.queue: deque[Task] = deque()  # submitted, not yet handed to a worker
        self.workers: list[Worker] = []
        self.spawning = 0  # workers being started
        self.shutdown = False
        self.broken: str | None = None
        self.broken_cause: BaseException | None = None
        self.startup_deaths = 0  # workers that died in a row before running any task
        self.next_id = itertools.count(1).__next__  # task ids (0 means "no task" on the wire)
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
        idle = sum(1 for w in usable if not w.assigned)
        return max(0, min(room, len(self.queue) - idle - self.spawning))

    def break_pool(self, reason: str, exiting: Worker | None = None) -> list[Settle]:
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
            tasks.extend(w.assigned)
            w.assigned.clear()
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

    def pick(self) -> Worker | None:
        """The worker to hand the next task to, or None to keep it queued.

        An idle worker if there is one. Otherwise a busy worker gets a second task
        (so it does not wait for the parent between tasks) only when no other worker
        can come: the pool has all its workers and none is starting, and only if
        that worker's last task was short. A long task never has another one
        waiting behind it while a worker could be idle.
        """
        busy: Worker | None = None
        usable = 0
        for w in self.workers:
            if not w.usable():
                continue
            usable += 1
            load = len(w.assigned)
            if load == 0:
                return w
            short = w.last_seconds < PREFETCH_BELOW_SECONDS
            if load < PREFETCH and short and (busy is None or load < len(busy.assigned)):
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
                settle_all(failures)
                if not isinstance(err, Exception):
                    raise
                return
            with self.lock:
                self.spawning -= 1
                self.workers.append(worker)
                self.wake_reader()
                self.cond.notify_all()

    def _start_one(self) -> Worker:
        tasks_r, tasks_w = self.ctx.Pipe(duplex=False)
        results_r, results_w = self.ctx.Pipe(duplex=False)
        process = self.ctx.Process(
            target=worker.serve,
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
        return Worker(process, tasks_w, results_r, self.max_tasks_per_child)

    # --- the sender thread ------------------------------------------------------------------

    def send_loop(self) -> None:
        """Hand queued tasks to workers with a free slot; tell workers to exit at shutdown."""
        while True:
            task: Task | None = None
            target: Worker | None = None
            stop: list[Worker] = []
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
                    target.assigned.append(task)
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

    def _unsend(self, w: Worker, task: Task) -> None:
        """Sending ``task`` to ``w`` failed: ``w`` died (between tasks, say) and never got it.

        The task goes back to the front of the queue, not blamed for a death it
        did not cause, unless the reader already buried ``w`` and dealt with it.
        """
        with self.lock:
            w.lost = True  # hand it nothing more; the reader buries it when its sentinel fires
            if task in w.assigned:
                w.assigned.remove(task)
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
                owner: dict[Any, Worker] = {}
                for w in workers:
                    if not w.eof:
                        owner[w.results] = w
                    owner[w.process.sentinel] = w
                ready = wait([*owner, self.wake_r])
                if self.wake_r in ready:
                    os.read(self.wake_r, 4096)
                dead: list[Worker] = []
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
            settle_all(failures)
            raise
        finally:
            self.close_wake_pipe()
            with self.lock:
                self.finished.set()
                self.cond.notify_all()

    def _receive(self, w: Worker) -> bool:
        """Read and handle one message from ``w``; False if its pipe is closed (it exited)."""
        try:
            data = w.results.recv_bytes()
        except (EOFError, OSError):
            return False
        kind, task_id, seconds = wire.HEADER.unpack_from(data)
        if kind == wire.READY:
            w.ready = True
            return True
        if kind == wire.INIT_FAILED:
            self._init_failed(data[wire.HEADER.size :], w)
            return True
        with self.lock:
            if not w.assigned or w.assigned[0].id != task_id:  # the pool broke meanwhile and failed this task
                return True
            task = w.assigned.popleft()
            w.last_seconds = seconds
            self.startup_deaths = 0
            self.cond.notify()
        body = data[wire.HEADER.size :]
        del data
        future = task.future
        try:
            if kind == wire.VALUE:
                set_result(future, task.decode(body, task.describe))
            else:
                set_exception(future, exceptions.rebuild(body))
        except BaseException as err:  # a failing decode fails only this task
            if future.done():  # a done-callback raised a BaseException: keep the pool alive
                _log.error("futurekit: a done-callback of %r raised", future, exc_info=err)
            else:
                set_exception(future, err)
        return True

    def _bury(self, w: Worker) -> None:
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
            sent = list(w.assigned)
            w.assigned.clear()
            if sent and w.ready:
                culprit = sent.pop(0)
                err = WorkerCrashedError(f"worker process {w.process.pid} died", task=culprit.describe(), exitcode=code)
                failures.append((culprit.future, err))
            # The rest had not started (a worker runs its tasks in order): back to the front.
            for task in reversed(sent):
                self.queue.appendleft(task)
            if not w.stopping and w.budget != 0 and self.broken is None and not failures and not w.ran:
                self.startup_deaths += 1  # died before running anything
                if self.startup_deaths >= MAX_STARTUP_DEATHS:
                    failures += self.break_pool(
                        f"worker processes died {self.startup_deaths} times in a row without running any "
                        f"task (exit codes: {code})"
                    )
            self.cond.notify_all()
        w.tasks.close()
        w.results.close()
        settle_all(failures)

    def _init_failed(self, captured: bytes, w: Worker) -> None:
        """``w``'s initializer raised: the pool is broken for good, as the stdlib's."""
        cause = exceptions.rebuild(captured)
        with self.lock:
            self.broken_cause = cause
            failures = self.break_pool(
                f"the pool's initializer raised in a worker process: {type(cause).__name__}: {cause}", exiting=w
            )
        settle_all(failures)

    # --- stopping ---------------------------------------------------------------------------

    def begin_shutdown(self, cancel_futures: bool) -> list[Task]:
        """Mark the pool shut down; returns the queued tasks to cancel (outside the lock)."""
        with self.lock:
            self.shutdown = True
            cancelled: list[Task] = []
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


def settle_all(failures: list[Settle]) -> None:
    """Fail each future, queued (pending) or handed to a worker (running); skip cancelled ones."""
    for future, err in failures:
        if future.start():
            set_exception(future, err)
