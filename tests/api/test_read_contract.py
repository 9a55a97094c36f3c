"""The public read APIs against Langfuse's contract: fields, types, nulls, parameters, errors.

Every test reads one fixed data set, ingested once per engine (the telemetry store outlives
each test); tests that change data use ids of their own. Each test runs on the embedded engine
and on ClickHouse over HTTP: the read queries (filters especially) must work on both.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.api.conftest import Api, ids, seed_once, wait_for, wait_until_gone
from tests.conftest import PROJECT_ID, basic_auth

T = "rc-trace"  # a trace with three observations and one score of each data type
T2 = "rc-trace-2"  # a second trace in the same session, no model, no scores
T3 = "rc-trace-3"  # alone in its session, with a tag containing a comma
SESSION = "rc-session"
SESSION_3 = "rc-session-3"
GEN = f"{T}-gen"
SPAN = f"{T}-span"
EVENT = f"{T}-event"
# gpt-4o's built-in prices, per token.
GPT4O_INPUT = 2.5e-6
GPT4O_OUTPUT = 1e-5


def ts(offset_seconds: float = 0) -> str:
    moment = datetime(2026, 5, 1, 12, 0, tzinfo=UTC) + timedelta(seconds=offset_seconds)
    return moment.isoformat().replace("+00:00", "Z")


def event(type_: str, body: dict[str, Any], offset: float = 0) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "timestamp": ts(offset), "type": type_, "body": body}


SEED = [
    event(
        "trace-create",
        {
            "id": T,
            "timestamp": ts(0),
            "name": "rc-one",
            "userId": "rc-user-1",
            "sessionId": SESSION,
            "tags": ["alpha", "beta"],
            "metadata": {"tier": "gold", "n": 3},
            "input": {"q": 1},
            "output": "out",
            "release": "r1",
            "version": "v1",
            "environment": "production",
            "public": True,
        },
    ),
    event(
        "generation-create",
        {
            "id": GEN,
            "traceId": T,
            "name": "llm",
            "startTime": ts(1),
            "endTime": ts(3),
            "completionStartTime": ts(1.5),
            "model": "gpt-4o",
            "usageDetails": {"input": 100, "output": 50, "total": 150, "input_cached_tokens": 20},
            "metadata": {"long": "x" * 300, "short": 1},
            "input": [{"role": "user", "content": "hi"}],
            "output": {"role": "assistant", "content": "yo"},
            "level": "WARNING",
            "environment": "production",
        },
    ),
    event(
        "span-create",
        {
            "id": SPAN,
            "traceId": T,
            "name": "step",
            "startTime": ts(0.5),
            "parentObservationId": GEN,
            "environment": "production",
        },
    ),
    event(
        "event-create",
        {
            "id": EVENT,
            "traceId": T,
            "name": "mark",
            "startTime": ts(2),
            "environment": "production",
        },
    ),
    event(
        "trace-create",
        {
            "id": T2,
            "timestamp": ts(10),
            "name": "rc-two",
            "userId": "rc-user-2",
            "sessionId": SESSION,
        },
    ),
    event("span-create", {"id": f"{T2}-span", "traceId": T2, "name": "other", "startTime": ts(11)}),
    event(
        "trace-create",
        {
            "id": T3,
            "timestamp": ts(20),
            "name": "rc-three",
            "sessionId": SESSION_3,
            "tags": ["x,y"],
            "bookmarked": False,
        },
    ),
    *[
        event("score-create", body)
        for body in (
            {"id": f"{T}-num", "traceId": T, "name": "num", "value": 0.7, "metadata": {"m": "1"}},
            {"id": f"{T}-cat", "traceId": T, "observationId": GEN, "name": "cat", "value": "good"},
            {"id": f"{T}-bool", "traceId": T, "name": "ok", "value": 1, "dataType": "BOOLEAN"},
            {"id": f"{T}-text", "traceId": T, "name": "txt", "value": "free", "dataType": "TEXT"},
            {
                "id": f"{T}-corr",
                "traceId": T,
                "name": "fix",
                "value": "x",
                "dataType": "CORRECTION",
            },
            {"id": f"{T}-sess", "sessionId": SESSION, "name": "sess", "value": 2},
            {"id": f"{T}-run", "datasetRunId": "rc-run", "name": "run", "value": 3},
        )
    ],
]
SCORE_IDS = {f"{T}-{kind}" for kind in ("num", "cat", "bool", "text", "corr", "sess", "run")}


DATABASE = "read_contract"  # on the ClickHouse HTTP server


@pytest.fixture
def client(engine_client: TestClient) -> TestClient:
    return engine_client


@pytest.fixture
async def api(client: TestClient) -> Api:
    """The client, once the module's data set is readable (ingested by the first test)."""
    await seed_once(client, f"/api/public/traces/{T3}", SEED)
    await wait_for(
        client,
        f"/api/public/traces/{T}",
        lambda t: len(t["observations"]) == 3 and len(t["scores"]) == 4,
    )
    await wait_for(client, "/api/public/v2/scores", lambda b: len(b["data"]) >= len(SCORE_IDS))
    await wait_for(client, f"/api/public/traces/{T3}", lambda t: True)
    await wait_for(client, f"/api/public/traces/{T2}", lambda t: len(t["observations"]) == 1)
    return Api(client)


