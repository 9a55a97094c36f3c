"""Server-side masking through a real callback server, on the batch, OTLP and score paths."""

from __future__ import annotations

import asyncio
import base64
import copy
import gzip
import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bench.otlp_payloads import build_export
from fathom.entrypoints.bootstrap import Runtime
from fathom.entrypoints.http.app import create_app
from tests.api.conftest import wait_for
from tests.conftest import ORG_ID, PROJECT_ID, basic_auth, make_settings

# An attempt must not time out on a loaded machine: these tests count attempts and expect
# the callback's answer.
SLOW_MACHINE_TIMEOUT_MS = "10000"


def redact(value: Any) -> Any:
    if isinstance(value, str):
        return "[MASKED]" if "secret" in value else value
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    return value


def redact_attribute_values(resource_spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A callback written for Langfuse: it walks the OTLP export to the span attributes and
    redacts their string values, JSON-encoded ones (inputs, outputs) inside the JSON."""
    for resource in resource_spans:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                for attribute in span["attributes"]:
                    value = attribute["value"]
                    if "stringValue" not in value:
                        continue
                    try:
                        value["stringValue"] = json.dumps(redact(json.loads(value["stringValue"])))
                    except ValueError:
                        value["stringValue"] = redact(value["stringValue"])
    return resource_spans


Handler = Callable[[web.Request], Awaitable[web.Response]]
MakeApp = Callable[..., Awaitable[TestClient]]


@pytest.fixture
def app_masked_by(
    telemetry_data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> MakeApp:
    """Makes the whole app, with its worker, masking through a callback server on 127.0.0.1
    that answers with `handler`; keyword arguments set other LANGFUSE_INGESTION_MASKING_*
    variables (CALLBACK_FAIL_CLOSED="true", ...)."""

    async def make(handler: Handler, **variables: str) -> TestClient:
        app = web.Application()
        app.router.add_post("/mask", handler)
        server = await aiohttp_server(app)
        monkeypatch.setenv("LANGFUSE_INGESTION_MASKING_CALLBACK_URL", str(server.make_url("/mask")))
        monkeypatch.setenv(
            "LANGFUSE_INGESTION_MASKING_CALLBACK_TIMEOUT_MS", SLOW_MACHINE_TIMEOUT_MS
        )
        for name, value in variables.items():
            monkeypatch.setenv(f"LANGFUSE_INGESTION_MASKING_{name}", value)
        return await aiohttp_client(
            create_app(Runtime(make_settings(telemetry_data_dir)), with_worker=True)
        )

    return make


@pytest.fixture
def callback() -> dict[str, Any]:
    """A masking policy written for Langfuse, and what it was sent."""
    seen: dict[str, Any] = {"headers": [], "exports": []}

    async def mask(request: web.Request) -> web.Response:
        seen["headers"].append(dict(request.headers))
        payload = await request.json()
        if isinstance(payload, list):  # an OTLP export's resourceSpans, as Langfuse sends
            seen["exports"].append(copy.deepcopy(payload))
            return web.json_response(redact_attribute_values(payload))
        return web.json_response(
            {"events": [{**e, "body": redact(e["body"])} for e in payload["events"]]}
        )

    seen["handler"] = mask
    return seen


@pytest.fixture
async def masked_client(callback: dict[str, Any], app_masked_by: MakeApp) -> TestClient:
    return await app_masked_by(callback["handler"], PROPAGATED_HEADERS="x-tenant")


async def test_batch_otlp_and_scores_are_masked_before_storage(
    masked_client: TestClient, callback: dict[str, Any]
) -> None:
    trace_id = uuid.uuid4().hex
    response = await masked_client.post(
        "/api/public/ingestion",
        json={
            "batch": [
                {
                    "id": uuid.uuid4().hex,
                    "timestamp": "2026-05-01T00:00:00Z",
                    "type": "trace-create",
                    "body": {"id": trace_id, "input": {"password": "my secret"}, "name": "m"},
                }
            ]
        },
        headers={**basic_auth(), "x-tenant": "acme"},
    )
    assert response.status == 207
    trace = await wait_for(masked_client, f"/api/public/traces/{trace_id}", lambda t: True)
    assert trace["input"] == {"password": "[MASKED]"}
    headers = callback["headers"][0]
    assert headers["X-Langfuse-Org-Id"] == ORG_ID
    assert headers["X-Langfuse-Project-Id"] == PROJECT_ID
    assert headers["x-tenant"] == "acme"

    body, trace_ids = build_export(1)
    # Put a secret into the OTLP payload: the generation inputs contain plain words only.
    body = body.replace(b"answer", b"secret", 1)  # same length keeps the protobuf valid
    response = await masked_client.post(
        "/api/public/otel/v1/traces",
        data=gzip.compress(body),
        headers={
            **basic_auth(),
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "gzip",
        },
    )
    assert response.status == 200
    trace = await wait_for(
        masked_client, f"/api/public/traces/{trace_ids[0]}", lambda t: len(t["observations"]) == 5
    )
    generations = [o for o in trace["observations"] if o["type"] == "GENERATION"]
    assert "[MASKED]" in {m["content"] for g in generations for m in g["input"]}
    # The callback got the export as Langfuse sends a protobuf one: resourceSpans in
    # protobuf's JSON mapping (base64 ids).
    (export,) = callback["exports"]
    span = export[0]["scopeSpans"][0]["spans"][0]
    assert base64.b64decode(span["traceId"]).hex() == trace_ids[0]
    assert span["kind"] == "SPAN_KIND_INTERNAL"

    response = await masked_client.post(
        "/api/public/scores",
        json={"traceId": trace_id, "name": "s", "value": 1, "comment": "a secret note"},
        headers=basic_auth(),
    )
    assert response.status == 200
    scores = await wait_for(
        masked_client, "/api/public/v2/scores", lambda b: len(b["data"]) == 1, traceId=trace_id
    )
    assert scores["data"][0]["comment"] == "[MASKED]"


@pytest.mark.parametrize("fail_closed", [False, True])
async def test_failing_callback_keeps_or_drops_batch_events(
    fail_closed: bool, app_masked_by: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    async def broken(request: web.Request) -> web.Response:
        calls.append(request.headers["X-Langfuse-Project-Id"])
        return web.json_response({"error": "down"}, status=503)

    client = await app_masked_by(broken, CALLBACK_FAIL_CLOSED=str(fail_closed).lower())
    trace_id = uuid.uuid4().hex
    batch = [
        {
            "id": uuid.uuid4().hex,
            "timestamp": "2026-05-01T00:00:00Z",
            "type": "trace-create",
            "body": {"id": trace_id, "input": "my secret", "name": "f"},
        }
    ]

    response = await client.post(
        "/api/public/ingestion", json={"batch": batch}, headers=basic_auth()
    )

    # The client is never told: the batch is accepted either way, as upstream's OTLP path.
    assert response.status == 207
    assert (await response.json())["successes"][0]["status"] == 201
    # MAX_RETRIES defaults to 1: two attempts.
    assert calls == [PROJECT_ID, PROJECT_ID]
    assert "ingestion masking callback failed" in caplog.text
    if not fail_closed:
        trace = await wait_for(client, f"/api/public/traces/{trace_id}", lambda t: True)
        assert trace["input"] == "my secret"
    else:
        await asyncio.sleep(1)
        missing = await client.get(f"/api/public/traces/{trace_id}", headers=basic_auth())
        assert missing.status == 404


def otlp_json_export(trace_id: str, text: str) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": []},
                "scopeSpans": [
                    {
                        "scope": {"name": "my-instrumentation"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": "00f067aa0ba902b7",
                                "name": "root",
                                "startTimeUnixNano": "1764000000000000000",
                                "endTimeUnixNano": "1764000001000000000",
                                "attributes": [
                                    {
                                        "key": "langfuse.observation.input",
                                        "value": {"stringValue": json.dumps({"q": text})},
                                    }
                                ],
                            }
                        ],
                    }
                ],
            }
        ]
    }


async def test_an_otlp_json_export_is_sent_as_received_and_stored_masked(
    masked_client: TestClient, callback: dict[str, Any]
) -> None:
    trace_id = uuid.uuid4().hex
    export = otlp_json_export(trace_id, "my secret")

    response = await masked_client.post(
        "/api/public/otel/v1/traces", json=export, headers=basic_auth()
    )

    assert response.status == 200
    trace = await wait_for(
        masked_client, f"/api/public/traces/{trace_id}", lambda t: len(t["observations"]) == 1
    )
    assert trace["observations"][0]["input"] == {"q": "[MASKED]"}
    assert callback["exports"] == [export["resourceSpans"]]


async def test_a_fail_closed_callback_drops_an_otlp_export(
    app_masked_by: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    async def moves_spans(request: web.Request) -> web.Response:
        export = await request.json()
        export[0]["scopeSpans"][0]["spans"][0]["spanId"] = "0000000000000001"
        return web.json_response(export)

    client = await app_masked_by(moves_spans, CALLBACK_FAIL_CLOSED="true")
    trace_id = uuid.uuid4().hex

    response = await client.post(
        "/api/public/otel/v1/traces",
        json=otlp_json_export(trace_id, "my secret"),
        headers=basic_auth(),
    )

    assert response.status == 200  # the exporter is never told, as upstream
    assert "breaks the schema" in caplog.text
    await asyncio.sleep(1)
    missing = await client.get(f"/api/public/traces/{trace_id}", headers=basic_auth())
    assert missing.status == 404
