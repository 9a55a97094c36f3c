"""Sessions, the v1 metrics query API and daily metrics, checked against upstream's behaviour:
parameters, response fields, ordering, pagination and validation errors (status and message).

One data set is ingested once per engine; every test runs on the embedded engine and on
ClickHouse over HTTP.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.api.conftest import Api as JsonApi
from tests.api.conftest import ids, seed_once, wait_for
from tests.conftest import PROJECT_ID

DAY_1 = datetime(2026, 4, 1, 10, 0, tzinfo=UTC)
DAY_2 = DAY_1 + timedelta(days=1)
DAY_3 = DAY_1 + timedelta(days=2)
SESSION_A, SESSION_B, SESSION_C = "smp-session-a", "smp-session-b", "smp-session-c"
A1, A2, B1, C1 = "smp-a1", "smp-a2", "smp-b1", "smp-c1"
GEN_A1, SPAN_A1, GEN_B1 = f"{A1}-gen", f"{A1}-span", f"{B1}-gen"
# The `Trace` schema of upstream's session endpoint, key for key.
TRACE_KEYS = {
    "id",
    "externalId",
    "timestamp",
    "name",
    "userId",
    "metadata",
    "release",
    "version",
    "projectId",
    "environment",
    "public",
    "bookmarked",
    "tags",
    "input",
    "output",
    "sessionId",
    "createdAt",
    "updatedAt",
}


def ts(moment: datetime, seconds: float = 0) -> str:
    return (moment + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def event(type_: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "timestamp": ts(DAY_1), "type": type_, "body": body}


SEED = [
    event(
        "trace-create",
        {
            "id": A1,
            "timestamp": ts(DAY_1),
            "name": "smp-chat",
            "userId": "smp-user-1",
            "sessionId": SESSION_A,
            "tags": ["x", "y"],
            "environment": "production",
            "input": {"q": "hi"},
        },
    ),
    event(
        "generation-create",
        {
            "id": GEN_A1,
            "traceId": A1,
            "name": "llm",
            "startTime": ts(DAY_1, 1),
            "completionStartTime": ts(DAY_1, 2),
            "endTime": ts(DAY_1, 3),
            "model": "gpt-4o",
            "usageDetails": {"input": 10, "output": 5, "total": 15},
            "environment": "production",
        },
    ),
    event(
        "span-create",
        {
            "id": SPAN_A1,
            "traceId": A1,
            "name": "step",
            "startTime": ts(DAY_1, 0.5),
            "environment": "production",
        },
    ),
    event(
        "trace-create",
        {
            "id": A2,
            "timestamp": ts(DAY_1, 10),
            "name": "smp-chat",
            "userId": "smp-user-1",
            "sessionId": SESSION_A,
            "environment": "production",
        },
    ),
    event(
        "trace-create",
        {
            "id": B1,
            "timestamp": ts(DAY_2),
            "name": "smp-other",
            "userId": "smp-user-2",
            "sessionId": SESSION_B,
            "tags": ["x"],
            "environment": "staging",
        },
    ),
    event(
        "generation-create",
        {
            "id": GEN_B1,
            "traceId": B1,
            "name": "llm",
            "startTime": ts(DAY_2, 1),
            "endTime": ts(DAY_2, 2),
            "model": "claude-3-haiku",
            "usageDetails": {"input": 7, "output": 3, "total": 10},
            "environment": "staging",
        },
    ),
    event(
        "trace-create",
        {"id": C1, "timestamp": ts(DAY_3), "name": "smp-chat", "sessionId": SESSION_C},
    ),
]
WINDOW = {"fromTimestamp": ts(DAY_1, -3600), "toTimestamp": ts(DAY_3, 3600)}


DATABASE = "sessions_metrics_parity"  # on the ClickHouse HTTP server


@pytest.fixture
def client(engine_client: TestClient) -> TestClient:
    return engine_client


class Api(JsonApi):
    async def metrics(self, status: int = 200, **query: Any) -> Any:
        return await self.get("/api/public/metrics", status, query=json.dumps(query))


@pytest.fixture
async def api(client: TestClient) -> Api:
    """The client, once the module's data set is readable (ingested by the first test)."""
    await seed_once(client, f"/api/public/traces/{C1}", SEED)
    await wait_for(client, f"/api/public/traces/{A1}", lambda t: len(t["observations"]) == 2)
    await wait_for(client, f"/api/public/traces/{B1}", lambda t: len(t["observations"]) == 1)
    await wait_for(client, f"/api/public/traces/{A2}", lambda t: True)
    await wait_for(client, f"/api/public/traces/{C1}", lambda t: True)
    return Api(client)


