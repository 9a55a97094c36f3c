"""The trace and observation read APIs checked against upstream Langfuse, one test per rule:
parameters and their validation, response fields (null vs missing, number formats), ordering,
cursors and the delete endpoints. Rules already covered by `test_read_contract.py` (field
groups and their -1/[] placeholders, the 404 bodies, filters, page limits) are not repeated.

One data set is ingested once per engine; every test runs on the embedded engine and on
ClickHouse over HTTP.

Deliberate differences from upstream, kept on purpose:
- A query parameter upstream's schema refuses is a 400 `{"message": "Invalid request data:
  <what>", "error": "InvalidRequestError"}`: one readable message where upstream returns zod's
  issue list under `error`. Errors upstream raises itself keep its words ("Invalid cursor
  format", "Invalid JSON in filter parameter", the not-found messages).
- `limit=0` on the page-based lists (traces, v1 observations) is a 400: upstream runs it and
  answers an empty page with `totalPages` null (a division by zero); the v2 cursor list takes
  0 as upstream does.
- v1 observations have no `usagePricingTierId`: only the tier's name is stored
  (`usagePricingTierName`).
- A v2 cursor that decodes to JSON other than an object also reads "Invalid cursor format"
  (upstream: a schema error).
- The v1 observation list also honours `sessionId` and `isRootObservation` (v2 parameters
  upstream's v1 schema does not know, and so ignores).
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.api.conftest import Api as JsonApi
from tests.api.conftest import ids, seed_once, wait_for
from tests.conftest import basic_auth

START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
TA, TB = "tp-a", "tp-b"
GEN, SPAN, EVENT = f"{TA}-gen", f"{TA}-span", f"{TA}-event"
SPAN_B = f"{TB}-span"
SCORE_PROD, SCORE_STAGING = f"{TA}-score-prod", f"{TA}-score-staging"


def ts(seconds: float = 0) -> str:
    return (START + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def event(type_: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "timestamp": ts(), "type": type_, "body": body}


SEED = [
    event(
        "trace-create",
        {
            "id": TA,
            "timestamp": ts(0),
            "name": "tp-one",
            "userId": "tp-user",
            "environment": "production",
            "tags": ["tp-x", "tp-y"],
        },
    ),
    event(
        "generation-create",
        {
            "id": GEN,
            "traceId": TA,
            "name": "llm",
            "startTime": ts(1),
            "endTime": ts(2),
            "model": "gpt-4o",
            "usageDetails": {"input": 10, "output": 5, "total": 15},
            "environment": "production",
        },
    ),
    # An observation of the trace in another environment than the trace's.
    event(
        "span-create",
        {
            "id": SPAN,
            "traceId": TA,
            "name": "step",
            "startTime": ts(3),
            "endTime": ts(5),
            "environment": "staging",
        },
    ),
    event(
        "event-create",
        {"id": EVENT, "traceId": TA, "name": "mark", "startTime": ts(4)},
    ),
    event(
        "score-create",
        {
            "id": SCORE_PROD,
            "traceId": TA,
            "name": "q",
            "value": 1,
            "environment": "production",
        },
    ),
    event(
        "score-create",
        {
            "id": SCORE_STAGING,
            "traceId": TA,
            "name": "q",
            "value": 0,
            "environment": "staging",
        },
    ),
    event(
        "trace-create",
        {"id": TB, "timestamp": ts(10), "name": "tp-two", "userId": "tp-user-b"},
    ),
    event("span-create", {"id": SPAN_B, "traceId": TB, "name": "other", "startTime": ts(11)}),
]


DATABASE = "traces_observations_parity"  # on the ClickHouse HTTP server


@pytest.fixture
def client(engine_client: TestClient) -> TestClient:
    return engine_client


class Api(JsonApi):
    async def delete(self, path: str, status: int = 200, body: Any = None) -> Any:
        response = await self.client.delete(path, headers=basic_auth(), json=body)
        result = await response.json()
        assert response.status == status, result
        return result


@pytest.fixture
async def api(client: TestClient) -> Api:
    """The client, once the module's data set is readable (ingested by the first test)."""
    await seed_once(client, f"/api/public/traces/{TB}", SEED)
    await wait_for(
        client,
        f"/api/public/traces/{TA}",
        lambda t: len(t["observations"]) == 3 and len(t["scores"]) == 2,
    )
    await wait_for(client, f"/api/public/traces/{TB}", lambda t: len(t["observations"]) == 1)
    return Api(client)


