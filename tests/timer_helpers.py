"""A hand-driven clock for the timer scheduler, so timeout tests never wait on real time.

The ``fake_clock`` fixture installs, for one test, a fresh ``futurekit._timers``
scheduler that reads a :class:`FakeClock` instead of ``time.monotonic``; every
``fk.timeout()`` of that test uses it. Time stands still until the test calls
``fake_clock.advance(seconds)``, which returns only once the scheduler thread
has run every callback due by the new time. So "times out after 0.5 s" is
checked by advancing the clock 0.5 s, in microseconds of real time, and "has
not timed out yet" is a deterministic check, not a race against the thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from futurekit import _timers

WAIT = 10.0  # seconds of real time: the bound on every wait for the scheduler thread


class FakeClock:
    """A monotonic clock that moves only when told; drives the schedulers made with it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._schedulers: list[_timers._Scheduler] = []

    def __call__(self) -> float:
        return self.now

    def scheduler(self) -> _timers._Scheduler:
        """A new scheduler reading this clock, driven by ``advance``."""
        scheduler = _timers._Scheduler(clock=self)
        self._schedulers.append(scheduler)
        return scheduler

    def advance(self, seconds: float) -> None:
        """Move time forward, then wait until each scheduler has run everything due by now."""
        assert seconds >= 0, "a monotonic clock never goes back"
        self.now += seconds
        for scheduler in self._schedulers:
            self.settle(scheduler)

    def settle(self, scheduler: _timers._Scheduler) -> None:
        """Return once ``scheduler``'s thread has run every callback due at the current time.

        A probe due now is ordered after every entry due at or before now, and its
        thread runs the due entries of one pass in that order, so when the probe has
        run, so has everything due before it.
        """
        probed = threading.Event()
        scheduler.wake()  # the thread may be sleeping out a wait computed from the old time
        scheduler.schedule(0.0, lambda event: event.set(), probed)
        assert probed.wait(WAIT), "the timer thread did not catch up with the fake clock"

    def close(self) -> None:
        """Drop what is left in the schedulers, so their threads go idle and exit."""
        for scheduler in self._schedulers:
            with scheduler._cond:
                for _, _, handle in scheduler._heap:
                    handle.fn = handle.arg = None
                scheduler._heap.clear()
                scheduler._dead = 0
                scheduler._cond.notify()


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    """Every ``fk.timeout()`` of the test runs on a fresh scheduler reading a hand-driven clock."""
    clock = FakeClock()
    monkeypatch.setattr(_timers, "_scheduler", clock.scheduler())
    try:
        yield clock
    finally:
        clock.close()
