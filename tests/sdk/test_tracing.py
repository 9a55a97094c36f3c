"""The official `langfuse` SDK 5.x traces into a live server; the REST API reads it back."""

from __future__ import annotations

import subprocess
import sys
import uuid
from typing import Any

import httpx
import pytest
from langfuse import Langfuse, observe, propagate_attributes

from tests.conftest import PUBLIC_KEY, SECRET_KEY
from tests.live_server import LiveServer
from tests.sdk.conftest import poll

OBSERVATION_TYPES = [
    "span",
    "generation",
    "agent",
    "tool",
    "chain",
    "retriever",
    "evaluator",
    "embedding",
    "guardrail",
]


def get_trace(api: httpx.Client, trace_id: str, observations: int) -> dict[str, Any]:
    def fetch() -> httpx.Response:
        return api.get(f"/api/public/traces/{trace_id}")

    response = poll(
        fetch,
        lambda r: r.status_code == 200 and len(r.json()["observations"]) >= observations,
    )
    return response.json()


def test_nested_observations_of_every_type_with_propagated_attributes(
    langfuse: Langfuse, api: httpx.Client
) -> None:
    tag = uuid.uuid4().hex[:8]
    with langfuse.start_as_current_observation(name="root", input={"q": "root-in"}) as root:
        with propagate_attributes(
            user_id="user-1",
            session_id=f"session-{tag}",
            tags=["alpha", tag],
            metadata={"tier": "gold"},
            trace_name=f"trace-{tag}",
            version="v9",
        ):
            for as_type in OBSERVATION_TYPES:
                with langfuse.start_as_current_observation(
                    name=f"child-{as_type}", as_type=as_type, input=as_type
                ) as child:
                    child.update(output={"done": as_type}, metadata={"n": 1, "s": "x"})
            langfuse.create_event(name="an-event", input="evt")
        root.update(output={"a": "root-out"})
        trace_id = root.trace_id
    langfuse.flush()

    trace = get_trace(api, trace_id, observations=len(OBSERVATION_TYPES) + 2)
    assert trace["name"] == f"trace-{tag}"
    assert trace["userId"] == "user-1"
    assert trace["sessionId"] == f"session-{tag}"
    assert set(trace["tags"]) == {"alpha", tag}
    assert trace["metadata"]["tier"] == "gold"
    assert trace["environment"] == "staging"
    assert trace["release"] == "rel-1"
    assert trace["input"] == {"q": "root-in"}
    assert trace["output"] == {"a": "root-out"}

    by_name = {o["name"]: o for o in trace["observations"]}
    root_obs = by_name["root"]
    assert root_obs["parentObservationId"] is None
    for as_type in OBSERVATION_TYPES:
        child = by_name[f"child-{as_type}"]
        assert child["type"] == as_type.upper()
        assert child["parentObservationId"] == root_obs["id"]
        assert child["input"] == as_type
        assert child["output"] == {"done": as_type}
        # SDK 5 JSON-encodes every metadata value; the server decodes them.
        assert child["metadata"]["n"] == 1 and child["metadata"]["s"] == "x"
    event = by_name["an-event"]
    # Events are points in time: like upstream, no end time is stored for them.
    assert event["type"] == "EVENT" and event["startTime"] and event["endTime"] is None

    # The same data through the v2 observations API the SDK 5 uses.
    page = api.get(
        "/api/public/v2/observations",
        params={"traceId": trace_id, "fields": "core,basic,io", "limit": 100},
    ).json()
    assert len(page["data"]) == len(OBSERVATION_TYPES) + 2
    assert {o["userId"] for o in page["data"]} == {"user-1"}

    sessions = api.get(f"/api/public/sessions/session-{tag}").json()
    assert [t["id"] for t in sessions["traces"]] == [trace_id]


def test_generation_usage_cost_and_model_pricing(langfuse: Langfuse, api: httpx.Client) -> None:
    with langfuse.start_as_current_observation(name="llm-root") as root:
        with langfuse.start_as_current_observation(
            name="provided",
            as_type="generation",
            model="gpt-4o-mini",
            model_parameters={"temperature": 0.7},
            usage_details={"input": 10, "output": 20, "total": 30},
            cost_details={"input": 0.001, "output": 0.002, "total": 0.003},
        ):
            pass
        with langfuse.start_as_current_observation(
            name="inferred",
            as_type="generation",
            model="gpt-4o",
            usage_details={"input": 1000, "output": 500},
        ):
            pass
        trace_id = root.trace_id
    langfuse.flush()
    trace = get_trace(api, trace_id, observations=3)
    by_name = {o["name"]: o for o in trace["observations"]}
    provided = by_name["provided"]
    assert provided["model"] == "gpt-4o-mini"
    assert provided["modelParameters"] == {"temperature": 0.7}
    assert provided["usageDetails"] == {"input": 10, "output": 20, "total": 30}
    assert provided["costDetails"] == pytest.approx(
        {"input": 0.001, "output": 0.002, "total": 0.003}
    )
    inferred = by_name["inferred"]
    assert inferred["usageDetails"] == {"input": 1000, "output": 500, "total": 1500}
    # gpt-4o: $2.50 / 1M input tokens, $10 / 1M output tokens.
    assert inferred["costDetails"]["input"] == pytest.approx(0.0025)
    assert inferred["costDetails"]["output"] == pytest.approx(0.005)
    assert inferred["calculatedTotalCost"] == pytest.approx(0.0075)
    assert inferred["modelId"]
    assert trace["totalCost"] == pytest.approx(0.0105)


