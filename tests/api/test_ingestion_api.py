"""Write paths and read APIs end to end in one process: HTTP → blob+queue → worker → chDB."""

from __future__ import annotations

import asyncio
import gzip
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from bench.otlp_payloads import build_export
from fathom.core.ports.queue import JobQueue
from fathom.core.usecases.access import CreateApiKey
from fathom.entrypoints.bootstrap import Runtime
from fathom.entrypoints.http.app import create_app
from fathom.entrypoints.worker import Worker
from tests.api.conftest import wait_for
from tests.conftest import ORG_ID, PUBLIC_KEY, basic_auth, make_settings
from tests.unit.test_worker_isolation import RejectPoisonTraces

OBSERVATION_TYPES = [
    "span",
    "generation",
    "event",
    "agent",
    "tool",
    "chain",
    "retriever",
    "evaluator",
    "embedding",
    "guardrail",
]


def ts(offset_seconds: float = 0) -> str:
    moment = datetime(2026, 5, 1, 12, 0, tzinfo=UTC) + timedelta(seconds=offset_seconds)
    return moment.isoformat().replace("+00:00", "Z")


def event(type_: str, body: dict, offset: float = 0) -> dict:
    return {"id": uuid.uuid4().hex, "timestamp": ts(offset), "type": type_, "body": body}


async def post_batch(client: TestClient, events: list[dict]) -> dict:
    response = await client.post(
        "/api/public/ingestion", json={"batch": events}, headers=basic_auth()
    )
    assert response.status == 207
    return await response.json()


async def test_legacy_batch_with_every_event_type(client: TestClient) -> None:
    trace_id = uuid.uuid4().hex
    events = [
        event(
            "trace-create",
            {
                "id": trace_id,
                "name": "legacy",
                "userId": "u-legacy",
                "sessionId": f"s-{trace_id}",
                "tags": ["b", "a"],
                "metadata": {"k": {"nested": 1}},
                "input": {"q": 1},
                "release": "r1",
                "environment": "production",
            },
        ),
        # The update arrives in the same batch as (and before) its create: merge rules apply.
        event(
            "generation-update",
            {"id": f"{trace_id}-gen", "traceId": trace_id, "output": "answer", "endTime": ts(3)},
            offset=2,
        ),
        event(
            "generation-create",
            {
                "id": f"{trace_id}-gen",
                "traceId": trace_id,
                "name": "llm",
                "startTime": ts(1),
                "model": "gpt-4o",
                "usage": {"promptTokens": 100, "completionTokens": 50, "totalTokens": 150},
                "input": [{"role": "user", "content": "hi"}],
            },
            offset=1,
        ),
        *[
            event(
                f"{kind}-create",
                {
                    "id": f"{trace_id}-{kind}",
                    "traceId": trace_id,
                    "name": kind,
                    "startTime": ts(1),
                    "parentObservationId": f"{trace_id}-gen",
                },
                offset=1,
            )
            for kind in OBSERVATION_TYPES
            if kind != "generation"
        ],
        event(
            "score-create",
            {"id": f"{trace_id}-score", "traceId": trace_id, "name": "quality", "value": 0.9},
        ),
        event("sdk-log", {"log": "hello from the sdk"}),
        {"id": "bad-1", "type": "span-create", "body": {"id": "x"}},  # no timestamp
        {"id": "bad-2", "timestamp": ts(), "type": "unknown-create", "body": {}},
    ]
    result = await post_batch(client, events)
    assert {e["id"] for e in result["errors"]} == {"bad-1", "bad-2"}
    assert all(
        e["status"] == 400 and e["message"] == "Invalid request data" for e in result["errors"]
    )
    assert len(result["successes"]) == len(events) - 2
    assert all(s["status"] == 201 for s in result["successes"])

    trace = await wait_for(
        client,
        f"/api/public/traces/{trace_id}",
        lambda t: len(t["observations"]) == len(OBSERVATION_TYPES) and len(t["scores"]) == 1,
    )
    assert trace["name"] == "legacy" and trace["userId"] == "u-legacy"
    assert trace["tags"] == ["a", "b"]
    assert trace["metadata"] == {"k": {"nested": 1}}
    assert trace["environment"] == "production"
    by_id = {o["id"]: o for o in trace["observations"]}
    generation = by_id[f"{trace_id}-gen"]
    assert generation["type"] == "GENERATION"
    assert generation["output"] == "answer"
    assert generation["endTime"] == "2026-05-01T12:00:03.000Z"
    assert generation["usageDetails"] == {"input": 100, "output": 50, "total": 150}
    assert generation["calculatedTotalCost"] == pytest.approx(100 * 2.5e-6 + 50 * 1e-5)
    for kind in OBSERVATION_TYPES:
        if kind != "generation":
            assert by_id[f"{trace_id}-{kind}"]["type"] == kind.upper()
    assert trace["scores"][0]["value"] == 0.9


