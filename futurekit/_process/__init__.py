"""The process rooms: everything that runs tasks in other processes, behind one interface.

* :class:`Backend` is that interface: submit a call, submit a ``map`` chunk,
  shut down. :class:`futurekit.Executor` in remote mode talks only to it.
* :mod:`.pool` is futurekit's own pool (``fk.processes()``), driven by
  :mod:`.engine` (its workers, queue and threads); :mod:`.foreign` adapts a
  pool the user supplied (a ``ProcessPoolExecutor``, loky...).
* :mod:`.wire` is the message format between the own pool and its workers;
  :mod:`.worker` is the child side of both backends.
* :mod:`.payload` encodes calls and values, :mod:`.exceptions` exceptions
  (with :mod:`.frames` for their tracebacks), :mod:`.chunks` what a ``map``
  chunk is, and :mod:`.names` how error messages name things.

Imports run downward: nothing here imports :mod:`futurekit._executor` or the
public package.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

from .chunks import ChunkResult


class Backend(Protocol):
    """What remote mode needs of a process pool; :class:`.pool.ProcessPool` and :class:`.foreign.ForeignPool` offer it.

    Both ``submit_*`` methods pickle in the calling thread and raise
    :class:`~futurekit.SerializationError` at once for what cannot be sent.
    """

    @property
    def broken(self) -> str | None:
        """Why the pool is broken for good, or None."""
        ...

    def submit_call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Future[Any]:
        """Queue ``fn(*args, **kwargs)``; its future settles with the value or the rebuilt exception."""
        ...

    def submit_chunk(self, fn: Callable[..., Any], chunk: list[Any]) -> Future[ChunkResult]:
        """Queue ``fn`` over a ``map`` chunk as one task (see :mod:`.chunks`)."""
        ...

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting tasks; with ``wait``, return once every task is done."""
        ...