def smp_sessions(body: dict[str, Any]) -> list[str]:
    return [i for i in ids(body) if i.startswith("smp-")]


# -- sessions -----------------------------------------------------------------------------------


async def test_session_list_is_newest_first_with_the_session_fields(api: Api) -> None:
    body = await api.get("/api/public/sessions")
    assert smp_sessions(body) == [SESSION_C, SESSION_B, SESSION_A]
    item = next(s for s in body["data"] if s["id"] == SESSION_A)
    assert item == {
        "id": SESSION_A,
        "createdAt": "2026-04-01T10:00:00.000Z",
        "projectId": PROJECT_ID,
        "environment": "production",
    }
    assert body["meta"] == {"page": 1, "limit": 50, "totalItems": 3, "totalPages": 1}


async def test_session_list_time_window_is_from_inclusive_to_exclusive(api: Api) -> None:
    from_b = await api.get("/api/public/sessions", fromTimestamp=ts(DAY_2))
    assert smp_sessions(from_b) == [SESSION_C, SESSION_B]
    before_b = await api.get("/api/public/sessions", toTimestamp=ts(DAY_2))
    assert smp_sessions(before_b) == [SESSION_A]


async def test_session_list_environment_filter(api: Api) -> None:
    staging = await api.get("/api/public/sessions", environment="staging")
    assert smp_sessions(staging) == [SESSION_B]
    both = await api.get_pairs(
        "/api/public/sessions", [("environment", "staging"), ("environment", "default")]
    )
    assert smp_sessions(both) == [SESSION_C, SESSION_B]


async def test_session_list_pagination_and_limits(api: Api) -> None:
    second = await api.get("/api/public/sessions", page="2", limit="1")
    assert ids(second) == [SESSION_B]
    assert second["meta"] == {"page": 2, "limit": 1, "totalItems": 3, "totalPages": 3}
    assert (await api.get("/api/public/sessions", page="9"))["data"] == []
    # Upstream's public pagination: page > 0, limit <= 100.
    assert (await api.get("/api/public/sessions", limit="100"))["meta"]["limit"] == 100
    for bad in ({"limit": "101"}, {"page": "0"}, {"limit": "x"}, {"fromTimestamp": "soon"}):
        body = await api.get("/api/public/sessions", status=400, **bad)
        assert body["error"] == "InvalidRequestError", bad


async def test_session_get_returns_its_traces_in_the_trace_schema(api: Api) -> None:
    session = await api.get(f"/api/public/sessions/{SESSION_A}")
    assert set(session) == {"id", "createdAt", "projectId", "environment", "traces"}
    assert (session["id"], session["projectId"]) == (SESSION_A, PROJECT_ID)
    assert session["createdAt"] == "2026-04-01T10:00:00.000Z"
    assert session["environment"] == "production"
    assert [t["id"] for t in session["traces"]] == [A1, A2]
    first = session["traces"][0]
    assert set(first) == TRACE_KEYS
    assert first["externalId"] is None and first["input"] == {"q": "hi"}
    assert first["sessionId"] == SESSION_A and first["tags"] == ["x", "y"]


async def test_session_get_not_found(api: Api) -> None:
    body = await api.get("/api/public/sessions/smp-missing", status=404)
    assert body == {
        "error": "LangfuseNotFoundError",
        "message": "Session not found within authorized project",
    }


# -- metrics v1: validation ---------------------------------------------------------------------


COUNT = {"measure": "count", "aggregation": "count"}


async def test_metrics_invalid_json_and_shapes(api: Api) -> None:
    body = await api.get("/api/public/metrics", status=400, query="{not json")
    assert body == {"error": "InvalidRequestError", "message": "Invalid JSON in query parameter"}
    for bad in ("", "[]", json.dumps({"view": "sessions", "metrics": [COUNT], **WINDOW})):
        body = await api.get("/api/public/metrics", status=400, query=bad)
        assert body["error"] == "InvalidRequestError", bad