# -- trace list ---------------------------------------------------------------------------------


async def test_trace_list_environment_also_narrows_observations_and_scores(api: Api) -> None:
    # Upstream applies the environment filter to the trace and to the observation and score
    # aggregates of each listed trace.
    everything = await api.get("/api/public/traces", userId="tp-user")
    (item,) = everything["data"]
    assert sorted(item["observations"]) == sorted([GEN, SPAN, EVENT])
    assert sorted(item["scores"]) == [SCORE_PROD, SCORE_STAGING]
    assert item["latency"] == 4.0  # first start (1 s) to last end (5 s)

    production = await api.get("/api/public/traces", userId="tp-user", environment="production")
    (item,) = production["data"]
    # The event has the default environment, the span staging: only the generation is left.
    assert item["observations"] == [GEN] and item["scores"] == [SCORE_PROD]
    assert item["latency"] == 1.0

    condition = {
        "type": "stringOptions",
        "column": "environment",
        "operator": "any of",
        "value": ["production"],
    }
    filtered = await api.get("/api/public/traces", userId="tp-user", filter=json.dumps([condition]))
    (item,) = filtered["data"]
    assert item["observations"] == [GEN] and item["scores"] == [SCORE_PROD]


async def test_trace_list_order_by_needs_a_known_field_and_direction(api: Api) -> None:
    body = await api.get("/api/public/traces", orderBy="name.asc", userId="tp-user")
    assert ids(body) == [TA]
    for bad in ("name", "name.up", "nope.asc", "Name.asc"):
        response = await api.get("/api/public/traces", status=400, orderBy=bad)
        assert response["error"] == "InvalidRequestError", bad


# -- single trace -------------------------------------------------------------------------------


async def test_trace_get_observation_prices_default_to_zero(api: Api) -> None:
    # Upstream's single-trace read falls back to a price of 0 where the observation endpoints
    # answer null.
    trace = await api.get(f"/api/public/traces/{TA}")
    by_id = {o["id"]: o for o in trace["observations"]}
    span = by_id[SPAN]
    assert (span["inputPrice"], span["outputPrice"], span["totalPrice"]) == (0, 0, 0)
    generation = by_id[GEN]
    assert generation["inputPrice"] > 0 and generation["outputPrice"] > 0
    # gpt-4o has no `total` price.
    assert generation["totalPrice"] == 0

    alone = await api.get(f"/api/public/observations/{SPAN}")
    assert (alone["inputPrice"], alone["outputPrice"], alone["totalPrice"]) == (None, None, None)


async def test_trace_get_observations_are_in_start_order(api: Api) -> None:
    trace = await api.get(f"/api/public/traces/{TA}")
    assert [o["id"] for o in trace["observations"]] == [GEN, SPAN, EVENT]
    # Total cost sums every observation's cost, whatever its environment.
    assert trace["totalCost"] == pytest.approx(10 * 2.5e-6 + 5 * 1e-5)


# -- deletes ------------------------------------------------------------------------------------


async def test_delete_traces_body_is_strict(api: Api) -> None:
    path = "/api/public/traces"
    body = await api.delete(path, 400, {"traceIds": []})
    assert body["error"] == "InvalidRequestError"
    assert "At least 1 traceId is required." in body["message"]
    for bad in ({}, {"traceIds": "tp-x"}, {"traceIds": [1]}, {"traceIds": ["tp-x"], "x": 1}, []):
        response = await api.delete(path, 400, bad)
        assert response["error"] == "InvalidRequestError", bad


async def test_delete_traces_removes_every_listed_trace(api: Api) -> None:
    prefix = f"tp-del-{uuid.uuid4().hex[:8]}"
    doomed = [f"{prefix}-1", f"{prefix}-2"]
    batch = [event("trace-create", {"id": i, "userId": prefix}) for i in doomed]
    response = await api.client.post(
        "/api/public/ingestion", json={"batch": batch}, headers=basic_auth()
    )
    assert response.status == 207
    await wait_for(api.client, "/api/public/traces", lambda b: len(b["data"]) == 2, userId=prefix)
    body = await api.delete("/api/public/traces", body={"traceIds": doomed})
    assert body == {"message": "Traces deleted successfully"}
    for _ in range(100):
        listed = await api.get("/api/public/traces", userId=prefix)
        if not listed["data"]:
            break
        await asyncio.sleep(0.05)
    assert listed["data"] == [] and listed["meta"]["totalItems"] == 0