def filter_param(*conditions: dict[str, Any]) -> str:
    return json.dumps(list(conditions))


# -- traces -------------------------------------------------------------------------------------


async def test_trace_get_is_trace_with_full_details(api: Api) -> None:
    trace = await api.get(f"/api/public/traces/{T}")
    assert trace["htmlPath"] == f"/project/{PROJECT_ID}/traces/{T}"
    assert trace["timestamp"] == "2026-05-01T12:00:00.000Z"
    assert (trace["input"], trace["output"]) == ({"q": 1}, "out")
    assert trace["metadata"] == {"tier": "gold", "n": 3}
    assert trace["public"] is True and trace["tags"] == ["alpha", "beta"]
    # First observation start (0.5 s) to last end (3 s), not from the trace's own timestamp.
    assert trace["latency"] == 2.5
    assert trace["totalCost"] == pytest.approx(100 * GPT4O_INPUT + 50 * GPT4O_OUTPUT + 20 * 1.25e-6)
    assert [o["id"] for o in trace["observations"]] == [SPAN, GEN, EVENT]
    # `ScoreV1` has no CORRECTION variant; session and run scores are not the trace's.
    assert sorted(s["dataType"] for s in trace["scores"]) == [
        "BOOLEAN",
        "CATEGORICAL",
        "NUMERIC",
        "TEXT",
    ]
    text = next(s for s in trace["scores"] if s["dataType"] == "TEXT")
    assert text["stringValue"] == "free" and "value" not in text
    categorical = next(s for s in trace["scores"] if s["dataType"] == "CATEGORICAL")
    assert (categorical["value"], categorical["stringValue"]) == (0, "good")
    assert categorical["observationId"] == GEN and categorical["traceId"] == T


async def test_trace_get_field_groups(api: Api) -> None:
    core = await api.get(f"/api/public/traces/{T}", fields="core")
    assert core["id"] == T and core["name"] == "rc-one"
    # Excluded groups: empty arrays, -1 metrics, and what upstream renders for missing io.
    assert (core["observations"], core["scores"]) == ([], [])
    assert (core["latency"], core["totalCost"]) == (-1, -1)
    assert (core["input"], core["output"], core["metadata"]) == (None, None, {})

    metrics = await api.get(f"/api/public/traces/{T}", fields="core,metrics,bogus")
    assert metrics["latency"] == 2.5 and metrics["observations"] == []
    assert metrics["input"] is None

    scores = await api.get(f"/api/public/traces/{T}", fields="scores,io")
    assert len(scores["scores"]) == 4 and scores["input"] == {"q": 1}
    assert scores["observations"] == [] and scores["latency"] == -1


