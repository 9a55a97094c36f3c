"""Score reads and deletes checked against upstream's behaviour, one test per rule: the v2 list's
parameters (`operator` with `value`, `fields`, `environment` with trace filters, `traceTags`,
`filter` precedence), its page meta and order, the v2 item's fields, the 404 body and the delete.

One data set is ingested once per engine; every test runs on the embedded engine and on
ClickHouse over HTTP. The v3 cursor API and the v1 routes are covered by test_read_contract.py,
test_scores_value_range.py and test_ingestion_api.py.

Deliberate differences from upstream, kept on purpose:

- A score whose trace is not stored (yet) is listed by v2 with `"trace": null`. Upstream's list
  joins traces when the `trace` group is requested and its join condition drops such scores
  (from the page and from `totalItems`); hiding a score until its trace arrives would make the
  list depend on ingestion order.
- `value=0` with an operator filters (`value <op> 0`). Upstream tests the parameter for truth,
  so a zero value is silently ignored.
- `fromTimestamp`/`toTimestamp` are always `>=`/`<`. Upstream's simple-filter builder swaps in
  the request's `operator` for the timestamp comparisons when it is one of `< > <= >=`.
- Parameter validation errors answer 400 `{"message": "Invalid request data: ...", "error":
  "InvalidRequestError"}` (project-wide), where upstream's schema errors carry the zod issues
  array in `error`; the checks made in upstream's handlers (`fields`, trace filters) keep
  upstream's messages.
- No `_deprecation` key: upstream adds it on Langfuse Cloud only, as a self-hosted server does
  not.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.api.conftest import Api as JsonApi
from tests.api.conftest import seed_once, wait_for, wait_until_gone
from tests.conftest import basic_auth

BASE = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
T1, T2 = "srp-t1", "srp-t2"  # T1 in production, T2 in development; both of srp-user
S1, S2, S3 = "srp-s1", "srp-s2", "srp-s3"  # "srp-q" on T1, oldest first
S4 = "srp-s4"  # "srp-env" in staging, on T2 (whose environment is development)
S5 = "srp-s5"  # "srp-env" in staging, a session score
S6 = "srp-s6"  # on a trace that was never ingested


def ts(seconds: float) -> str:
    return (BASE + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def event(type_: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "timestamp": ts(0), "type": type_, "body": body}


def score(id_: str, offset: float, **body: Any) -> dict[str, Any]:
    return event("score-create", {"id": id_, "timestamp": ts(offset), **body})


SEED = [
    event(
        "trace-create",
        {
            "id": T1,
            "timestamp": ts(0),
            "userId": "srp-user",
            "sessionId": "srp-trace-session",
            "tags": ["prod", "test"],
            "environment": "production",
        },
    ),
    event(
        "trace-create",
        {
            "id": T2,
            "timestamp": ts(0),
            "userId": "srp-user",
            "tags": ["staging", "dev"],
            "environment": "development",
        },
    ),
    score(
        S1,
        1,
        traceId=T1,
        name="srp-q",
        value=10.5,
        environment="production",
        executionTraceId="srp-exec",
    ),
    score(S2, 2, traceId=T1, name="srp-q", value=50.5, environment="production"),
    score(S3, 3, traceId=T1, name="srp-q", value=100.8, environment="production"),
    score(S4, 4, traceId=T2, name="srp-env", value=70, environment="staging"),
    score(S5, 5, sessionId="srp-session", name="srp-env", value=80, environment="staging"),
    score(S6, 6, traceId="srp-no-such-trace", name="srp-orphan", value=1),
]
SCORES = "/api/public/v2/scores"


DATABASE = "scores_read_parity"  # on the ClickHouse HTTP server


@pytest.fixture
def client(engine_client: TestClient) -> TestClient:
    return engine_client


class Api(JsonApi):
    async def ids(self, **params: str) -> set[str]:
        return {item["id"] for item in (await self.get(SCORES, **params))["data"]}


@pytest.fixture
async def api(client: TestClient) -> Api:
    """The client, once the module's data set is readable (ingested by the first test)."""
    await seed_once(client, f"{SCORES}/{S6}", SEED)
    await wait_for(client, f"/api/public/traces/{T2}", lambda t: len(t["scores"]) == 1)
    await wait_for(client, f"/api/public/traces/{T1}", lambda t: len(t["scores"]) == 3)
    await wait_for(client, f"{SCORES}/{S5}", lambda s: True)
    await wait_for(client, f"{SCORES}/{S6}", lambda s: True)
    return Api(client)


async def test_value_filters_only_with_an_operator(api: Api) -> None:
    # Upstream compares `value` only when `operator` is given too; either alone is ignored.
    assert await api.ids(name="srp-q", value="0.8") == {S1, S2, S3}
    assert await api.ids(name="srp-q", operator="<") == {S1, S2, S3}
    assert await api.ids(name="srp-q", operator="<", value="50") == {S1}
    assert await api.ids(name="srp-q", operator="!=", value="50.5") == {S1, S3}
    # Bad values are still refused.
    await api.get(SCORES, status=400, name="srp-q", value="many")
    await api.get(SCORES, status=400, name="srp-q", operator="~", value="1")


