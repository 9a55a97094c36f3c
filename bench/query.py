"""Read-path benchmark: trace list, trace get, observation lists (with the v1 total a poller
reads) and a metrics query with 100k and 1M observations.

Fills the embedded telemetry store directly (5 observations per trace, generations with
usage and cost; with `--scores N`, N numeric scores per trace too), then starts `fathom serve`
on that data and times the public API over HTTP. Prints p50/p99 per endpoint and store size.

Run: `TZ=UTC python bench/query.py [--sizes 100000 1000000] [--repeat 50] [--scores 0]`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fathom.core.domain.scores import Score, ScoreDataType
from fathom.core.domain.tracing import Level, Observation, ObservationType, Trace
from fathom.core.ports.telemetry import TelemetryStore
from fathom.entrypoints.bootstrap import Runtime
from fathom.entrypoints.settings import HeadlessInit, Settings

PROJECT, PUBLIC_KEY, SECRET_KEY = "bench-project", "pk-lf-bench", "sk-lf-bench"
AUTH = "Basic " + base64.b64encode(f"{PUBLIC_KEY}:{SECRET_KEY}".encode()).decode()
TYPES = [
    ObservationType.SPAN,
    ObservationType.GENERATION,
    ObservationType.TOOL,
    ObservationType.GENERATION,
    ObservationType.EVENT,
]


def settings(data_dir: Path) -> Settings:
    init = HeadlessInit(
        org_id="bench-org",
        project_id=PROJECT,
        project_public_key=PUBLIC_KEY,
        project_secret_key=SECRET_KEY,
    )
    return Settings(data_dir=data_dir, init=init)


async def fill(data_dir: Path, start: int, traces: int, scores: int = 0) -> list[str]:
    runtime = Runtime(settings(data_dir))
    await runtime.start()
    store = runtime.resolve(TelemetryStore)
    rng = random.Random(start)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    text = "lorem ipsum " * 100
    trace_ids: list[str] = []
    batch = 2_000
    for offset in range(start, start + traces, batch):
        trace_rows, observation_rows, score_rows = [], [], []
        for n in range(offset, min(offset + batch, start + traces)):
            trace_id = f"{n:032x}"
            trace_ids.append(trace_id)
            moment = base + timedelta(seconds=n * 7)
            trace_rows.append(
                Trace(
                    id=trace_id,
                    project_id=PROJECT,
                    timestamp=moment,
                    name=f"pipeline-{n % 20}",
                    user_id=f"user-{n % 500}",
                    session_id=f"session-{n // 10}",
                    tags=["bench", f"t{n % 7}"],
                    input={"q": text[:200]},
                    output={"a": text[:200]},
                    environment="production",
                )
            )
            for i, kind in enumerate(TYPES):
                generation = kind is ObservationType.GENERATION
                observation_rows.append(
                    Observation(
                        id=f"{trace_id[8:]}{i:08x}",
                        project_id=PROJECT,
                        trace_id=trace_id,
                        type=kind,
                        start_time=moment + timedelta(milliseconds=i * 10),
                        end_time=moment + timedelta(milliseconds=i * 10 + rng.randint(5, 900)),
                        name=f"{kind.value.lower()}-{i}",
                        parent_observation_id=None if i == 0 else f"{trace_id[8:]}{0:08x}",
                        level=Level.DEFAULT,
                        input=text if generation else {"step": i},
                        output=text if generation else {"ok": True},
                        model="gpt-4o-mini" if generation else None,
                        usage_details={"input": 400, "output": 300, "total": 700}
                        if generation
                        else {},
                        cost_details={"input": 6e-05, "output": 0.00018, "total": 0.00024}
                        if generation
                        else {},
                        total_cost=0.00024 if generation else None,
                        environment="production",
                    )
                )
            score_rows += [
                Score(
                    id=f"{trace_id[8:]}{i:08x}",
                    project_id=PROJECT,
                    name=f"quality-{i}",
                    timestamp=moment + timedelta(seconds=1),
                    data_type=ScoreDataType.NUMERIC,
                    value=rng.random(),
                    trace_id=trace_id,
                    environment="production",
                )
                for i in range(scores)
            ]
        await store.upsert_traces(trace_rows)
        await store.upsert_observations(observation_rows)
        if score_rows:
            await store.upsert_scores(score_rows)
    await runtime.stop()
    return trace_ids


def start_server(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TZ": "UTC",
        "FATHOM_PORT": str(port),
        "FATHOM_DATA_DIR": str(data_dir),
        "FATHOM_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "fathom", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/public/health", timeout=1):
                return process
        except OSError:
            if process.poll() is not None:
                raise SystemExit("server exited") from None
            time.sleep(0.05)


def timed(url: str, repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        request = urllib.request.Request(url, headers={"Authorization": AUTH})
        begun = time.perf_counter()
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
        samples.append(time.perf_counter() - begun)
    samples.sort()
    return statistics.median(samples) * 1000, samples[max(0, int(len(samples) * 0.99) - 1)] * 1000


def measure(port: int, trace_ids: list[str], observations: int, repeat: int) -> None:
    base = f"http://127.0.0.1:{port}/api/public"
    rng = random.Random(1)
    metrics = {
        "view": "observations",
        "dimensions": [{"field": "providedModelName"}],
        "metrics": [
            {"measure": "totalCost", "aggregation": "sum"},
            {"measure": "latency", "aggregation": "p95"},
        ],
        "filters": [],
        "timeDimension": {"granularity": "day"},
        "fromTimestamp": "2026-01-01T00:00:00Z",
        "toTimestamp": "2027-01-01T00:00:00Z",
    }
    cases = {
        "trace list (limit 50)": lambda: f"{base}/traces?limit=50",
        "trace list, user filter": lambda: (
            f"{base}/traces?limit=50&userId=user-{rng.randint(0, 499)}"
        ),
        "trace get": lambda: f"{base}/traces/{rng.choice(trace_ids)}",
        "observations v2 (limit 50)": lambda: f"{base}/v2/observations?limit=50",
        # What a poller asks for: meta.totalItems of the v1 list.
        "observations v1 count (limit 1)": lambda: f"{base}/observations?limit=1",
        "metrics query (cost, p95 by model/day)": lambda: (
            f"{base}/v2/metrics?query={urllib.parse.quote(json.dumps(metrics))}"
        ),
    }
    print(f"--- {observations:,} observations ({len(trace_ids):,} traces)")
    for name, make_url in cases.items():
        timed(make_url(), 3)  # warm caches, as a running server would have them
        samples = [timed(make_url(), 1)[0] for _ in range(repeat)]
        samples.sort()
        p50 = statistics.median(samples)
        p99 = samples[max(0, int(len(samples) * 0.99) - 1)]
        print(f"{name:42s} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--port", type=int, default=13101)
    parser.add_argument("--scores", type=int, default=0, help="numeric scores per trace")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fathom-bench-query-") as folder:
        data_dir = Path(folder) / "data"
        trace_ids: list[str] = []
        for size in sorted(args.sizes):
            wanted = size // len(TYPES)
            begun = time.perf_counter()
            trace_ids += asyncio.run(
                fill(data_dir, len(trace_ids), wanted - len(trace_ids), args.scores)
            )
            print(f"filled to {size:,} observations in {time.perf_counter() - begun:.0f} s")
            server = start_server(data_dir, args.port)
            try:
                measure(args.port, trace_ids, size, args.repeat)
            finally:
                server.terminate()
                server.wait(timeout=30)


if __name__ == "__main__":
    main()