async def test_trace_get_not_found_names_the_trace(api: Api) -> None:
    body = await api.get("/api/public/traces/rc-missing", status=404)
    assert body == {
        "error": "LangfuseNotFoundError",
        "message": "Trace rc-missing not found within authorized project",
    }


async def test_trace_list_items_and_field_groups(api: Api) -> None:
    body = await api.get("/api/public/traces", userId="rc-user-1")
    assert body["meta"] == {"page": 1, "limit": 50, "totalItems": 1, "totalPages": 1}
    item = body["data"][0]
    assert item["observations"] == [SPAN, GEN, EVENT]
    # Ids of aggregatable scores only (NUMERIC, BOOLEAN, CATEGORICAL), as upstream's list.
    assert sorted(item["scores"]) == [f"{T}-bool", f"{T}-cat", f"{T}-num"]
    assert item["latency"] == 2.5 and item["totalCost"] > 0
    assert item["externalId"] is None and item["htmlPath"].endswith(f"/traces/{T}")

    # An unknown group is dropped, not refused; excluded groups keep their keys.
    core = (await api.get("/api/public/traces", userId="rc-user-1", fields="core,bogus"))["data"]
    assert core[0]["observations"] == [] and core[0]["scores"] == []
    assert (core[0]["latency"], core[0]["totalCost"]) == (-1, -1)
    assert (core[0]["input"], core[0]["output"], core[0]["metadata"]) == (None, None, {})


async def test_trace_list_order_by(api: Api) -> None:
    session = {"sessionId": SESSION}
    assert ids(await api.get("/api/public/traces", **session)) == [T2, T]
    assert ids(await api.get("/api/public/traces", orderBy="timestamp.asc", **session)) == [T, T2]
    # Upstream upper-cases the direction; public and bookmarked are orderable.
    assert ids(await api.get("/api/public/traces", orderBy="public.DESC", **session)) == [T, T2]
    assert ids(await api.get("/api/public/traces", orderBy="public.asc", **session)) == [T2, T]
    await api.get("/api/public/traces", orderBy="bookmarked.asc", **session)
    body = await api.get("/api/public/traces", status=400, orderBy="cost.asc")
    assert body["error"] == "InvalidRequestError"


async def test_trace_list_tags_are_whole_values(api: Api) -> None:
    # Repeated `tags` are each one tag, as upstream takes them: a comma is part of the tag.
    def tags(*values: str) -> Any:
        return api.get_pairs("/api/public/traces", [("tags", value) for value in values])

    assert ids(await tags("x,y", "x,y")) == [T3]
    assert ids(await tags("alpha", "beta")) == [T]
    # A lone value is a comma list (upstream's array filter splits it).
    assert ids(await tags("alpha,beta")) == [T]
    assert ids(await tags("x,y")) == []