async def test_unknown_field_groups_are_dropped(api: Api) -> None:
    body = await api.get(SCORES, name="srp-q", fields="score,trace,bogus")
    assert {item["trace"]["userId"] for item in body["data"]} == {"srp-user"}
    only = await api.get(SCORES, name="srp-q", fields="score,bogus")
    assert {item["trace"] is None for item in only["data"]} == {True}
    # An empty `fields` is the default: both groups.
    default = await api.get(SCORES, name="srp-q", fields="")
    assert default["data"][0]["trace"]["tags"] == ["prod", "test"]


async def test_the_score_group_is_required(api: Api) -> None:
    for fields in ("trace", "bogus"):
        body = await api.get(SCORES, status=400, fields=fields)
        assert body == {
            "message": "Scores needs to be selected always.",
            "error": "InvalidRequestError",
        }


async def test_trace_filters_need_the_trace_group(api: Api) -> None:
    for params in ({"userId": "srp-user"}, {"traceTags": "prod"}):
        body = await api.get(SCORES, status=400, fields="score", **params)
        assert body["error"] == "InvalidRequestError"
        assert body["message"].startswith(
            "Cannot filter by trace properties (userId, traceTags) when 'trace' field is not "
            "included."
        )


async def test_environment_also_filters_the_trace_with_trace_filters(api: Api) -> None:
    # Alone, `environment` is the score's: the session score and the trace score both match.
    assert await api.ids(name="srp-env", environment="staging") == {S4, S5}
    # With a trace filter, the trace's environment must match too (T2 is in development).
    assert await api.ids(name="srp-env", environment="staging", userId="srp-user") == set()
    assert await api.ids(environment="production", userId="srp-user") == {S1, S2, S3}


async def test_a_single_trace_tags_value_is_comma_separated(api: Api) -> None:
    assert await api.ids(traceTags="staging,dev") == {S4}
    assert await api.ids(traceTags="prod,dev") == set()
    repeated = await api.get_pairs(SCORES, [("traceTags", "staging"), ("traceTags", "dev")])
    assert {item["id"] for item in repeated["data"]} == {S4}


async def test_filter_takes_precedence_over_the_same_simple_parameter(api: Api) -> None:
    condition = {"type": "string", "column": "name", "operator": "=", "value": "srp-env"}
    assert await api.ids(name="srp-q", filter=json.dumps([condition])) == {S4, S5}


async def test_page_meta_and_newest_first_order(api: Api) -> None:
    first = await api.get(SCORES, name="srp-q", limit="2")
    assert first["meta"] == {"page": 1, "limit": 2, "totalItems": 3, "totalPages": 2}
    assert [item["id"] for item in first["data"]] == [S3, S2]
    second = await api.get(SCORES, name="srp-q", limit="2", page="2")
    assert [item["id"] for item in second["data"]] == [S1]
    beyond = await api.get(SCORES, name="srp-q", limit="2", page="3")
    assert beyond["data"] == [] and beyond["meta"]["totalItems"] == 3


async def test_v2_items_carry_the_execution_trace_id(api: Api) -> None:
    assert (await api.get(f"{SCORES}/{S1}"))["executionTraceId"] == "srp-exec"
    listed = {item["id"]: item for item in (await api.get(SCORES, name="srp-q"))["data"]}
    assert listed[S1]["executionTraceId"] == "srp-exec"
    assert "executionTraceId" in listed[S2] and listed[S2]["executionTraceId"] is None


async def test_trace_object_per_subject(api: Api) -> None:
    items = {item["id"]: item for item in (await api.get(SCORES))["data"]}
    assert items[S1]["trace"] == {
        "userId": "srp-user",
        "tags": ["prod", "test"],
        "environment": "production",
        "sessionId": "srp-trace-session",
    }
    assert items[S5]["trace"] is None and items[S5]["sessionId"] == "srp-session"
    # Deliberate difference: listed although its trace is not stored (upstream drops it).
    assert items[S6]["trace"] is None


async def test_get_of_an_unknown_score_is_a_404(api: Api) -> None:
    body = await api.get(f"{SCORES}/srp-missing", status=404)
    assert body == {"error": "LangfuseNotFoundError", "message": "Score not found"}


async def test_delete_is_accepted_with_202(client: TestClient) -> None:
    trace_id = f"srp-del-{uuid.uuid4().hex[:8]}"
    response = await client.post(
        "/api/public/scores",
        json={"id": f"{trace_id}-x", "traceId": trace_id, "name": "gone", "value": 1},
        headers=basic_auth(),
    )
    assert response.status == 200
    await wait_for(client, f"{SCORES}/{trace_id}-x", lambda s: True)

    response = await client.delete(f"/api/public/scores/{trace_id}-x", headers=basic_auth())
    assert response.status == 202
    assert await response.json() == {"message": "Score deletion queued successfully"}
    await wait_until_gone(client, f"{SCORES}/{trace_id}-x")
    # Upstream queues the deletion without looking the score up: unknown ids are accepted too.
    response = await client.delete("/api/public/scores/srp-never-was", headers=basic_auth())
    assert response.status == 202
