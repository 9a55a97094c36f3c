"""Contract of the telemetry store, run against every ClickHouse adapter (the engines and
the `telemetry_store` fixture are in this folder's conftest)."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from fathom.adapters.storage.clickhouse.store import ClickHouseTelemetryStore
from fathom.core.domain.errors import ConfigurationError, InvalidInput, Unavailable
from fathom.core.domain.scores import Score, ScoreDataType, ScoreSource
from fathom.core.domain.tracing import Level, Observation, ObservationType, Trace
from fathom.core.ports.telemetry import ObservationQuery, ScoreQuery, TraceQuery
from tests.services.postgres import free_port

pytestmark = pytest.mark.slow

T0 = datetime(2026, 3, 4, 10, 0, 0, 123456, tzinfo=UTC)


def trace(project: str, id: str, **kw: object) -> Trace:
    kw.setdefault("timestamp", T0)
    return Trace(id=id, project_id=project, **kw)  # type: ignore[arg-type]


def obs(project: str, id: str, trace_id: str, **kw: object) -> Observation:
    kw.setdefault("type", ObservationType.SPAN)
    kw.setdefault("start_time", T0)
    return Observation(id=id, project_id=project, trace_id=trace_id, **kw)  # type: ignore[arg-type]


def score(project: str, id: str, **kw: object) -> Score:
    kw.setdefault("name", "quality")
    kw.setdefault("timestamp", T0)
    kw.setdefault("data_type", ScoreDataType.NUMERIC)
    kw.setdefault("value", 1.0)
    return Score(id=id, project_id=project, **kw)  # type: ignore[arg-type]


NESTED = {
    "text": "héllo wörld — 你好 🌍",
    "list": [1, 2.5, None, True, {"deep": ["x", {"deeper": "y"}]}],
    "number": 42,
    "float": 0.125,
    "bool": False,
    "null": None,
    "empty": {},
    "quote": 'a "quoted" \\ backslash\nnewline',
}


# -- lifecycle ---------------------------------------------------------------------------------


async def test_migrate_twice_and_ping(telemetry_store: ClickHouseTelemetryStore) -> None:
    await telemetry_store.migrate()
    await telemetry_store.ping()


async def test_chdb_engine_is_shared_per_path_and_unique_per_process(
    chdb_engine: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match="one engine per process"):
        ClickHouseTelemetryStore(f"chdb://{tmp_path / 'other'}")
    # Another spelling of the open path shares the engine.
    head, _, tail = chdb_engine.rpartition("/")
    same = ClickHouseTelemetryStore(f"{head}/./{tail}")
    await same.ping()
    await same.close()


def test_bad_dsn_and_identifiers_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError):
        ClickHouseTelemetryStore("postgres://x")
    with pytest.raises(ConfigurationError):
        ClickHouseTelemetryStore("chdb://relative/path")
    with pytest.raises(ConfigurationError):
        ClickHouseTelemetryStore("http://localhost:8123", database="x; DROP TABLE y")
    with pytest.raises(ConfigurationError):
        ClickHouseTelemetryStore("http://localhost:8123", cluster="a b")


# -- traces: writes and point reads ------------------------------------------------------------


async def test_trace_round_trip(telemetry_store: ClickHouseTelemetryStore, project: str) -> None:
    t = trace(
        project,
        "t1",
        name="chat ✨",
        user_id="u1",
        session_id="s1",
        release="r1",
        version="v1",
        input={"messages": [{"role": "user", "content": "hi 👋"}]},
        output="plain string output",
        metadata=NESTED,
        tags=["b", "a"],
        public=True,
        bookmarked=True,
        environment="production",
        created_at=T0,
        updated_at=T0 + timedelta(seconds=1),
    )
    minimal = trace(project, "t2")
    await telemetry_store.upsert_traces([t, minimal])
    got = {x.id: x for x in await telemetry_store.get_traces(project, ["t1", "t2", "missing"])}
    assert got["t1"] == t
    m = got["t2"]
    assert (m.name, m.user_id, m.input, m.output, m.metadata, m.tags) == (
        None,
        None,
        None,
        None,
        {},
        [],
    )
    assert m.environment == "default" and m.created_at is not None
    assert await telemetry_store.get_traces(project, []) == []
    assert await telemetry_store.get_traces(f"{project}-other", ["t1"]) == []


async def test_newest_upsert_wins(telemetry_store: ClickHouseTelemetryStore, project: str) -> None:
    await telemetry_store.upsert_traces([trace(project, "t1", name="first", tags=["x"])])
    for i in range(5):  # back-to-back writes must still order correctly
        await telemetry_store.upsert_traces([trace(project, "t1", name=f"v{i}", tags=["y"])])
    (got,) = await telemetry_store.get_traces(project, ["t1"])
    assert got.name == "v4" and got.tags == ["y"]
    page = await telemetry_store.list_traces(project, TraceQuery())
    assert page.total == 1 and page.items[0].trace.name == "v4"
    assert (await telemetry_store.list_traces(project, TraceQuery(name="first"))).total == 0

    await telemetry_store.upsert_observations([obs(project, "o1", "t1", name="a")])
    await telemetry_store.upsert_observations([obs(project, "o1", "t1", name="b")])
    assert [o.name for o in await telemetry_store.observations_of_trace(project, "t1")] == ["b"]

    await telemetry_store.upsert_scores([score(project, "s1", value=1.0)])
    await telemetry_store.upsert_scores([score(project, "s1", value=0.5)])
    assert [s.value for s in await telemetry_store.get_scores(project, ["s1"])] == [0.5]

    # Within one batch the later duplicate wins.
    await telemetry_store.upsert_traces(
        [trace(project, "dup", name=f"n{i}") for i in range(10)] + [trace(project, "other")]
    )
    assert [t.name for t in await telemetry_store.get_traces(project, ["dup"])] == ["n9"]


async def test_bulk_lookups_by_id_with_and_without_characters_to_escape(
    telemetry_store: ClickHouseTelemetryStore, project: str
) -> None:
    # Over a hundred ids go as one bound array (the ingestion merge's lookup); the ids that
    # need escaping make the driver write that array itself.
    plain = [f"{i:032x}" for i in range(150)]
    odd = ["it's", "back\\slash", "tab\tid", "new\nline", "`tick`", 'dq"id', "ünï"]
    await telemetry_store.upsert_traces([trace(project, i) for i in plain + odd])
    assert {t.id for t in await telemetry_store.get_traces(project, plain)} == set(plain)
    both = plain + odd + ["missing'one"]
    assert {t.id for t in await telemetry_store.get_traces(project, both)} == set(plain + odd)


async def test_datetimes_are_aware_utc_and_exact(
    telemetry_store: ClickHouseTelemetryStore, project: str
) -> None:
    plus2 = timezone(timedelta(hours=2))
    local = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=plus2)
    naive = datetime(2026, 1, 2, 3, 4, 5, 1)  # naive means UTC, whatever the process TZ
    await telemetry_store.upsert_traces([trace(project, "a", timestamp=local)])
    await telemetry_store.upsert_traces([trace(project, "n", timestamp=naive)])
    await telemetry_store.upsert_observations(
        [
            obs(
                project,
                "o",
                "a",
                start_time=local,
                end_time=local + timedelta(milliseconds=1500),
                completion_start_time=local + timedelta(microseconds=7),
            )
        ]
    )
    got = {t.id: t for t in await telemetry_store.get_traces(project, ["a", "n"])}
    assert got["a"].timestamp == local and got["a"].timestamp.utcoffset() == timedelta(0)
    assert got["a"].timestamp.tzinfo is not None
    assert got["n"].timestamp == naive.replace(tzinfo=UTC)
    (o,) = await telemetry_store.get_observations(project, ["o"])
    assert o.start_time == local and o.end_time == local + timedelta(milliseconds=1500)
    assert o.completion_start_time == local + timedelta(microseconds=7)
    assert o.latency_seconds == 1.5


async def test_big_and_unicode_payloads_round_trip(
    telemetry_store: ClickHouseTelemetryStore, project: str
) -> None:
    big = {"blob": "é" * (1024 * 1024), "items": list(range(1000))}
    await telemetry_store.upsert_traces([trace(project, "t", input=big, output=NESTED)])
    await telemetry_store.upsert_observations(
        [obs(project, "o", "t", input=big, output=["ünï", "c😀de"], metadata={"k": big})]
    )
    (t,) = await telemetry_store.get_traces(project, ["t"])
    assert t.input == big and t.output == NESTED
    (o,) = await telemetry_store.get_observations(project, ["o"])
    assert o.input == big and o.output == ["ünï", "c😀de"] and o.metadata == {"k": big}


async def test_a_batch_larger_than_one_serialising_chunk_round_trips(
    telemetry_store: ClickHouseTelemetryStore, project: str
) -> None:
    # The JSON insert serialises large columns in pieces; every piece must land in order.
    count = 4_567
    await telemetry_store.upsert_observations(
        [
            obs(project, f"o{i}", "t", input={"i": i, "text": "é" * (i % 7)}, metadata={"n": i})
            for i in range(count)
        ]
    )
    picked = [f"o{i}" for i in (0, 1_999, 2_000, 4_000, count - 1)]
    found = {o.id: o for o in await telemetry_store.get_observations(project, picked)}
    assert sorted(found) == sorted(picked)
    for id_ in picked:
        i = int(id_[1:])
        assert found[id_].input == {"i": i, "text": "é" * (i % 7)}
        assert found[id_].metadata == {"n": i}


# -- observations and scores: round trips ------------------------------------------------------


async def test_observation_round_trip(
    telemetry_store: ClickHouseTelemetryStore, project: str
) -> None:
    o = obs(
        project,
        "g1",
        "t1",
        type=ObservationType.GENERATION,
        name="llm",
        start_time=T0,
        end_time=T0 + timedelta(seconds=2),
        completion_start_time=T0 + timedelta(milliseconds=300),
        parent_observation_id="root",
        level=Level.WARNING,
        status_message="slow",
        version="2",
        input=[{"role": "user", "content": "hi"}],
        output={"role": "assistant", "content": "hello"},
        metadata=NESTED,
        environment="staging",
        model="gpt-4o",
        internal_model_id="m-1",
        model_parameters={"temperature": 0.2, "stop": ["\n"]},
        provided_usage_details={"input": 10, "output": 5},
        usage_details={"input": 10, "output": 5, "total": 15},
        provided_cost_details={"input": 0.001},
        cost_details={"input": 0.001, "output": 0.0025, "total": 0.0035},
        total_cost=0.0035,
        usage_pricing_tier_name="Standard",
        prompt_id="pr-1",
        prompt_name="greeting",
        prompt_version=3,
        created_at=T0,
        updated_at=T0,
    )
    root = obs(project, "root", "t1", start_time=T0 - timedelta(seconds=1))
    await telemetry_store.upsert_observations([o, root])
    (got,) = await telemetry_store.get_observations(project, ["g1"])
    assert got == o
    ordered = await telemetry_store.observations_of_trace(project, "t1")
    assert [x.id for x in ordered] == ["root", "g1"]
    assert await telemetry_store.get_observations(project, []) == []


async def test_score_round_trip(telemetry_store: ClickHouseTelemetryStore, project: str) -> None:
    numeric = score(
        project,
        "s1",
        value=0.75,
        trace_id="t1",
        observation_id="o1",
        comment="good ✓",
        metadata={"reviewer": {"id": 7}},
        source=ScoreSource.ANNOTATION,
        config_id="c1",
        queue_id="q1",
        author_user_id="user-1",
        execution_trace_id="x1",
        environment="production",
        created_at=T0,
        updated_at=T0,
    )
    categorical = score(
        project,
        "s2",
        data_type=ScoreDataType.CATEGORICAL,
        value=None,
        string_value="great",
        trace_id="t1",
        created_at=T0,
        updated_at=T0,
    )
    boolean = score(
        project,
        "s3",
        data_type=ScoreDataType.BOOLEAN,
        value=1.0,
        string_value="True",
        session_id="sess",
        dataset_run_id="run-1",
        created_at=T0,
        updated_at=T0,
    )
    await telemetry_store.upsert_scores([numeric, categorical, boolean])
    got = {s.id: s for s in await telemetry_store.get_scores(project, ["s1", "s2", "s3"])}
    assert got == {"s1": numeric, "s2": categorical, "s3": boolean}
    of_traces = await telemetry_store.scores_of_traces(project, ["t1"])
    assert sorted(s.id for s in of_traces) == ["s1", "s2"]
    assert await telemetry_store.scores_of_traces(project, []) == []


# -- deletes -----------------------------------------------------------------------------------


async def test_delete_traces_removes_observations_and_scores(
    telemetry_store: ClickHouseTelemetryStore, project: str
) -> None:
    await telemetry_store.upsert_traces(
        [trace(project, "gone", session_id="s"), trace(project, "kept", session_id="s")]
    )
    await telemetry_store.upsert_observations(
        [obs(project, "o-gone", "gone"), obs(project, "o-kept", "kept")]
    )
    await telemetry_store.upsert_scores(
        [score(project, "s-gone", trace_id="gone"), score(project, "s-kept", trace_id="kept")]
    )
    await telemetry_store.delete_traces(project, ["gone"])
    await telemetry_store.delete_traces(project, [])

    assert [t.id for t in await telemetry_store.get_traces(project, ["gone", "kept"])] == ["kept"]
    assert await telemetry_store.observations_of_trace(project, "gone") == []
    assert await telemetry_store.get_observations(project, ["o-gone"]) == []
    assert await telemetry_store.get_scores(project, ["s-gone"]) == []
    assert [s.id for s in await telemetry_store.get_scores(project, ["s-kept"])] == ["s-kept"]
    page = await telemetry_store.list_traces(project, TraceQuery())
    assert (page.total, [s.trace.id for s in page.items]) == (1, ["kept"])
    obs_page = await telemetry_store.list_observations(project, ObservationQuery())
    assert [o.id for o in obs_page.items] == ["o-kept"] and obs_page.total == 1
    sessions = await telemetry_store.list_sessions(project, 1, 10, None, None, [])
    assert sessions.items[0].trace_ids == ["kept"]

    # A later upsert of the same id is a new trace again.
    await telemetry_store.upsert_traces([trace(project, "gone", name="back")])
    assert [t.name for t in await telemetry_store.get_traces(project, ["gone"])] == ["back"]


async def test_delete_scores(telemetry_store: ClickHouseTelemetryStore, project: str) -> None:
    await telemetry_store.upsert_scores([score(project, "a"), score(project, "b")])
    await telemetry_store.delete_scores(project, ["a"])
    await telemetry_store.delete_scores(project, [])
    assert [s.id for s in await telemetry_store.get_scores(project, ["a", "b"])] == ["b"]
    page = await telemetry_store.list_scores(project, ScoreQuery())
    assert (page.total, [s.id for s in page.items]) == (1, ["b"])


# -- list_traces -------------------------------------------------------------------------------


async def seed_traces(store: ClickHouseTelemetryStore, project: str) -> None:
    await store.upsert_traces(
        [
            trace(
                project,
                "t1",
                name="alpha",
                user_id="u1",
                session_id="s1",
                version="v1",
                release="r1",
                tags=["a", "b"],
                environment="production",
                timestamp=T0,
            ),
            trace(
                project,
                "t2",
                name="beta",
                user_id="u2",
                session_id="s1",
                version="v2",
                release="r1",
                tags=["a"],
                environment="staging",
                timestamp=T0 + timedelta(minutes=1),
            ),
            trace(
                project,
                "t3",
                name="gamma",
                user_id="u1",
                session_id="s2",
                version="v1",
                release="r2",
                tags=["b", "c"],
                environment="production",
                timestamp=T0 + timedelta(minutes=2),
            ),
            trace(project, "t4", name="delta", timestamp=T0 + timedelta(days=1)),
        ]
    )


async def ids(store: ClickHouseTelemetryStore, project: str, **kw: object) -> list[str]:
    page = await store.list_traces(project, TraceQuery(**kw))  # type: ignore[arg-type]
    return [s.trace.id for s in page.items]


async def test_list_traces_filters(telemetry_store: ClickHouseTelemetryStore, project: str) -> None:
    await seed_traces(telemetry_store, project)
    s = telemetry_store
    assert await ids(s, project) == ["t4", "t3", "t2", "t1"]
    assert await ids(s, project, user_id="u1") == ["t3", "t1"]
    assert await ids(s, project, name="beta") == ["t2"]
    assert await ids(s, project, session_id="s1") == ["t2", "t1"]
    assert await ids(s, project, version="v1") == ["t3", "t1"]
    assert await ids(s, project, release="r2") == ["t3"]
    assert await ids(s, project, tags=["a"]) == ["t2", "t1"]
    assert await ids(s, project, tags=["a", "b"]) == ["t1"]
    assert await ids(s, project, tags=["a", "c"]) == []
    assert await ids(s, project, environments=["staging", "default"]) == ["t4", "t2"]
    # from is inclusive, to exclusive
    window = await ids(
        s, project, from_timestamp=T0 + timedelta(minutes=1), to_timestamp=T0 + timedelta(minutes=2)
    )
    assert window == ["t2"]
    assert await ids(s, project, user_id="u1", environments=["production"], tags=["c"]) == ["t3"]
    assert await ids(s, project, user_id="nobody") == []


async def test_list_traces_paging_and_order(
    telemetry_store: ClickHouseTelemetryStore, project: str
) -> None:
    await seed_traces(telemetry_store, project)
    s = telemetry_store
    page1 = await s.list_traces(project, TraceQuery(limit=3, page=1))
    page2 = await s.list_traces(project, TraceQuery(limit=3, page=2))
    page3 = await s.list_traces(project, TraceQuery(limit=3, page=3))
    assert (page1.total, page2.total, page3.total) == (4, 4, 4)
    assert [x.trace.id for x in page1.items + page2.items] == ["t4", "t3", "t2", "t1"]
    assert page3.items == []
    assert await ids(s, project, order_desc=False) == ["t1", "t2", "t3", "t4"]
    assert await ids(s, project, order_by="name", order_desc=False) == ["t1", "t2", "t4", "t3"]
    by_user = await ids(s, project, order_by="userId", order_desc=False)
    assert by_user[:3] == ["t1", "t3", "t2"]
    with pytest.raises(InvalidInput):
        await s.list_traces(project, TraceQuery(order_by="name; DROP TABLE traces"))


async def test_trace_summaries(telemetry_store: ClickHouseTelemetryStore, project: str) -> None:
    await telemetry_store.upsert_traces(
        [trace(project, "busy"), trace(project, "idle", timestamp=T0 - timedelta(hours=1))]
    )
    await telemetry_store.upsert_observations(
        [
            obs(project, "o1", "busy", start_time=T0, end_time=T0 + timedelta(seconds=1)),
            obs(
                project,
                "o2",
                "busy",
                type=ObservationType.GENERATION,
                start_time=T0 + timedelta(milliseconds=500),
                end_time=T0 + timedelta(milliseconds=2500),
                total_cost=0.25,
            ),
            obs(project, "o3", "busy", type=ObservationType.EVENT, start_time=T0, total_cost=0.5),
        ]
    )
    await telemetry_store.upsert_scores([score(project, "sc", trace_id="busy")])
    page = await telemetry_store.list_traces(project, TraceQuery())
    busy, idle = page.items
    assert busy.trace.id == "busy"
    assert sorted(busy.observation_ids) == ["o1", "o2", "o3"]
    assert busy.score_ids == ["sc"]
    assert busy.latency_seconds == pytest.approx(2.5)
    assert busy.total_cost == pytest.approx(0.75)
    assert (idle.observation_ids, idle.score_ids, idle.latency_seconds, idle.total_cost) == (
        [],
        [],
        None,
        None,
    )
    by_latency = await ids(telemetry_store, project, order_by="latency", order_desc=True)
    assert by_latency == ["busy", "idle"]


# -- list_observations -------------------------------------------------------------------------


async def seed_observations(store: ClickHouseTelemetryStore, project: str) -> None:
    await store.upsert_traces(
        [
            trace(project, "t1", user_id="u1", session_id="s1"),
            trace(project, "t2", user_id="u2", session_id="s2"),
        ]
    )
    await store.upsert_observations(
        [
            obs(project, "r1", "t1", name="root", start_time=T0),
            obs(
                project,
                "g1",
                "t1",
                name="llm",
                type=ObservationType.GENERATION,
                parent_observation_id="r1",
                level=Level.ERROR,
                version="v2",
                start_time=T0 + timedelta(seconds=1),
                environment="production",
            ),
            obs(project, "r2", "t2", name="root", start_time=T0 + timedelta(seconds=2)),
            obs(
                project,
                "e2",
                "t2",
                name="event",
                type=ObservationType.EVENT,
                parent_observation_id="r2",
                start_time=T0 + timedelta(seconds=3),
            ),
        ]
    )


async def obs_ids(store: ClickHouseTelemetryStore, project: str, **kw: object) -> list[str]:
    page = await store.list_observations(project, ObservationQuery(**kw))  # type: ignore[arg-type]
    return [o.id for o in page.items]


async def test_list_observations_filters(
    telemetry_store: ClickHouseTelemetryStore, project: str
) -> None:
    await seed_observations(telemetry_store, project)
    s = telemetry_store
    assert await obs_ids(s, project) == ["e2", "r2", "g1", "r1"]
    assert await obs_ids(s, project, trace_id="t1") == ["g1", "r1"]
    assert await obs_ids(s, project, name="root") == ["r2", "r1"]
    assert await obs_ids(s, project, type="GENERATION") == ["g1"]
    assert await obs_ids(s, project, level="ERROR") == ["g1"]
    assert await obs_ids(s, project, parent_observation_id="r2") == ["e2"]
    assert await obs_ids(s, project, is_root=True) == ["r2", "r1"]
    assert await obs_ids(s, project, is_root=False) == ["e2", "g1"]
    assert await obs_ids(s, project, version="v2") == ["g1"]
    assert await obs_ids(s, project, environments=["production"]) == ["g1"]
    assert await obs_ids(s, project, user_id="u2") == ["e2", "r2"]
    assert await obs_ids(s, project, session_id="s1") == ["g1", "r1"]
    assert await obs_ids(
        s,
        project,
        from_start_time=T0 + timedelta(seconds=1),
        to_start_time=T0 + timedelta(seconds=3),
    ) == ["r2", "g1"]
    page = await s.list_observations(project, ObservationQuery(limit=3, page=2))
    assert (page.total, [o.id for o in page.items]) == (4, ["r1"])


async def test_list_observations_cursor_visits_every_row_once(
    telemetry_store: ClickHouseTelemetryStore, project: str
) -> None:
    # Ties on start_time across and within traces exercise the (trace_id, id) tie-breakers.
    rows = [
        obs(
            project,
            f"o{i:02d}",
            f"t{i % 3}",
            start_time=T0 + timedelta(seconds=i // 4),
            name="odd" if i % 2 else "even",
        )
        for i in range(23)
    ]
    await telemetry_store.upsert_observations(rows)
    seen: list[str] = []
    after = None
    while True:
        page = await telemetry_store.list_observations(
            project, ObservationQuery(limit=4, after=after), with_total=False
        )
        seen.extend(o.id for o in page.items)
        if len(page.items) < 4:
            break
        last = page.items[-1]
        after = (last.start_time, last.trace_id, last.id)
    assert sorted(seen) == sorted(o.id for o in rows) and len(seen) == len(set(seen))
    expected = sorted(rows, key=lambda o: (o.start_time, o.trace_id, o.id), reverse=True)
    assert seen == [o.id for o in expected]
    # The cursor composes with filters; with_total counts the filtered rows.
    page = await telemetry_store.list_observations(
        project, ObservationQuery(name="odd", limit=100, after=after), with_total=True
    )
    assert page.total == 11


# -- list_scores -------------------------------------------------------------------------------


async def test_list_scores_filters_and_cursor(
    telemetry_store: ClickHouseTelemetryStore, project: str
) -> None:
    await telemetry_store.upsert_traces([trace(project, "t1", user_id="u1"), trace(project, "t2")])
    await telemetry_store.upsert_scores(
        [
            score(project, "a", trace_id="t1", value=1.0, timestamp=T0, environment="production"),
            score(
                project,
                "b",
                trace_id="t1",
                observation_id="o1",
                name="tone",
                data_type=ScoreDataType.CATEGORICAL,
                value=None,
                string_value="calm",
                source=ScoreSource.EVAL,
                timestamp=T0 + timedelta(seconds=1),
                config_id="c1",
            ),
            score(
                project,
                "c",
                trace_id="t2",
                value=0.0,
                data_type=ScoreDataType.BOOLEAN,
                string_value="False",
                timestamp=T0 + timedelta(seconds=2),
                queue_id="q1",
            ),
            score(
                project,
                "d",
                session_id="sess",
                dataset_run_id="run",
                value=0.5,
                source=ScoreSource.ANNOTATION,
                timestamp=T0 + timedelta(seconds=2),
            ),
        ]
    )

    async def sids(**kw: object) -> list[str]:
        page = await telemetry_store.list_scores(project, ScoreQuery(**kw))  # type: ignore[arg-type]
        return [s.id for s in page.items]

    assert await sids() == ["d", "c", "b", "a"]
    assert await sids(name="tone") == ["b"]
    assert await sids(user_id="u1") == ["b", "a"]
    assert await sids(trace_id="t2") == ["c"]
    assert await sids(observation_id="o1") == ["b"]
    assert await sids(session_id="sess") == ["d"]
    assert await sids(dataset_run_id="run") == ["d"]
    assert await sids(config_id="c1") == ["b"]
    assert await sids(queue_id="q1") == ["c"]
    assert await sids(source="EVAL") == ["b"]
    assert await sids(data_type="BOOLEAN") == ["c"]
    assert await sids(score_ids=["a", "c", "zzz"]) == ["c", "a"]
    assert await sids(environments=["production"]) == ["a"]
    assert await sids(value=0.5) == ["d"]
    # Inclusive bounds; a score without a numeric value never matches.
    assert await sids(value_min=0.5) == ["d", "a"]
    assert await sids(value_max=0.5) == ["d", "c"]
    assert await sids(value_min=0.25, value_max=0.75) == ["d"]
    assert await sids(value_min=0.0, data_type="NUMERIC") == ["d", "a"]
    assert await sids(value_min=2.0) == []
    assert await sids(
        from_timestamp=T0 + timedelta(seconds=1), to_timestamp=T0 + timedelta(seconds=2)
    ) == ["b"]
    page = await telemetry_store.list_scores(project, ScoreQuery(limit=2, page=2))
    assert (page.total, [s.id for s in page.items]) == (4, ["b", "a"])

    seen: list[str] = []
    after = None
    while True:
        page = await telemetry_store.list_scores(
            project, ScoreQuery(limit=1, after=after), with_total=False
        )
        if not page.items:
            break
        seen.extend(s.id for s in page.items)
        after = (page.items[-1].timestamp, page.items[-1].id)
    assert seen == ["d", "c", "b", "a"]


# -- lists read without FINAL: stale versions, deletes, deep pages ----------------------------
#
# Lists sorted by time pick candidates from rows of any version and keep those whose newest
# version still matches; these cases make the first candidates stale on purpose.


async def test_list_traces_with_many_unmerged_versions(
    telemetry_store: ClickHouseTelemetryStore, project: str
) -> None:
    # Six traces written five times each in separate inserts: the newest rows of the list are
    # mostly older versions of a few ids.
    for version in range(5):
        await telemetry_store.upsert_traces(
            [
                trace(project, f"t{i}", name=f"v{version}", timestamp=T0 + timedelta(minutes=i))
                for i in range(6)
            ]
        )
    page = await telemetry_store.list_traces(project, TraceQuery(limit=5))
    assert page.total == 6
    assert [(s.trace.id, s.trace.name) for s in page.items] == [
        (f"t{i}", "v4") for i in (5, 4, 3, 2, 1)
    ]
    page2 = await telemetry_store.list_traces(project, TraceQuery(limit=5, page=2))
    assert [s.trace.id for s in page2.items] == ["t0"]
    ascending = await telemetry_store.list_traces(project, TraceQuery(limit=2, order_desc=False))
    assert [s.trace.id for s in ascending.items] == ["t0", "t1"]


async def test_list_traces_skips_newest_rows_that_no_longer_match(
    telemetry_store: ClickHouseTelemetryStore, project: str
) -> None:
    await telemetry_store.upsert_traces(
        [
            trace(project, f"t{i:02d}", user_id="u1", timestamp=T0 + timedelta(minutes=i))
            for i in range(40)
        ]
    )
    # The 30 newest move to another user and two of the rest are deleted: the first
    # candidates for u1 are all stale, so the list must look further back.
    await telemetry_store.upsert_traces(
        [
            trace(project, f"t{i:02d}", user_id="u2", timestamp=T0 + timedelta(minutes=i))
            for i in range(10, 40)
        ]
    )
    await telemetry_store.delete_traces(project, ["t09", "t05"])
    page = await telemetry_store.list_traces(project, TraceQuery(user_id="u1", limit=3))
    assert page.total == 8
    assert [s.trace.id for s in page.items] == ["t08", "t07", "t06"]
    rest = await telemetry_store.list_traces(project, TraceQuery(user_id="u1", limit=3, page=3))
    assert [s.trace.id for s in rest.items] == ["t01", "t00"]
    u2 = await telemetry_store.list_traces(project, TraceQuery(user_id="u2", limit=2))
    assert (u2.total, [s.trace.id for s in u2.items]) == (30, ["t39", "t38"])
    # Unfiltered, deleted traces are skipped the same way.
    await telemetry_store.delete_traces(project, [f"t{i}" for i in range(30, 40)])
    everyone = await telemetry_store.list_traces(project, TraceQuery(limit=2))
    assert (everyone.total, [s.trace.id for s in everyone.items]) == (28, ["t29", "t28"])


async def test_list_traces_deep_pages(
    telemetry_store: ClickHouseTelemetryStore, project: str
) -> None:
    traces = [trace(project, f"t{i:03d}", timestamp=T0 + timedelta(seconds=i)) for i in range(260)]
    await telemetry_store.upsert_traces(traces)
    await telemetry_store.delete_traces(project, ["t009"])
    expected = [f"t{i:03d}" for i in range(259, -1, -1) if i != 9]
    # Past the first couple of hundred rows the candidates are checked before full rows are
    # read; far past them (beyond what candidates cover) the list falls back to FINAL.
    deep = await telemetry_store.list_traces(project, TraceQuery(limit=50, page=5))
    assert deep.total == 259 and [s.trace.id for s in deep.items] == expected[200:250]
    last = await telemetry_store.list_traces(project, TraceQuery(limit=50, page=6))
    assert [s.trace.id for s in last.items] == expected[250:]
    beyond = await telemetry_store.list_traces(project, TraceQuery(limit=100, page=101))
    assert (beyond.total, beyond.items) == (259, [])
    # Orders not led by the timestamp use FINAL and give the same rows.
    by_id = await telemetry_store.list_traces(project, TraceQuery(limit=3, order_by="id"))
    assert [s.trace.id for s in by_id.items] == expected[:3]


async def test_list_observations_and_scores_skip_stale_and_deleted_rows(
    telemetry_store: ClickHouseTelemetryStore, project: str
) -> None:
    await telemetry_store.upsert_observations(
        [
            obs(project, f"o{i:02d}", f"t{i % 2}", name="a", start_time=T0 + timedelta(seconds=i))
            for i in range(30)
        ]
    )
    await telemetry_store.upsert_observations(
        [
            obs(project, f"o{i:02d}", f"t{i % 2}", name="b", start_time=T0 + timedelta(seconds=i))
            for i in range(5, 30)
        ]
    )
    named_a = await telemetry_store.list_observations(project, ObservationQuery(name="a", limit=2))
    assert (named_a.total, [o.id for o in named_a.items]) == (5, ["o04", "o03"])
    newest = await telemetry_store.list_observations(
        project, ObservationQuery(limit=3), with_total=False
    )
    assert [(o.id, o.name) for o in newest.items] == [("o29", "b"), ("o28", "b"), ("o27", "b")]
    await telemetry_store.delete_traces(project, ["t1"])
    after_delete = await telemetry_store.list_observations(project, ObservationQuery(limit=3))
    assert (after_delete.total, [o.id for o in after_delete.items]) == (15, ["o28", "o26", "o24"])

    await telemetry_store.upsert_scores(
        [score(project, f"s{i:02d}", timestamp=T0 + timedelta(seconds=i)) for i in range(25)]
    )
    await telemetry_store.upsert_scores(
        [
            score(project, f"s{i:02d}", name="other", timestamp=T0 + timedelta(seconds=i))
            for i in range(3, 25)
        ]
    )
    await telemetry_store.delete_scores(project, ["s01"])
    quality = await telemetry_store.list_scores(project, ScoreQuery(name="quality", limit=5))
    assert (quality.total, [s.id for s in quality.items]) == (2, ["s02", "s00"])

    # Pages deeper than the candidates cover are read with FINAL.
    far = await telemetry_store.list_observations(project, ObservationQuery(limit=100, page=101))
    assert (far.total, far.items) == (15, [])
    far_scores = await telemetry_store.list_scores(project, ScoreQuery(limit=100, page=101))
    assert (far_scores.total, far_scores.items) == (24, [])


async def test_trace_summaries_ignore_deleted_observations_and_scores(
    telemetry_store: ClickHouseTelemetryStore, project: str
) -> None:
    await telemetry_store.upsert_traces([trace(project, "t")])
    await telemetry_store.upsert_observations(
        [
            obs(project, "kept", "t", start_time=T0, end_time=T0 + timedelta(seconds=1)),
            obs(project, "gone", "t", start_time=T0, end_time=T0 + timedelta(seconds=9)),
        ]
    )
    await telemetry_store.upsert_observations(
        [obs(project, "kept", "t", start_time=T0, end_time=T0 + timedelta(seconds=2))]
    )
    await telemetry_store.upsert_scores([score(project, "s1", trace_id="t")])
    await telemetry_store.upsert_scores([score(project, "s2", trace_id="t")])
    await telemetry_store.delete_scores(project, ["s1"])
    # No public per-observation delete: write the tombstone the way delete_traces does.
    from fathom.adapters.storage.clickhouse.store import _OBSERVATION_KEY

    await telemetry_store._run(
        telemetry_store._tombstone,
        telemetry_store._observations,
        _OBSERVATION_KEY,
        project,
        "id",
        ["gone"],
    )
    (summary,) = (await telemetry_store.list_traces(project, TraceQuery())).items
    assert summary.observation_ids == ["kept"] and summary.score_ids == ["s2"]
    assert summary.latency_seconds == 2.0 and summary.total_cost == 0.0


async def test_concurrent_point_reads_match_single_reads(
    telemetry_store: ClickHouseTelemetryStore, project: str
) -> None:
    """Point reads started together run as one query; they must return what each returns alone
    (newest versions, no deleted rows, every type decoded the same way)."""
    other = f"{project}-other"
    await telemetry_store.upsert_traces(
        [
            trace(project, "t", name="chat", input={"q": "hi"}, output="plain", metadata=NESTED),
            trace(other, "t", name="elsewhere"),
        ]
    )
    generation = obs(
        project,
        "g",
        "t",
        type=ObservationType.GENERATION,
        start_time=T0 + timedelta(milliseconds=5),
        end_time=T0 + timedelta(seconds=2),
        completion_start_time=T0 + timedelta(microseconds=7),
        metadata=NESTED,
        input=[{"role": "user", "content": "hi 👋"}],
        output=42,
        model_parameters={"temperature": 0.5},
        usage_details={"input": 10, "output": 2**63 + 5},
        cost_details={"input": 0.001, "total": 0.0035},
        total_cost=0.0035,
        prompt_version=7,
        level=Level.ERROR,
        created_at=T0,
        updated_at=T0 + timedelta(seconds=3),
    )
    await telemetry_store.upsert_observations(
        [obs(project, "root", "t", name="old"), generation, obs(project, "gone", "t")]
    )
    await telemetry_store.upsert_observations([obs(project, "root", "t", name="new")])
    from fathom.adapters.storage.clickhouse.store import _OBSERVATION_KEY

    await telemetry_store._run(
        telemetry_store._tombstone,
        telemetry_store._observations,
        _OBSERVATION_KEY,
        project,
        "id",
        ["gone"],
    )
    await telemetry_store.upsert_scores(
        [
            score(project, "s1", trace_id="t", comment="ok", metadata={"k": [1]}),
            score(project, "nan", trace_id="t", value=float("nan")),
            score(project, "cat", trace_id="t", data_type=ScoreDataType.CATEGORICAL, value=None),
        ]
    )

    async def reads(project_id: str) -> list[list[Any]]:
        return [
            await telemetry_store.get_traces(project_id, ["t", "missing"]),
            await telemetry_store.observations_of_trace(project_id, "t"),
            await telemetry_store.scores_of_traces(project_id, ["t"]),
        ]

    alone = await reads(project)
    together = await asyncio.gather(
        telemetry_store.get_traces(project, ["t", "missing"]),
        telemetry_store.observations_of_trace(project, "t"),
        telemetry_store.scores_of_traces(project, ["t"]),
        telemetry_store.get_traces(other, ["t"]),
        telemetry_store.get_observations(project, []),
        # Bulk lookups run on their own.
        telemetry_store.get_traces(project, ["t"] + [f"x{i}" for i in range(100)]),
    )
    assert [o.id for o in alone[1]] == ["root", "g"] and alone[1][0].name == "new"
    assert alone[1][1] == generation
    assert list(together[:2]) == alone[:2]
    nan = {s.id: s for s in together[2]}.pop("nan")
    assert nan.value is not None and math.isnan(nan.value)
    assert [s for s in together[2] if s.id != "nan"] == [s for s in alone[2] if s.id != "nan"]
    assert [t.name for t in together[3]] == ["elsewhere"] and together[4] == []
    assert together[5] == alone[0]


# -- writes: value conversion ------------------------------------------------------------------


async def test_insert_conversions_round_trip(
    telemetry_store: ClickHouseTelemetryStore, project: str
) -> None:
    naive = datetime(2026, 1, 2, 3, 4, 5, 6)
    rows = [
        # Costs travel as floats and are rounded to the column's 12 decimals by the engine.
        obs(
            project,
            "costs",
            "t",
            start_time=T0,
            cost_details={"input": 0.29, "output": 1, "big": 1e12, "nan": float("nan")},
            provided_cost_details={"total": 1234.567890123},
            total_cost=0.1 + 0.2,
            usage_details={"input": 3, "output": -4, "float": 2.9, "none": None},
            metadata={"n": 2**70, "nested": {"list": [1, None]}, "s": "x"},
        ),
        # Naive datetimes in a batch of aware ones (naive means UTC), and JSON beyond orjson.
        obs(
            project,
            "naive",
            "t",
            start_time=naive,
            end_time=naive + timedelta(seconds=1),
            created_at=naive,
            input={"big": 2**70},
        ),
    ]
    await telemetry_store.upsert_observations(rows)
    got = {o.id: o for o in await telemetry_store.get_observations(project, ["costs", "naive"])}
    costs = got["costs"]
    assert costs.cost_details == {"input": 0.29, "output": 1.0, "big": 9_000_000.0}
    assert costs.provided_cost_details == {"total": 1234.567890123}
    assert costs.total_cost == pytest.approx(0.3, abs=1e-12)
    assert costs.usage_details == {"input": 3, "output": 0, "float": 2}
    assert costs.metadata == {"n": 2**70, "nested": {"list": [1, None]}, "s": "x"}
    assert costs.type is ObservationType.SPAN and costs.level is Level.DEFAULT
    assert got["naive"].start_time == naive.replace(tzinfo=UTC)
    assert got["naive"].end_time == naive.replace(tzinfo=UTC) + timedelta(seconds=1)
    assert got["naive"].created_at == naive.replace(tzinfo=UTC)
    assert got["naive"].input == {"big": 2**70}


def test_query_settings_unknown_to_the_engine_are_dropped() -> None:
    from fathom.adapters.storage.clickhouse.engine import Engine

    class FakeClient:
        server_settings = {"max_threads": object()}

    engine = Engine("fake", lambda: FakeClient())  # type: ignore[arg-type, return-value]
    wanted = {"max_threads": 1, "setting_of_a_newer_release": 0}
    client = FakeClient()
    assert engine.settings(client, wanted) == {"max_threads": 1}  # type: ignore[arg-type]
    engine.executor.shutdown()


async def test_an_unreachable_server_is_unavailable_not_a_query_error() -> None:
    # The worker retries a whole batch on Unavailable instead of looking for a job at fault,
    # and the HTTP layer answers 503.
    port = free_port(range(18900, 18950))
    store = ClickHouseTelemetryStore(f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(Unavailable, match="unavailable"):
            await store.get_traces("p", ["t1"])
    finally:
        await store.close()


# -- sessions ----------------------------------------------------------------------------------


async def test_sessions(telemetry_store: ClickHouseTelemetryStore, project: str) -> None:
    await telemetry_store.upsert_traces(
        [
            trace(project, "a1", session_id="A", timestamp=T0 + timedelta(minutes=5)),
            trace(project, "a2", session_id="A", timestamp=T0 + timedelta(minutes=1)),
            trace(
                project,
                "b1",
                session_id="B",
                timestamp=T0 + timedelta(minutes=3),
                environment="staging",
            ),
            trace(project, "c1", session_id="C", timestamp=T0 + timedelta(days=2)),
            trace(project, "none", timestamp=T0),
            trace(project, "empty", session_id="", timestamp=T0),
        ]
    )
    page = await telemetry_store.list_sessions(project, 1, 10, None, None, [])
    assert page.total == 3
    assert [s.id for s in page.items] == ["C", "B", "A"]
    a = page.items[2]
    assert (a.created_at, a.trace_ids, a.project_id) == (
        T0 + timedelta(minutes=1),
        ["a2", "a1"],
        project,
    )
    assert page.items[1].environment == "staging"

    second = await telemetry_store.list_sessions(project, 2, 2, None, None, [])
    assert (second.total, [s.id for s in second.items]) == (3, ["A"])
    window = await telemetry_store.list_sessions(project, 1, 10, T0, T0 + timedelta(minutes=3), [])
    assert [s.id for s in window.items] == ["A"]
    staged = await telemetry_store.list_sessions(project, 1, 10, None, None, ["staging"])
    assert (staged.total, [s.id for s in staged.items]) == (1, ["B"])
    beyond = await telemetry_store.list_sessions(project, 5, 10, None, None, [])
    assert (beyond.total, beyond.items) == (3, [])

    traces = await telemetry_store.get_session(project, "A")
    assert [t.id for t in traces] == ["a2", "a1"]
    assert await telemetry_store.get_session(project, "missing") == []


# -- metrics -----------------------------------------------------------------------------------


async def seed_metrics(store: ClickHouseTelemetryStore, project: str) -> None:
    day2 = T0 + timedelta(days=1)
    await store.upsert_traces(
        [
            trace(project, "t1", name="chat", user_id="u1", tags=["x"], metadata={"team": "a"}),
            trace(project, "t2", name="chat", user_id="u2", tags=["x", "y"], timestamp=day2),
            trace(project, "t3", name="search", user_id="u1", environment="staging"),
        ]
    )
    gens = []
    for i, (tid, start, ms, model, cost) in enumerate(
        [
            ("t1", T0, 100, "gpt-4o", 0.1),
            ("t1", T0, 200, "gpt-4o", 0.2),
            ("t2", day2, 300, "claude", 0.3),
            ("t3", T0, 1000, "claude", 0.4),
        ]
    ):
        gens.append(
            obs(
                project,
                f"g{i}",
                tid,
                type=ObservationType.GENERATION,
                name="llm",
                start_time=start,
                end_time=start + timedelta(milliseconds=ms),
                model=model,
                usage_details={"input": 10, "output": 5, "total": 15},
                cost_details={"input": cost / 2, "output": cost / 2, "total": cost},
                total_cost=cost,
            )
        )
    await store.upsert_observations(gens)
    await store.upsert_scores(
        [
            score(project, "s1", name="acc", value=1.0, trace_id="t1"),
            score(project, "s2", name="acc", value=0.0, trace_id="t2", timestamp=day2),
            score(
                project,
                "s3",
                name="tone",
                data_type=ScoreDataType.CATEGORICAL,
                value=None,
                string_value="calm",
                trace_id="t1",
            ),
        ]
    )


def window(**extra: object) -> dict:
    return {
        "fromTimestamp": "2026-03-04T00:00:00Z",
        "toTimestamp": "2026-03-06T00:00:00Z",
        **extra,
    }


async def test_metrics_count_traces_by_name(
    telemetry_store: ClickHouseTelemetryStore, project: str
) -> None:
    await seed_metrics(telemetry_store, project)
    rows = await telemetry_store.run_metrics_query(
        project,
        "traces",
        window(
            dimensions=[{"field": "name"}],
            metrics=[{"measure": "count", "aggregation": "count"}],
        ),
    )
    assert rows == [{"name": "chat", "count_count": 2}, {"name": "search", "count_count": 1}]
    users = await telemetry_store.run_metrics_query(
        project, "traces", window(metrics=[{"measure": "uniqueUserIds", "aggregation": "uniq"}])
    )
    assert users == [{"uniq_uniqueUserIds": 2}]
    # Trace-level cost and latency come from the trace's observations.
    rows = await telemetry_store.run_metrics_query(
        project,
        "traces",
        window(
            dimensions=[{"field": "userId"}],
            metrics=[
                {"measure": "totalCost", "aggregation": "sum"},
                {"measure": "latency", "aggregation": "max"},
                {"measure": "totalTokens", "aggregation": "sum"},
            ],
            orderBy=[{"field": "userId", "direction": "asc"}],
        ),
    )
    assert [r["userId"] for r in rows] == ["u1", "u2"]
    assert rows[0]["sum_totalCost"] == pytest.approx(0.7)
    assert rows[0]["max_latency"] == 1000 and rows[0]["sum_totalTokens"] == 45


async def test_metrics_observations_cost_latency_and_filters(
    telemetry_store: ClickHouseTelemetryStore, project: str
) -> None:
    await seed_metrics(telemetry_store, project)
    rows = await telemetry_store.run_metrics_query(
        project,
        "observations",
        window(
            dimensions=[{"field": "providedModelName"}],
            metrics=[
                {"measure": "totalCost", "aggregation": "sum"},
                {"measure": "latency", "aggregation": "p95"},
                {"measure": "count", "aggregation": "count"},
                {"measure": "inputTokens", "aggregation": "sum"},
            ],
            orderBy=[{"field": "providedModelName", "direction": "desc"}],
        ),
    )
    assert [r["providedModelName"] for r in rows] == ["gpt-4o", "claude"]
    gpt, claude = rows
    assert gpt["sum_totalCost"] == pytest.approx(0.3) and claude["sum_totalCost"] == pytest.approx(
        0.7
    )
    assert 190 <= gpt["p95_latency"] <= 200
    assert (gpt["count_count"], gpt["sum_inputTokens"]) == (2, 20)

    filtered = await telemetry_store.run_metrics_query(
        project,
        "observations",
        window(
            metrics=[{"measure": "count", "aggregation": "count"}],
            filters=[
                {"column": "traceName", "operator": "=", "value": "chat", "type": "string"},
                {"column": "tags", "operator": "any of", "value": ["y"], "type": "arrayOptions"},
            ],
        ),
    )
    assert filtered == [{"count_count": 1}]
    by_metadata = await telemetry_store.run_metrics_query(
        project,
        "traces",
        window(
            metrics=[{"measure": "count", "aggregation": "count"}],
            filters=[
                {
                    "column": "metadata",
                    "operator": "=",
                    "key": "team",
                    "value": "a",
                    "type": "stringObject",
                }
            ],
        ),
    )
    assert by_metadata == [{"count_count": 1}]


async def test_metrics_time_dimension_per_day(
    telemetry_store: ClickHouseTelemetryStore, project: str
) -> None:
    await seed_metrics(telemetry_store, project)
    rows = await telemetry_store.run_metrics_query(
        project,
        "observations",
        window(
            metrics=[{"measure": "count", "aggregation": "count"}],
            timeDimension={"granularity": "day"},
        ),
    )
    # Every day of the window appears, empty days as zero; day buckets are dates.
    assert rows == [
        {"time_dimension": date(2026, 3, 4), "count_count": 3},
        {"time_dimension": date(2026, 3, 5), "count_count": 1},
        {"time_dimension": date(2026, 3, 6), "count_count": 0},
    ]


async def test_metrics_scores(telemetry_store: ClickHouseTelemetryStore, project: str) -> None:
    await seed_metrics(telemetry_store, project)
    numeric = await telemetry_store.run_metrics_query(
        project,
        "scores-numeric",
        window(
            dimensions=[{"field": "name"}],
            metrics=[
                {"measure": "value", "aggregation": "avg"},
                {"measure": "count", "aggregation": "count"},
            ],
        ),
    )
    assert numeric == [{"name": "acc", "avg_value": 0.5, "count_count": 2}]
    categorical = await telemetry_store.run_metrics_query(
        project,
        "scores-categorical",
        window(
            dimensions=[{"field": "stringValue"}, {"field": "traceName"}],
            metrics=[{"measure": "count", "aggregation": "count"}],
        ),
    )
    assert categorical == [{"stringValue": "calm", "traceName": "chat", "count_count": 1}]


async def test_metrics_histogram_auto_granularity_and_options(
    telemetry_store: ClickHouseTelemetryStore, project: str
) -> None:
    await seed_metrics(telemetry_store, project)
    rows = await telemetry_store.run_metrics_query(
        project,
        "observations",
        {
            "fromTimestamp": "2026-03-04T09:00:00Z",
            "toTimestamp": "2026-03-04T11:00:00Z",  # two hours: auto picks hours
            "metrics": [
                {"measure": "latency", "aggregation": "histogram"},
                {"measure": "totalTokens", "aggregation": "sum"},
            ],
            "timeDimension": {"granularity": "auto"},
            "filters": [
                {
                    "column": "providedModelName",
                    "operator": "any of",
                    "value": ["gpt-4o", "claude"],
                    "type": "stringOptions",
                },
                {"column": "startTime", "operator": ">=", "value": "2026-03-04T10:00:00Z"},
            ],
            "config": {"bins": 2},
        },
    )
    assert [r["time_dimension"] for r in rows] == [
        datetime(2026, 3, 4, 9, tzinfo=UTC),
        datetime(2026, 3, 4, 10, tzinfo=UTC),
        datetime(2026, 3, 4, 11, tzinfo=UTC),
    ]
    busy = rows[1]
    assert len(busy["histogram_latency"]) == 2
    assert sum(bucket[2] for bucket in busy["histogram_latency"]) == pytest.approx(3)
    assert busy["sum_totalTokens"] == 45 and rows[0]["sum_totalTokens"] == 0
    limited = await telemetry_store.run_metrics_query(
        project,
        "traces",
        window(
            dimensions=[{"field": "name"}],
            metrics=[{"measure": "count", "aggregation": "count"}],
            orderBy=[{"field": "name", "direction": "asc"}],
            config={"row_limit": 1},
        ),
    )
    assert limited == [{"name": "chat", "count_count": 2}]


@pytest.mark.parametrize(
    "bad",
    [
        {"dimensions": [{"field": "name; DROP TABLE traces"}]},
        {"metrics": [{"measure": "count) FROM system.tables --", "aggregation": "count"}]},
        {"metrics": [{"measure": "count", "aggregation": "sleep(3)"}]},
        {"metrics": [{"measure": "uniqueUserIds", "aggregation": "sum"}]},
        {"filters": [{"column": "1=1 OR name", "operator": "=", "value": "x"}]},
        {"filters": [{"column": "name", "operator": "LIKE '%' OR 1=1 --", "value": "x"}]},
        {"orderBy": [{"field": "count_count; --", "direction": "asc"}]},
        {"orderBy": [{"field": "count_count", "direction": "asc; DROP"}]},
        {"timeDimension": {"granularity": "fortnight"}},
        {"fromTimestamp": None},
        {"fromTimestamp": "yesterday"},
        {"metrics": []},
    ],
)
async def test_metrics_reject_invalid_queries(
    telemetry_store: ClickHouseTelemetryStore, project: str, bad: dict
) -> None:
    query = window(metrics=[{"measure": "count", "aggregation": "count"}])
    query.update(bad)
    with pytest.raises(InvalidInput):
        await telemetry_store.run_metrics_query(project, "traces", query)