async def test_trace_list_filter_parameter(api: Api) -> None:
    def traces(*conditions: dict[str, Any], **params: str) -> Any:
        return api.get("/api/public/traces", filter=filter_param(*conditions), **params)

    user = {"type": "string", "column": "userId", "operator": "=", "value": "rc-user-1"}
    assert ids(await traces(user)) == [T]
    # The filter takes precedence over the parameter on the same column.
    assert ids(await traces(user, userId="rc-user-2")) == [T]
    tags = {"type": "arrayOptions", "column": "tags", "operator": "any of", "value": ["x,y"]}
    assert ids(await traces(tags)) == [T3]
    gold = {
        "type": "stringObject",
        "column": "metadata",
        "key": "tier",
        "operator": "=",
        "value": "gold",
    }
    assert ids(await traces(gold)) == [T]
    many = {"type": "numberObject", "column": "metadata", "key": "n", "operator": ">=", "value": 3}
    assert ids(await traces(many)) == [T]
    in_session = {
        "type": "stringOptions",
        "column": "sessionId",
        "operator": "any of",
        "value": [SESSION],
    }
    costly = {"type": "number", "column": "totalCost", "operator": ">", "value": 0}
    assert ids(await traces(in_session, costly)) == [T]
    # A trace without observations has a total cost of 0, so it matches `< x`.
    cheap = {"type": "number", "column": "totalCost", "operator": "<", "value": 0.0001}
    assert ids(await traces(cheap, {**in_session, "value": [SESSION, SESSION_3]})) == [T3, T2]
    warned = {"type": "number", "column": "warningCount", "operator": ">=", "value": 1}
    assert ids(await traces(warned)) == [T]
    later = {"type": "datetime", "column": "timestamp", "operator": ">=", "value": ts(5)}
    assert ids(await traces(later, in_session)) == [T2]
    unbookmarked = {"type": "boolean", "column": "bookmarked", "operator": "=", "value": False}
    assert T3 in ids(await traces(unbookmarked))

    assert (await traces({**user, "column": "nope"}, status=400))["error"] == "InvalidRequestError"
    bad_operator = {**user, "operator": "any of"}
    assert (await traces(bad_operator, status=400))["error"] == "InvalidRequestError"
    body = await api.get("/api/public/traces", status=400, filter="[not json")
    assert body["message"] == "Invalid JSON in filter parameter"


# -- observations -------------------------------------------------------------------------------


async def test_observation_v1_usage_costs_and_prices(api: Api) -> None:
    generation = await api.get(f"/api/public/observations/{GEN}")
    # Every `input*` key counts as input, as upstream's reduceUsageOrCostDetails.
    assert generation["usage"]["input"] == 120 and generation["promptTokens"] == 120
    assert generation["usage"]["output"] == 50 and generation["completionTokens"] == 50
    assert generation["usage"]["total"] == 150 and generation["usage"]["unit"] == "TOKENS"
    costs = generation["costDetails"]
    assert generation["calculatedInputCost"] == pytest.approx(
        costs["input"] + costs["input_cached_tokens"]
    )
    assert generation["calculatedOutputCost"] == pytest.approx(costs["output"])
    assert generation["calculatedTotalCost"] == pytest.approx(costs["total"])
    # The matched model's prices.
    assert generation["modelId"]
    assert generation["inputPrice"] == pytest.approx(GPT4O_INPUT)
    assert generation["outputPrice"] == pytest.approx(GPT4O_OUTPUT)
    assert generation["latency"] == 2.0 and generation["timeToFirstToken"] == 0.5
    assert generation["level"] == "WARNING" and generation["promptVersion"] is None

    span = await api.get(f"/api/public/observations/{SPAN}")
    assert span["usageDetails"] == {} and span["costDetails"] == {}
    assert (span["calculatedInputCost"], span["calculatedOutputCost"]) == (None, None)
    assert span["calculatedTotalCost"] == 0  # upstream's `total ?? 0`
    assert (span["inputPrice"], span["modelId"], span["endTime"], span["latency"]) == (
        None,
        None,
        None,
        None,
    )

    body = await api.get("/api/public/observations/rc-missing", status=404)
    assert body == {
        "error": "LangfuseNotFoundError",
        "message": "Observation not found within authorized project",
    }


