"""One scheduler thread for every deadline.

``timeout()`` needs "call this in N seconds unless cancelled first" for possibly
tens of thousands of futures at once. A ``threading.Timer`` per call would start
a thread per deadline; instead every deadline goes into one heap, served by a
single daemon thread named ``futurekit-timer``. The thread starts lazily on the
first deadline and exits after it has been idle for a while; the next deadline
starts a new one.

Cancelling an entry drops its references at once (so whatever the callback
would have touched can be freed by refcounting); the dead entry itself stays in
the heap until it surfaces or until the heap is compacted, which happens when
most of it is dead.

Deadlines are read from the scheduler's ``clock`` (``time.monotonic`` by
default). Tests install a scheduler whose clock they advance by hand (the
module's ``_scheduler`` is looked up on every ``schedule()`` call) and call
``wake()`` after each step, so the thread reads the clock again at once instead
of sleeping out the real-time wait it computed from the previous reading. The
thread's idle exit (``IDLE_EXIT``) is real time whatever the clock.
"""

from __future__ import annotations

import heapq
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

_log = logging.getLogger("futurekit")

#: Seconds the scheduler thread lingers with nothing to do before it exits.
IDLE_EXIT = 5.0
#: Compact the heap when more than half of it (and at least this many) is dead.
_COMPACT_MIN = 64


class Handle:
    """A scheduled call; ``cancel()`` it to drop the call and its references."""

    __slots__ = ("_owner", "arg", "fn")

    def __init__(self, fn: Callable[[Any], object], arg: object, owner: _Scheduler) -> None:
        self.fn: Callable[[Any], object] | None = fn
        self.arg: object = arg
        self._owner = owner

    def cancel(self) -> None:
        """Forget the call (idempotent); its function and argument are released at once."""
        if self.fn is not None:
            self.fn = None
            self.arg = None
            self._owner.note_cancelled()

    @property
    def active(self) -> bool:
        """True until the call has run or been cancelled."""
        return self.fn is not None


class _Scheduler:
    """A heap of (deadline, seq, Handle) served by one lazily started thread.

    ``clock`` returns the current time in seconds; it must never go backwards.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.reset()

    def reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Handle]] = []
        self._seq = 0
        self._dead = 0
        self._thread: threading.Thread | None = None

    def schedule(self, delay: float, fn: Callable[[Any], object], arg: object) -> Handle:
        """Run ``fn(arg)`` on the scheduler thread after ``delay`` seconds."""
        handle = Handle(fn, arg, self)
        deadline = self._clock() + delay
        with self._cond:
            self._seq += 1
            heapq.heappush(self._heap, (deadline, self._seq, handle))
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="futurekit-timer", daemon=True)
                self._thread = thread
                thread.start()
            elif self._heap[0][2] is handle:
                # New earliest deadline: wake the thread so it sleeps less.
                self._cond.notify()
        return handle

    def wake(self) -> None:
        """Make the thread read the clock again now (after a hand-driven clock moved)."""
        with self._cond:
            self._cond.notify()

    def note_cancelled(self) -> None:
        """Count a dead entry; compact the heap when mostly dead."""
        with self._cond:
            self._dead += 1
            heap = self._heap
            if self._dead > _COMPACT_MIN and self._dead * 2 > len(heap):
                heap[:] = [entry for entry in heap if entry[2].fn is not None]
                heapq.heapify(heap)
                self._dead = 0

    def pending(self) -> int:
        """Number of live entries (for tests)."""
        with self._cond:
            return sum(1 for entry in self._heap if entry[2].fn is not None)

    def _run(self) -> None:
        cond = self._cond
        heap = self._heap
        clock = self._clock
        while True:
            due: list[Handle] = []
            with cond:
                while True:
                    while heap and heap[0][2].fn is None:
                        heapq.heappop(heap)
                        self._dead = max(0, self._dead - 1)
                    if not heap:
                        cond.wait(IDLE_EXIT)
                        if not heap:
                            self._thread = None
                            self._dead = 0
                            return
                        continue
                    now = clock()
                    if heap[0][0] > now:
                        cond.wait(heap[0][0] - now)
                        continue
                    while heap and heap[0][0] <= now:
                        handle = heapq.heappop(heap)[2]
                        if handle.fn is not None:
                            due.append(handle)
                        else:
                            self._dead = max(0, self._dead - 1)
                    break
            for handle in due:
                fn, arg = handle.fn, handle.arg
                handle.fn = handle.arg = None
                if fn is None:  # cancelled meanwhile
                    continue
                try:
                    fn(arg)
                except BaseException:  # pragma: no cover - callbacks handle their own errors
                    _log.exception("futurekit: timer callback failed")
            del due


_scheduler = _Scheduler()


def schedule(delay: float, fn: Callable[[Any], object], arg: object) -> Handle:
    """Run ``fn(arg)`` on the shared ``futurekit-timer`` thread after ``delay`` seconds.

    Returns a :class:`Handle` whose ``cancel()`` forgets the call. ``fn`` must
    be quick and must not raise.
    """
    return _scheduler.schedule(delay, fn, arg)


def _after_fork_in_child() -> None:
    # The scheduler thread does not survive fork; start afresh in the child.
    _scheduler.reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
