"""The previous SDK major (langfuse 4.x) works too: OTLP spans with raw-string metadata,
scores through `/api/public/ingestion`, reads through the v1 traces/observations/sessions
and v2 scores endpoints — all through the SDK's own generated API client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PUBLIC_KEY, SECRET_KEY
from tests.live_server import LiveServer

SDK4 = "langfuse==4.18.0"

SCRIPT = r"""
import json, sys, time, uuid
from langfuse import Langfuse, propagate_attributes

host, public_key, secret_key = sys.argv[1:4]
langfuse = Langfuse(host=host, public_key=public_key, secret_key=secret_key, flush_interval=0.2)
session = f"sdk4-{uuid.uuid4().hex[:8]}"
with langfuse.start_as_current_observation(name="sdk4-root") as root:
    with propagate_attributes(user_id="sdk4-user", session_id=session, tags=["v4"],
                              metadata={"tier": "gold"}):
        with langfuse.start_as_current_observation(
            name="sdk4-llm", as_type="generation", model="gpt-4o",
            usage_details={"input": 100, "output": 10}, metadata={"raw": "text"},
        ):
            pass
        langfuse.set_current_trace_io(input={"q": 1}, output={"a": 2})
    root.score_trace(name="sdk4-quality", value=0.5)
    trace_id = root.trace_id
langfuse.create_score(name="sdk4-cat", value="good", trace_id=trace_id, data_type="CATEGORICAL")
langfuse.flush()

deadline = time.time() + 30
while True:
    try:
        trace = langfuse.api.trace.get(trace_id)
        if len(trace.observations) >= 2 and len(trace.scores) >= 2:
            break
    except Exception:
        pass
    if time.time() > deadline:
        raise SystemExit("trace not readable")
    time.sleep(0.2)
observations = langfuse.api.legacy.observations_v1.get_many(trace_id=trace_id)
session_body = langfuse.api.sessions.get(session)
scores_v2 = langfuse.api.scores.get_many(trace_id=trace_id)
print(json.dumps({
    "trace": {"name": trace.name, "user": trace.user_id, "session": trace.session_id,
              "tags": trace.tags, "metadata": trace.metadata, "input": trace.input,
              "output": trace.output},
    "observations": sorted(o.name for o in observations.data),
    "generation": next(
        {"model": o.model, "usage": o.usage_details, "cost": o.calculated_total_cost,
         "metadata": o.metadata}
        for o in trace.observations if o.name == "sdk4-llm"),
    "session_traces": [t.id for t in session_body.traces],
    "trace_id": trace_id,
    "scores": sorted((s.name, s.data_type) for s in scores_v2.data),
}))
langfuse.shutdown()
"""


@pytest.fixture(scope="session")
def sdk4_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """langfuse 4.x installed beside (not into) the test environment; its dependencies
    (OpenTelemetry, httpx, pydantic) are the ones the environment already has."""
    target = tmp_path_factory.mktemp("sdk4")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), SDK4],
        check=True,
        timeout=300,
    )
    yield target


def test_sdk4_traces_scores_and_reads(live_server: LiveServer, sdk4_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, live_server.url, PUBLIC_KEY, SECRET_KEY],
        env={**os.environ, "PYTHONPATH": str(sdk4_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout.strip().splitlines()[-1])
    trace = data["trace"]
    assert trace["name"] == "sdk4-root" and trace["user"] == "sdk4-user"
    assert trace["tags"] == ["v4"]
    assert trace["input"] == {"q": 1} and trace["output"] == {"a": 2}
    # SDK 4 sends string metadata raw: "gold" stays the string gold.
    assert trace["metadata"]["tier"] == "gold"
    assert data["observations"] == ["sdk4-llm", "sdk4-root"]
    generation = data["generation"]
    assert generation["model"] == "gpt-4o" and generation["metadata"]["raw"] == "text"
    assert generation["usage"] == {"input": 100, "output": 10, "total": 110}
    assert generation["cost"] == pytest.approx(100 * 2.5e-6 + 10 * 1e-5)
    assert data["session_traces"] == [data["trace_id"]]
    assert data["scores"] == [["sdk4-cat", "CATEGORICAL"], ["sdk4-quality", "NUMERIC"]]