async def test_observations_v1_list_filters(api: Api) -> None:
    body = await api.get("/api/public/observations", traceId=T)
    assert ids(body) == [EVENT, GEN, SPAN]  # newest start first
    assert body["meta"] == {"page": 1, "limit": 50, "totalItems": 3, "totalPages": 1}
    assert ids(await api.get("/api/public/observations", traceId=T, type="GENERATION")) == [GEN]
    assert ids(await api.get("/api/public/observations", traceId=T, level="WARNING")) == [GEN]
    assert ids(await api.get("/api/public/observations", parentObservationId=GEN)) == [SPAN]
    assert ids(await api.get("/api/public/observations", userId="rc-user-2")) == [f"{T2}-span"]

    slow = {"type": "number", "column": "latency", "operator": ">", "value": 1}
    in_trace = {"type": "string", "column": "traceId", "operator": "=", "value": T}
    assert ids(await api.get("/api/public/observations", filter=filter_param(slow))) == [GEN]
    user = {"type": "string", "column": "userId", "operator": "=", "value": "rc-user-1"}
    step = {"type": "string", "column": "name", "operator": "starts with", "value": "st"}
    assert ids(await api.get("/api/public/observations", filter=filter_param(user, step))) == [SPAN]
    model = {"type": "stringOptions", "column": "model", "operator": "any of", "value": ["gpt-4o"]}
    assert ids(await api.get("/api/public/observations", filter=filter_param(model, in_trace))) == [
        GEN
    ]
    short = {
        "type": "stringObject",
        "column": "metadata",
        "key": "short",
        "operator": "=",
        "value": "1",
    }
    assert ids(await api.get("/api/public/observations", filter=filter_param(short))) == [GEN]
    assert (await api.get("/api/public/observations", status=400, level="LOUD"))["error"] == (
        "InvalidRequestError"
    )


async def test_page_limits_are_upstreams(api: Api) -> None:
    # Page-based lists take at most 100 per page (upstream's publicApiPaginationZod), the v2
    # cursor list of observations 1000.
    for path in ("/api/public/traces", "/api/public/observations"):
        assert (await api.get(path, limit="100"))["meta"]["limit"] == 100
        body = await api.get(path, status=400, limit="101")
        assert body["error"] == "InvalidRequestError", path
    assert "data" in await api.get("/api/public/v2/observations", limit="1000")
    await api.get("/api/public/v2/observations", status=400, limit="1001")


async def test_observations_v2_field_groups_and_price_fields(api: Api) -> None:
    body = await api.get("/api/public/v2/observations", traceId=T)
    assert ids(body) == [EVENT, GEN, SPAN] and body["meta"] == {}
    generation = body["data"][1]
    # `modelId` and the prices are required (nullable): null without the `model` group.
    assert {k: generation[k] for k in ("modelId", "inputPrice", "outputPrice", "totalPrice")} == {
        "modelId": None,
        "inputPrice": None,
        "outputPrice": None,
        "totalPrice": None,
    }
    assert generation["isRootObservation"] is True and generation["userId"] == "rc-user-1"
    assert "input" not in generation and "usageDetails" not in generation

    body = await api.get("/api/public/v2/observations", traceId=T, fields="model,io,unknown")
    generation = body["data"][1]
    assert generation["modelId"] == generation["internalModelId"] and generation["modelId"]
    assert generation["providedModelName"] == generation["model"] == "gpt-4o"
    # Prices are decimal strings.
    assert float(generation["inputPrice"]) == pytest.approx(GPT4O_INPUT)
    assert "e" not in generation["inputPrice"].lower()
    assert generation["input"] == '[{"role":"user","content":"hi"}]'
    assert "name" not in generation  # `basic` is only a default

    metadata = await api.get("/api/public/v2/observations", traceId=T, fields="metadata")
    long = metadata["data"][1]["metadata"]["long"]
    assert len(long) < 300 and long.endswith("...")
    expanded = await api.get(
        "/api/public/v2/observations", traceId=T, fields="metadata", expandMetadata="long"
    )
    assert expanded["data"][1]["metadata"]["long"] == "x" * 300

    roots = await api.get("/api/public/v2/observations", traceId=T, parentObservationId="")
    assert ids(roots) == [EVENT, GEN]
    not_root = {"type": "boolean", "column": "isRootObservation", "operator": "=", "value": False}
    assert ids(await api.get("/api/public/v2/observations", filter=filter_param(not_root))) == [
        SPAN
    ]
    assert ids(await api.get("/api/public/v2/observations", sessionId=SESSION, limit="1")) == [
        f"{T2}-span"
    ]
    await api.get("/api/public/v2/observations", status=400, parseIoAsJson="true")
    await api.get("/api/public/v2/observations", status=400, cursor="not-a-cursor")


