"""The adapter for a dask.distributed cluster (``futurekit.dask.executor``).

A :class:`DaskPool` sends each task to the cluster with ``client.submit``, as
``run_call_on_cluster(key, payload)`` or ``run_chunk_on_cluster(key, payload)``
(which call the runners of :mod:`futurekit._process.worker`): the user's
function and arguments travel inside the payload, so none of the user's keyword arguments can collide with
``client.submit``'s own (``key``, ``workers``, ``priority``...), and every task
gets a fresh key, so identical calls are never merged (``Client.get_executor``
merges them).

Settling: for each task a small coroutine on the client's event loop waits
for the dask future and fetches its result (as ``Future.result()`` itself
does), then queues both for a thread of this pool ("futurekit-dask-settler"),
which decodes the outcome and settles the caller's plain
``concurrent.futures.Future``. So user callbacks (and the functions of
``then``/``chain``/``recover`` attached to them) never run on the client's
event loop or on dask's callback thread. The settler also polls the client
every :data:`POLL` seconds while tasks are pending: if the client was closed,
or lost its scheduler, every pending future fails with
:class:`concurrent.futures.BrokenExecutor` within that time, even when the
loop no longer runs.

Cancelling (:meth:`DaskPool.cancel_tasks`): dask's own ``client.cancel`` only
queues a message for the scheduler, which may already have sent the task to a
worker, where it can start after the cancel returned. So futurekit also asks
the scheduler, in one round trip, to cancel the keys there and then (nothing
is sent to a worker after that) and to leave a marker for each key on every
worker; the cluster runners check the marker (one dict lookup) before they
call the user's function. Once ``cancel()`` has returned, a task whose
function had not begun never begins; one that had begun runs to its end.

Outcomes are decoded as for a foreign pool: the original exception with the
worker's frames (:func:`futurekit._process.exceptions.rebuild`); a task whose
workers died (dask's ``KilledWorker``) fails with
:class:`~futurekit.WorkerCrashedError` naming it.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import pickle
import queue
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import BrokenExecutor, CancelledError, Future
from concurrent.futures import _base as _futures_base  # pyright: ignore[reportPrivateUsage] - the stdlib's future states
from typing import Any, Final, cast

from .._errors import WorkerCrashedError
from .._settle import set_exception, set_result
from . import exceptions, payload, worker
from .chunks import ChunkResult
from .names import callable_name

_log = logging.getLogger("futurekit")

#: Seconds between the settler's checks of the client while tasks are pending.
POLL: Final = 0.25

#: The cluster options ``client.submit`` takes from ``futurekit.dask.executor`` and ``futurekit.dask.submit``.
CLUSTER_OPTIONS: Final = frozenset({"workers", "resources", "priority", "retries", "allow_other_workers"})

#: What the loop hands to the settler: the caller's future, the dask future, decoder, namer and fetched outcome.
_Done = tuple["DaskFuture", Any, payload.Decoder, Callable[[], str], Any]

_CLOSED_STATES: Final = frozenset({"closing", "closed", "failed"})

#: Seconds a worker keeps a cancellation marker for a task that never came to it (see :func:`mark_cancelled`).
MARKER_TTL: Final = 60.0

#: The reason futurekit gives dask when it cancels a task (it shows in dask's logs and on the dask future).
CANCEL_REASON: Final = "futurekit-cancel"


def check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``options`` as a dict, or raise TypeError naming an unknown one."""
    unknown = sorted(set(options) - CLUSTER_OPTIONS)
    if unknown:
        raise TypeError(
            f"unknown cluster option(s) {', '.join(map(repr, unknown))}; "
            f"expected some of {', '.join(sorted(CLUSTER_OPTIONS))}"
        )
    return dict(options)


def client_closed_error(client: Any) -> RuntimeError:
    """The error for a client that can no longer submit."""
    return RuntimeError(f"the dask client is closed (status {client.status!r}): futurekit cannot submit to it")


