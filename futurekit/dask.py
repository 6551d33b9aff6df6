"""Run futurekit executors on a dask.distributed cluster (the optional extra ``futurekit[dask]``).

The one-line change from a process pool::

    ex = fk.processes()                    # one machine
    ex = futurekit.dask.executor(client)   # a dask.distributed cluster

The result is an ordinary :class:`futurekit.Executor`: ``submit``, the lazy
batched ``map`` and every combinator work as on :func:`futurekit.processes`.
It is built on the client's native futures (``client.submit``), not on
``Client.get_executor()``: identical calls are never merged, every keyword
argument reaches your function, and callbacks never run on the client's
event loop. See docs/scaling-out.md.

Importing this module needs dask.distributed (``pip install 'futurekit[dask]'``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any, ParamSpec, TypeVar

try:
    from distributed import Client
except ImportError as _err:  # pragma: no cover - the extra is installed where the tests run
    raise ImportError("futurekit.dask needs dask.distributed: pip install 'futurekit[dask]'") from _err

from ._executor import Executor
from ._process.cluster import DaskPool, check_options

__all__ = ["executor", "submit"]

P = ParamSpec("P")
T = TypeVar("T")


def executor(
    client: Client | str,
    *,
    workers: str | list[str] | None = None,
    resources: dict[str, float] | None = None,
    priority: int | None = None,
    retries: int | None = None,
    allow_other_workers: bool | None = None,
) -> Executor:
    """A :class:`futurekit.Executor` that runs tasks on a dask.distributed cluster.

    Each ``submit`` pickles the call in the calling thread (functions and
    classes of ``__main__``, lambdas and closures by value) and sends it with
    ``client.submit(..., pure=False)`` under a fresh key, so two submissions of
    ``f(1)`` run twice, and the task's keyword arguments, whatever their names
    (``key``, ``workers``, ``priority``, ``pure``...), all reach ``f``.
    ``map`` is lazy, bounded and batched as on :func:`futurekit.processes`.
    Errors arrive as on :func:`futurekit.processes`: the original type with
    the worker's frames, :class:`futurekit.RemoteError` for what cannot be
    rebuilt, :class:`futurekit.WorkerCrashedError` naming the task when dask
    gives up on it because its workers died (``KilledWorker``). If the client
    is closed or loses its scheduler, every pending future fails with
    ``concurrent.futures.BrokenExecutor`` within 0.25 s.

    The workers must be able to import futurekit (install it on the cluster
    as you install your own code).

    Args:
        client: A connected ``distributed.Client`` (never closed by the
            executor), or a scheduler address such as
            ``"tcp://10.0.0.5:8786"``: the executor then makes its own client
            and closes it on ``shutdown``.
        workers: Cluster option for every task: the workers (addresses or
            names) it may run on.
        resources: Cluster option: abstract resources each task needs, e.g.
            ``{"GPU": 1}``.
        priority: Cluster option: the tasks' scheduling priority.
        retries: Cluster option: how many times dask reruns a task that was
            lost (the runner never raises, so a task's own exception is not
            retried).
        allow_other_workers: Cluster option: whether ``workers`` is only a
            preference.

    Returns:
        The executor. ``shutdown`` stops it and never closes a client you
        passed in. For options of a single call, see :func:`submit`.

    Raises:
        RuntimeError: If the client is closed.

    Example:
        >>> import futurekit as fk, futurekit.dask
        >>> from distributed import Client, LocalCluster
        >>> cluster = LocalCluster(n_workers=1, processes=False, dashboard_address=None)
        >>> client = Client(cluster)
        >>> with futurekit.dask.executor(client) as ex:
        ...     fk.gather(ex.submit(pow, 2, 10), ex.submit(divmod, 17, 5)).result(timeout=60)
        (1024, (3, 2))
        >>> client.status  # shutdown left the client open
        'running'
        >>> client.close(); cluster.close()

    Concurrency:
        Blocking: Asks the scheduler once how many worker threads the cluster
            has (the size of ``map``'s window); ``submit`` never waits for the
            cluster.
        Callbacks: Done-callbacks run on the executor's own thread
            ("futurekit-dask-settler"), never on the client's event loop or on
            dask's callback thread; a slow callback delays this executor's
            other results only. A cancelled future's run in the cancelling
            thread.
        Thread safety: The executor is safe to use from any thread.
        Cancellation: ``cancel()`` succeeds until the task has finished on the
            cluster. It cancels the task on the scheduler and marks it on
            every worker (one round trip through the scheduler, a few
            milliseconds), then cancels the future: a task whose function had
            not begun never begins, even if a worker had it queued; one that
            is running runs to its end on its worker (dask cannot interrupt a
            worker thread), and its result is dropped. ``running()`` asks the
            workers (one round trip).
    """
    options: dict[str, Any] = {}
    for name, value in (
        ("workers", workers),
        ("resources", resources),
        ("priority", priority),
        ("retries", retries),
        ("allow_other_workers", allow_other_workers),
    ):
        if value is not None:
            options[name] = value
    own = isinstance(client, str)
    connected: Any = Client(client) if isinstance(client, str) else client  # type: ignore[no-untyped-call]
    try:
        return Executor(DaskPool(connected, options, own_client=own))
    except BaseException:
        if own:
            connected.close()
        raise


def submit(
    executor: Executor, options: Mapping[str, Any], fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
) -> Future[T]:
    """``executor.submit(fn, *args, **kwargs)`` with cluster options for this call only.

    The options come before ``fn``, positionally, so they can never collide
    with ``fn``'s own keyword arguments. They override the executor's.

    Args:
        executor: An executor made by :func:`executor`.
        options: Cluster options for this call: any of ``workers``,
            ``resources``, ``priority``, ``retries``, ``allow_other_workers``
            (see :func:`executor`).
        fn: The callable.
        *args: Positional arguments for ``fn``.
        **kwargs: Keyword arguments for ``fn``, whatever their names.

    Returns:
        A future of ``fn``'s result, as from ``executor.submit``.

    Raises:
        TypeError: If ``executor`` does not run on a cluster, or an option is
            unknown.
        RuntimeError: If the executor was shut down or its client is closed.
        futurekit.SerializationError: When ``fn`` or an argument cannot be
            pickled.

    Example:
        >>> import futurekit.dask
        >>> from distributed import Client, LocalCluster
        >>> cluster = LocalCluster(n_workers=1, processes=False, dashboard_address=None)
        >>> client = Client(cluster)
        >>> def echo(**kwargs: object) -> object:
        ...     return sorted(kwargs)
        >>> with futurekit.dask.executor(client) as ex:
        ...     futurekit.dask.submit(ex, {"priority": 10}, echo, key=1, priority=2).result(timeout=60)
        ['key', 'priority']
        >>> client.close(); cluster.close()

    Concurrency:
        Blocking: As ``executor.submit``: never waits for the cluster.
        Callbacks: As ``executor.submit``: on the executor's
            "futurekit-dask-settler" thread.
        Thread safety: Safe from any thread.
        Cancellation: As ``executor.submit`` (see :func:`executor`).
    """
    pool = executor.inner
    if not isinstance(pool, DaskPool):
        raise TypeError(
            f"futurekit.dask.submit() needs an executor made by futurekit.dask.executor(), not {executor!r}"
        )
    future: Future[T] = pool.submit_call(fn, args, kwargs, check_options(options))
    return future