async def test_metrics_time_range_must_be_ordered(api: Api) -> None:
    same = {"fromTimestamp": ts(DAY_1), "toTimestamp": ts(DAY_1)}
    body = await api.metrics(400, view="traces", metrics=[COUNT], **same)
    assert body["message"] == "fromTimestamp must be before toTimestamp"
    await api.metrics(400, view="traces", metrics=[COUNT], fromTimestamp=ts(DAY_1))


async def test_metrics_unknown_fields_are_named_in_upstreams_words(api: Api) -> None:
    base: dict[str, Any] = {"view": "traces", "metrics": [COUNT], **WINDOW}

    body = await api.metrics(400, **{**base, "dimensions": [{"field": "nope"}]})
    assert body["message"].startswith("Invalid dimension nope. Must be one of id, name")
    body = await api.metrics(
        400, **{**base, "metrics": [{"measure": "nope", "aggregation": "sum"}]}
    )
    assert body["message"].startswith("Invalid metric nope. Must be one of count,")
    body = await api.metrics(
        400, **{**base, "metrics": [{"measure": "uniqueUserIds", "aggregation": "sum"}]}
    )
    assert body["message"].startswith('Aggregation "sum" is not valid for measure "uniqueUserIds"')
    body = await api.metrics(400, **{**base, "orderBy": [{"field": "nope", "direction": "asc"}]})
    assert body["message"] == (
        "Invalid orderBy field: nope. Must be one of the dimension or metric fields."
    )
    condition = {"column": "nope", "operator": "=", "value": "a", "type": "string"}
    body = await api.metrics(400, **{**base, "filters": [condition]})
    assert body["message"].startswith("Invalid filter column nope. Must be one of id, name")
    await api.metrics(400, **{**base, "metrics": []})
    await api.metrics(400, **{**base, "config": {"row_limit": 1001}})
    await api.metrics(400, **{**base, "config": {"bins": 0}})
    await api.metrics(400, **{**base, "timeDimension": {"granularity": "year"}})


# -- metrics v1: results ------------------------------------------------------------------------


async def test_metrics_response_is_data_rows_keyed_aggregation_measure(api: Api) -> None:
    body = await api.metrics(
        view="traces",
        dimensions=[{"field": "name"}],
        metrics=[COUNT, {"measure": "uniqueUserIds", "aggregation": "uniq"}],
        filters=[{"column": "name", "operator": "=", "value": "smp-chat", "type": "string"}],
        **WINDOW,
    )
    assert body == {"data": [{"name": "smp-chat", "count_count": 3, "uniq_uniqueUserIds": 1}]}


async def test_metrics_name_filter_fallback(api: Api) -> None:
    # Upstream maps an unknown `…Name` filter column to the view's `name`.
    trace_name = {"column": "traceName", "operator": "=", "value": "smp-other", "type": "string"}
    body = await api.metrics(view="traces", metrics=[COUNT], filters=[trace_name], **WINDOW)
    assert body["data"] == [{"count_count": 1}]


async def test_metrics_day_buckets_are_dates_and_hours_are_datetimes(api: Api) -> None:
    smp = {"column": "name", "operator": "starts with", "value": "smp-", "type": "string"}
    days = await api.metrics(
        view="traces",
        metrics=[COUNT],
        filters=[smp],
        timeDimension={"granularity": "day"},
        fromTimestamp=ts(DAY_1),
        toTimestamp=ts(DAY_3, 60),
    )
    assert days["data"] == [
        {"time_dimension": "2026-04-01", "count_count": 2},
        {"time_dimension": "2026-04-02", "count_count": 1},
        {"time_dimension": "2026-04-03", "count_count": 1},
    ]
    hours = await api.metrics(
        view="traces",
        metrics=[COUNT],
        filters=[smp],
        timeDimension={"granularity": "auto"},  # one hour: minutes
        fromTimestamp=ts(DAY_2, -1800),
        toTimestamp=ts(DAY_2, 1800),
    )
    filled = [row for row in hours["data"] if row["count_count"]]
    assert filled == [{"time_dimension": "2026-04-02T10:00:00.000Z", "count_count": 1}]
    assert len(hours["data"]) > 50


