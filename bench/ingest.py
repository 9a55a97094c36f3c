"""End-to-end ingestion benchmark: OTLP in, readable through the public API out.

Starts `fathom serve` on the embedded defaults (or targets `--url`), sends realistic SDK-shaped
OTLP exports (5 spans per trace, 1–2 KB input/output on generations) with bounded count and
concurrency, then polls the public API until every span is readable, and prints:
spans/s accepted, spans/s end to end (first POST → all readable), lag after the last
acknowledgement, POST latency p50/p99, server CPU per span (split into Python threads,
the engine's background merges and its other threads), idle and peak RSS, start-up time.
`bench/scale_out.py` reuses `start_server` and `run` for separate web and worker processes
(CPU and peak RSS are then summed over them).

With `--rate N` the requests are paced to offer N spans/s (still at most `--concurrency` in
flight), which shows the lag of a load the server keeps up with rather than of a burst.

Run: `TZ=UTC python bench/ingest.py [--requests 200] [--concurrency 16] [--traces 50] [--rate N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import aiohttp
from otlp_payloads import build_export

PUBLIC_KEY, SECRET_KEY = "pk-lf-bench", "sk-lf-bench"
AUTH = "Basic " + base64.b64encode(f"{PUBLIC_KEY}:{SECRET_KEY}".encode()).decode()
TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def proc_cpu_split(pid: int) -> Counter[str]:
    """CPU seconds of a process's live threads by kind: its Python threads (they carry the
    process's own name), the engine's background merges, and the engine's other threads."""
    own_name = Path(f"/proc/{pid}/comm").read_text().strip()
    split: Counter[str] = Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread has ended
            continue
        if name == own_name:
            kind = "Python"
        elif name.startswith("MergeMutate"):
            kind = "engine merges"
        else:
            kind = "engine other"
        split[kind] += (int(fields[11]) + int(fields[12])) / TICKS
    return split


def proc_memory_mib(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_server(
    port: int,
    data_dir: Path,
    command: str = "serve",
    extra_env: Mapping[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], float]:
    env = {
        **os.environ,
        "TZ": "UTC",
        "FATHOM_PORT": str(port),
        "FATHOM_DATA_DIR": str(data_dir),
        "FATHOM_LOG_LEVEL": "WARNING",
        "LANGFUSE_INIT_ORG_ID": "bench-org",
        "LANGFUSE_INIT_PROJECT_ID": "bench-project",
        "LANGFUSE_INIT_PROJECT_PUBLIC_KEY": PUBLIC_KEY,
        "LANGFUSE_INIT_PROJECT_SECRET_KEY": SECRET_KEY,
        **(extra_env or {}),
    }
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "fathom", command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(data_dir.parent / "server.log", "wb"),
    )
    import urllib.request

    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/public/health", timeout=1):
                return process, time.perf_counter() - started
        except OSError:
            if process.poll() is not None:
                raise SystemExit((data_dir.parent / "server.log").read_text()[-3000:]) from None
            time.sleep(0.02)


async def readable_spans(session: aiohttp.ClientSession, url: str) -> int:
    """Observations stored, counted by the metrics API: the same rows every read serves, and
    one count, where the observation list's `totalItems` also reads a page of full rows (tens
    of milliseconds of engine CPU that would be taken from the work being measured)."""
    query = {
        "view": "observations",
        "metrics": [{"measure": "count", "aggregation": "count"}],
        "fromTimestamp": "2000-01-01T00:00:00Z",
        "toTimestamp": "2100-01-01T00:00:00Z",
    }
    async with session.get(
        f"{url}/api/public/metrics",
        params={"query": json.dumps(query)},
        headers={"Authorization": AUTH},
    ) as response:
        data = (await response.json())["data"]
        return int(data[0]["count_count"]) if data else 0