# -- sessions -----------------------------------------------------------------------------------


async def test_sessions(api: Api) -> None:
    session = await api.get(f"/api/public/sessions/{SESSION}")
    assert session["id"] == SESSION and session["projectId"] == PROJECT_ID
    assert session["createdAt"] == "2026-05-01T12:00:00.000Z"
    assert session["environment"] == "production"
    assert [t["id"] for t in session["traces"]] == [T, T2]
    assert session["traces"][0]["input"] == {"q": 1}

    listed = await api.get("/api/public/sessions", fromTimestamp=ts(15))
    assert listed["data"] == [
        {
            "id": SESSION_3,
            "createdAt": "2026-05-01T12:00:20.000Z",
            "projectId": PROJECT_ID,
            "environment": "default",
        }
    ]
    assert listed["meta"] == {"page": 1, "limit": 50, "totalItems": 1, "totalPages": 1}

    body = await api.get("/api/public/sessions/rc-missing", status=404)
    assert body == {
        "error": "LangfuseNotFoundError",
        "message": "Session not found within authorized project",
    }


# -- scores -------------------------------------------------------------------------------------


async def test_scores_v1_routes_serve_trace_scores(api: Api) -> None:
    body = await api.get("/api/public/scores", traceTags="alpha")
    assert sorted(ids(body)) == sorted(f"{T}-{k}" for k in ("num", "cat", "bool", "text"))
    assert all(item["trace"]["userId"] == "rc-user-1" for item in body["data"])
    numeric = await api.get(f"/api/public/scores/{T}-num")
    assert numeric["value"] == 0.7 and numeric["dataType"] == "NUMERIC"
    await api.get(f"/api/public/scores/{T}-sess", status=404)
    await api.get(f"/api/public/scores/{T}-corr", status=404)


async def test_scores_v2_list(api: Api) -> None:
    body = await api.get("/api/public/v2/scores", name="num")
    item = body["data"][0]
    assert item["trace"] == {
        "userId": "rc-user-1",
        "tags": ["alpha", "beta"],
        "environment": "production",
        "sessionId": SESSION,
    }
    assert item["metadata"] == {"m": "1"} and item["comment"] is None

    assert set(ids(await api.get("/api/public/v2/scores"))) >= SCORE_IDS
    session_score = (await api.get("/api/public/v2/scores", sessionId=SESSION))["data"]
    assert [(s["id"], s["trace"]) for s in session_score] == [(f"{T}-sess", None)]
    correction = (await api.get("/api/public/v2/scores", dataType="CORRECTION"))["data"][0]
    assert (correction["value"], correction["stringValue"]) == (0, "x")

    # `fields=score` leaves the trace out (null) and forbids the trace filters.
    only = await api.get("/api/public/v2/scores", name="num", fields="score")
    assert only["data"][0]["trace"] is None
    await api.get("/api/public/v2/scores", status=400, traceTags="alpha", fields="score")
    await api.get("/api/public/v2/scores", status=400, fields="trace")

    # `operator` applies to `value`; multiple observation ids; trace tags.
    above = set(ids(await api.get("/api/public/v2/scores", operator=">", value="1.5")))
    assert above >= {f"{T}-sess", f"{T}-run"} and f"{T}-num" not in above
    assert ids(await api.get("/api/public/v2/scores", operator="<=", value="0.7", name="num")) == [
        f"{T}-num"
    ]
    assert ids(await api.get("/api/public/v2/scores", observationId=f"{GEN},other")) == [f"{T}-cat"]
    tagged = set(ids(await api.get("/api/public/v2/scores", traceTags="beta")))
    assert tagged == {f"{T}-{k}" for k in ("num", "cat", "bool", "text", "corr")}
    metadata = {
        "type": "stringObject",
        "column": "metadata",
        "key": "m",
        "operator": "=",
        "value": "1",
    }
    assert ids(await api.get("/api/public/v2/scores", filter=filter_param(metadata))) == [
        f"{T}-num"
    ]

    # Page size is capped at 100; bad enum values are 400s.
    assert (await api.get("/api/public/v2/scores", limit="100"))["meta"]["limit"] == 100
    await api.get("/api/public/v2/scores", status=400, limit="101")
    await api.get("/api/public/v2/scores", status=400, operator="~")
    await api.get("/api/public/v2/scores", status=400, source="HUMAN")


