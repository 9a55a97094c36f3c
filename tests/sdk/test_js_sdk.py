"""The official Langfuse JS SDK (`@langfuse/tracing`, `@langfuse/otel`, `@langfuse/client` 5.x,
pinned in tests/node/package.json) works against a live server unchanged.

One Node process (tests/node/js_sdk/trace_scores_prompts.mjs) traces a request with nested
observations of every type, sets trace attributes the JS way (`propagateAttributes`,
`setTraceIO`), scores through the client's ingestion batches, and creates, fetches and
relabels text and chat prompts. The tests read everything back through the public REST API
and check the values and the parent/child nesting a Langfuse user would see. The JS SDK
differs on the wire from the Python one: OTLP as JSON with hex ids instead of protobuf, raw
(not JSON-encoded) metadata strings, scores as `score-create` events on
`/api/public/ingestion`, chat messages tagged `type: "chatmessage"`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import urllib.parse
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PUBLIC_KEY, SECRET_KEY
from tests.live_server import LiveServer
from tests.sdk.conftest import poll

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
SCRIPT = NODE_DIR / "js_sdk" / "trace_scores_prompts.mjs"
ENVIRONMENT = "js-e2e"
RELEASE = "js-rel-1"

# name → (type, parent name) of every observation of the script's main trace.
TREE: dict[str, tuple[str, str | None]] = {
    "js-request": ("SPAN", None),
    "js-agent": ("AGENT", "js-request"),
    "js-retriever": ("RETRIEVER", "js-agent"),
    "js-search-tool": ("TOOL", "js-agent"),
    "js-flaky-tool": ("TOOL", "js-agent"),
    "js-chain": ("CHAIN", "js-agent"),
    "js-llm": ("GENERATION", "js-chain"),
    "js-cache-miss": ("EVENT", "js-agent"),
    "js-guardrail": ("GUARDRAIL", "js-agent"),
    "js-judge": ("EVALUATOR", "js-agent"),
    "js-chat-llm": ("GENERATION", "js-agent"),
    "js-embed": ("EMBEDDING", "js-agent"),
    "js-failed-step": ("SPAN", "js-request"),
}
TRACE_SCORES = {"js-agent-steps", "js-correct", "js-helpfulness", "js-verdict"}


@dataclass(frozen=True)
class JsRun:
    """What the script printed, and its main trace once fully readable."""

    output: dict[str, Any]
    trace: dict[str, Any]

    @property
    def trace_id(self) -> str:
        return str(self.output["traceId"])

    @property
    def observations(self) -> dict[str, dict[str, Any]]:
        return {o["name"]: o for o in self.trace["observations"]}

    @property
    def scores(self) -> dict[str, dict[str, Any]]:
        return {s["name"]: s for s in self.trace["scores"]}


def node_command() -> list[str]:
    # CI installs Node and the pinned packages: a missing piece is a broken setup, not a
    # reason to skip the only check of the JS SDK.
    node = shutil.which("node")
    if node is None:
        pytest.fail("`node` (Node.js >= 20) is not on PATH: this test needs it", pytrace=False)
    if not (NODE_DIR / "node_modules" / "@langfuse" / "tracing").is_dir():
        pytest.fail("the Langfuse JS SDK is missing: run `npm ci` in tests/node", pytrace=False)
    return [node, str(SCRIPT)]


def script_environment(live_server: LiveServer) -> dict[str, str]:
    # The developer's own Langfuse or OpenTelemetry settings must not leak into the SDK.
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LANGFUSE_", "OTEL_"))
    }
    return {
        **inherited,
        "LANGFUSE_BASE_URL": live_server.url,
        "LANGFUSE_PUBLIC_KEY": PUBLIC_KEY,
        "LANGFUSE_SECRET_KEY": SECRET_KEY,
        "LANGFUSE_TRACING_ENVIRONMENT": ENVIRONMENT,
        "LANGFUSE_RELEASE": RELEASE,
    }


@pytest.fixture(scope="module")
def js_run(live_server: LiveServer, api: httpx.Client) -> JsRun:
    run = uuid.uuid4().hex[:10]
    result = subprocess.run(
        [*node_command(), run],
        env=script_environment(live_server),
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        pytest.fail(f"the JS SDK script failed ({result.returncode}):\n{result.stderr[-4000:]}")
    output = json.loads(result.stdout.strip().splitlines()[-1])

    # Spans and scores travel in separate requests and are merged by the worker later.
    def complete(response: httpx.Response) -> bool:
        if response.status_code != 200:
            return False
        body = response.json()
        return (
            len(body["observations"]) >= len(TREE)
            and {s["name"] for s in body["scores"]} >= TRACE_SCORES
        )

    trace = poll(lambda: api.get(f"/api/public/traces/{output['traceId']}"), complete).json()
    return JsRun(output=output, trace=trace)


def test_trace_attributes_set_the_js_way(js_run: JsRun, api: httpx.Client) -> None:
    trace, run = js_run.trace, js_run.output["run"]
    assert trace["name"] == f"js-e2e-{run}"
    assert trace["userId"] == "js-user-1"
    assert trace["sessionId"] == js_run.output["sessionId"] == f"js-session-{run}"
    assert sorted(trace["tags"]) == ["e2e", "js-sdk"]
    assert trace["version"] == "app-2.0"
    assert trace["release"] == RELEASE
    assert trace["environment"] == ENVIRONMENT
    assert trace["public"] is True
    # setTraceIO wins over the root observation's own input/output.
    assert trace["input"] == {"user": "What does Fathom store?"}
    assert trace["output"] == {"answer": "Traces."}
    # Propagated metadata is string-only; the root span's metadata keeps its JSON types
    # although the JS SDK sends strings raw and everything else JSON-encoded.
    metadata = trace["metadata"]
    assert metadata["team"] == "observability" and metadata["region"] == "eu"
    assert metadata["tier"] == "gold" and metadata["attempt"] == 2
    assert metadata["flags"] == {"beta": True}

    session = api.get(f"/api/public/sessions/{trace['sessionId']}").json()
    assert [t["id"] for t in session["traces"]] == [js_run.trace_id]
    assert session["environment"] == ENVIRONMENT


def test_observation_types_nesting_and_ids(js_run: JsRun, api: httpx.Client) -> None:
    observations = js_run.observations
    assert set(observations) == set(TREE)
    for name, (observation_type, parent) in TREE.items():
        observation = observations[name]
        assert observation["type"] == observation_type, name
        expected_parent = observations[parent]["id"] if parent else None
        assert observation["parentObservationId"] == expected_parent, name
        assert observation["traceId"] == js_run.trace_id
        assert observation["environment"] == ENVIRONMENT
        # The propagated version lands on every observation, as in Langfuse.
        assert observation["version"] == "app-2.0", name
    # The observation id is the OTLP span id the SDK reported.
    for name, span_id in js_run.output["ids"].items():
        if name in TREE:
            assert observations[name]["id"] == span_id, name

    # The same tree through the v1 list and the v2 (cursor) observations APIs.
    listed = api.get(
        "/api/public/observations", params={"traceId": js_run.trace_id, "limit": 100}
    ).json()["data"]
    assert {o["id"]: o["parentObservationId"] for o in listed} == {
        o["id"]: o["parentObservationId"] for o in observations.values()
    }
    page = api.get(
        "/api/public/v2/observations",
        params={"traceId": js_run.trace_id, "fields": "core,basic", "limit": 100},
    ).json()["data"]
    assert {o["name"]: o["type"] for o in page} == {n: t for n, (t, _) in TREE.items()}
    assert {o["userId"] for o in page} == {"js-user-1"}
    assert {o["sessionId"] for o in page} == {js_run.output["sessionId"]}
    roots = [o["name"] for o in page if o["isRootObservation"]]
    assert roots == ["js-request"]


def test_observation_values_levels_and_status(js_run: JsRun) -> None:
    observations = js_run.observations
    root = observations["js-request"]
    assert root["input"] == {"question": "What does Fathom store?"}
    assert root["output"] == {"answer": "Traces.", "sources": 2}
    assert root["metadata"]["tier"] == "gold" and root["metadata"]["attempt"] == 2
    assert root["metadata"]["flags"] == {"beta": True}
    assert root["level"] == "DEFAULT" and root["statusMessage"] is None

    assert observations["js-agent"]["input"] == {"goal": "answer"}
    assert observations["js-agent"]["output"] == {"answer": "Traces."}
    assert observations["js-retriever"]["output"] == [{"doc": "a"}, {"doc": "b"}]
    # observe() records several arguments as an array and the resolved value as output.
    search = observations["js-search-tool"]
    assert search["input"] == ["fathom", 3]
    assert search["output"] == {"query": "fathom", "hits": 3}
    # Plain strings travel unquoted and come back as the same strings.
    assert observations["js-chain"]["input"] == "plain text in"
    assert observations["js-chain"]["output"] == "plain text out"
    assert observations["js-guardrail"]["input"] == "Traces."
    assert observations["js-guardrail"]["output"] == {"allowed": True}

    # A thrown error only sets the OpenTelemetry span status: it becomes level and message.
    flaky = observations["js-flaky-tool"]
    assert flaky["level"] == "ERROR" and flaky["statusMessage"] == "upstream timed out"
    failed = observations["js-failed-step"]
    assert failed["level"] == "ERROR" and failed["statusMessage"] == "validation failed"
    assert failed["output"] == {"ok": False}
    assert observations["js-judge"]["level"] == "DEBUG"
    event = observations["js-cache-miss"]
    assert event["level"] == "WARNING" and event["statusMessage"] == "cache miss"
    assert event["input"] == {"key": "q1"}
    # Events are points in time: like upstream, no end time is stored for them.
    assert event["startTime"] and event["endTime"] is None


def test_generation_model_usage_cost_and_timing(js_run: JsRun, api: httpx.Client) -> None:
    generation = js_run.observations["js-llm"]
    assert generation["model"] == "gpt-4o"
    assert generation["modelParameters"] == {"temperature": 0.2, "max_tokens": 256}
    assert generation["input"] == [{"role": "user", "content": "Hello Ada!"}]
    assert generation["output"] == {"role": "assistant", "content": "Traces."}
    assert generation["metadata"]["provider"] == "openai"
    # Totals are derived from the parts when the SDK sends none; provided costs win over
    # the model's prices.
    assert generation["usageDetails"] == {"input": 120, "output": 30, "total": 150}
    assert generation["costDetails"] == pytest.approx(
        {"input": 0.0012, "output": 0.0009, "total": 0.0021}
    )
    assert generation["calculatedTotalCost"] == pytest.approx(0.0021)
    assert generation["modelId"]
    # The SDK double-encodes the completion start time (JSON.stringify of a Date).
    assert parse_time(generation["completionStartTime"]) == parse_time(
        js_run.output["completionStartTime"]
    )

    # No costs sent and a known model: priced by the server ($0.02 / 1M tokens).
    embedding = js_run.observations["js-embed"]
    assert embedding["model"] == "text-embedding-3-small"
    assert embedding["usageDetails"] == {"input": 2, "total": 2}
    assert embedding["calculatedTotalCost"] == pytest.approx(2 * 0.02e-6)
    chat = js_run.observations["js-chat-llm"]
    assert chat["usageDetails"] == {"input": 1000, "output": 500, "total": 1500}
    # An unpriced model: no cost details, which the v1 observation reads as 0, as upstream.
    assert chat["costDetails"] == {} and chat["calculatedTotalCost"] == 0
    assert js_run.trace["totalCost"] == pytest.approx(0.0021 + 2 * 0.02e-6)

    v2 = api.get(
        "/api/public/v2/observations",
        params={"traceId": js_run.trace_id, "name": "js-llm", "fields": "core,model,usage"},
    ).json()["data"]
    assert len(v2) == 1
    assert v2[0]["providedModelName"] == "gpt-4o"
    assert v2[0]["usageDetails"] == {"input": 120, "output": 30, "total": 150}
    assert v2[0]["totalCost"] == pytest.approx(0.0021)


def test_generations_linked_to_prompts(js_run: JsRun, api: httpx.Client) -> None:
    prompts = js_run.output["prompts"]
    observations = js_run.observations
    # Linked on the observation (`prompt: promptClient`) and, for the chat prompt, through
    # `propagateAttributes({ prompt })`, which only generations keep.
    llm, chat = observations["js-llm"], observations["js-chat-llm"]
    assert (llm["promptName"], llm["promptVersion"]) == (prompts["textName"], 1)
    assert (chat["promptName"], chat["promptVersion"]) == (prompts["chatName"], 1)
    assert observations["js-embed"]["promptName"] is None
    assert observations["js-request"]["promptName"] is None

    page = api.get(
        "/api/public/v2/observations",
        params={"traceId": js_run.trace_id, "type": "GENERATION", "fields": "core,prompt"},
    ).json()["data"]
    assert {o["id"]: (o["promptName"], o["promptVersion"]) for o in page} == {
        llm["id"]: (prompts["textName"], 1),
        chat["id"]: (prompts["chatName"], 1),
    }


def test_linked_generations_carry_the_prompt_id(js_run: JsRun, api: httpx.Client) -> None:
    prompts = js_run.output["prompts"]
    text_v1 = api.get(
        f"/api/public/v2/prompts/{quote(prompts['textName'])}", params={"version": 1}
    ).json()
    chat_v1 = api.get(f"/api/public/v2/prompts/{quote(prompts['chatName'])}").json()
    assert js_run.observations["js-llm"]["promptId"] == text_v1["id"]
    assert js_run.observations["js-chat-llm"]["promptId"] == chat_v1["id"]


def test_scores_from_the_js_client(js_run: JsRun, api: httpx.Client) -> None:
    scores = js_run.scores
    observations = js_run.observations
    helpfulness = scores["js-helpfulness"]
    assert helpfulness["dataType"] == "NUMERIC" and helpfulness["value"] == 0.87
    assert helpfulness["comment"] == "solid" and helpfulness["observationId"] is None
    correct = scores["js-correct"]
    assert correct["dataType"] == "BOOLEAN" and correct["value"] == 1
    assert correct["observationId"] == observations["js-llm"]["id"]
    steps = scores["js-agent-steps"]
    assert steps["value"] == 3 and steps["observationId"] == observations["js-agent"]["id"]
    verdict = scores["js-verdict"]
    assert verdict["id"] == f"js-verdict-{js_run.output['run']}"
    assert verdict["dataType"] == "CATEGORICAL" and verdict["stringValue"] == "pass"
    assert verdict["metadata"] == {"reviewer": "bot"}
    # The client takes its environment from LANGFUSE_TRACING_ENVIRONMENT, like the spans.
    assert {s["environment"] for s in scores.values()} == {ENVIRONMENT}
    assert {s["source"] for s in scores.values()} == {"API"}

    v3 = api.get(
        "/api/public/v3/scores",
        params={"traceId": js_run.trace_id, "fields": "subject,details"},
    ).json()["data"]
    by_name = {s["name"]: s for s in v3}
    assert set(by_name) == TRACE_SCORES
    assert by_name["js-correct"]["value"] is True
    assert by_name["js-correct"]["subject"]["kind"] == "observation"
    assert by_name["js-correct"]["subject"]["id"] == observations["js-llm"]["id"]
    assert by_name["js-verdict"]["value"] == "pass"
    assert by_name["js-verdict"]["subject"] == {"kind": "trace", "id": js_run.trace_id}
    assert by_name["js-helpfulness"]["comment"] == "solid"

    session_scores = poll(
        lambda: api.get(
            "/api/public/v3/scores",
            params={"sessionId": js_run.output["sessionId"], "fields": "subject,details"},
        ).json()["data"],
        lambda data: len(data) >= 1,
    )
    [csat] = session_scores
    assert csat["name"] == "js-session-csat" and csat["value"] == 4
    assert csat["comment"] == "happy"
    assert csat["subject"] == {"kind": "session", "id": js_run.output["sessionId"]}


def test_prompts_created_and_fetched_by_the_js_client(js_run: JsRun, api: httpx.Client) -> None:
    prompts = js_run.output["prompts"]
    text_name, chat_name = prompts["textName"], prompts["chatName"]

    # What the JS client parsed from the server's answers, before the relabel.
    production, staging = prompts["production"], prompts["staging"]
    assert (production["name"], production["version"], production["type"]) == (
        text_name,
        1,
        "text",
    )
    assert production["prompt"] == "Hello {{name}}!"
    assert production["compiled"] == "Hello Ada!"
    assert production["config"] == {"model": "gpt-4o", "temperature": 0.2}
    assert production["labels"] == ["production"]
    assert production["tags"] == ["e2e", "js"]
    assert production["commitMessage"] == "first draft"
    assert production["isFallback"] is False
    assert staging["version"] == 2 and staging["labels"] == ["latest", "staging"]
    assert staging["compiled"] == "Hi Ada, welcome back."
    # A version created without tags keeps the previous version's tags.
    assert staging["tags"] == ["e2e", "js"]
    assert staging["config"] == {}
    assert prompts["latest"]["version"] == 2
    assert prompts["version1"]["version"] == 1
    assert prompts["promoted"]["version"] == 2
    assert prompts["promoted"]["labels"] == ["latest", "production", "staging"]
    # A missing prompt is a 404, so the client serves its fallback.
    missing = prompts["missing"]
    assert missing["isFallback"] is True and missing["compiled"] == "Fallback Ada"

    chat = prompts["chat"]
    assert (chat["name"], chat["version"], chat["type"]) == (chat_name, 1, "chat")
    assert chat["config"] == {"model": "gpt-4o-mini"}
    assert chat["labels"] == ["latest", "production"]
    assert chat["compiled"] == [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "What does Fathom store?"},
    ]
    assert prompts["created"]["chat"]["compiled"] == chat["compiled"]

    # The same prompts through the REST API, after the relabel moved `production` to v2.
    stored_v1 = api.get(f"/api/public/v2/prompts/{quote(text_name)}", params={"version": 1})
    assert stored_v1.status_code == 200
    assert stored_v1.json()["labels"] == [] and stored_v1.json()["prompt"] == "Hello {{name}}!"
    stored_production = api.get(f"/api/public/v2/prompts/{quote(text_name)}").json()
    assert stored_production["version"] == 2
    assert sorted(stored_production["labels"]) == ["latest", "production", "staging"]
    stored_chat = api.get(f"/api/public/v2/prompts/{quote(chat_name)}").json()
    assert stored_chat["type"] == "chat"
    assert [without_message_type(m) for m in stored_chat["prompt"]] == [
        {"role": "system", "content": "You are {{persona}}."},
        {"type": "placeholder", "name": "history"},
        {"role": "user", "content": "{{question}}"},
    ]
    listed = api.get("/api/public/v2/prompts", params={"name": text_name}).json()["data"]
    assert [(p["name"], p["versions"]) for p in listed] == [(text_name, [1, 2])]


def test_trace_with_a_seeded_id_and_remote_parent(js_run: JsRun, api: httpx.Client) -> None:
    output = js_run.output
    seeded = hashlib.sha256(f"js-e2e-seed-{output['run']}".encode()).hexdigest()[:32]
    assert output["seededTraceId"] == seeded
    trace = poll(
        lambda: api.get(f"/api/public/traces/{seeded}"),
        lambda r: r.status_code == 200 and len(r.json()["observations"]) == 1,
    ).json()
    assert trace["name"] == f"js-external-{output['run']}"
    assert trace["environment"] == ENVIRONMENT and trace["release"] == RELEASE
    [external] = trace["observations"]
    assert external["id"] == output["ids"]["js-external"]
    assert external["name"] == "js-external" and external["input"] == {"from": "queue"}
    # The JS SDK has no as_root flag: the never-exported remote parent stays the parent.
    assert external["parentObservationId"] == output["remoteParentId"]


def quote(name: str) -> str:
    """A prompt name as one path segment: the SDKs URL-encode folder slashes too."""
    return urllib.parse.quote(name, safe="")


def without_message_type(message: dict[str, Any]) -> dict[str, Any]:
    """The JS client tags chat messages `type: "chatmessage"`; whether that tag is kept is
    the server's choice, and the client reads both."""
    if message.get("type") == "chatmessage":
        return {k: v for k, v in message.items() if k != "type"}
    return message


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
