"""Suite-wide fixtures and collection rules."""

from __future__ import annotations

import copyreg
import gc
from collections.abc import Iterator

import pytest
from executor_helpers import Kit, make_kit

# Typing tests are source code checked by mypy (tests/test_static.py), never executed.
collect_ignore = ["typing"]


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


def _process_kit(max_workers: int) -> Iterator[Kit]:
    k = make_kit("process", max_workers=max_workers)
    try:
        yield k
    finally:
        k.release.set()
        k.ex.shutdown(wait=True)


@pytest.fixture
def kit1() -> Iterator[Kit]:
    """A one-worker fk.processes() kit (see executor_helpers.make_kit)."""
    yield from _process_kit(1)


@pytest.fixture
def kit2() -> Iterator[Kit]:
    """A two-worker fk.processes() kit (see executor_helpers.make_kit)."""
    yield from _process_kit(2)