async def run(args: argparse.Namespace, url: str, pids: Sequence[int] = ()) -> dict[str, float]:
    """Send the load, wait until it is readable, print the figures and return the main ones
    (CPU is summed over `pids`, the server processes; none when benchmarking a `--url`)."""
    payloads = [build_export(args.traces)[0] for _ in range(args.requests)]
    spans = args.requests * args.traces * 5
    latencies: list[float] = []
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for payload in payloads:
        queue.put_nowait(payload)
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        baseline = await readable_spans(session, url)
        headers = {"Authorization": AUTH, "Content-Type": "application/x-protobuf"}

        sent = 0

        async def sender() -> None:
            nonlocal sent
            while not queue.empty():
                body = queue.get_nowait()
                if args.rate:  # paced: request n leaves at n * (spans per request) / rate
                    due = first_post + sent * args.traces * 5 / args.rate
                    sent += 1
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                begun = time.perf_counter()
                async with session.post(
                    f"{url}/api/public/otel/v1/traces", data=body, headers=headers
                ) as response:
                    await response.read()
                    if response.status != 200:
                        raise SystemExit(f"POST failed: {response.status}")
                latencies.append(time.perf_counter() - begun)

        cpu_before = sum(proc_cpu_seconds(pid) for pid in pids)
        split_before = sum((proc_cpu_split(pid) for pid in pids), Counter())
        first_post = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(args.concurrency)))
        last_ack = time.perf_counter()
        while await readable_spans(session, url) < baseline + spans:
            # Polls every 50 ms, so lag is measured to within that (see `readable_spans`).
            await asyncio.sleep(0.05)
        all_readable = time.perf_counter()
        cpu_after = sum(proc_cpu_seconds(pid) for pid in pids)
        split = sum((proc_cpu_split(pid) for pid in pids), Counter()) - split_before

    latencies.sort()
    figures = {
        "accepted": spans / (last_ack - first_post),
        "end_to_end": spans / (all_readable - first_post),
        "cpu_us_per_span": (cpu_after - cpu_before) / spans * 1e6,
    }
    print(f"spans sent                 {spans}")
    print(f"spans/s accepted           {figures['accepted']:,.0f}")
    print(f"spans/s end to end         {figures['end_to_end']:,.0f}")
    print(f"lag after last ack         {all_readable - last_ack:.3f} s")
    print(
        f"POST latency p50 / p99     {statistics.median(latencies) * 1000:.1f} / "
        f"{latencies[int(len(latencies) * 0.99) - 1] * 1000:.1f} ms "
        f"({args.concurrency} concurrent, {args.traces * 5} spans each)"
    )
    if pids:
        peak = sum(proc_memory_mib(pid, "VmHWM") for pid in pids)
        # Threads that ended meanwhile are missing from the split, so it may sum to less.
        parts = ", ".join(
            f"{kind} {seconds / spans * 1e6:.1f}" for kind, seconds in sorted(split.items())
        )
        print(f"server CPU per span        {figures['cpu_us_per_span']:.1f} µs ({parts})")
        print(f"server peak RSS            {peak:.0f} MiB")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--traces", type=int, default=50, help="traces per request")
    parser.add_argument("--port", type=int, default=13100)
    parser.add_argument("--url", help="benchmark a running server instead of starting one")
    parser.add_argument(
        "--rate",
        type=float,
        help="offer this many spans/s (paced requests) instead of sending as fast as possible",
    )
    args = parser.parse_args()
    if args.url:
        asyncio.run(run(args, args.url))
        return
    with tempfile.TemporaryDirectory(prefix="fathom-bench-ingest-") as folder:
        process, startup = start_server(args.port, Path(folder) / "data")
        try:
            time.sleep(1.0)
            print(f"start-up to healthy        {startup:.2f} s")
            print(f"idle RSS                   {proc_memory_mib(process.pid, 'VmRSS'):.0f} MiB")
            asyncio.run(run(args, f"http://127.0.0.1:{args.port}", [process.pid]))
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
