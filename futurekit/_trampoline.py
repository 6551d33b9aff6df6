"""Runs completions iteratively, so chains of any length never recurse.

``Future.set_result`` runs the future's done-callbacks synchronously, in the
calling thread. If a callback settles another future whose callback settles a
third, and so on, a naive implementation recurses once per hop and overflows
the stack after a few hundred hops. Every futurekit completion is therefore
scheduled with :func:`call`: the outermost call on a thread drains a
thread-local queue in a loop; nested calls only append to it. Stack depth stays
constant whatever the length of the chain.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

A = TypeVar("A")

_log = logging.getLogger("futurekit")


class _Local(threading.local):
    queue: deque[tuple[Callable[[Any], object], Any]] | None = None


_local = _Local()


def call(fn: Callable[[A], object], arg: A) -> None:
    """Run ``fn(arg)`` now, or after the completion this thread is running.

    Never raises: ``fn`` is futurekit bookkeeping that handles its own errors;
    should one escape anyway it is logged and the queue keeps draining, so no
    other completion is lost.
    """
    local = _local
    queue = local.queue
    if queue is not None:
        queue.append((fn, arg))
        return
    queue = local.queue = deque()
    try:
        try:
            fn(arg)
        except BaseException:  # pragma: no cover - defensive
            _log.exception("futurekit: internal completion failed")
        while queue:
            f, a = queue.popleft()
            try:
                f(a)
            except BaseException:  # pragma: no cover - defensive
                _log.exception("futurekit: internal completion failed")
    finally:
        local.queue = None
