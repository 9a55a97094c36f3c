"""Scale-out by configuration: two `fathom web` and two `fathom worker` processes share
Postgres, ClickHouse over HTTP, Redis and an object store. The official SDK sends through
both web processes, one worker is SIGKILLed mid-load, and every acknowledged span and score
is stored exactly once. A prompt changed through one web process is served by the other at
once (the prompt cache is shared in Redis). The same run passes with the blob store switched
to Azure and GCS."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import PUBLIC_KEY, SECRET_KEY
from tests.live_server import LiveServer

WEB_PORTS = (13061, 13062)
TRACES_PER_CLIENT = 40
SPANS_PER_TRACE = 4

CLIENT = r"""
import json, sys
from langfuse import Langfuse

host, public_key, secret_key, tag, count = sys.argv[1:6]
client = Langfuse(host=host, public_key=public_key, secret_key=secret_key, flush_at=20,
                  flush_interval=0.1)
trace_ids = []
for i in range(int(count)):
    with client.start_as_current_observation(name=f"{tag}-{i}", input={"i": i}) as root:
        for child in range(3):
            with client.start_as_current_observation(
                name=f"step-{child}", as_type="generation" if child == 1 else "span",
                model="gpt-4o-mini", usage_details={"input": 10, "output": 5},
            ):
                pass
        root.score_trace(name="quality", value=i)
        trace_ids.append(root.trace_id)