class DaskFuture(Future[Any]):
    """The caller's future of a task on the cluster. Its own state is never RUNNING; ``running()`` asks the workers.

    ``cancel()`` cancels the task on the cluster (one round trip to the
    scheduler and from it to every worker, see :meth:`DaskPool.cancel_tasks`),
    then cancels this future: a task whose function had not begun never
    begins; a running one runs to its end on its worker thread and its result
    is dropped. It refuses once the task has finished on the cluster.
    """

    def __init__(self, pool: DaskPool, describe: Callable[[], str]) -> None:
        super().__init__()
        self.pool: DaskPool | None = pool
        self.describe = describe  # names the task in errors
        self.inner: Any = None  # the dask future while the task is not settled

    def running(self) -> bool:
        """Whether the task runs now on a worker: asks the workers (one round trip), as the client cannot know."""
        inner, pool = self.inner, self.pool
        if inner is None or pool is None or self.done():
            return False
        return inner.key in pool.executing_keys()

    def cancel(self) -> bool:
        inner, pool = self.inner, self.pool
        if inner is None or pool is None:  # settled (or settling)
            return super().cancel()
        if inner.status != "pending" or self.done():
            return False  # it ran: the settler is about to deliver its outcome
        pool.cancel_tasks([self])
        return self.cancelled()

    def cancel_self(self) -> None:
        """Cancel this future and notify waiters at once (it never runs itself)."""
        if super().cancel():
            with self._condition:
                if self._state == _futures_base.CANCELLED:
                    self.set_running_or_notify_cancel()


