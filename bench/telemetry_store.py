"""Benchmark of the ClickHouse telemetry store on embedded chDB.

Inserts 20k traces and 100k observations in batches of 10k and prints rows/s, then the
latency (p50/p99) of the common reads. `--rounds N` repeats the inserts into fresh databases
and prints the range, as the rate swings with whatever else shares the machine.
Run: `TZ=UTC python -P bench/telemetry_store.py [--dsn …] [--rounds N]` (`-P` keeps bench/ off
sys.path, so a sibling script can never shadow a standard-library module).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fathom.adapters.storage.clickhouse.store import ClickHouseTelemetryStore
from fathom.core.domain.scores import Score, ScoreDataType
from fathom.core.domain.tracing import Observation, ObservationType, Trace
from fathom.core.ports.telemetry import ObservationQuery, TraceQuery

PROJECT = "bench-project"
START = datetime(2026, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=30)
BATCH = 10_000
N_TRACES = 20_000
OBS_PER_TRACE = 5
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet", "llama-3"]


def make_data(seed: int = 7) -> tuple[list[Trace], list[Observation], list[Score]]:
    rnd = random.Random(seed)
    traces, observations, scores = [], [], []
    for i in range(N_TRACES):
        ts = START + SPAN * rnd.random()
        tid = f"trace-{i:06d}"
        traces.append(
            Trace(
                id=tid,
                project_id=PROJECT,
                timestamp=ts,
                name=rnd.choice(["chat", "search", "summarize", "classify"]),
                user_id=f"user-{rnd.randrange(500)}",
                session_id=f"session-{rnd.randrange(4000)}",
                input={"question": "What is the meaning of life? " * 8},
                output={"answer": "42 " * 60},
                metadata={"tenant": f"t{rnd.randrange(20)}", "nested": {"a": [1, 2, 3]}},
                tags=rnd.sample(["prod", "beta", "eu", "us", "vip"], 2),
                environment=rnd.choice(["production", "staging"]),
            )
        )
        parent = None
        for j in range(OBS_PER_TRACE):
            start = ts + timedelta(milliseconds=50 * j)
            gen = j > 0
            observations.append(
                Observation(
                    id=f"{tid}-o{j}",
                    project_id=PROJECT,
                    trace_id=tid,
                    type=ObservationType.GENERATION if gen else ObservationType.SPAN,
                    start_time=start,
                    end_time=start + timedelta(milliseconds=rnd.randrange(50, 3000)),
                    name="llm-call" if gen else "root",
                    parent_observation_id=parent,
                    input=[{"role": "user", "content": "Tell me something. " * 10}],
                    output={"role": "assistant", "content": "Something. " * 20},
                    metadata={"step": j},
                    model=rnd.choice(MODELS) if gen else None,
                    usage_details={"input": 120, "output": 80, "total": 200} if gen else {},
                    cost_details={"input": 0.0012, "output": 0.0016, "total": 0.0028}
                    if gen
                    else {},
                    total_cost=0.0028 if gen else None,
                )
            )
            parent = parent or f"{tid}-o0"
        if i % 4 == 0:
            scores.append(
                Score(
                    id=f"{tid}-s",
                    project_id=PROJECT,
                    name="accuracy",
                    timestamp=ts,
                    data_type=ScoreDataType.NUMERIC,
                    value=rnd.random(),
                    trace_id=tid,
                )
            )
    return traces, observations, scores


async def timed_insert(label: str, write: Callable[[list], Awaitable[None]], rows: list) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(rows), BATCH):
        await write(rows[i : i + BATCH])
    elapsed = time.perf_counter() - t0
    rate = len(rows) / elapsed
    print(f"insert {label:<13} {len(rows):>7} rows in {elapsed:6.2f} s = {rate:>8.0f} rows/s")
    return rate


async def latency(label: str, call: Callable[[], Awaitable[object]], runs: int) -> None:
    await call()  # warm-up: first runs pay for caches and index loading
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    p50 = statistics.median(samples)
    p99 = samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
    print(f"{label:<46} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   ({runs} runs)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn", help="default: chDB in a temporary directory")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=1, help="insert rounds (fresh databases)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dsn = args.dsn or f"chdb://{Path(tmp) / 'chdb'}"
        traces, observations, scores = make_data()
        # The harness holds 125k objects a real worker never would; keep the collector from
        # rescanning them during the inserts being measured.
        gc.collect()
        gc.freeze()
        rates: dict[str, list[float]] = {}
        stores: list[ClickHouseTelemetryStore] = []
        for round_ in range(args.rounds):
            if round_:
                print()
            # Stores on one chDB path share its engine; the last one serves the reads.
            store = ClickHouseTelemetryStore(dsn, database=f"bench{round_ or ''}")
            stores.append(store)
            await store.migrate()
            for label, write, rows in (
                ("traces", store.upsert_traces, traces),
                ("observations", store.upsert_observations, observations),
                ("scores", store.upsert_scores, scores),
            ):
                rates.setdefault(label, []).append(await timed_insert(label, write, rows))
        if args.rounds > 1:
            print()
            for label, values in rates.items():
                values.sort()
                print(
                    f"insert {label:<13} {values[0]:>8.0f} .. {values[-1]:>8.0f} rows/s "
                    f"(median {statistics.median(values):.0f}, {len(values)} rounds)"
                )

        rnd = random.Random(1)

        async def list_traces() -> None:
            page = await store.list_traces(PROJECT, TraceQuery(limit=50))
            assert len(page.items) == 50 and page.total == N_TRACES

        async def list_traces_filtered() -> None:
            query = TraceQuery(limit=50, user_id=f"user-{rnd.randrange(500)}", tags=["prod"])
            await store.list_traces(PROJECT, query)

        async def trace_detail() -> None:
            tid = f"trace-{rnd.randrange(N_TRACES):06d}"
            (trace,) = await store.get_traces(PROJECT, [tid])
            assert len(await store.observations_of_trace(PROJECT, trace.id)) == OBS_PER_TRACE

        async def trace_get_route() -> None:
            # What GET /api/public/traces/{id} runs (the store serialises the three calls).
            tid = f"trace-{rnd.randrange(N_TRACES):06d}"
            traces, observations, _ = await asyncio.gather(
                store.get_traces(PROJECT, [tid]),
                store.observations_of_trace(PROJECT, tid),
                store.scores_of_traces(PROJECT, [tid]),
            )
            assert len(traces) == 1 and len(observations) == OBS_PER_TRACE

        async def list_traces_user() -> None:
            query = TraceQuery(limit=50, user_id=f"user-{rnd.randrange(500)}")
            await store.list_traces(PROJECT, query)

        async def observations_v2() -> None:
            page = await store.list_observations(
                PROJECT, ObservationQuery(limit=50), with_total=False
            )
            assert len(page.items) == 50

        async def metrics() -> None:
            await store.run_metrics_query(
                PROJECT,
                "observations",
                {
                    "fromTimestamp": START.isoformat(),
                    "toTimestamp": (START + SPAN).isoformat(),
                    "dimensions": [{"field": "providedModelName"}],
                    "metrics": [
                        {"measure": "totalCost", "aggregation": "sum"},
                        {"measure": "latency", "aggregation": "p95"},
                    ],
                    "timeDimension": {"granularity": "day"},
                },
            )

        print()
        await latency("list_traces (limit 50)", list_traces, args.runs)
        await latency("list_traces (user filter, limit 50)", list_traces_user, args.runs)
        await latency("list_traces (user + tag filter, limit 50)", list_traces_filtered, args.runs)
        await latency("get trace + observations_of_trace", trace_detail, args.runs)
        await latency("trace get route (trace, observations, scores)", trace_get_route, args.runs)
        await latency("list_observations v2 (limit 50, no total)", observations_v2, args.runs)
        await latency("metrics: cost+p95 latency by model per day", metrics, args.runs)
        for opened in stores:
            await opened.close()


if __name__ == "__main__":
    asyncio.run(main())
