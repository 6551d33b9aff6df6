"""Suite-wide fixtures and collection rules."""

from __future__ import annotations

import copyreg
import gc
from collections.abc import Iterator
from typing import Any

import pytest
from executor_helpers import HAVE_DASK, KINDS, Kit, executor_params, make_kit

import futurekit as fk

if HAVE_DASK:
    # dask.distributed registers tblib's exception reducers in copyreg.dispatch_table when it is first
    # imported (distributed/__init__ calls tblib.pickling_support.install()): that is dask's doing, once
    # per process, not futurekit's. Import it before any test so _no_global_pickling_registration
    # keeps checking futurekit's own code.
    import distributed  # noqa: F401  # pyright: ignore[reportUnusedImport] - imported for its side effect

# Typing tests are source code checked by mypy (tests/test_static.py), never executed.
collect_ignore = ["typing"]
if not HAVE_DASK:
    # It imports dask at the top; --doctest-modules would import it (and fail) where the extra is not installed.
    collect_ignore.append("cluster_helpers.py")


@pytest.fixture(autouse=True)
def _no_global_pickle_registration() -> Iterator[None]:
    """Library code must never change process-global pickling state (e.g. tblib's install())."""
    before = dict(copyreg.dispatch_table)
    yield
    after = dict(copyreg.dispatch_table)
    if after != before:
        copyreg.dispatch_table.clear()
        copyreg.dispatch_table.update(before)
        added = sorted(repr(k) for k in after.keys() - before.keys())
        pytest.fail(f"copyreg.dispatch_table was changed during the test: added {added}")


@pytest.fixture
def gc_disabled() -> Iterator[None]:
    """Run with the cyclic GC off, so only refcounting can free objects (leak tests)."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "executor_options(**options): max_workers and other fk.threads()/fk.processes() options for the "
        "executor fixture",
    )


_KIT = pytest.StashKey[Kit]()


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[Any]:
    """One real dask LocalCluster (2 worker processes, 127.0.0.1 only) for the whole run, started on first use."""
    from cluster_helpers import local_cluster

    with local_cluster() as cluster:
        yield cluster


@pytest.fixture(params=executor_params(*KINDS))
def executor(request: pytest.FixtureRequest) -> Iterator[fk.Executor]:
    """The executor under test, once per kind: thread, fork, forkserver, spawn, dask (as CPython's executor tests).

    Two workers unless the test is marked ``@pytest.mark.executor_options(max_workers=1, ...)``; a test
    for some kinds only re-parametrises it (``executor_helpers.on_processes`` / ``on_threads``).
    Its workers share the started/release primitives of the ``kit`` fixture. Shut down after the test.
    """
    marker = request.node.get_closest_marker("executor_options")
    options = dict(marker.kwargs) if marker is not None else {}
    cluster = request.getfixturevalue("dask_cluster") if request.param == "dask" else None
    kit = make_kit(request.param, cluster=cluster, **options)
    request.node.stash[_KIT] = kit
    try:
        yield kit.ex
    finally:
        kit.release.set()
        kit.ex.shutdown(wait=True)


@pytest.fixture
def kit(executor: fk.Executor, request: pytest.FixtureRequest) -> Kit:
    """The ``executor`` fixture's executor, with the started/release primitives of its blocking tasks."""
    k: Kit = request.node.stash[_KIT]
    assert k.ex is executor
    return k
