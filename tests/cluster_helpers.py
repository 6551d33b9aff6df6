"""The ``dask`` executor kind: one real LocalCluster for the whole test run, and how its workers learn the kit.

Imported only when dask.distributed is installed (tests/conftest.py checks). The cluster has two
single-threaded worker processes, like the other kinds' two workers, and binds 127.0.0.1 only
(the dashboard too: without ``dashboard_address`` dask binds port 8787 on every interface).
``worker-saturation`` is 1.0 (see :func:`local_cluster`) and ``allowed-failures`` is 0, so a task
whose worker dies fails at the first death (dask's default
reruns it on three more workers before giving up with ``KilledWorker``).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dask.config
from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import WorkerPlugin
from executor_helpers import install

#: The name under which each test's kit is installed on the workers (a new one replaces the last).
PLUGIN_NAME = "futurekit-test-kit"


class InstallKit(WorkerPlugin):
    """Hands the test's started/release semaphores to every worker, and to workers that replace dead ones."""

    def __init__(self, started: Any, release: Any) -> None:
        self.started = started
        self.release = release

    def setup(self, worker: Any) -> None:
        install(self.started, self.release)


@dataclass
class Cluster:
    """The session's cluster, its client, and a manager whose semaphores the worker processes can reach."""

    cluster: LocalCluster
    client: Client
    manager: Any

    def install_kit(self) -> tuple[Any, Any]:
        """Fresh started/release semaphores, installed on every worker; returns them.

        Waits first until both workers are up: a test that killed one leaves the nanny restarting it.
        """
        self.client.wait_for_workers(2, timeout=60)
        started, release = self.manager.Semaphore(0), self.manager.Semaphore(0)
        self.client.register_plugin(InstallKit(started, release), name=PLUGIN_NAME)
        return started, release


@contextmanager
def local_cluster() -> Iterator[Cluster]:
    """Start the cluster (about a second), yield it, and stop it, its client and the manager cleanly."""
    # worker-saturation 1.0: the scheduler hands a worker a task only when a thread of it is free, so a
    # task that has not started waits on the scheduler, where cancel() reaches it for sure (dask's
    # default, 1.1, gives each worker a spare task that may start before the cancel arrives).
    config = {"distributed.scheduler.allowed-failures": 0, "distributed.scheduler.worker-saturation": 1.0}
    with dask.config.set(config):
        manager = multiprocessing.get_context("spawn").Manager()
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        )
        client = Client(cluster)
        try:
            yield Cluster(cluster, client, manager)
        finally:
            client.close()
            cluster.close()
            manager.shutdown()
