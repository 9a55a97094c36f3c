"""Trace get's reads (a trace, its observations, its scores in one query) on every ClickHouse
adapter: newest versions, no deleted rows, and rows found wherever their time lies.

The engines and the `telemetry_store` fixture are in this folder's conftest.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from clickhouse_connect.driver.client import Client

from fathom.adapters.storage.clickhouse.rows import (
    OBSERVATION_COLUMNS,
    SCORE_COLUMNS,
    TRACE_COLUMNS,
)
from fathom.adapters.storage.clickhouse.store import _OBSERVATION_KEY, ClickHouseTelemetryStore
from fathom.core.domain.scores import Score, ScoreDataType
from fathom.core.domain.tracing import Observation, ObservationType, Trace

pytestmark = pytest.mark.slow

T0 = datetime(2026, 3, 4, 10, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def store(telemetry_store: ClickHouseTelemetryStore) -> ClickHouseTelemetryStore:
    return telemetry_store


async def trace_get(
    store: ClickHouseTelemetryStore, project: str, trace_id: str
) -> tuple[list[Trace], list[Observation], list[Score]]:
    """The reads of `GET /api/public/traces/{id}`, started together as the route does."""
    return await asyncio.gather(
        store.get_traces(project, [trace_id]),
        store.observations_of_trace(project, trace_id),
        store.scores_of_traces(project, [trace_id]),
    )


async def test_selected_columns_follow_table_order(store: ClickHouseTelemetryStore) -> None:
    """Point reads select columns with one matcher, which yields them in table order."""

    def table_columns(client: Client, table: str) -> list[str]:
        rows = client.query(
            "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String} "
            "AND default_kind != 'EPHEMERAL' ORDER BY position",
            parameters={"db": store._db, "t": table},
        ).result_rows
        return [r[0] for r in rows]

    for table, columns in (
        ("traces", TRACE_COLUMNS),
        ("observations", OBSERVATION_COLUMNS),
        ("scores", SCORE_COLUMNS),
    ):
        got = await store._run(table_columns, table)
        assert [c for c in got if c in (*columns, "event_ts", "is_deleted")] == [
            *columns,
            "event_ts",
            "is_deleted",
        ]


async def test_newest_version_wins_and_deleted_rows_stay_hidden(
    store: ClickHouseTelemetryStore, project: str
) -> None:
    await store.upsert_traces([Trace(id="t", project_id=project, timestamp=T0, name="v1")])
    await store.upsert_traces([Trace(id="t", project_id=project, timestamp=T0, name="v2")])
    # Versions written in separate inserts stay separate rows until a merge.
    for version in range(3):
        await store.upsert_observations(
            [
                Observation(
                    id=f"o{i}",
                    project_id=project,
                    trace_id="t",
                    type=ObservationType.SPAN,
                    start_time=T0 + timedelta(milliseconds=i),
                    name=f"v{version}",
                )
                for i in range(3)
            ]
        )
    await store._run(store._tombstone, store._observations, _OBSERVATION_KEY, project, "id", ["o1"])
    for value in (1.0, 2.0):
        await store.upsert_scores(
            [
                Score(
                    id="s",
                    project_id=project,
                    name="q",
                    timestamp=T0,
                    data_type=ScoreDataType.NUMERIC,
                    value=value,
                    trace_id="t",
                )
            ]
        )

    traces, observations, scores = await trace_get(store, project, "t")
    assert [t.name for t in traces] == ["v2"]
    assert [(o.id, o.name) for o in observations] == [("o0", "v2"), ("o2", "v2")]
    assert [(s.id, s.value) for s in scores] == [("s", 2.0)]

    # A deleted trace's rows are gone from every part of the answer.
    await store.delete_traces(project, ["t"])
    assert list(await trace_get(store, project, "t")) == [[], [], []]


async def test_rows_far_from_the_trace_timestamp_are_found(
    store: ClickHouseTelemetryStore, project: str
) -> None:
    """Trace get reads by trace id, not within a window around the trace's timestamp: an
    observation or score months (and partitions) away from its trace still belongs to it."""
    far = {"before": T0 - timedelta(days=200), "same": T0, "after": T0 + timedelta(days=95)}
    await store.upsert_traces([Trace(id="t", project_id=project, timestamp=T0)])
    await store.upsert_observations(
        [
            Observation(
                id=f"o-{name}",
                project_id=project,
                trace_id="t",
                type=ObservationType.SPAN,
                start_time=moment,
            )
            for name, moment in far.items()
        ]
    )
    await store.upsert_scores(
        [
            Score(
                id=f"s-{name}",
                project_id=project,
                name="q",
                timestamp=moment,
                data_type=ScoreDataType.NUMERIC,
                value=1.0,
                trace_id="t",
            )
            for name, moment in far.items()
        ]
    )

    traces, observations, scores = await trace_get(store, project, "t")
    assert [t.id for t in traces] == ["t"]
    assert [o.id for o in observations] == ["o-before", "o-same", "o-after"]
    assert [o.start_time for o in observations] == list(far.values())
    assert [s.id for s in scores] == ["s-before", "s-same", "s-after"]