def test_decorator_traces_function_calls(langfuse: Langfuse, api: httpx.Client) -> None:
    seen: dict[str, str] = {}

    @observe(name="inner")
    def inner(x: int) -> int:
        return x * 2

    @observe(name="outer")
    def outer(x: int) -> int:
        seen["trace_id"] = langfuse.get_current_trace_id() or ""
        return inner(x) + 1

    assert outer(20) == 41
    langfuse.flush()
    trace = get_trace(api, seen["trace_id"], observations=2)
    by_name = {o["name"]: o for o in trace["observations"]}
    assert by_name["outer"]["output"] == 41
    assert by_name["inner"]["input"] == {"args": [20], "kwargs": {}}
    assert by_name["inner"]["parentObservationId"] == by_name["outer"]["id"]


def test_scores_of_every_kind_round_trip(langfuse: Langfuse, api: httpx.Client) -> None:
    with langfuse.start_as_current_observation(name="scored") as span:
        span.score(name="span-quality", value=0.8, comment="ok")
        span.score_trace(name="trace-bool", value=1, data_type="BOOLEAN")
        trace_id, observation_id = span.trace_id, span.id
    langfuse.create_score(name="cat", value="good", trace_id=trace_id, data_type="CATEGORICAL")
    langfuse.create_score(name="session-score", value=2.0, session_id="s-scored")
    langfuse.create_score(name="text", value="free text", trace_id=trace_id, data_type="TEXT")
    langfuse.flush()

    trace = poll(
        lambda: api.get(f"/api/public/traces/{trace_id}").json(),
        lambda t: len(t.get("scores", [])) >= 4,
    )
    scores = {s["name"]: s for s in trace["scores"]}
    assert scores["span-quality"]["value"] == 0.8
    assert scores["span-quality"]["observationId"] == observation_id
    assert scores["span-quality"]["comment"] == "ok"
    assert scores["trace-bool"]["dataType"] == "BOOLEAN" and scores["trace-bool"]["value"] == 1
    assert scores["cat"]["dataType"] == "CATEGORICAL" and scores["cat"]["stringValue"] == "good"
    assert scores["text"]["stringValue"] == "free text"

    body = api.get(
        "/api/public/v3/scores", params={"sessionId": "s-scored", "fields": "subject"}
    ).json()
    assert body["data"][0]["subject"] == {"kind": "session", "id": "s-scored"}
    assert body["data"][0]["value"] == 2.0


CLIENT_SCRIPT = """
import sys
from langfuse import Langfuse

host, public_key, secret_key, marker, sample_rate = sys.argv[1:6]

def mask(data, **kwargs):
    if isinstance(data, dict) and "password" in data:
        return {**data, "password": "[REDACTED]"}
    return data

client = Langfuse(host=host, public_key=public_key, secret_key=secret_key,
                  sample_rate=float(sample_rate), mask=mask)
for i in range(5):
    with client.start_as_current_observation(name=marker, input={"password": "hunter2", "i": i}):
        pass
client.shutdown()
"""


def run_client(live_server: LiveServer, marker: str, sample_rate: float) -> None:
    subprocess.run(
        [
            sys.executable,
            "-c",
            CLIENT_SCRIPT,
            live_server.url,
            PUBLIC_KEY,
            SECRET_KEY,
            marker,
            str(sample_rate),
        ],
        check=True,
        timeout=60,
    )


def test_client_side_sampling_and_masking(live_server: LiveServer, api: httpx.Client) -> None:
    # The SDK's tracer provider is process-global, so each configuration runs in its own
    # process. Batches are processed in order: once the sampled-in traces are readable,
    # anything the sampled-out client had sent would be too.
    dropped, kept = f"dropped-{uuid.uuid4().hex}", f"kept-{uuid.uuid4().hex}"
    run_client(live_server, dropped, 0.0)
    run_client(live_server, kept, 1.0)
    listed = poll(
        lambda: api.get("/api/public/traces", params={"name": kept}).json()["data"],
        lambda data: len(data) == 5,
    )
    assert api.get("/api/public/traces", params={"name": dropped}).json()["data"] == []
    inputs = sorted((t["input"] for t in listed), key=lambda i: i["i"])
    assert inputs == [{"password": "[REDACTED]", "i": i} for i in range(5)]