async def test_sdk4_style_reads_and_ingestion_scores(client: TestClient) -> None:
    trace_id = uuid.uuid4().hex
    session = f"s4-{trace_id}"
    await post_batch(
        client,
        [
            event(
                "trace-create",
                {"id": trace_id, "name": "sdk4", "sessionId": session, "userId": "u4"},
            ),
            event(
                "span-create",
                {"id": f"{trace_id}-s", "traceId": trace_id, "name": "step", "startTime": ts()},
            ),
            event(
                "score-create",
                {
                    "id": f"{trace_id}-c",
                    "traceId": trace_id,
                    "name": "cat",
                    "value": "good",
                    "dataType": "CATEGORICAL",
                },
            ),
        ],
    )
    listed = await wait_for(
        client, "/api/public/traces", lambda b: len(b["data"]) == 1, userId="u4"
    )
    item = listed["data"][0]
    assert item["id"] == trace_id and item["observations"] == [f"{trace_id}-s"]
    assert listed["meta"] == {"page": 1, "limit": 50, "totalItems": 1, "totalPages": 1}
    observations = await wait_for(
        client, "/api/public/observations", lambda b: len(b["data"]) == 1, traceId=trace_id
    )
    assert observations["data"][0]["name"] == "step"
    sessions = await wait_for(
        client, f"/api/public/sessions/{session}", lambda b: len(b["traces"]) == 1
    )
    assert sessions["traces"][0]["id"] == trace_id
    scores = await wait_for(
        client, "/api/public/v2/scores", lambda b: len(b["data"]) == 1, traceId=trace_id
    )
    score = scores["data"][0]
    assert score["stringValue"] == "good" and score["dataType"] == "CATEGORICAL"
    assert score["trace"]["userId"] == "u4"


@pytest.mark.parametrize("compress", [False, True])
async def test_otlp_protobuf_and_json(client: TestClient, compress: bool) -> None:
    body, trace_ids = build_export(2)
    headers = {**basic_auth(), "Content-Type": "application/x-protobuf"}
    if compress:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    response = await client.post("/api/public/otel/v1/traces", data=body, headers=headers)
    assert response.status == 200
    assert response.content_type == "application/x-protobuf"
    for trace_id in trace_ids:
        trace = await wait_for(
            client, f"/api/public/traces/{trace_id}", lambda t: len(t["observations"]) == 5
        )
        assert trace["userId"] == "bench-user" and trace["metadata"]["tier"] == "gold"

    span = {
        "traceId": uuid.uuid4().hex,
        "spanId": uuid.uuid4().hex[:16],
        "name": "json-span",
        "startTimeUnixNano": "1767225600000000000",
        "endTimeUnixNano": "1767225601000000000",
        "attributes": [
            {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "10"}},
            {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "5"}},
        ],
    }
    payload = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": [span]}]}]}
    response = await client.post(
        "/api/public/otel/v1/traces",
        data=json.dumps(payload),
        headers={**basic_auth(), "Content-Type": "application/json"},
    )
    assert response.status == 200 and await response.json() == {}
    trace = await wait_for(
        client, f"/api/public/traces/{span['traceId']}", lambda t: len(t["observations"]) == 1
    )
    generation = trace["observations"][0]
    assert generation["type"] == "GENERATION" and generation["model"] == "gpt-4o-mini"
    assert generation["usageDetails"] == {"input": 10, "output": 5, "total": 15}
    assert generation["calculatedTotalCost"] > 0


