"""After a batch smaller than a chunk the worker waits before taking the next, so a steady
load is written in fewer, larger inserts; a batch of a chunk or more, or one after which a
chunk's worth of jobs is already waiting, is followed at once."""

from __future__ import annotations

import time
from typing import Any

from fathom.core.domain.errors import Unavailable
from fathom.core.ports.queue import Job, JobQueue
from fathom.core.usecases.ingestion import CHUNK_BYTES, INGESTION_JOB, ProcessIngestionJobs
from fathom.entrypoints.settings import Settings
from fathom.entrypoints.worker import Worker


class Queue:
    """Only what the worker asks between batches: how many jobs are not acknowledged."""

    def __init__(self, pending: int | None) -> None:
        self._pending = pending

    async def pending(self) -> int:
        if self._pending is None:
            raise Unavailable("queue down")
        return self._pending


class Runtime:
    def __init__(self, gather_ms: int, pending: int | None = 0) -> None:
        self.settings = Settings(worker_gather_ms=gather_ms)
        self.handled: list[list[Job]] = []
        self.queue = Queue(pending)

    def resolve(self, service: type[Any]) -> Any:
        if service is JobQueue:
            return self.queue
        assert service is ProcessIngestionJobs

        async def handle(jobs: list[Job]) -> None:
            self.handled.append(jobs)

        return handle


def jobs(total_bytes: int, count: int = 2) -> list[Job]:
    return [
        Job(str(i), INGESTION_JOB, {"key": f"k{i}", "bytes": total_bytes // count})
        for i in range(count)
    ]


async def dispatch_seconds(runtime: Runtime, batch: list[Job]) -> float:
    worker = Worker(runtime)  # type: ignore[arg-type]
    started = time.perf_counter()
    await worker._dispatch(batch)
    return time.perf_counter() - started


async def test_a_small_batch_is_followed_by_the_gather_wait() -> None:
    runtime = Runtime(gather_ms=200)
    assert await dispatch_seconds(runtime, jobs(CHUNK_BYTES // 4)) >= 0.2
    assert len(runtime.handled) == 1


async def test_a_chunk_sized_batch_is_followed_at_once() -> None:
    assert await dispatch_seconds(Runtime(gather_ms=5_000), jobs(CHUNK_BYTES)) < 1


async def test_a_small_batch_with_a_chunk_of_jobs_waiting_is_followed_at_once() -> None:
    # Two jobs of a quarter chunk each were processed and still count as pending: eight
    # more of that size hold two chunks, so there is nothing to gather.
    runtime = Runtime(gather_ms=5_000, pending=2 + 8)
    assert await dispatch_seconds(runtime, jobs(CHUNK_BYTES // 2)) < 1


async def test_a_small_backlog_or_an_unreachable_queue_still_gathers() -> None:
    for pending in (2 + 1, None):
        runtime = Runtime(gather_ms=200, pending=pending)
        assert await dispatch_seconds(runtime, jobs(CHUNK_BYTES // 2)) >= 0.2


async def test_gathering_can_be_turned_off() -> None:
    assert await dispatch_seconds(Runtime(gather_ms=0), jobs(100)) < 1


def test_the_default_gather_wait() -> None:
    assert Settings().worker_gather_ms == 100
