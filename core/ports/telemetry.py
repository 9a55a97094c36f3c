"""Telemetry storage: traces, observations and scores at volume (ClickHouse-shaped).

Writes are batched upserts: a newer row with the same (project_id, id) replaces an
older one. Reads are per project.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Literal, Protocol, TypeVar

from fathom.core.domain.scores import Score
from fathom.core.domain.tracing import Observation, Trace

T = TypeVar("T")


@dataclass(slots=True)
class TraceQuery:
    page: int = 1
    limit: int = 50
    user_id: str | None = None
    name: str | None = None
    session_id: str | None = None
    tags: list[str] = field(default_factory=list)  # every tag must be present
    version: str | None = None
    release: str | None = None
    environments: list[str] = field(default_factory=list)
    from_timestamp: datetime | None = None
    to_timestamp: datetime | None = None
    order_by: str = "timestamp"
    order_desc: bool = True


@dataclass(slots=True)
class ObservationQuery:
    limit: int = 50
    page: int = 1
    trace_id: str | None = None
    name: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    type: str | None = None
    level: str | None = None
    parent_observation_id: str | None = None
    is_root: bool | None = None
    version: str | None = None
    environments: list[str] = field(default_factory=list)
    from_start_time: datetime | None = None
    to_start_time: datetime | None = None
    # Keyset cursor for the v2 API: rows strictly after (start_time desc, trace_id, id).
    after: tuple[datetime, str, str] | None = None


@dataclass(slots=True)
class ScoreQuery:
    page: int = 1
    limit: int = 50
    name: str | None = None
    user_id: str | None = None
    trace_id: str | None = None
    observation_id: str | None = None
    session_id: str | None = None
    dataset_run_id: str | None = None
    config_id: str | None = None
    queue_id: str | None = None
    source: str | None = None
    data_type: str | None = None
    score_ids: list[str] = field(default_factory=list)
    environments: list[str] = field(default_factory=list)
    from_timestamp: datetime | None = None
    to_timestamp: datetime | None = None
    value: float | None = None
    # Inclusive bounds on the numeric value (v3 `valueMin`/`valueMax`).
    value_min: float | None = None
    value_max: float | None = None
    # Keyset cursor for the v3 API: rows strictly after (timestamp desc, id).
    after: tuple[datetime, str] | None = None


@dataclass(slots=True)
class TraceSummary:
    """A trace with the aggregates list views show."""

    trace: Trace
    observation_ids: list[str]
    score_ids: list[str]
    latency_seconds: float | None
    total_cost: float | None


@dataclass(slots=True)
class SessionSummary:
    id: str
    project_id: str
    created_at: datetime
    environment: str
    trace_ids: list[str]


@dataclass(slots=True)
class Page(Generic[T]):
    items: list[T]
    total: int


class TelemetryStore(Protocol):
    async def migrate(self) -> None:
        """Create or upgrade the schema; safe to call on every start."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...

    # -- writes (batched upserts; the newest row wins) --
    async def upsert_traces(self, traces: list[Trace]) -> None: ...
    async def upsert_observations(self, observations: list[Observation]) -> None: ...
    async def upsert_scores(self, scores: list[Score]) -> None: ...

    # -- point reads used by the merge step and the API --
    async def get_traces(self, project_id: str, trace_ids: list[str]) -> list[Trace]: ...
    async def get_observations(
        self, project_id: str, observation_ids: list[str]
    ) -> list[Observation]: ...
    async def get_scores(self, project_id: str, score_ids: list[str]) -> list[Score]: ...
    async def observations_of_trace(self, project_id: str, trace_id: str) -> list[Observation]: ...
    async def scores_of_traces(self, project_id: str, trace_ids: list[str]) -> list[Score]: ...

    # -- lists --
    async def list_traces(self, project_id: str, query: TraceQuery) -> Page[TraceSummary]: ...
    async def list_observations(
        self, project_id: str, query: ObservationQuery, *, with_total: bool = True
    ) -> Page[Observation]: ...
    async def list_scores(
        self, project_id: str, query: ScoreQuery, *, with_total: bool = True
    ) -> Page[Score]: ...
    async def list_sessions(
        self,
        project_id: str,
        page: int,
        limit: int,
        from_timestamp: datetime | None,
        to_timestamp: datetime | None,
        environments: list[str],
    ) -> Page[SessionSummary]: ...
    async def get_session(self, project_id: str, session_id: str) -> list[Trace]: ...

    # -- deletes --
    async def delete_traces(self, project_id: str, trace_ids: list[str]) -> None:
        """Delete traces with their observations and scores."""
        ...

    async def delete_scores(self, project_id: str, score_ids: list[str]) -> None: ...

    # -- analytics --
    async def run_metrics_query(
        self,
        project_id: str,
        view: Literal["traces", "observations", "scores-numeric", "scores-categorical"],
        query: dict,
    ) -> list[dict]:
        """Evaluate a Langfuse metrics query (dimensions, metrics, filters, time range)."""
        ...