async def test_opentelemetry_sdk_exporter(client: TestClient) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    exporter = OTLPSpanExporter(
        endpoint=str(client.make_url("/api/public/otel/v1/traces")), headers=basic_auth()
    )
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("my-app")

    def trace_something() -> str:
        with tracer.start_as_current_span("agent-run") as root:
            root.set_attribute("langfuse.trace.name", "otel-app")
            root.set_attribute("user.id", "otel-user")
            with tracer.start_as_current_span("chat gpt-4o") as llm:
                llm.set_attribute("gen_ai.operation.name", "chat")
                llm.set_attribute("gen_ai.request.model", "gpt-4o")
                llm.set_attribute("gen_ai.usage.input_tokens", 1000)
                llm.set_attribute("gen_ai.usage.output_tokens", 100)
            return format(root.get_span_context().trace_id, "032x")

    # The exporter blocks; the server runs on this event loop.
    trace_id = await asyncio.to_thread(trace_something)
    await asyncio.to_thread(provider.shutdown)
    trace = await wait_for(
        client, f"/api/public/traces/{trace_id}", lambda t: len(t["observations"]) == 2
    )
    assert trace["name"] == "otel-app" and trace["userId"] == "otel-user"
    llm = next(o for o in trace["observations"] if o["name"] == "chat gpt-4o")
    assert llm["type"] == "GENERATION"
    assert llm["usageDetails"] == {"input": 1000, "output": 100, "total": 1100}
    assert llm["calculatedTotalCost"] == pytest.approx(1000 * 2.5e-6 + 100 * 1e-5)
    assert llm["parentObservationId"] == next(
        o["id"] for o in trace["observations"] if o["name"] == "agent-run"
    )


async def test_bad_input_gets_langfuse_status_and_message(client: TestClient) -> None:
    otlp = "/api/public/otel/v1/traces"
    protobuf = {**basic_auth(), "Content-Type": "application/x-protobuf"}
    response = await client.post(otlp, data=b"\x0a\xff\xff\xff", headers=protobuf)
    assert response.status == 400
    assert (await response.json())["error"] == "InvalidRequestError"

    response = await client.post(
        otlp, data=b"hello", headers={**basic_auth(), "Content-Type": "text/plain"}
    )
    assert response.status == 400
    assert (await response.json())["error"] == "Invalid content type"

    response = await client.post(
        otlp, data=build_export(1)[0], headers={**protobuf, "x-langfuse-ingestion-version": "5"}
    )
    assert response.status == 400

    response = await client.post(
        "/api/public/ingestion", data=b"x" * (5 * 1024 * 1024), headers=basic_auth()
    )
    assert response.status == 413
    assert (await response.json())["error"] == "PayloadTooLargeError"

    response = await client.post("/api/public/ingestion", data=b"{not json", headers=basic_auth())
    assert response.status == 400
    response = await client.post("/api/public/ingestion", json={"events": []}, headers=basic_auth())
    assert response.status == 400
    assert (await response.json())["message"].startswith("Invalid request data")

    # An unknown observation type is a per-event 400 that spares the rest of the batch.
    trace_id = uuid.uuid4().hex
    result = await post_batch(
        client,
        [
            event("observation-create", {"id": "o1", "traceId": trace_id, "type": "WIDGET"}),
            event("trace-create", {"id": trace_id, "name": "survivor"}),
        ],
    )
    assert [e["status"] for e in result["errors"]] == [400]
    await wait_for(client, f"/api/public/traces/{trace_id}", lambda t: t["name"] == "survivor")

    # A score for a trace that does not exist is accepted, as Langfuse does.
    response = await client.post(
        "/api/public/scores",
        json={"traceId": "no-such-trace", "name": "orphan", "value": 1},
        headers=basic_auth(),
    )
    assert response.status == 200 and (await response.json())["id"]

    response = await client.post(
        "/api/public/scores",
        json={"name": "no-target", "value": 1},
        headers=basic_auth(),
    )
    assert response.status == 400
    assert "Provide exactly one of the following" in (await response.json())["message"]

    response = await client.get("/api/public/traces/does-not-exist", headers=basic_auth())
    assert response.status == 404
    assert await response.json() == {
        "error": "LangfuseNotFoundError",
        "message": "Trace does-not-exist not found within authorized project",
    }


