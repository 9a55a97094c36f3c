"""After a batch smaller than a chunk the worker waits before taking the next, so a steady
load is written in fewer, larger inserts; a batch of a chunk or more is followed at once."""

from __future__ import annotations

import time
from typing import Any

from fathom.core.ports.queue import Job
from fathom.core.usecases.ingestion import CHUNK_BYTES, INGESTION_JOB, ProcessIngestionJobs
from fathom.entrypoints.settings import Settings
from fathom.entrypoints.worker import Worker


class Runtime:
    def __init__(self, gather_ms: int) -> None:
        self.settings = Settings(worker_gather_ms=gather_ms)
        self.handled: list[list[Job]] = []

    def resolve(self, service: type[Any]) -> Any:
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


async def test_gathering_can_be_turned_off() -> None:
    assert await dispatch_seconds(Runtime(gather_ms=0), jobs(100)) < 1


def test_the_default_gather_wait() -> None:
    assert Settings().worker_gather_ms == 100