async def test_scores_v3_filters(api: Api) -> None:
    async def v3_ids(**params: str) -> list[str]:
        return ids(await api.get("/api/public/v3/scores", **params))

    assert set(await v3_ids(fields="core")) >= SCORE_IDS
    assert set(await v3_ids(name="num,ok")) == {f"{T}-bool", f"{T}-num"}
    assert set(await v3_ids(dataType="numeric,boolean", traceId=T)) == {f"{T}-num", f"{T}-bool"}
    assert await v3_ids(dataType="BOOLEAN", value="true", traceId=T) == [f"{T}-bool"]
    assert await v3_ids(dataType="CATEGORICAL", value="good,bad") == [f"{T}-cat"]
    assert await v3_ids(dataType="NUMERIC", value="0.7", traceId=T) == [f"{T}-num"]
    assert await v3_ids(traceId=T, observationId=GEN) == [f"{T}-cat"]
    assert await v3_ids(experimentId="rc-run") == [f"{T}-run"]
    assert set(await v3_ids(source="api", id=f"{T}-sess,{T}-run")) == {f"{T}-sess", f"{T}-run"}

    for params in (
        {"observationId": GEN},
        {"traceId": T, "sessionId": SESSION},
        {"userId": "rc-user-1"},
        {"traceTags": "alpha"},
        {"value": "1"},
        {"dataType": "TEXT", "value": "free"},
        {"dataType": "BOOLEAN", "value": "yes"},
        {"dataType": "NUMERIC", "value": "many"},
        {"valueMin": "1", "dataType": "BOOLEAN"},
        {"dataType": "NOPE"},
        {"fields": "trace"},
        {"limit": "101"},
    ):
        body = await api.get("/api/public/v3/scores", status=400, **params)
        assert body["error"] == "InvalidRequestError", params

    subject = (await api.get("/api/public/v3/scores", id=f"{T}-cat", fields="subject"))["data"]
    assert subject[0]["subject"] == {"kind": "observation", "id": GEN, "traceId": T}
    assert "comment" not in subject[0]


# -- metrics ------------------------------------------------------------------------------------


async def test_daily_metrics_count_unmodelled_observations(api: Api) -> None:
    body = await api.get("/api/public/metrics/daily", traceName="rc-one")
    assert body["meta"] == {"page": 1, "limit": 50, "totalItems": 1, "totalPages": 1}
    (day,) = body["data"]
    assert day["date"] == "2026-05-01" and day["countTraces"] == 1
    assert day["countObservations"] == 3
    by_model = {u["model"]: u for u in day["usage"]}
    # Spans and events have no model: one entry with a null model, as upstream's.
    assert by_model[None]["countObservations"] == 2 and by_model[None]["totalUsage"] == 0
    assert by_model["gpt-4o"]["inputUsage"] == 120 and by_model["gpt-4o"]["countTraces"] == 1
    assert day["totalCost"] == pytest.approx(by_model["gpt-4o"]["totalCost"])