async def test_scores_array_and_object_bodies(client: TestClient) -> None:
    trace_id = uuid.uuid4().hex
    response = await client.post(
        "/api/public/scores",
        json=[
            {"id": f"{trace_id}-a", "traceId": trace_id, "name": "a", "value": 1.0},
            {"traceId": trace_id, "name": "b", "value": "x", "dataType": "NUMERIC"},
            {"sessionId": "sess", "name": "c", "value": 2},
        ],
        headers=basic_auth(),
    )
    assert response.status == 207
    body = await response.json()
    assert body["accepted"] == 2 and body["rejected"] == 1
    response = await client.post(
        "/api/public/scores",
        json=[
            {"traceId": trace_id, "name": "d", "value": 0, "dataType": "BOOLEAN"},
            {"traceId": trace_id, "name": "e", "value": 3},
        ],
        headers=basic_auth(),
    )
    assert response.status == 202 and await response.json() == {"message": "Accepted"}

    # v3 pages with a cursor until every score of the trace was seen exactly once.
    first = await wait_for(
        client,
        "/api/public/v3/scores",
        lambda b: "cursor" in b["meta"],
        traceId=trace_id,
        limit="2",
    )
    rest = await wait_for(
        client,
        "/api/public/v3/scores",
        lambda b: True,
        traceId=trace_id,
        limit="2",
        cursor=first["meta"]["cursor"],
    )
    seen = [s["name"] for s in first["data"] + rest["data"]]
    assert sorted(seen) == ["a", "d", "e"]
    assert "cursor" not in rest["meta"]
    bool_score = next(s for s in first["data"] + rest["data"] if s["name"] == "d")
    assert bool_score["value"] is False and bool_score["dataType"] == "BOOLEAN"

    response = await client.delete(f"/api/public/scores/{trace_id}-a", headers=basic_auth())
    assert response.status == 202
    await wait_for(client, "/api/public/v2/scores", lambda b: len(b["data"]) == 2, traceId=trace_id)


async def test_delete_traces_and_metrics(client: TestClient) -> None:
    body, trace_ids = build_export(3)
    response = await client.post(
        "/api/public/otel/v1/traces",
        data=body,
        headers={**basic_auth(), "Content-Type": "application/x-protobuf"},
    )
    assert response.status == 200
    for trace_id in trace_ids:
        await wait_for(
            client, f"/api/public/traces/{trace_id}", lambda t: len(t["observations"]) == 5
        )

    now = datetime.now(UTC)
    query = {
        "view": "observations",
        "dimensions": [{"field": "name"}],
        "metrics": [{"measure": "count", "aggregation": "count"}],
        "filters": [
            {"column": "traceId", "operator": "any of", "value": trace_ids, "type": "stringOptions"}
        ],
        "fromTimestamp": (now - timedelta(hours=1)).isoformat(),
        "toTimestamp": (now + timedelta(hours=1)).isoformat(),
    }
    for path in ("/api/public/metrics", "/api/public/v2/metrics"):
        response = await client.get(path, params={"query": json.dumps(query)}, headers=basic_auth())
        assert response.status == 200, await response.text()
        rows = {row["name"]: row["count_count"] for row in (await response.json())["data"]}
        assert rows == {
            "span-0": 3,
            "generation-1": 3,
            "tool-2": 3,
            "generation-3": 3,
            "event-4": 3,
        }

    response = await client.get(
        "/api/public/metrics/daily", params={"userId": "bench-user"}, headers=basic_auth()
    )
    day = (await response.json())["data"][0]
    assert day["countTraces"] >= 3
    assert any(u["model"] == "gpt-4o-mini" and u["inputUsage"] > 0 for u in day["usage"])

    response = await client.delete(f"/api/public/traces/{trace_ids[0]}", headers=basic_auth())
    assert response.status == 200
    response = await client.request(
        "DELETE", "/api/public/traces", json={"traceIds": trace_ids[1:]}, headers=basic_auth()
    )
    assert response.status == 200
    for trace_id in trace_ids:
        response = await client.get(f"/api/public/traces/{trace_id}", headers=basic_auth())
        assert response.status == 404


