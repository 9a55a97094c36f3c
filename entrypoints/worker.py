"""The worker: consumes the job queue and hands each job kind to its use case."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from fathom.core.domain.errors import Unavailable
from fathom.core.ports.queue import Job, JobQueue, JobsFailed
from fathom.core.usecases.ingestion import (
    INGESTION_JOB,
    ProcessIngestionJobs,
    backlog_fills_a_chunk,
    fills_a_chunk,
)
from fathom.entrypoints.bootstrap import Runtime

log = logging.getLogger("fathom.worker")

JobKindHandler = Callable[[list[Job]], Awaitable[None]]


def job_handlers(runtime: Runtime) -> dict[str, JobKindHandler]:
    """Job kind -> the use case that processes a batch of such jobs."""
    return {INGESTION_JOB: runtime.resolve(ProcessIngestionJobs)}


_batches_in_flight = 0


@contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection while a job batch is in flight.

    A batch's decoded spans, events and rows all live until the batch is written, so every
    collection during it walks tens of thousands of live objects to free none (9 ms a pass,
    ~5 µs per span). Once the batch is done they are freed by refcounting and the next
    collection only sees what survived. Overlapping batches share one pause.
    """
    global _batches_in_flight
    if _batches_in_flight == 0:
        gc.disable()
    _batches_in_flight += 1
    try:
        yield
    finally:
        _batches_in_flight -= 1
        if _batches_in_flight == 0:
            gc.enable()


async def failing_jobs(
    handler: JobKindHandler, jobs: list[Job]
) -> tuple[list[Job], BaseException | None]:
    """Run `jobs`; when they fail, run each half apart, and so on down to single jobs. The
    jobs that fail alone, and the first error, are returned; the others have been processed.

    One job that cannot be processed (a batch a plugin or a bug rejects) would otherwise fail
    every batch it is leased with, hold back the jobs leased alongside it through every retry,
    and take them to the dead letters with it. Processing is idempotent, so jobs processed
    again in a half change nothing. An unavailable dependency is not any job's fault: it
    fails the whole batch at once, to be retried later.
    """
    try:
        await handler(jobs)
    except Unavailable:
        raise
    except Exception as exc:
        if len(jobs) == 1:
            return jobs, exc
        log.warning("a batch of %d job(s) failed (%r); retrying its halves apart", len(jobs), exc)
        half = len(jobs) // 2
        first, first_cause = await failing_jobs(handler, jobs[:half])
        second, second_cause = await failing_jobs(handler, jobs[half:])
        # Halves that all went through: the failure was the batch's as a whole (its size).
        return first + second, first_cause or second_cause
    return [], None


class Worker:
    """Takes batches of up to `batch_size` jobs off the queue and runs their use cases.

    After a batch smaller than a chunk (`fills_a_chunk`) it waits `worker_gather_ms` before
    returning it, and so before taking the next: under a steady load the next batch is then
    several times larger, which costs the engine far less per span (fewer inserts, fewer
    parts to merge) for that much more lag. It does not wait when the jobs already waiting
    hold a chunk (`backlog_fills_a_chunk`), as after the first batch of a burst. The wait
    comes before the acknowledgement, so a crash during it redelivers jobs that are already
    written; writing them again changes nothing. Jobs that fail are found by `failing_jobs`,
    and only they go back to the queue (`JobsFailed`).
    """

    def __init__(self, runtime: Runtime, *, batch_size: int = 200) -> None:
        self._runtime = runtime
        self._batch_size = batch_size
        self._handlers = job_handlers(runtime)
        self._gather_seconds = runtime.settings.worker_gather_ms / 1000
        self._queue: JobQueue = runtime.resolve(JobQueue)
        self._task: asyncio.Task[None] | None = None

    async def _dispatch(self, jobs: list[Job]) -> None:
        by_kind: dict[str, list[Job]] = defaultdict(list)
        for job in jobs:
            by_kind[job.kind].append(job)
        failed: list[Job] = []
        cause: BaseException | None = None
        for kind, batch in by_kind.items():
            handler = self._handlers.get(kind)
            if handler is None:
                # Failing keeps the jobs for a newer worker that knows the kind.
                failed += batch
                cause = cause or LookupError(f"no handler for job kind {kind!r}")
                continue
            with collector_paused():
                kind_failed, kind_cause = await failing_jobs(handler, batch)
            failed += kind_failed
            cause = cause or kind_cause
        if cause is not None:
            if len(failed) == len(jobs):
                raise cause
            raise JobsFailed(failed, cause)
        if not self._gather_seconds or fills_a_chunk(jobs):
            return
        if not await self._backlog_fills_a_chunk(jobs):
            await asyncio.sleep(self._gather_seconds)

    async def _backlog_fills_a_chunk(self, done: list[Job]) -> bool:
        try:
            # Counts the jobs in hand too: they are not acknowledged yet.
            waiting = await self._queue.pending() - len(done)
        except Unavailable:
            return False
        return backlog_fills_a_chunk(done, waiting)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="fathom-worker")

    async def _run(self) -> None:
        try:
            await self._runtime.resolve(ProcessIngestionJobs).prepare()
        except Exception:  # e.g. the record store is not up yet: the first batch retries it
            log.warning("warming up the ingestion worker failed", exc_info=True)
        await self._queue.consume(self._dispatch, batch_size=self._batch_size)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
