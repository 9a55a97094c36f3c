"""Telemetry storage: traces, observations and scores at volume (ClickHouse-shaped).

Writes are batched upserts: a newer row with the same (project_id, id) replaces an
older one. Reads are per project.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, Protocol, TypeVar

from fathom.core.domain.scores import Score
from fathom.core.domain.tracing import Observation, Trace

T = TypeVar("T")

# A list of values matches a row whose column equals any of them.
OneOrMany = str | list[str] | None


@dataclass(frozen=True, slots=True)
class Condition:
    """One condition of Langfuse's `filter` query parameter (its `FilterState`).

    `type` is the filter type (`string`, `stringOptions`, `arrayOptions`, `number`,
    `datetime`, `boolean`, `null`, `stringObject`, `numberObject`, `categoryOptions`), checked
    together with the operator and value at the edge; stores map `column` (the API's column
    name) to their own and reject columns they cannot filter on.
    """

    column: str
    type: str
    operator: str
    value: Any = None
    key: str | None = None


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
    # ANDed with the parameters above.
    filters: list[Condition] = field(default_factory=list)


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
    filters: list[Condition] = field(default_factory=list)
    # Keyset cursor for the v2 API: rows strictly after (start_time desc, trace_id, id).
    after: tuple[datetime, str, str] | None = None


@dataclass(slots=True)
class ScoreQuery:
    page: int = 1
    limit: int = 50
    name: OneOrMany = None
    user_id: str | None = None
    trace_id: OneOrMany = None
    observation_id: OneOrMany = None
    session_id: OneOrMany = None
    dataset_run_id: OneOrMany = None
    config_id: OneOrMany = None
    queue_id: OneOrMany = None
    author_user_id: OneOrMany = None
    source: OneOrMany = None
    data_type: OneOrMany = None
    score_ids: list[str] = field(default_factory=list)
    environments: list[str] = field(default_factory=list)
    # Every tag must be on the score's trace.
    trace_tags: list[str] = field(default_factory=list)
    from_timestamp: datetime | None = None
    to_timestamp: datetime | None = None
    # `value <op> x` (v2 `operator` + `value`); op is one of = != < > <= >=.
    value: float | None = None
    value_operator: str = "="
    # The numeric value is any of these (v3 `value` for NUMERIC and BOOLEAN scores).
    values: list[float] = field(default_factory=list)
    # The string value is any of these (v3 `value` for CATEGORICAL scores).
    string_values: list[str] = field(default_factory=list)
    # Inclusive bounds on the numeric value (v3 `valueMin`/`valueMax`).
    value_min: float | None = None
    value_max: float | None = None
    filters: list[Condition] = field(default_factory=list)
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