async def test_replaying_a_batch_changes_nothing(client: TestClient) -> None:
    body, trace_ids = build_export(2)
    headers = {**basic_auth(), "Content-Type": "application/x-protobuf"}
    for _ in range(3):
        response = await client.post("/api/public/otel/v1/traces", data=body, headers=headers)
        assert response.status == 200
    for trace_id in trace_ids:
        first = await wait_for(
            client, f"/api/public/traces/{trace_id}", lambda t: len(t["observations"]) == 5
        )
        await asyncio.sleep(0.5)  # let every replay be processed
        again = await wait_for(client, f"/api/public/traces/{trace_id}", lambda t: True)
        page = await wait_for(
            client, "/api/public/observations", lambda b: True, traceId=trace_id, limit="50"
        )
        assert page["meta"]["totalItems"] == 5
        for key in ("name", "userId", "sessionId", "tags", "metadata", "input", "output"):
            assert again[key] == first[key]
        assert sorted(o["id"] for o in again["observations"]) == sorted(
            o["id"] for o in first["observations"]
        )


async def test_generations_naming_a_prompt_version_get_its_id(client: TestClient) -> None:
    """The worker resolves `promptId` from `promptName` + `promptVersion`, as upstream does;
    a version the project does not hold links nothing."""
    created = await client.post(
        "/api/public/v2/prompts",
        json={"name": "support/greeting", "type": "text", "prompt": "Hi {{name}}"},
        headers=basic_auth(),
    )
    assert created.status == 201, await created.text()
    prompt_id = (await created.json())["id"]
    trace_id = uuid.uuid4().hex
    linked = {"promptName": "support/greeting", "promptVersion": 1}
    await post_batch(
        client,
        [
            event("trace-create", {"id": trace_id, "name": "prompted"}),
            event("generation-create", {"id": f"{trace_id}-a", "traceId": trace_id, **linked}),
            event(
                "generation-create",
                {"id": f"{trace_id}-b", "traceId": trace_id, **linked, "promptVersion": 7},
            ),
            event("span-create", {"id": f"{trace_id}-c", "traceId": trace_id}),
        ],
    )
    trace = await wait_for(
        client, f"/api/public/traces/{trace_id}", lambda body: len(body["observations"]) == 3
    )
    prompts = {o["id"]: (o["promptId"], o.get("promptVersion")) for o in trace["observations"]}
    assert prompts == {
        f"{trace_id}-a": (prompt_id, 1),
        f"{trace_id}-b": (None, 7),
        f"{trace_id}-c": (None, None),
    }


@pytest.mark.parametrize(
    ("body", "issues"),
    [
        ({"events": []}, ["Required"]),
        ({"batch": {"id": "e"}}, ["Expected array, received object"]),
        ({"batch": None}, ["Expected array, received null"]),
        ([{"id": "e"}], ["Expected object, received array"]),
        ("batch", ["Expected object, received string"]),
    ],
)
async def test_malformed_batch_envelope_is_400_with_upstream_body(
    records_client: TestClient, body: object, issues: list[str]
) -> None:
    response = await records_client.post("/api/public/ingestion", json=body, headers=basic_auth())
    assert response.status == 400
    assert await response.json() == {"message": "Invalid request data", "errors": issues}


async def test_batch_envelope_metadata_may_be_any_json(records_client: TestClient) -> None:
    response = await records_client.post(
        "/api/public/ingestion",
        json={"batch": [], "metadata": [1, "sdk"]},
        headers=basic_auth(),
    )
    assert response.status == 207
    assert await response.json() == {"successes": [], "errors": []}


async def test_organization_key_is_refused_as_a_whole_with_403(
    records_client: TestClient, records_runtime: Runtime
) -> None:
    issued = await records_runtime.resolve(CreateApiKey)(ORG_ID, None)
    response = await records_client.post(
        "/api/public/ingestion",
        json={"batch": [event("sdk-log", {"log": "hello"})]},
        headers=basic_auth(issued.api_key.public_key, issued.secret_key),
    )
    assert response.status == 403
    assert await response.json() == {
        "message": "Project ID not found for API token. Are you using an organization key?",
        "error": "ForbiddenError",
    }