client.shutdown()
print(json.dumps(trace_ids))
"""


class Cluster:
    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env = env
        self.folder = folder
        self.webs = [
            LiveServer(port=port, data_dir=folder / f"web-{port}", env_overrides=env)
            for port in WEB_PORTS
        ]
        self.workers: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        for web in self.webs:
            web.start(command="web")
        for index in range(2):
            log = (self.folder / f"worker-{index}.log").open("ab")
            self.workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "fathom", "worker"],
                    env={**self.webs[0].environment(), **self.env},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )

    def stop(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=20)
        for web in self.webs:
            web.stop()


def blob_settings(kind: str, request: pytest.FixtureRequest) -> dict[str, str]:
    if kind == "s3":
        endpoint, bucket = (
            request.getfixturevalue("s3_endpoint"),
            request.getfixturevalue("s3_bucket"),
        )
        return {
            "FATHOM_BLOB__KIND": "s3",
            "FATHOM_BLOB__BUCKET": bucket,
            "FATHOM_BLOB__ENDPOINT_URL": endpoint,
            "FATHOM_BLOB__FORCE_PATH_STYLE": "true",
            "FATHOM_BLOB__ACCESS_KEY_ID": "test",
            "FATHOM_BLOB__SECRET_ACCESS_KEY": "test",
            "FATHOM_BLOB__REGION": "us-east-1",
        }
    if kind == "azure":
        connection_string, container = (
            request.getfixturevalue("azurite_connection_string"),
            request.getfixturevalue("azure_container"),
        )
        return {
            "FATHOM_BLOB__KIND": "azure",
            "FATHOM_BLOB__CONTAINER": container,
            "FATHOM_BLOB__CONNECTION_STRING": connection_string,
        }
    endpoint, bucket = (
        request.getfixturevalue("gcs_endpoint"),
        request.getfixturevalue("gcs_bucket"),
    )
    return {
        "FATHOM_BLOB__KIND": "gcs",
        "FATHOM_BLOB__BUCKET": bucket,
        "FATHOM_BLOB__ENDPOINT_URL": endpoint,
        "FATHOM_BLOB__PROJECT": "test",
    }


@pytest.fixture(params=["s3", "azure", "gcs"])
def cluster(
    request: pytest.FixtureRequest,
    fresh_postgres_url: str,
    redis_url: str,
    clickhouse_http_url: str,
    tmp_path: Path,
) -> Iterator[Cluster]:
    database = f"fathom_{request.param}_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
    env = {
        "FATHOM_SALT": "scale-out-test",
        "FATHOM_RECORDS__KIND": "postgres",
        "FATHOM_RECORDS__URL": fresh_postgres_url,
        "FATHOM_TELEMETRY__KIND": "clickhouse",
        "FATHOM_TELEMETRY__URL": clickhouse_http_url,
        "FATHOM_TELEMETRY__DATABASE": database,
        "FATHOM_QUEUE__KIND": "redis",
        "FATHOM_QUEUE__URL": redis_url,
        "FATHOM_QUEUE__STREAM": f"jobs-{database}",
        "FATHOM_QUEUE__CLAIM_IDLE_SECONDS": "2",
        "FATHOM_QUEUE__BACKOFF_BASE_SECONDS": "0.2",
        "FATHOM_CACHE__KIND": "redis",
        "FATHOM_CACHE__URL": redis_url,
        **blob_settings(request.param, request),
    }
    nodes = Cluster(env, tmp_path)
    nodes.start()
    try:
        yield nodes
    finally:
        nodes.stop()


def run_client(url: str, tag: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CLIENT, url, PUBLIC_KEY, SECRET_KEY, tag, str(TRACES_PER_CLIENT)],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_two_webs_two_workers_one_killed(cluster: Cluster) -> None:
    clients = [run_client(web.url, f"web{index}") for index, web in enumerate(cluster.webs)]
    time.sleep(1.0)
    cluster.workers[0].send_signal(signal.SIGKILL)  # mid-load: its claimed jobs must move on
    trace_ids: list[str] = []
    for client in clients:
        out, _ = client.communicate(timeout=120)
        assert client.returncode == 0
        trace_ids += json.loads(out.strip().splitlines()[-1])
    assert len(trace_ids) == 2 * TRACES_PER_CLIENT

    with httpx.Client(
        base_url=cluster.webs[1].url, auth=(PUBLIC_KEY, SECRET_KEY), timeout=10
    ) as api:
        missing = set(trace_ids)
        deadline = time.monotonic() + 120
        while missing and time.monotonic() < deadline:
            for trace_id in sorted(missing):
                response = api.get(f"/api/public/traces/{trace_id}")
                if response.status_code != 200:
                    continue
                trace = response.json()
                if len(trace["observations"]) >= SPANS_PER_TRACE and trace["scores"]:
                    missing.discard(trace_id)
            time.sleep(0.3)
        assert not missing, f"{len(missing)} traces incomplete"
        for trace_id in trace_ids:
            trace = api.get(f"/api/public/traces/{trace_id}").json()
            # The root span, exported last, names the trace: whichever worker merged it, a
            # worker merging the trace's earlier spans at the same time must not undo that.
            assert trace["name"] and trace["name"].startswith("web"), trace
            assert trace["input"] == {"i": int(trace["name"].split("-")[1])}
            assert len(trace["observations"]) == SPANS_PER_TRACE
            assert len({o["id"] for o in trace["observations"]}) == SPANS_PER_TRACE
            assert [s["name"] for s in trace["scores"]] == ["quality"]
            generation = next(o for o in trace["observations"] if o["type"] == "GENERATION")
            assert generation["calculatedTotalCost"] > 0
        page = api.get("/api/public/v3/scores", params={"name": "quality", "limit": 100}).json()
        assert len(page["data"]) == len(trace_ids)
    prompt_changes_are_served_by_the_other_web_at_once(cluster)


def prompt_changes_are_served_by_the_other_web_at_once(cluster: Cluster) -> None:
    first, second = (
        httpx.Client(base_url=web.url, auth=(PUBLIC_KEY, SECRET_KEY), timeout=10)
        for web in cluster.webs
    )
    with first, second:

        def served_by_second() -> str:
            response = second.get("/api/public/v2/prompts/greeting")
            assert response.status_code == 200, response.text
            return response.json()["prompt"]

        def create(text: str) -> None:
            body = {"name": "greeting", "type": "text", "prompt": text, "labels": ["production"]}
            response = first.post("/api/public/v2/prompts", json=body)
            assert response.status_code in (200, 201), response.text

        create("v1")
        assert served_by_second() == "v1"  # now cached for web 2 (TTL 300 s)
        create("v2")  # a new version takes the label...
        assert served_by_second() == "v2"  # ...and web 2's very next read has it, no retry
        moved = first.patch(
            "/api/public/v2/prompts/greeting/versions/1", json={"newLabels": ["production"]}
        )
        assert moved.status_code == 200, moved.text
        assert served_by_second() == "v1"  # the label moved back: seen at once as well