async def test_delete_one_trace_answers_the_same_for_an_unknown_id(api: Api) -> None:
    # Upstream queues the deletion without looking the trace up.
    body = await api.delete("/api/public/traces/tp-never-existed")
    assert body == {"message": "Trace deleted successfully"}


# -- observations v1 ----------------------------------------------------------------------------


async def test_observation_v1_usage_holds_token_counts_only(api: Api) -> None:
    generation = await api.get(f"/api/public/observations/{GEN}")
    assert generation["usage"] == {"input": 10, "output": 5, "total": 15, "unit": "TOKENS"}
    # Upstream's transform drops `totalCost`; the cost is `calculatedTotalCost`.
    assert "totalCost" not in generation
    assert generation["calculatedTotalCost"] == pytest.approx(10 * 2.5e-6 + 5 * 1e-5)
    listed = await api.get("/api/public/observations", traceId=TA, type="GENERATION")
    assert listed["data"] == [generation]


async def test_observation_type_is_an_exact_enum_value(api: Api) -> None:
    for path in ("/api/public/observations", "/api/public/v2/observations"):
        assert ids(await api.get(path, traceId=TA, type="SPAN")) == [SPAN]
        body = await api.get(path, status=400, type="span")
        assert body["error"] == "InvalidRequestError", path
        await api.get(path, status=400, level="warning")


async def test_observation_v1_start_time_window_is_from_inclusive_to_exclusive(api: Api) -> None:
    body = await api.get(
        "/api/public/observations", traceId=TA, fromStartTime=ts(3), toStartTime=ts(4)
    )
    assert ids(body) == [SPAN]


async def test_observation_v1_ignores_an_empty_parent_observation_id(api: Api) -> None:
    # Upstream's v1 filter builder skips empty values; v2 reads one as "no parent" (its
    # contract), see test_read_contract.
    body = await api.get("/api/public/observations", traceId=TA, parentObservationId="")
    assert sorted(ids(body)) == sorted([GEN, SPAN, EVENT])


# -- observations v2 ----------------------------------------------------------------------------


async def test_v2_cursor_walks_the_list_newest_first(api: Api) -> None:
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        extra = {"cursor": cursor} if cursor else {}
        page = await api.get("/api/public/v2/observations", userId="tp-user", limit="1", **extra)
        seen.extend(ids(page))
        cursor = page["meta"].get("cursor")
        if cursor is None:
            assert page["meta"] == {}
            break
    assert seen == [EVENT, SPAN, GEN]
    whole = await api.get("/api/public/v2/observations", userId="tp-user", limit="3")
    assert ids(whole) == seen and whole["meta"] == {}


async def test_v2_limit_zero_is_an_empty_page(api: Api) -> None:
    body = await api.get("/api/public/v2/observations", traceId=TA, limit="0")
    assert body == {"data": [], "meta": {}}
    refused = await api.get("/api/public/v2/observations", status=400, limit="-1")
    assert refused["error"] == "InvalidRequestError"


async def test_v2_cursor_that_is_not_base64_json_is_an_invalid_format(api: Api) -> None:
    body = await api.get("/api/public/v2/observations", status=400, cursor="not-a-cursor")
    assert body == {"message": "Invalid cursor format", "error": "InvalidRequestError"}
    # Valid JSON without the cursor's keys fails the cursor's schema.
    wrong = base64.b64encode(json.dumps({"lastId": "x"}).encode()).decode()
    body = await api.get("/api/public/v2/observations", status=400, cursor=wrong)
    assert body["error"] == "InvalidRequestError"


async def test_v2_parse_io_as_json_takes_the_literals_only(api: Api) -> None:
    body = await api.get("/api/public/v2/observations", traceId=TA, parseIoAsJson="false")
    assert len(body["data"]) == 3
    for bad in ("true", "0", "yes"):
        response = await api.get("/api/public/v2/observations", status=400, parseIoAsJson=bad)
        assert response["error"] == "InvalidRequestError", bad