async def test_public_key_writes_score_events_only(client: TestClient) -> None:
    trace_id = uuid.uuid4().hex
    trace_event = event("trace-create", {"id": trace_id, "name": "denied"})
    score_event = event(
        "score-create", {"id": f"{trace_id}-s", "traceId": trace_id, "name": "q", "value": 1}
    )
    log_event = event("sdk-log", {"log": "flushed"})
    response = await client.post(
        "/api/public/ingestion",
        json={"batch": [trace_event, score_event, log_event]},
        headers={"Authorization": f"Bearer {PUBLIC_KEY}"},
    )
    assert response.status == 207
    body = await response.json()
    assert body["errors"] == [
        {
            "id": trace_event["id"],
            "status": 401,
            "message": "Authentication error",
            "error": "Access Scope Denied",
        }
    ]
    assert sorted(s["id"] for s in body["successes"]) == sorted(
        [score_event["id"], log_event["id"]]
    )
    assert {s["status"] for s in body["successes"]} == {201}
    await wait_for(client, "/api/public/v2/scores", lambda b: len(b["data"]) == 1, traceId=trace_id)


async def test_207_lists_successes_in_upstreams_processing_order(client: TestClient) -> None:
    # Upstream's sortBatch: other events by envelope timestamp, then updates by timestamp.
    trace_id = uuid.uuid4().hex
    update = event("span-update", {"id": f"{trace_id}-s", "traceId": trace_id}, offset=-5)
    late = event("span-create", {"id": f"{trace_id}-s", "traceId": trace_id}, offset=2)
    early = event("trace-create", {"id": trace_id}, offset=1)
    log_event = event("sdk-log", {"log": "flushed"}, offset=0)
    body = await post_batch(client, [update, late, early, log_event])
    assert [s["id"] for s in body["successes"]] == [
        log_event["id"],
        early["id"],
        late["id"],
        update["id"],
    ]


async def test_207_lists_envelope_ids_with_upstream_error_entries(client: TestClient) -> None:
    good = event("trace-create", {"id": uuid.uuid4().hex})
    bad = event("span-create", {"name": "no id"})
    not_an_event = "hello"
    body = await post_batch(client, [good, bad, not_an_event])  # type: ignore[list-item]
    assert body["successes"] == [{"id": good["id"], "status": 201}]
    assert [(e["id"], e["status"], e["message"]) for e in body["errors"]] == [
        (bad["id"], 400, "Invalid request data"),
        ("unknown", 400, "Invalid request data"),
    ]
    issues = json.loads(body["errors"][0]["error"])
    assert [issue["path"] for issue in issues] == [["body", "id"]]


async def test_a_batch_that_cannot_be_processed_fails_alone(
    tmp_path: Path, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> None:
    settings = make_settings(
        tmp_path / "data",
        queue={"kind": "local", "backoff_base_seconds": 0.05, "max_attempts": 2},
    )
    runtime = Runtime(settings)
    runtime.wiring.plugins.register(RejectPoisonTraces())
    # No worker yet: every batch is waiting when it starts, so one lease holds them all.
    client = await aiohttp_client(create_app(runtime, with_worker=False))
    good = [uuid.uuid4().hex for _ in range(6)]
    poison = uuid.uuid4().hex
    for trace_id in [*good[:3], poison, *good[3:]]:
        name = "poison" if trace_id == poison else "fine"
        await post_batch(client, [event("trace-create", {"id": trace_id, "name": name})])
    queue = runtime.resolve(JobQueue)
    assert await queue.pending() == 7

    worker = Worker(runtime)
    worker.start()
    try:
        for trace_id in good:
            await wait_for(client, f"/api/public/traces/{trace_id}", lambda t: True)
        for _ in range(200):  # the poison job's second and last attempt
            if not await queue.pending():
                break
            await asyncio.sleep(0.05)
    finally:
        await worker.stop()
    dead = await queue.dead_letters()
    assert len(dead) == 1 and "rejects the poison trace" in dead[0].meta["last_error"]
    response = await client.get(f"/api/public/traces/{poison}", headers=basic_auth())
    assert response.status == 404