async def test_metrics_observation_throughput_measures(api: Api) -> None:
    body = await api.metrics(
        view="observations",
        dimensions=[{"field": "providedModelName"}],
        metrics=[
            {"measure": "tokensPerSecond", "aggregation": "avg"},
            {"measure": "outputTokensPerSecond", "aggregation": "avg"},
        ],
        filters=[{"column": "traceId", "operator": "=", "value": A1, "type": "string"}],
        orderBy=[{"field": "providedModelName", "direction": "asc"}],
        **WINDOW,
    )
    by_model = {row["providedModelName"]: row for row in body["data"]}
    # 15 tokens in 2 s; 5 output tokens in the 1 s after the first token.
    assert by_model["gpt-4o"]["avg_tokensPerSecond"] == pytest.approx(7.5)
    assert by_model["gpt-4o"]["avg_outputTokensPerSecond"] == pytest.approx(5.0)
    # The span has no end: no rate rather than a division by zero.
    assert by_model[None]["avg_tokensPerSecond"] is None


# -- daily metrics ------------------------------------------------------------------------------


async def daily(api: Api, *pairs: tuple[str, str]) -> Any:
    return await api.get_pairs("/api/public/metrics/daily", list(pairs))


async def test_daily_metrics_fields_and_order(api: Api) -> None:
    body = await daily(api, ("fromTimestamp", ts(DAY_1, -60)), ("toTimestamp", ts(DAY_3, 60)))
    assert [d["date"] for d in body["data"]] == ["2026-04-03", "2026-04-02", "2026-04-01"]
    day_1 = body["data"][2]
    assert set(day_1) == {"date", "countTraces", "countObservations", "totalCost", "usage"}
    assert (day_1["countTraces"], day_1["countObservations"]) == (2, 2)
    usage = {u["model"]: u for u in day_1["usage"]}
    assert set(usage["gpt-4o"]) == {
        "model",
        "inputUsage",
        "outputUsage",
        "totalUsage",
        "countTraces",
        "countObservations",
        "totalCost",
    }
    assert (usage["gpt-4o"]["inputUsage"], usage["gpt-4o"]["outputUsage"]) == (10, 5)
    assert (usage["gpt-4o"]["totalUsage"], usage["gpt-4o"]["countTraces"]) == (15, 1)
    assert usage[None]["countObservations"] == 1
    assert day_1["totalCost"] == pytest.approx(usage["gpt-4o"]["totalCost"])
    assert body["data"][0] == {
        "date": "2026-04-03",
        "countTraces": 1,
        "countObservations": 0,
        "totalCost": 0.0,
        "usage": [],
    }


async def test_daily_metrics_filters(api: Api) -> None:
    window = (("fromTimestamp", ts(DAY_1, -60)), ("toTimestamp", ts(DAY_3, 60)))

    async def dates(*pairs: tuple[str, str]) -> list[str]:
        return [d["date"] for d in (await daily(api, *window, *pairs))["data"]]

    assert await dates(("traceName", "smp-other")) == ["2026-04-02"]
    assert await dates(("userId", "smp-user-1")) == ["2026-04-01"]
    assert await dates(("environment", "staging")) == ["2026-04-02"]
    # One `tags` value is a comma list (all of them), as are repeated values.
    assert await dates(("tags", "x")) == ["2026-04-02", "2026-04-01"]
    assert await dates(("tags", "x,y")) == ["2026-04-01"]
    assert await dates(("tags", "x"), ("tags", "y")) == ["2026-04-01"]
    only_day_2 = await daily(api, ("fromTimestamp", ts(DAY_2, -60)), ("toTimestamp", ts(DAY_2, 60)))
    (day_2,) = only_day_2["data"]
    assert day_2["date"] == "2026-04-02" and day_2["usage"][0]["model"] == "claude-3-haiku"


async def test_daily_metrics_pagination(api: Api) -> None:
    window = (("fromTimestamp", ts(DAY_1, -60)), ("toTimestamp", ts(DAY_3, 60)))
    body = await daily(api, *window, ("page", "2"), ("limit", "1"))
    assert [d["date"] for d in body["data"]] == ["2026-04-02"]
    assert body["meta"] == {"page": 2, "limit": 1, "totalItems": 3, "totalPages": 3}
    for bad in ({"limit": "101"}, {"page": "0"}, {"fromTimestamp": "soon"}):
        response = await api.get("/api/public/metrics/daily", status=400, **bad)
        assert response["error"] == "InvalidRequestError", bad