class DaskPool(concurrent.futures.Executor):
    """Runs futurekit tasks on a dask.distributed cluster through a client (the ``Backend`` interface)."""

    def __init__(self, client: Any, options: Mapping[str, Any], *, own_client: bool = False) -> None:
        if client.status in _CLOSED_STATES:
            raise client_closed_error(client)
        self.client = client
        self.options = check_options(options)
        self.own_client = own_client
        self._lock = threading.Lock()
        self._live: dict[DaskFuture, None] = {}  # not settled yet, in submission order
        self._closed = False
        self._queue: queue.SimpleQueue[_Done | None] = queue.SimpleQueue()
        self._settler: threading.Thread | None = None
        self._prefix = f"futurekit-{uuid.uuid4().hex[:12]}"
        self._counter = itertools.count()
        try:
            self._max_workers: int | None = sum(client.nthreads().values()) or None
        except Exception:  # a scheduler that does not answer: map() falls back to the CPU count
            self._max_workers = None

    # ------------------------------------------------------------------ the Backend interface

    @property
    def broken(self) -> str | None:
        """Why the pool cannot run tasks any more (its client is closed), or None."""
        status = self.client.status
        return f"the dask client is {status}" if status in _CLOSED_STATES else None

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """``concurrent.futures.Executor.submit``: the same as :meth:`submit_call`."""
        return self.submit_call(fn, args, kwargs)

    def submit_call(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: Mapping[str, Any] | None = None,
    ) -> Future[Any]:
        """Pickle one call here (SerializationError at once) and submit it to the cluster."""
        encoded = payload.encode_call(fn, args, kwargs, main_by_value=True)
        return self._submit(run_call_on_cluster, encoded, fn, options)

    def submit_chunk(self, fn: Callable[..., Any], chunk: list[Any]) -> Future[ChunkResult]:
        """Pickle one ``map`` chunk here and submit it as one task."""
        return self._submit(run_chunk_on_cluster, payload.encode_chunk(fn, chunk, main_by_value=True), fn, None)

    def _submit(
        self,
        runner: Callable[[str, bytes], tuple[bool, bytes]],
        encoded: payload.Encoded,
        fn: Callable[..., Any],
        options: Mapping[str, Any] | None,
    ) -> DaskFuture:
        data, decode, describe = encoded
        client = self.client
        if self._closed:
            raise RuntimeError("cannot schedule new futures after shutdown")
        if client.status in _CLOSED_STATES:
            raise client_closed_error(client)
        opts = self.options if options is None else {**self.options, **options}
        # A fresh key per task: never merged with an identical call; the name shows on the dashboard.
        key = f"{callable_name(fn)}-{self._prefix}-{next(self._counter)}"
        future = DaskFuture(self, describe)
        inner = client.submit(runner, key, data, key=key, pure=False, **opts)
        future.inner = inner
        with self._lock:
            self._live[future] = None
            self._ensure_settler()
        client.loop.add_callback(self._watch, future, inner, decode, describe)
        return future

    async def _watch(
        self, future: DaskFuture, inner: Any, decode: payload.Decoder, describe: Callable[[], str]
    ) -> None:
        """On the client's event loop: wait for the task, fetch a result, hand both to the settler; never raises.

        Fetching here, as ``Future.result()`` itself does, saves the settler a
        round trip through the loop per task; nothing of the user's runs here.
        """
        outcome: Any = None
        try:
            await inner._state.wait()
            if inner.status == "finished":
                outcome = (await self.client._gather([inner]))[0]
        except BaseException as err:  # the settler reports it on this task
            outcome = err
        self._queue.put((future, inner, decode, describe, outcome))

    def cancel_tasks(self, futures: list[DaskFuture]) -> None:
        """Cancel these tasks on the cluster, then cancel their futures; futures already settling are left alone.

        dask's ``client.cancel`` only queues a message for the scheduler:
        meanwhile the scheduler may hand the task to a worker, which may start
        it. So this also waits for one round trip through the scheduler
        (:func:`_cancel_on_scheduler`), which cancels the keys there at once
        (nothing is sent to a worker after that) and leaves a marker for them
        on every worker, which the cluster runners check before they call the
        user's function. When this returns, a task whose function had not
        begun never begins.
        """
        taken: list[DaskFuture] = []
        with self._lock:  # whoever takes a future out of _live settles it: the settler skips these
            for future in futures:
                if future in self._live:
                    del self._live[future]
                    taken.append(future)
        inners = [f.inner for f in taken if f.inner is not None]
        client = self.client
        if inners and client.status not in _CLOSED_STATES:
            keys = [str(inner.key) for inner in inners]
            try:
                # Queued after the tasks' own submission on the same stream: cancels them even if the
                # scheduler has not taken them in yet when the round trip below reaches it.
                client.cancel(inners, reason=CANCEL_REASON, msg="cancelled through futurekit")
                failed: dict[str, str] = client.run_on_scheduler(
                    _cancel_on_scheduler,
                    keys,
                    client.id,
                    pickle.dumps(mark_cancelled),
                    pickle.dumps((keys,)),
                )
            except Exception as err:  # a lost scheduler: the tasks are gone anyway
                _log.warning("futurekit: cancelling on the cluster failed: %r", err)
            else:
                for address, error in failed.items():  # a worker that did not answer: it may still start one
                    _log.warning("futurekit: worker %s did not take the cancellation of %s: %s", address, keys, error)
        for future in taken:
            future.inner = None
            future.cancel_self()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting tasks; cancel the pending ones on request; with ``wait``, wait until all settled.

        Never closes a client the pool did not create; one it created (from an
        address) is closed once every task has settled, or at once when
        ``wait`` is False.
        """
        with self._lock:
            self._closed = True
            live = list(self._live)
            settler = self._settler
        if cancel_futures and live:
            # As the stdlib's: cancel what has not started; tasks running on a worker complete.
            executing = self.executing_keys()
            self.cancel_tasks(
                [
                    f
                    for f in live
                    if f.inner is not None and f.inner.status == "pending" and f.inner.key not in executing
                ]
            )
        if wait and threading.current_thread() is not settler:
            # Bounded: the settler fails every pending future within POLL seconds of the client closing.
            _futures_base.wait(live)
        self._queue.put(None)  # let an idle settler notice the shutdown
        if self.own_client and (wait or not live):
            self.client.close()

    def executing_keys(self) -> frozenset[str]:
        """The keys of the tasks running now on the cluster's workers (one round trip to every worker)."""
        if self.client.status in _CLOSED_STATES:
            return frozenset()
        try:
            per_worker: dict[str, object] = self.client.run(executing_keys, on_error="return")
        except Exception:  # a lost scheduler: nothing runs for us any more
            return frozenset()
        # A worker that failed to answer reports its exception (on_error="return"): it runs nothing for us.
        return frozenset(
            k for answer in per_worker.values() if isinstance(answer, str) for k in answer.split("\n") if k
        )

    # ------------------------------------------------------------------ the settler thread

    def _ensure_settler(self) -> None:
        """Start the settler thread if it is not running (called with the lock held)."""
        if self._settler is None:
            self._settler = threading.Thread(target=self._settle_loop, name="futurekit-dask-settler", daemon=True)
            self._settler.start()

    def _settle_loop(self) -> None:
        get = self._queue.get
        while True:
            batch: list[_Done] = []
            try:
                item = get(timeout=POLL)
            except queue.Empty:
                item = None
            while True:
                if item is not None:
                    batch.append(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            try:
                if batch:
                    self._settle(batch)
                self._check_client()
            except BaseException as err:  # never let the settler die: that would hang every pending future
                _log.error("futurekit: the dask settler thread failed", exc_info=err)
            with self._lock:
                if self._closed and not self._live:
                    self._settler = None
                    return

    def _settle(self, batch: list[_Done]) -> None:
        for future, inner, decode, describe, outcome in batch:
            with self._lock:
                if future not in self._live:  # cancelled, or failed by _check_client: settled elsewhere
                    continue
                del self._live[future]
            future.inner = None
            self._settle_one(future, inner, decode, describe, outcome)

    def _settle_one(
        self, future: DaskFuture, inner: Any, decode: payload.Decoder, describe: Callable[[], str], outcome: Any
    ) -> None:
        """Settle the caller's future from its finished dask future; never raises."""
        if future.done():
            return
        try:
            status = inner.status
            if isinstance(outcome, BaseException):  # fetching the result failed
                set_exception(future, outcome)
            elif status == "finished":
                ok, data = outcome
                if ok:
                    set_result(future, decode(data, describe))
                else:
                    set_exception(future, exceptions.rebuild(data))
            elif status == "cancelled":
                set_exception(future, _lost(inner, describe))
            else:
                exc = _state_exception(inner)
                set_exception(future, _failure(exc if exc is not None else inner.exception(timeout=60), describe))
        except BaseException as err:  # a failing decode fails only this task
            if future.done():  # a user's done-callback raised a BaseException: keep the settler alive
                _log.error("futurekit: a done-callback of %r raised", future, exc_info=err)
            else:
                set_exception(future, err)

    def _check_client(self) -> None:
        """Fail every pending future if the client can no longer deliver outcomes."""
        reason = self.broken
        with self._lock:
            live = [f for f in self._live if reason is not None or _status(f.inner) == "cancelled"]
        for future in live:
            inner = future.inner
            with self._lock:
                if future not in self._live:  # cancelled meanwhile: settled there
                    continue
                del self._live[future]
            future.inner = None
            if inner is None or future.done():
                continue
            if reason is not None and _status(inner) != "cancelled":
                set_exception(
                    future, BrokenExecutor(f"futurekit: {reason}, so the task {future.describe()} never finished")
                )
            else:
                set_exception(future, _lost(inner, future.describe))


def _status(inner: Any) -> str | None:
    return None if inner is None else inner.status


def _state_exception(inner: Any) -> BaseException | None:
    """The exception a finished dask future holds, read without a round trip through the client's loop."""
    exc = getattr(getattr(inner, "_state", None), "exception", None)
    return exc if isinstance(exc, BaseException) else None


def _lost(inner: Any, describe: Callable[[], str]) -> BrokenExecutor:
    """The error for a task the cluster dropped without our asking (client closed, scheduler lost...)."""
    exc = _state_exception(inner)
    reason = getattr(exc, "reason", None)
    if reason:
        detail = getattr(exc, "msg", None)
        text = f"{reason}: {detail}" if detail else str(reason)
    else:
        text = "cancelled on the cluster"
    return BrokenExecutor(f"futurekit: the dask cluster dropped the task {describe()} ({text})")


def _failure(exc: BaseException | None, describe: Callable[[], str]) -> BaseException:
    """Map a dask-level task failure (the runners never raise) to futurekit's errors."""
    if exc is None:  # pragma: no cover - status "error" always carries one
        return RuntimeError(f"futurekit: the dask task {describe()} failed without an exception")
    if type(exc).__name__ == "KilledWorker":
        crash = WorkerCrashedError("a dask worker died (dask gave up on the task: KilledWorker)", task=describe())
        crash.__cause__ = exc
        return crash
    return exc


def executing_keys(dask_worker: Any) -> str:
    """On a worker (through ``client.run``): the keys of the tasks its threads are executing now, one a line."""
    return "\n".join(str(key) for key, ts in dask_worker.state.tasks.items() if ts.state == "executing")


# --------------------------------------------------------------------------- on the cluster

#: On a worker: the keys of tasks cancelled through futurekit, with when (``time.monotonic()``) each was marked.
_cancelled: dict[str, float] = {}


def run_call_on_cluster(key: str, data: bytes) -> tuple[bool, bytes]:
    """On a worker: :func:`futurekit._process.worker.run_call`, unless the task ``key`` was cancelled; never raises."""
    if _cancelled.pop(key, None) is not None:
        return _skipped(key)
    return worker.run_call(data)


def run_chunk_on_cluster(key: str, data: bytes) -> tuple[bool, bytes]:
    """On a worker: :func:`futurekit._process.worker.run_chunk`, unless the task ``key`` was cancelled; never raises."""
    if _cancelled.pop(key, None) is not None:
        return _skipped(key)
    return worker.run_chunk(data)


def _skipped(key: str) -> tuple[bool, bytes]:
    """The outcome of a task cancelled before it began (the client has dropped it; nobody reads it)."""
    return False, exceptions.capture(CancelledError(f"futurekit: the task {key} was cancelled before it began"))


def mark_cancelled(keys: list[str]) -> None:
    """On a worker (sent by :func:`_cancel_on_scheduler`): let no task of ``keys`` begin here.

    A marker for a task that never comes to this worker (the scheduler had
    sent it elsewhere, or released it first) is dropped after
    :data:`MARKER_TTL` seconds, at the next cancellation: a task the scheduler
    sent before it cancelled the key reaches the worker long before that.
    """
    now = time.monotonic()
    for key in [k for k, marked in _cancelled.items() if now - marked > MARKER_TTL]:
        _cancelled.pop(key, None)
    for key in keys:
        _cancelled[key] = now


def _scheduler_side() -> Callable[..., Awaitable[dict[str, str]]]:
    """Build :func:`_cancel_on_scheduler` as a local function, so that it travels by value.

    ``run_on_scheduler`` pickles it with cloudpickle: by value, the scheduler
    need not have futurekit installed (only the workers run futurekit's code).
    """

    async def cancel_on_scheduler(
        keys: list[str], client: str, mark: bytes, mark_args: bytes, dask_scheduler: Any
    ) -> dict[str, str]:
        """On the scheduler: cancel ``keys`` now, then mark them cancelled on every worker.

        Cancelling runs the handler of the client's own "cancel-keys"
        message, at once and on the scheduler's event loop, so no worker is
        sent these tasks after it. Then every worker runs ``mark`` (the
        "run" message of ``client.run``); a task sent before the cancel, still
        queued or in flight, finds its marker when it comes to run.
        Returns the workers that failed to take the marker, with why.
        """
        dask_scheduler.stream_handlers["cancel-keys"](
            keys=keys, client=client, force=False, reason="futurekit-cancel", msg="cancelled through futurekit"
        )
        answers: dict[str, object] = await dask_scheduler.broadcast(
            msg={"op": "run", "function": mark, "args": mark_args, "wait": True}, on_error="return"
        )
        # A worker answers {"status": "OK", ...}, or an error message, or (unreachable) an exception.
        failed: dict[str, str] = {}
        for address, answer in answers.items():
            reply = answer
            if not (isinstance(reply, dict) and cast("dict[str, object]", reply).get("status") == "OK"):
                failed[str(address)] = repr(answer)
        return failed

    return cancel_on_scheduler


_cancel_on_scheduler: Final = _scheduler_side()
