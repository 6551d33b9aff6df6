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
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import _base as _futures_base  # pyright: ignore[reportPrivateUsage] - the stdlib's future states
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import Connection, wait
from time import monotonic
from typing import Any, ClassVar, Final

from .._errors import DeadlockError, TaskTimeoutError, WorkerCrashedError
from .._settle import set_exception, set_result
from . import exceptions, logs, mainmodule, payload, wire, worker
from .payload import Decoder

_log = logging.getLogger("futurekit")

#: Tasks handed to one worker and not yet finished: the one it runs and the next.
PREFETCH = 2
#: A busy worker is handed a second task only if its last task ran shorter than this.
PREFETCH_BELOW_SECONDS = 0.02
#: Log records the reader handles from one worker in a row before it looks at the others again.
LOG_BATCH = 64
#: Workers dying this many times in a row before running any task break the pool for good.
MAX_STARTUP_DEATHS = 3

Settle = tuple["PoolFuture", BaseException]
_NEVER: Final = float("inf")
_TERMINATED: Final = "the pool's workers were ended by terminate_workers() or kill_workers()"


def _first_line(err: BaseException) -> str:
    """An error's message on one line, cut at 200 characters (the error itself is the ``__cause__``)."""
    text = " ".join(str(err).split())
    return text if len(text) <= 200 else text[:197].rsplit(" ", 1)[0] + " ..."


def _unread_bytes(conn: Connection) -> int:
    """Bytes written to a pipe and not read yet (Linux and macOS answer this on the write end too); 0 if unknown."""
    try:
        import array
        import fcntl
        import termios

        count = array.array("i", [0])
        fcntl.ioctl(conn.fileno(), termios.FIONREAD, count, True)
        return count[0]
    except (ImportError, OSError, ValueError):  # Windows, or closed
        return 0


def _framed(message: bytes) -> int:
    """Bytes ``Connection.send_bytes(message)`` puts in the pipe: a 4-byte length (12 past 2 GiB), then the message."""
    return len(message) + (4 if len(message) <= 0x7FFFFFFF else 12)


class Stopper:
    """What every future of one pool shares: the way to its engine (weakly) and the pool's cancel rule."""

    __slots__ = ("cancel_running", "engine", "reader")

    def __init__(self, engine: Engine, cancel_running: bool) -> None:
        self.engine = weakref.ref(engine)
        self.cancel_running = cancel_running
        self.reader = 0  # thread id of the pool's reader thread, once it runs

    def stop(self, future: PoolFuture) -> None:
        engine = self.engine()
        if engine is not None:
            engine.stop_task(future)


_RUNNING: Final = _futures_base.RUNNING
_UNSETTLED: Final = (_futures_base.PENDING, _futures_base.RUNNING)
_DEADLOCK: Final = (
    "futurekit: result() of a pending task of fk.processes() was called on that pool's own result thread (from a "
    "done-callback, or from a then/chain/recover function run inline there), which is the thread that would settle "
    "it: the wait could never end. Pass executor= to then/chain/recover, or chain on the future instead of waiting."
)


