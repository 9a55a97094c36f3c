"""What the process is answering right now, so background work can give way to it.

In `fathom serve` the worker converts batches on a thread that shares the GIL with the event
loop answering requests. With both runnable, each gets about half the interpreter, and a
request's latency doubles while a batch converts. Requests are what a client waits on; the
worker's backlog is durable and only has to drain. So the worker's conversion pauses briefly,
at most twice as long as it has worked, while requests are in flight: request latency stays that of
an idle worker, and the worker keeps at least a third of its speed under any load.
"""

from __future__ import annotations

import time
from typing import Final, Protocol


class Foreground(Protocol):
    def busy(self) -> bool:
        """True while this process is answering at least one request."""
        ...


class RequestGauge:
    """Counts requests in flight; the HTTP layer enters and leaves it around each one."""

    __slots__ = ("_in_flight",)

    def __init__(self) -> None:
        self._in_flight = 0

    def enter(self) -> None:
        self._in_flight += 1

    def leave(self) -> None:
        self._in_flight -= 1

    def busy(self) -> bool:
        return self._in_flight > 0


# The worker's turn between checks, and the longest pause at a check: while requests keep
# arriving the worker still gets a third of the interpreter. (With 16 concurrent OTLP posts,
# pausing only as long as it worked left POST p99 some 10–20 ms higher.) The worker checks
# between jobs, so one very large job still runs through without a pause.
WORK_SLICE_SECONDS: Final = 0.01
PAUSE_SECONDS: Final = 0.02
PAUSE_STEP_SECONDS: Final = 0.0005


class GiveWay:
    """Called between units of background work on a worker thread: after each slice of work,
    sleeps (releasing the GIL) while the foreground is busy, at most `PAUSE_SECONDS`."""

    def __init__(self, foreground: Foreground | None) -> None:
        self._foreground = foreground
        self._since = time.perf_counter()

    def __call__(self) -> None:
        if self._foreground is None:
            return
        now = time.perf_counter()
        if now - self._since < WORK_SLICE_SECONDS:
            return
        deadline = now + PAUSE_SECONDS
        while self._foreground.busy() and time.perf_counter() < deadline:
            time.sleep(PAUSE_STEP_SECONDS)
        self._since = time.perf_counter()