async def test_metrics_v1_query_validation(api: Api) -> None:
    query = {
        "view": "traces",
        "dimensions": [{"field": "name"}],
        "metrics": [{"measure": "count", "aggregation": "count"}],
        "filters": [{"column": "userId", "operator": "=", "value": "rc-user-1", "type": "string"}],
        "fromTimestamp": ts(-3600),
        "toTimestamp": ts(3600),
    }
    body = await api.get("/api/public/metrics", query=json.dumps(query))
    assert body == {"data": [{"name": "rc-one", "count_count": 1}]}
    for bad in ("", "{not json", json.dumps({**query, "view": "nope"}), json.dumps([query])):
        body = await api.get("/api/public/metrics", status=400, query=bad)
        assert body["error"] == "InvalidRequestError"


async def test_deleted_trace_leaves_every_read(client: TestClient) -> None:
    trace_id = f"rc-deleted-{uuid.uuid4().hex[:8]}"
    batch = [
        event("trace-create", {"id": trace_id, "name": "gone", "userId": trace_id}),
        event("span-create", {"id": f"{trace_id}-s", "traceId": trace_id, "startTime": ts(1)}),
    ]
    response = await client.post(
        "/api/public/ingestion", json={"batch": batch}, headers=basic_auth()
    )
    assert response.status == 207
    await wait_for(client, f"/api/public/traces/{trace_id}", lambda t: len(t["observations"]) == 1)
    response = await client.delete(f"/api/public/traces/{trace_id}", headers=basic_auth())
    assert response.status == 200
    await wait_until_gone(client, f"/api/public/traces/{trace_id}")
    listed = await client.get(
        "/api/public/traces", headers=basic_auth(), params={"userId": trace_id}
    )
    assert (await listed.json())["data"] == []


async def test_the_sdks_generated_client_parses_the_reads(api: Api) -> None:
    """langfuse 5's generated client (built from the contract) parses every field group."""
    from langfuse.api import AsyncLangfuseAPI

    from tests.conftest import PUBLIC_KEY, SECRET_KEY

    sdk = AsyncLangfuseAPI(
        base_url=str(api.client.make_url("")).rstrip("/"),
        username=PUBLIC_KEY,
        password=SECRET_KEY,
    )
    observations = await sdk.observations.get_many(
        trace_id=T,
        fields="core,basic,time,io,metadata,model,usage,prompt,metrics,trace_context",
    )
    generation = next(o for o in observations.data if o.id == GEN)
    assert generation.model == "gpt-4o" and generation.model_id
    assert float(generation.input_price or "nan") == pytest.approx(GPT4O_INPUT)
    assert generation.usage_details == {
        "input": 100,
        "output": 50,
        "total": 150,
        "input_cached_tokens": 20,
    }
    assert generation.start_time == datetime(2026, 5, 1, 12, 0, 1, tzinfo=UTC)
    assert generation.latency == 2.0 and generation.trace_name == "rc-one"

    scores = await sdk.scores.get_many(trace_id=T, fields="details,subject,annotation")
    by_type = {s.data_type: s for s in scores.data}
    assert set(by_type) == {"NUMERIC", "CATEGORICAL", "BOOLEAN", "TEXT", "CORRECTION"}
    assert by_type["BOOLEAN"].value is True and by_type["CATEGORICAL"].value == "good"
    assert by_type["NUMERIC"].metadata == {"m": "1"}
    assert scores.meta.limit == 50 and scores.meta.cursor is None

    query = {
        "view": "observations",
        "metrics": [{"measure": "count", "aggregation": "count"}],
        "dimensions": [{"field": "type"}],
        "filters": [{"column": "traceId", "operator": "=", "value": T, "type": "string"}],
        "fromTimestamp": ts(-3600),
        "toTimestamp": ts(3600),
    }
    metrics = await sdk.metrics.metrics(query=json.dumps(query))
    assert sorted((row["type"], row["count_count"]) for row in metrics.data) == [
        ("EVENT", 1),
        ("GENERATION", 1),
        ("SPAN", 1),
    ]
