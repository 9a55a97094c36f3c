"""Background work gives way to requests in flight, and only for a bounded time."""

from __future__ import annotations

import time

from fathom.core.ports.foreground import PAUSE_SECONDS, WORK_SLICE_SECONDS, GiveWay, RequestGauge


class Always:
    def __init__(self, busy: bool) -> None:
        self.value = busy
        self.asked = 0

    def busy(self) -> bool:
        self.asked += 1
        return self.value


def test_the_gauge_counts_requests_in_flight() -> None:
    gauge = RequestGauge()
    assert not gauge.busy()
    gauge.enter()
    gauge.enter()
    gauge.leave()
    assert gauge.busy()
    gauge.leave()
    assert not gauge.busy()


def test_no_pause_within_a_work_slice() -> None:
    busy = Always(True)
    give_way = GiveWay(busy)
    give_way()
    assert busy.asked == 0  # it did not even look


def test_after_a_slice_it_pauses_while_busy_but_no_longer_than_the_bound() -> None:
    busy = Always(True)
    give_way = GiveWay(busy)
    time.sleep(WORK_SLICE_SECONDS)  # a slice of work
    started = time.perf_counter()
    give_way()
    paused = time.perf_counter() - started
    assert PAUSE_SECONDS * 0.9 <= paused < PAUSE_SECONDS + 0.5  # generous: a loaded machine
    assert busy.asked > 1


def test_an_idle_foreground_costs_no_pause() -> None:
    idle = Always(False)
    give_way = GiveWay(idle)
    time.sleep(WORK_SLICE_SECONDS)
    give_way()
    assert idle.asked == 1  # asked once, found nothing to wait for


def test_without_a_foreground_nothing_is_asked() -> None:
    give_way = GiveWay(None)
    time.sleep(WORK_SLICE_SECONDS)
    give_way()  # a worker-only process: never pauses