class PoolFuture(Future[Any]):
    """A task's future.

    ``cancel()`` notifies ``concurrent.futures.wait`` at once, since nothing
    else would while the task sits in the queue; on a RUNNING task (handed to
    a worker) it cancels the future and asks the engine to stop the task,
    unless the pool keeps the stdlib's rule (``cancel_running=False``).
    ``result()`` and ``exception()`` raise :class:`~futurekit.DeadlockError`
    instead of waiting forever on the pool's own reader thread.

    Each pool makes its own subclass (:func:`future_class`) whose class
    attribute ``stopper`` leads to the pool: a future costs nothing more to
    make than a plain ``Future``.
    """

    stopper: ClassVar[Stopper]

    def cancel(self) -> bool:
        if self._state == _RUNNING and self.stopper.cancel_running and self._cancel_running():
            self.stopper.stop(self)
            self._invoke_callbacks()  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue] - the stdlib's own step of cancel()
            return True
        if not super().cancel():
            return False
        with self._condition:
            if self._state == _futures_base.CANCELLED:
                self.set_running_or_notify_cancel()
        return True

    def force_cancel(self) -> bool:
        """Cancel even a RUNNING future, whatever the pool's cancel rule (Ctrl-C); the caller stops its task."""
        if self._cancel_running():
            self._invoke_callbacks()  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue] - the stdlib's own step of cancel()
            return True
        return self.cancel()

    def _cancel_running(self) -> bool:
        """RUNNING -> cancelled, waiters notified (the caller runs the callbacks); False if it was not RUNNING."""
        with self._condition:
            if self._state != _RUNNING:
                return False
            self._state = _futures_base.CANCELLED_AND_NOTIFIED
            for waiter in self._waiters:
                waiter.add_cancelled(self)
            self._condition.notify_all()
        return True

    def start(self) -> bool:
        """Mark it running (it is being handed to a worker); False if it was cancelled."""
        with self._condition:
            state = self._state
            if state == _futures_base.PENDING:
                return self.set_running_or_notify_cancel()
            if state == _futures_base.CANCELLED:
                self.set_running_or_notify_cancel()
            return state == _RUNNING

    def result(self, timeout: float | None = None) -> Any:
        if self._state in _UNSETTLED and timeout != 0 and threading.get_ident() == self.stopper.reader:
            raise DeadlockError(_DEADLOCK)
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        if self._state in _UNSETTLED and timeout != 0 and threading.get_ident() == self.stopper.reader:
            raise DeadlockError(_DEADLOCK)
        return super().exception(timeout)


def future_class(stopper: Stopper) -> type[PoolFuture]:
    """The future class of one pool: :class:`PoolFuture` with that pool's ``stopper``."""
    return type(
        "PoolFuture", (PoolFuture,), {"stopper": stopper, "__module__": __name__, "__doc__": PoolFuture.__doc__}
    )


class Task:
    """One submitted task: its id, its message for the worker, how to decode the outcome, and its future."""

    __slots__ = ("decode", "describe", "future", "id", "message")

    def __init__(
        self, task_id: int, message: bytes, decode: Decoder, describe: Callable[[], str], future: PoolFuture
    ) -> None:
        self.id = task_id
        self.message = message  # wire.HEADER + payload
        self.decode = decode
        self.describe = describe
        self.future = future


