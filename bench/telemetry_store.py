"""Benchmark of the ClickHouse telemetry store on embedded chDB.

Inserts 20k traces (batches of 2k) and 100k observations (batches of 10k: generations with
1-2 KB JSON input/output, metadata, usage and cost maps) and scores, and prints the CPU time
per row of each upsert (the whole process: Python and the engine's own threads; min and
median over the batches, each started once the engine's background merges are idle), then
the CPU the background merges spent afterwards, then the latency (p50/p99) of the common
reads. `--rounds N` repeats the inserts into fresh databases. CPU time rather than wall time,
as the machine may be shared.
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
from typing import Any

from fathom.adapters.storage.clickhouse.store import ClickHouseTelemetryStore
from fathom.core.domain.scores import Score, ScoreDataType
from fathom.core.domain.tracing import Observation, ObservationType, Trace
from fathom.core.ports.telemetry import ObservationQuery, TraceQuery

PROJECT = "bench-project"
START = datetime(2026, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=30)
BATCH = 10_000  # observations per upsert
TRACE_BATCH = 2_000
N_TRACES = 20_000
OBS_PER_TRACE = 5
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet", "llama-3"]
WORDS = "the quick brown fox jumps over a lazy dog while seven wizards quietly hex jam".split()


def text(rnd: random.Random, words: int) -> str:
    return " ".join(rnd.choices(WORDS, k=words))


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
                    id=f"{rnd.getrandbits(64):016x}",
                    project_id=PROJECT,
                    trace_id=tid,
                    type=ObservationType.GENERATION if gen else ObservationType.SPAN,
                    start_time=start,
                    end_time=start + timedelta(milliseconds=rnd.randrange(50, 3000)),
                    completion_start_time=start + timedelta(milliseconds=20) if gen else None,
                    name="llm-call" if gen else "root",
                    parent_observation_id=parent,
                    # About 1.1 KB of input and 0.8 KB of output JSON.
                    input=[
                        {"role": "system", "content": text(rnd, 40)},
                        {"role": "user", "content": text(rnd, 140)},
                    ],
                    output={"role": "assistant", "content": text(rnd, 140)},
                    metadata={"ls_provider": "openai", "step": j, "tags": ["a", "b"]},
                    model=rnd.choice(MODELS) if gen else None,
                    model_parameters={"temperature": 0.2, "max_tokens": 512} if gen else None,
                    provided_usage_details={"input": 120, "output": 80} if gen else {},
                    usage_details={"input": 120, "output": 80, "total": 200} if gen else {},
                    cost_details={"input": 0.0012, "output": 0.0016, "total": 0.0028}
                    if gen
                    else {},
                    total_cost=0.0028 if gen else None,
                )
            )
            parent = parent or observations[-1].id
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
                    comment="ok",
                )
            )
    return traces, observations, scores


async def timed_insert(
    store: ClickHouseTelemetryStore,
    label: str,
    write: Callable[[list], Awaitable[None]],
    rows: list,
    batch: int,
) -> tuple[float, float]:
    """CPU µs per row of each batch's upsert (min, median), each begun with the merges idle."""
    samples = []
    elapsed = 0.0
    for i in range(0, len(rows), batch):
        chunk = rows[i : i + batch]
        await merges_idle(store)
        w0, c0 = time.perf_counter(), time.process_time()
        await write(chunk)
        samples.append((time.process_time() - c0) / len(chunk) * 1e6)
        elapsed += time.perf_counter() - w0
    low, mid = min(samples), statistics.median(samples)
    print(
        f"insert {label:<13} {len(rows):>7} rows: CPU {low:5.1f} µs/row min, {mid:5.1f} median"
        f" ({len(rows) / elapsed:>7.0f} rows/s wall)"
    )
    return low, mid


async def merges_idle(store: ClickHouseTelemetryStore, limit: float = 30.0) -> None:
    def running(client: Any) -> int:
        return int(client.query("SELECT count() FROM system.merges").result_rows[0][0])

    deadline = time.monotonic() + limit
    while await store._run(running) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


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
            begun = time.process_time()
            for label, write, rows, batch in (
                ("traces", store.upsert_traces, traces, TRACE_BATCH),
                ("observations", store.upsert_observations, observations, BATCH),
                ("scores", store.upsert_scores, scores, TRACE_BATCH),
            ):
                low, _ = await timed_insert(store, label, write, rows, batch)
                rates.setdefault(label, []).append(low)
            before = time.process_time()
            await asyncio.sleep(1)
            await merges_idle(store)
            merges = time.process_time() - before
            print(
                f"background merges after the inserts: {merges:.2f} s CPU; everything per "
                f"observation: {(time.process_time() - begun) / len(observations) * 1e6:.1f} µs"
            )
        if args.rounds > 1:
            print()
            for label, values in rates.items():
                values.sort()
                print(
                    f"insert {label:<13} CPU min µs/row {values[0]:5.1f} .. {values[-1]:5.1f} "
                    f"(median {statistics.median(values):.1f}, {len(values)} rounds)"
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
