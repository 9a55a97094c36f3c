"""A job the worker cannot process fails alone: the jobs leased with it are processed and
acknowledged, only it is retried (and in the end dead-lettered). An unavailable dependency
fails the whole batch at once."""

from __future__ import annotations

from typing import Any

import pytest

from fathom.core.domain.errors import Unavailable
from fathom.core.domain.tracing import Observation, Trace
from fathom.core.ports.queue import Job, JobsFailed
from fathom.entrypoints.settings import Settings
from fathom.entrypoints.worker import Worker, failing_jobs
from fathom.plugins.hookspecs import hookimpl
from tests.unit.test_ingestion_worker_step import Blobs, SlowTelemetry, batch_job, worker_step


class Handler:
    """Fails any batch holding a job of `poison`; records the batches it went through."""

    def __init__(self, poison: set[str], error: Exception | None = None) -> None:
        self.poison = poison
        self.error = error or ValueError("cannot process")
        self.calls: list[list[str]] = []
        self.processed: list[str] = []

    async def __call__(self, jobs: list[Job]) -> None:
        ids = [job.id for job in jobs]
        self.calls.append(ids)
        if self.poison & set(ids):
            raise self.error
        self.processed += ids


def make_jobs(count: int, kind: str = "ingestion") -> list[Job]:
    return [Job(str(i), kind, {}) for i in range(count)]


async def test_the_failing_job_is_found_and_the_others_processed() -> None:
    handler = Handler({"5"})
    failed, cause = await failing_jobs(handler, make_jobs(8))
    assert [job.id for job in failed] == ["5"]
    assert isinstance(cause, ValueError)
    assert sorted(handler.processed, key=int) == ["0", "1", "2", "3", "4", "6", "7"]
    # Halving: 8 → 4+4 → 2+2 → 1+1; the healthy halves go through in one call each.
    assert len(handler.calls) == 7


async def test_a_batch_that_goes_through_fails_nothing() -> None:
    handler = Handler(set())
    assert await failing_jobs(handler, make_jobs(3)) == ([], None)
    assert handler.calls == [["0", "1", "2"]]


async def test_an_unavailable_dependency_fails_the_whole_batch_at_once() -> None:
    handler = Handler({"1"}, Unavailable("engine down"))
    with pytest.raises(Unavailable):
        await failing_jobs(handler, make_jobs(4))
    assert handler.calls == [["0", "1", "2", "3"]]


class Runtime:
    def __init__(self, handler: Handler) -> None:
        self.settings = Settings(worker_gather_ms=0)
        self.handler = handler

    def resolve(self, service: type[Any]) -> Any:
        return self.handler


async def test_dispatch_reports_only_the_failed_jobs_to_the_queue() -> None:
    handler = Handler({"2"})
    worker = Worker(Runtime(handler))  # type: ignore[arg-type]
    with pytest.raises(JobsFailed) as raised:
        await worker._dispatch(make_jobs(4))
    assert [job.id for job in raised.value.failed] == ["2"]
    assert isinstance(raised.value.cause, ValueError)


async def test_dispatch_fails_plainly_when_every_job_failed() -> None:
    worker = Worker(Runtime(Handler({"0", "1"})))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await worker._dispatch(make_jobs(2))


async def test_jobs_of_an_unknown_kind_fail_alone() -> None:
    handler = Handler(set())
    worker = Worker(Runtime(handler))  # type: ignore[arg-type]
    jobs = [*make_jobs(2), Job("x", "from-a-newer-version", {})]
    with pytest.raises(JobsFailed) as raised:
        await worker._dispatch(jobs)
    assert [job.id for job in raised.value.failed] == ["x"]
    assert isinstance(raised.value.cause, LookupError)
    assert handler.processed == ["0", "1"]


class RejectPoisonTraces:
    """An enricher plugin that rejects one trace, as a buggy plugin might: only the batch
    holding that trace can fail, however the worker leases it."""

    @hookimpl
    def fathom_enrichers(self, settings: object) -> list[object]:
        return [self]

    def enrich(self, traces: list[Trace], observations: list[Observation]) -> None:
        if any(trace.name == "poison" for trace in traces):
            raise ValueError("this plugin rejects the poison trace")


async def test_ingestion_batches_leased_with_a_failing_one_are_stored() -> None:
    blobs, telemetry = Blobs(), SlowTelemetry()
    jobs = [batch_job(blobs, f"b{i}", {"id": f"t{i}", "name": f"n{i}"}) for i in range(5)]
    jobs.insert(2, batch_job(blobs, "bad", {"id": "t-bad", "name": "poison"}))
    step = worker_step(blobs, telemetry, enrichers=[RejectPoisonTraces()])
    failed, cause = await failing_jobs(step, jobs)
    assert [job.id for job in failed] == ["bad"]
    assert "poison" in str(cause)
    assert sorted(telemetry.traces) == ["t0", "t1", "t2", "t3", "t4"]
