"""Benchmark of the local durable job queue (and, optionally, the blob put before it).

Prints enqueue throughput with 16 concurrent producers, enqueue latency p50/p99, how long the
event loop stalls meanwhile, and enqueue→handler latency p50/p99 both at a moderate rate and
with the consumer running during a saturating burst.
Run: `python bench/job_queue.py [--jobs N] [--synchronous FULL] [--blob [--no-fsync]] [--dir D]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from fathom.adapters.blob.local import LocalBlobStore
from fathom.adapters.queue.local import LocalDurableQueue
from fathom.core.ports.queue import Job

PRODUCERS = 16
# Roughly one ingestion POST of ~250 spans once serialised.
BLOB_BYTES = 120_000


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


class LoopLag:
    """Measures how late a 1 ms timer fires: how long something blocked the event loop."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            self.lags.append(time.perf_counter() - start - 0.001)

    def __enter__(self) -> LoopLag:
        self._task = asyncio.create_task(self._tick())
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()


def payload(project: str = "bench-project") -> dict[str, Any]:
    return {"projectId": project, "key": f"events/{project}/2026/01/01/00/{uuid.uuid4().hex}.json"}


async def burst(
    queue: LocalDurableQueue,
    jobs: int,
    blobs: LocalBlobStore | None,
    data: bytes,
    pause: float = 0.0,
) -> tuple[float, list[float]]:
    """16 producers enqueue `jobs`, each sleeping `pause` between calls (0: flat out).

    Returns (seconds, per-call latency)."""
    latencies: list[float] = []
    per_producer = jobs // PRODUCERS

    async def producer() -> None:
        for _ in range(per_producer):
            body = payload()
            start = time.perf_counter()
            if blobs is not None:
                await blobs.put(body["key"], data, "application/json")
            body["t"] = time.perf_counter()
            await queue.enqueue("ingestion", body)
            latencies.append(time.perf_counter() - start)
            if pause:
                await asyncio.sleep(pause)

    start = time.perf_counter()
    await asyncio.gather(*(producer() for _ in range(PRODUCERS)))
    return time.perf_counter() - start, latencies


class Handler:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.batch_sizes: list[int] = []
        self.seen = 0

    async def __call__(self, jobs: list[Job]) -> None:
        now = time.perf_counter()
        self.batch_sizes.append(len(jobs))
        self.latencies.extend(now - job.payload["t"] for job in jobs)
        self.seen += len(jobs)


async def wait_for_count(handler: Handler, count: int) -> None:
    while handler.seen < count:
        await asyncio.sleep(0.005)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--synchronous", choices=["NORMAL", "FULL"], default="NORMAL")
    parser.add_argument("--blob", action="store_true", help="put a blob before each enqueue")
    parser.add_argument("--no-fsync", action="store_true", help="blob store without fsync")
    parser.add_argument("--dir", help="where to put the files (default: the system temp folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fathom-bench-queue-", dir=args.dir) as tmp:
        root = Path(tmp)
        blobs = LocalBlobStore(root / "blobs", fsync=not args.no_fsync) if args.blob else None
        data = os.urandom(BLOB_BYTES)
        queue = LocalDurableQueue(root / "queue.sqlite3", synchronous=args.synchronous)
        await queue.ping()
        what = "blob put + enqueue" if args.blob else "enqueue"
        print(f"local queue, synchronous={args.synchronous}, {PRODUCERS} producers, {what}")

        # 1. Throughput and latency of enqueue alone, no consumer.
        await burst(queue, 1_600, blobs, data)  # warm-up
        with LoopLag() as lag:
            cpu = time.thread_time()  # CPU of this (the event-loop) thread only
            seconds, latencies = await burst(queue, args.jobs, blobs, data)
            cpu = time.thread_time() - cpu
        print(f"  burst of {len(latencies)}: {len(latencies) / seconds:,.0f} jobs/s")
        print(f"  event-loop CPU per {what}: {ms(cpu / len(latencies))}")
        print(f"  {what} latency p50 {ms(pct(latencies, 0.5))}  p99 {ms(pct(latencies, 0.99))}")
        print(f"  event-loop lag p99 {ms(pct(lag.lags, 0.99))}  max {ms(max(lag.lags))}")

        # Drain what the bursts left so the next measurements start from an empty queue.
        drain = Handler()
        consumer = asyncio.create_task(queue.consume(drain, batch_size=500))
        backlog = await queue.pending()
        start = time.perf_counter()
        await wait_for_count(drain, backlog)
        drained = time.perf_counter() - start
        print(f"  consume backlog of {backlog}: {backlog / drained:,.0f} jobs/s")
        consumer.cancel()

        # 2. With a consumer running, at paced rates: ~40/s is what 16 POSTs of 250 spans
        # need for 10,000 spans/s; each producer pauses between calls.
        handler = Handler()
        consumer = asyncio.create_task(queue.consume(handler, batch_size=100))
        await asyncio.sleep(0.1)
        for pause, count in ((0.4, 160), (0.005, 1_600)):
            handler.latencies.clear()
            handler.batch_sizes.clear()
            handler.seen = 0
            seconds, latencies = await burst(queue, count, blobs, data, pause)
            await wait_for_count(handler, count)
            lat = handler.latencies
            print(
                f"  paced at {count / seconds:,.0f} jobs/s: {what} p50 {ms(pct(latencies, 0.5))} "
                f"p99 {ms(pct(latencies, 0.99))}; enqueue→handler p50 {ms(pct(lat, 0.5))} "
                f"p99 {ms(pct(lat, 0.99))}  mean batch {statistics.mean(handler.batch_sizes):.1f}"
            )

        # 3. The same while producers saturate the queue.
        handler.latencies.clear()
        handler.batch_sizes.clear()
        handler.seen = 0
        seconds, latencies = await burst(queue, args.jobs, blobs, data)
        await wait_for_count(handler, len(latencies))
        lat = handler.latencies
        print(
            f"  saturated, consumer running: enqueue {len(latencies) / seconds:,.0f} jobs/s, "
            f"enqueue p99 {ms(pct(latencies, 0.99))}; enqueue→handler p50 {ms(pct(lat, 0.5))} "
            f"p99 {ms(pct(lat, 0.99))}  mean batch {statistics.mean(handler.batch_sizes):.1f}"
        )
        consumer.cancel()
        await queue.close()


if __name__ == "__main__":
    asyncio.run(main())
