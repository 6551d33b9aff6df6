"""How a worker gets the program's ``__main__``: imported by futurekit's own worker code, so a failure says why.

Under "spawn" and "forkserver" a new process imports the parent's main
script (or ``-m`` module) as ``__mp_main__`` to find the functions it
defines. ``multiprocessing`` does that before any code of ours runs, so when
it fails (a script without the ``if __name__ == "__main__":`` guard that
starts a pool at its top level, a script read from stdin whose "path" is
``<stdin>``) the worker dies printing a traceback nobody connects to the
pool, and the parent only sees exit code 1.

futurekit's workers therefore start without ``multiprocessing``'s main
fix-up (:func:`worker_start` drops it from the preparation data, for the
worker being started in this thread only) and do it themselves in
:func:`futurekit._process.worker.serve` with :func:`import_main`, whose
exception travels to the parent and becomes the ``__cause__`` of the
``BrokenProcessPool``. A main "path" that is no file (``<stdin>``) is not
imported at all: what ``__main__`` defines is then sent by value
(:mod:`futurekit._process.payload`). Under "fork" nothing is imported: the
worker has the parent's memory.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import types
from collections.abc import Callable, Generator
from multiprocessing import process, spawn
from typing import Any

#: How a worker finds the parent's main module: ("name", "pkg.mod") or ("path", "/abs/script.py").
MainRef = tuple[str, str]

_starting = threading.local()  # .active: this thread is starting a futurekit worker
_install_lock = threading.Lock()
_original: Callable[[str], dict[str, Any]] | None = None


def main_reference() -> MainRef | None:
    """What a spawn/forkserver worker must import to see this program's ``__main__``, or None.

    The same choice as ``multiprocessing.spawn.get_preparation_data``: the
    module name for ``python -m``, else the script's path.
    """
    main = sys.modules.get("__main__")
    name = getattr(getattr(main, "__spec__", None), "name", None)
    if isinstance(name, str) and name:
        return ("name", name)
    path = getattr(main, "__file__", None)
    if isinstance(path, str):
        original_dir: str | None = getattr(process, "ORIGINAL_DIR", None)  # the cwd at start-up, as spawn uses
        if not os.path.isabs(path) and original_dir is not None:
            path = os.path.join(original_dir, path)
        return ("path", os.path.normpath(path))
    return None


def _preparation_data(name: str) -> dict[str, Any]:
    assert _original is not None
    data = _original(name)
    if getattr(_starting, "active", False):  # a futurekit worker: it imports __main__ itself
        data.pop("init_main_from_name", None)
        data.pop("init_main_from_path", None)
    return data


@contextlib.contextmanager
def worker_start() -> Generator[None]:
    """Around ``Process.start()`` of a futurekit worker: leave the main module to the worker.

    Only the thread inside this block is affected; any other process started
    meanwhile (by this program or another library) gets the stdlib's usual
    preparation data.
    """
    global _original
    with _install_lock:
        if _original is None:
            _original = spawn.get_preparation_data
            spawn.get_preparation_data = _preparation_data
    _starting.active = True
    try:
        yield
    finally:
        _starting.active = False


def import_main(ref: MainRef) -> None:
    """In a worker: import the parent's main module as ``__mp_main__``, as ``multiprocessing`` would have.

    While it runs, starting a process raises ``multiprocessing``'s
    "bootstrapping phase" RuntimeError (a script without the main guard
    starting a pool at import), instead of starting workers of workers.
    """
    kind, target = ref
    current = process.current_process()
    inheriting = getattr(current, "_inheriting", False)
    current._inheriting = True  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue] - the stdlib's own flag
    try:
        if kind == "name":
            _import_main_module(target)
        elif os.path.isfile(target):  # "<stdin>" and the like: nothing to import, __main__ code comes by value
            spawn.import_main_path(target)
    finally:
        current._inheriting = inheriting  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue] - restore


def _import_main_module(name: str) -> None:
    """``python -m name`` in the parent: run that module as ``__mp_main__`` (``multiprocessing``'s rule)."""
    if name == "__main__" or name.endswith(".__main__"):  # a package's __main__: the stdlib skips it too
        return
    import runpy

    module = types.ModuleType("__mp_main__")
    module.__dict__.update(runpy.run_module(name, run_name="__mp_main__", alter_sys=True))
    sys.modules["__main__"] = sys.modules["__mp_main__"] = module
