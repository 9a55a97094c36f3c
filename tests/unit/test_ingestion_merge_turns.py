"""Two workers processing batches of one trace at the same time: with the merge lock each
batch merges with what the other wrote, so neither drops the other's fields."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from fathom.core.domain.scores import Score
from fathom.core.domain.tracing import Observation, Trace
from fathom.core.ports.locks import ProcessLocks
from fathom.core.ports.queue import Job
from fathom.core.usecases.ingestion import INGESTION_JOB, ProcessIngestionJobs
from tests.unit.fakes import FakeClock

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PROJECT = "p1"


class Blobs:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    async def get(self, key: str) -> bytes:
        return self.data[key]


class Codec:
    def dumps(self, value: object) -> bytes:
        return json.dumps(value).encode()

    def loads(self, data: bytes) -> object:
        return json.loads(data)


class SlowTelemetry:
    """Stored rows in memory; reads take a moment, long enough for another worker's read
    to start before this one's write."""

    def __init__(self) -> None:
        self.traces: dict[str, Trace] = {}

    async def get_traces(self, project_id: str, trace_ids: list[str]) -> list[Trace]:
        found = [self.traces[i] for i in trace_ids if i in self.traces]
        await asyncio.sleep(0.05)
        return found

    async def get_observations(self, project_id: str, ids: list[str]) -> list[Observation]:
        return []

    async def get_scores(self, project_id: str, ids: list[str]) -> list[Score]:
        return []

    async def upsert_traces(self, traces: list[Trace]) -> None:
        for trace in traces:
            self.traces[trace.id] = trace

    async def upsert_observations(self, observations: list[Observation]) -> None:
        pass

    async def upsert_scores(self, scores: list[Score]) -> None:
        pass


def batch_job(blobs: Blobs, key: str, body: dict[str, Any]) -> Job:
    event = {"id": key, "type": "trace-create", "timestamp": NOW.isoformat(), "body": body}
    payload = {"projectId": PROJECT, "receivedAt": NOW.isoformat(), "events": [event]}
    blobs.data[key] = json.dumps(payload).encode()
    return Job(key, INGESTION_JOB, {"projectId": PROJECT, "key": key, "format": "events"})


async def test_concurrent_workers_merge_one_trace_in_turn() -> None:
    blobs, telemetry, locks = Blobs(), SlowTelemetry(), ProcessLocks()

    def worker() -> ProcessIngestionJobs:
        return ProcessIngestionJobs(
            blobs,  # type: ignore[arg-type]
            telemetry,  # type: ignore[arg-type]
            Codec(),
            FakeClock(NOW),
            lambda body, fmt: [],
            locks=locks,  # shared: the deployment's lock, as two processes would see it
        )

    children = batch_job(blobs, "b1", {"id": "t1", "userId": "u1", "timestamp": NOW.isoformat()})
    root = batch_job(blobs, "b2", {"id": "t1", "name": "root", "input": {"q": 1}})
    await asyncio.gather(worker()([children]), worker()([root]))
    trace = telemetry.traces["t1"]
    assert (trace.user_id, trace.name, trace.input) == ("u1", "root", {"q": 1})