class Worker:
    """A worker process, the parent's ends of its two pipes, and the tasks handed to it."""

    __slots__ = (
        "assigned",
        "budget",
        "buried",
        "control",
        "eof",
        "head_since",
        "kill_at",
        "killed",
        "last_seconds",
        "left_to_sender",
        "left_was_head",
        "lost",
        "process",
        "ready",
        "results",
        "sending",
        "stop_id",
        "stopping",
        "tasks",
    )

    def __init__(
        self, process: Any, tasks: Connection, results: Connection, control: Connection | None, budget: int | None
    ) -> None:
        self.process = process
        self.tasks = tasks  # parent -> worker
        self.results = results  # worker -> parent
        self.control = control  # parent -> worker's control thread: stop requests
        self.head_since = 0.0  # when its oldest assigned task started (about: when it became the oldest)
        self.stop_id = 0  # the task it was asked to stop, 0: none
        self.kill_at = _NEVER  # when to kill it if that task has not ended by then
        self.killed = False  # killed by the pool (a stop that went unheeded, or terminate/kill_workers)
        self.sending: Task | None = None  # the task the sender is sending it right now
        self.buried = False  # the reader has taken it off the pool (it exited)
        self.left_to_sender: Task | None = None  # a task _bury left for the sender to settle
        self.left_was_head = False  # that task was its oldest (it would have been running it)
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
        *,
        stop_grace: float = 1.0,
        task_timeout: float | None = None,
        cancel_running: bool = True,
        forward_logs: bool = True,
    ) -> None:
        self.ctx = ctx
        self.forward_logs = forward_logs  # workers send their log records (wire.LOG), handled by _handle_log
        self.log_task: tuple[int, str | None] = (0, None)  # the last task a record named, and its description
        self.max_workers = max_workers
        self.stop_grace = stop_grace  # seconds between a soft stop and the kill
        self.task_timeout = task_timeout
        self.stopper = Stopper(self, cancel_running)
        self.Future = future_class(self.stopper)  # every task's future is one of these
        self.kills_pending = 0  # workers with a kill_at set: the reader must wake up in time
        self.initializer = initializer
        self.initargs = initargs
        self.max_tasks_per_child = max_tasks_per_child
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)  # the sender waits on it
        self.queue: deque[Task] = deque()  # submitted, not yet handed to a worker
        self.workers: list[Worker] = []
        self.spawning = 0  # workers being started
        self.shutdown = False
        self.terminated = False  # terminate_workers()/kill_workers(): nothing more runs
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
        if self.broken is not None or self.terminated or not self.queue:
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
                    if self.broken is None:
                        self.broken_cause = err
                    failures = self.break_pool(f"starting a worker process failed: {_first_line(err)}")
                settle_all(failures)
                if not isinstance(err, Exception):
                    raise
                return
            with self.lock:
                self.spawning -= 1
                self.workers.append(worker)
                if self.terminated:  # terminate_workers()/kill_workers() came while it was starting
                    worker.killed = True
                    worker.process.kill()
                self.wake_reader()
                self.cond.notify_all()

    def _start_one(self) -> Worker:
        tasks_r, tasks_w = self.ctx.Pipe(duplex=False)
        results_r, results_w = self.ctx.Pipe(duplex=False)
        control_r, control_w = self.ctx.Pipe(duplex=False)
        forked = self.ctx.get_start_method() == "fork"  # a forked worker has __main__ already
        main = None if forked else mainmodule.main_reference()
        process = self.ctx.Process(
            target=worker.serve,
            args=(
                tasks_r,
                results_w,
                control_r,
                None if self.initializer is None else payload.Deferred((self.initializer, self.initargs)),
                self.max_tasks_per_child,
                main,
                logs.parent_config() if self.forward_logs else None,
            ),
            name="futurekit-worker",
        )
        try:
            with mainmodule.worker_start():
                process.start()
        except BaseException:
            for conn in (tasks_r, tasks_w, results_r, results_w, control_r, control_w):
                conn.close()
            raise
        tasks_r.close()
        results_w.close()
        control_r.close()
        return Worker(process, tasks_w, results_r, control_w, self.max_tasks_per_child)

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
                    if not target.assigned and self.task_timeout is not None:
                        target.head_since = monotonic()
                    target.assigned.append(task)
                    target.sending = task  # until sent: if it dies meanwhile, _bury leaves this task to us
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
                    sent = True
                except OSError:
                    sent = False
                target.sending = None  # first clear this, then look at buried (_bury: the other way round)
                if not sent or target.buried:
                    self._after_send(target, task, sent)

    def _after_send(self, w: Worker, task: Task, sent: bool) -> None:
        """Sending ``task`` to ``w`` failed, or ``w`` was buried while it was being sent.

        A task whose send failed never reached the worker: it goes back to the
        front of the queue, not blamed for a death it did not cause. One that
        reached a worker that then died is blamed only if it was that worker's
        oldest task (the one it would have been running); otherwise it had not
        started and is requeued too.
        """
        failures: list[Settle] = []
        with self.lock:
            if not sent:
                w.lost = True  # hand it nothing more; the reader buries it when its sentinel fires
            if w.left_to_sender is task:  # _bury left this one to us
                w.left_to_sender = None
                if sent and w.left_was_head:
                    failures.append((task.future, self._crash_error(w, task)))
                else:
                    self._requeue(task, failures)
            elif not sent and task in w.assigned:
                w.assigned.remove(task)
                self._requeue(task, failures)
            self.wake_reader()  # it may start the dead worker's replacement now
            self.cond.notify_all()
        settle_all(failures)

    def _requeue(self, task: Task, failures: list[Settle]) -> None:
        """Back to the front of the queue a task that never started; after terminate, to ``failures`` instead.

        After terminate_workers()/kill_workers() nothing runs again: a requeued
        task would wait for a worker that never comes, and shutdown(wait=True)
        with it. Holds the lock.
        """
        if self.terminated:
            failures.append((task.future, BrokenProcessPool(_TERMINATED)))
        else:
            self.queue.appendleft(task)

    def _crash_error(self, w: Worker, task: Task) -> WorkerCrashedError:
        how = "was killed by the pool" if w.killed else "died"
        return WorkerCrashedError(
            f"worker process {w.process.pid} {how}", task=task.describe(), exitcode=w.process.exitcode
        )

    # --- the reader thread ------------------------------------------------------------------

    def read_loop(self) -> None:
        """Settle results, attribute deaths, replace dead workers, keep deadlines; ends once every worker exited."""
        self.stopper.reader = threading.get_ident()
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
                timeout = self._next_deadline(workers)
                ready = wait([*owner, self.wake_r], timeout)
                if self.wake_r in ready:
                    os.read(self.wake_r, 4096)
                if timeout is not None:
                    self._keep_deadlines()
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
        if kind == wire.LOG:
            after = self._handle_logs(w, task_id, data)
            if after is None:
                return True
            data = after
            kind, task_id, seconds = wire.HEADER.unpack_from(data)
        if kind == wire.READY:
            w.ready = True
            return True
        if kind == wire.MAIN_FAILED:
            self._main_failed(data[wire.HEADER.size :], w)
            return True
        if kind == wire.INIT_FAILED:
            self._init_failed(data[wire.HEADER.size :], w)
            return True
        with self.lock:
            if not w.assigned or w.assigned[0].id != task_id:  # the pool broke meanwhile and failed this task
                return True
            task = w.assigned.popleft()
            if w.stop_id:  # it ended (stopped or not): no kill
                self._stop_done(w)
            if w.assigned and self.task_timeout is not None:
                w.head_since = monotonic()
            w.last_seconds = seconds
            self.startup_deaths = 0
            self.cond.notify()
        body = data[wire.HEADER.size :]
        del data
        future = task.future
        if future._state != _RUNNING:  # pyright: ignore[reportPrivateUsage] - cancelled (and stopped) or timed out meanwhile: nothing to decode
            return True
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

    def _handle_logs(self, w: Worker, task_id: int, data: bytes) -> bytes | None:
        """Handle this log record and those queued right behind it; returns the first other message read, if any.

        Up to ``LOG_BATCH`` records per call, read without waiting on every pipe
        again: a worker that logs a lot keeps the reader on it only that long.
        """
        conn = w.results
        for _ in range(LOG_BATCH):
            self._handle_log(w, task_id, data)
            try:
                if not conn.poll():
                    return None
                data = conn.recv_bytes()
            except (EOFError, OSError):  # it is exiting: the next wait() sees its pipe closed
                return None
            kind, task_id, _ = wire.HEADER.unpack_from(data)
            if kind != wire.LOG:
                return data
        self._handle_log(w, task_id, data)
        return None

    def _handle_log(self, w: Worker, task_id: int, data: bytes) -> None:
        """A log record ``w`` emitted while running task ``task_id`` (0: none): to the parent's logger of its name.

        The running task is ``w``'s oldest assigned one (a worker runs its tasks
        in order, and its result comes after this record); only the reader
        thread removes tasks from ``assigned``, so it is read without the lock.
        User handlers run here, on the reader thread; nothing they raise escapes.
        """
        description: str | None = None
        if task_id:
            last_id, description = self.log_task
            if last_id != task_id:
                try:
                    head: Task | None = w.assigned[0]
                except IndexError:  # the pool broke meanwhile (break_pool clears it under the lock)
                    head = None
                description = head.describe() if head is not None and head.id == task_id else f"task {task_id}"
                self.log_task = (task_id, description)
        logs.handle(memoryview(data)[wire.HEADER.size :], description, w.process.pid)

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
            if w.stop_id:
                self._stop_done(w)
            sent = list(w.assigned)
            w.assigned.clear()
            w.buried = True  # first set this, then look at sending (the sender: the other way round)
            sending = w.sending
            if sending is not None and sending in sent:  # its send is under way: the sender settles it
                w.left_was_head = sent[0] is sending
                w.left_to_sender = sending
                sent.remove(sending)
            # Messages still in its task pipe were never read: those tasks never started, whoever is to blame.
            unread = _unread_bytes(w.tasks)
            never_read: list[Task] = []
            while sent and unread >= _framed(sent[-1].message):
                unread -= _framed(sent[-1].message)
                never_read.insert(0, sent.pop())
            if never_read and w.left_to_sender is not None:
                w.left_was_head = False  # an older message is unread: the one being sent was not started either
            if sent and w.ready and not (w.left_to_sender is not None and w.left_was_head):
                culprit = sent.pop(0)
                failures.append((culprit.future, self._crash_error(w, culprit)))  # skipped if it was stopped
            # The rest had not started (a worker runs its tasks in order): back to the front.
            sent += never_read
            for task in reversed(sent):
                self._requeue(task, failures)  # after terminate: failed instead
            if not w.stopping and w.budget != 0 and self.broken is None and not failures and not w.ran:
                self.startup_deaths += 1  # died before running anything
                if self.startup_deaths >= MAX_STARTUP_DEATHS:
                    failures += self.break_pool(
                        f"worker processes died {self.startup_deaths} times in a row without running any "
                        f"task (exit codes: {code}); their own error, if any, is on stderr"
                    )
            self.cond.notify_all()
        w.tasks.close()
        w.results.close()
        if w.control is not None:
            w.control.close()
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

    def _main_failed(self, captured: bytes, w: Worker) -> None:
        """``w`` could not import the program's main module: every worker would fail the same way."""
        cause = exceptions.rebuild(captured)
        root = cause
        while root.__cause__ is not None and root.__cause__ is not root:  # e.g. a pool started at import
            root = root.__cause__
        ref = mainmodule.main_reference()
        what = "the main script" if ref is None or ref[0] == "path" else f"the main module {ref[1]}"
        where = f" {ref[1]}" if ref is not None and ref[0] == "path" else ""
        first = _first_line(root)
        first += "" if first.endswith(".") else "."  # a sentence, or cut with "..."
        with self.lock:
            self.broken_cause = cause
            failures = self.break_pool(
                f"a worker process could not import {what}{where}, which spawn and forkserver workers import "
                f"to find the functions it defines: {type(root).__name__}: {first} "
                "The script's top-level code runs again in every worker: put it under "
                "`if __name__ == '__main__':` (or move the functions the workers run into a module)",
                exiting=w,
            )
        settle_all(failures)

    # --- stopping running tasks ---------------------------------------------------------------

    def stop_task(self, future: PoolFuture) -> None:
        """Stop the task of this future if a worker has it (the future was cancelled while RUNNING)."""
        with self.lock:
            for w in self.workers:
                for task in w.assigned:
                    if task.future is future:
                        self._request_stop(w, task)
                        return

    def _request_stop(self, w: Worker, task: Task) -> None:
        """Ask ``w`` to stop ``task`` (softly: StopRequested raised in it); kill ``w`` if it has not ended by the grace.

        A task handed over but not started yet is skipped by the worker when it
        gets to it. The request names the task, so a worker that finished it
        meanwhile ignores it. With the lock held.
        """
        soft = worker.STOP_SIGNAL is not None and self.stop_grace > 0
        if soft and w.control is not None:
            try:
                w.control.send_bytes(worker.STOP.pack(task.id))
            except OSError:  # it died: the reader buries it
                return
        if task is not w.assigned[0] or w.stop_id == task.id:
            return
        w.stop_id = task.id
        if w.kill_at == _NEVER:
            self.kills_pending += 1
        w.kill_at = monotonic() + (self.stop_grace if soft else 0.0)
        self.wake_reader()

    def _stop_done(self, w: Worker) -> None:
        """The task ``w`` was asked to stop has ended (or ``w`` is gone): no kill. With the lock held."""
        w.stop_id = 0
        if w.kill_at != _NEVER:
            w.kill_at = _NEVER
            self.kills_pending -= 1

    def _next_deadline(self, workers: list[Worker]) -> float | None:
        """Seconds until the reader must look at the clock (a kill or a task deadline), None if never."""
        if not self.kills_pending and self.task_timeout is None:
            return None
        soonest = _NEVER
        limit = self.task_timeout
        for w in workers:
            soonest = min(soonest, w.kill_at)
            if limit is not None and w.assigned and w.stop_id != w.assigned[0].id:
                soonest = min(soonest, w.head_since + limit)
        if soonest == _NEVER:
            return None
        return max(0.0, soonest - monotonic())

    def _keep_deadlines(self) -> None:
        """Kill workers whose stopped task outlived the grace; stop tasks that outlived ``task_timeout``."""
        timed_out: list[tuple[Task, float]] = []
        limit = self.task_timeout
        with self.lock:
            now = monotonic()
            for w in self.workers:
                if w.kill_at <= now:
                    w.kill_at = _NEVER
                    self.kills_pending -= 1
                    w.killed = True
                    try:
                        w.process.kill()
                    except BaseException:  # already reaped
                        pass
                elif limit is not None and w.assigned and w.stop_id != w.assigned[0].id:
                    head = w.assigned[0]
                    if now - w.head_since >= limit and not head.future.done():
                        timed_out.append((head, now - w.head_since))
                        self._request_stop(w, head)
        for task, seconds in timed_out:
            assert limit is not None
            set_exception(task.future, TaskTimeoutError(task=task.describe(), seconds=seconds, limit=limit))

    def stop_all(self) -> None:
        """Ctrl-C: shut down, cancel what is queued, and stop every running task (soft stop, then kill)."""
        for task in self.begin_shutdown(True):
            task.future.cancel()
        with self.lock:
            running = [(w, task) for w in self.workers for task in w.assigned]
            for w, task in running:
                self._request_stop(w, task)
        for _w, task in running:
            task.future.force_cancel()

    def terminate(self, kill: bool) -> list[Settle]:
        """terminate_workers()/kill_workers(): shut down, end every worker at once; returns queued tasks to fail."""
        with self.lock:
            self.shutdown = True
            self.terminated = True
            queued = list(self.queue)
            self.queue.clear()
            for w in self.workers:
                w.killed = True
                try:
                    if kill:
                        w.process.kill()
                    else:
                        w.process.terminate()
                except BaseException:  # already reaped
                    pass
            if not self.threads:
                self.close_wake_pipe()
                self.finished.set()
            else:
                self.wake_reader()
            self.cond.notify_all()
        return [(task.future, BrokenProcessPool(_TERMINATED)) for task in queued]

    # --- shutting down ------------------------------------------------------------------------

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

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every task is done and every worker exited (at most ``timeout`` seconds); True if so.

        From one of the pool's own threads (a done-callback calling
        ``shutdown(wait=True)``) it returns at once: waiting there would deadlock.
        """
        if threading.current_thread() in self.threads:
            return False
        deadline = None if timeout is None else monotonic() + timeout
        for thread in self.threads:
            if thread.ident is not None:  # started
                thread.join(None if deadline is None else max(0.0, deadline - monotonic()))
        return self.finished.is_set()


def settle_all(failures: list[Settle]) -> None:
    """Fail each future, queued (pending) or handed to a worker (running); skip cancelled ones."""
    for future, err in failures:
        if future.start():
            set_exception(future, err)
