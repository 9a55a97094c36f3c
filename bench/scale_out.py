"""Scale-out benchmark: one `fathom web` and N `fathom worker` processes on shared engines.

Starts Postgres, Redis, the ClickHouse HTTP front end of the tests (chDB behind
`tests/services/chdb_http_shim.py`) and a blob store (files in one folder every process
shares, or the moto S3 server with `--blob s3`) with the tests' own service fixtures and
helpers, which pick free loopback ports. Then, for each N in `--workers`, on a fresh Postgres
database, ClickHouse database, queue stream and blob folder or bucket: one web process, N
workers, and the load of `bench/ingest.py` sent to the web process. Prints ingest.py's
figures for each N, then a summary: spans/s accepted, spans/s end to end, and CPU per span
summed over the Fathom processes (web + workers; the engines' CPU is not counted). Everything
is stopped afterwards.

Figures, never thresholds. The engines run on the same machine: the ClickHouse front end is
one Python process serialising chDB queries, so end-to-end figures say more about it than
about a ClickHouse server.

Run: `TZ=UTC python bench/scale_out.py [--workers 1 2] [--blob local|s3] [--requests 200]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

# bench/ is first on sys.path (for ingest and otlp_payloads); the repository root is added
# last, for the service fixtures under tests/ without shadowing anything installed.
sys.path.append(str(Path(__file__).resolve().parents[1]))

import ingest
import pytest

from tests.services import clickhouse_http, object_stores, postgres, redis

# How long a worker may take to migrate and connect before the load starts.
WORKER_START_SECONDS = 60.0
WORKER_STARTED = re.compile(rb"fathom worker \S+ started")


def service(fixture: Any, *args: Any) -> contextlib.AbstractContextManager[Any]:
    """A pytest generator fixture of tests/services as a context manager (its setup and its
    teardown), outside pytest."""
    return contextlib.contextmanager(inspect.unwrap(fixture))(*args)


class TempPaths:
    """What the object-store fixtures use of pytest's `tmp_path_factory`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def mktemp(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.root))


class Engines:
    """The shared engines, up for the whole run; `settings()` gives one run its own space."""

    def __init__(self, stack: contextlib.ExitStack, folder: Path, blob: str) -> None:
        self.folder = folder
        self.blob = blob
        self.postgres = stack.enter_context(service(postgres.postgres_server))
        self.redis_url = stack.enter_context(service(redis.redis_server_url))
        self.clickhouse_url = stack.enter_context(service(clickhouse_http.clickhouse_http_url))
        self.s3_endpoint = ""
        self.s3_admin: Any = None
        if blob == "s3":
            self.s3_endpoint = stack.enter_context(
                service(object_stores.s3_endpoint, TempPaths(folder))
            )
            self.s3_admin = object_stores.s3_client(self.s3_endpoint)
        self.stack = stack

    def settings(self, run: str) -> dict[str, str]:
        database = self.stack.enter_context(service(postgres.fresh_postgres_url, self.postgres))
        env = {
            "FATHOM_SALT": "bench-scale-out",
            "FATHOM_RECORDS__KIND": "postgres",
            "FATHOM_RECORDS__URL": database,
            "FATHOM_TELEMETRY__KIND": "clickhouse",
            "FATHOM_TELEMETRY__URL": self.clickhouse_url,
            "FATHOM_TELEMETRY__DATABASE": f"bench_{run}",
            "FATHOM_QUEUE__KIND": "redis",
            "FATHOM_QUEUE__URL": self.redis_url,
            "FATHOM_QUEUE__STREAM": f"fathom:bench:{run}",
            "FATHOM_CACHE__KIND": "redis",
            "FATHOM_CACHE__URL": self.redis_url,
        }
        if self.blob == "local":
            blobs = self.folder / f"blobs-{run}"
            blobs.mkdir()
            return {**env, "FATHOM_BLOB__KIND": "local", "FATHOM_BLOB__PATH": str(blobs)}
        bucket = self.stack.enter_context(service(object_stores.s3_bucket, self.s3_admin))
        return {
            **env,
            "FATHOM_BLOB__KIND": "s3",
            "FATHOM_BLOB__BUCKET": bucket,
            "FATHOM_BLOB__ENDPOINT_URL": self.s3_endpoint,
            "FATHOM_BLOB__FORCE_PATH_STYLE": "true",
            "FATHOM_BLOB__REGION": object_stores.S3_REGION,
            "FATHOM_BLOB__ACCESS_KEY_ID": object_stores.S3_ACCESS_KEY_ID,
            "FATHOM_BLOB__SECRET_ACCESS_KEY": object_stores.S3_SECRET_ACCESS_KEY,
        }


def start_worker(env: dict[str, str], folder: Path) -> subprocess.Popen[bytes]:
    """A `fathom worker`, returned once it announced it consumes the queue."""
    folder.mkdir(parents=True)
    log_path = folder / "worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "fathom", "worker"],
            env={
                **os.environ,
                "TZ": "UTC",
                "FATHOM_DATA_DIR": str(folder / "data"),
                # INFO: its one start-up line is how readiness is seen; it logs nothing per job.
                "FATHOM_LOG_LEVEL": "INFO",
                **env,
            },
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    deadline = time.monotonic() + WORKER_START_SECONDS
    while not WORKER_STARTED.search(log_path.read_bytes()):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise SystemExit(f"worker did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.05)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def bench_one(
    args: argparse.Namespace, engines: Engines, workers: int, port: int
) -> dict[str, float]:
    run = f"w{workers}_{uuid.uuid4().hex[:8]}"
    env = engines.settings(run)
    folder = engines.folder / run
    processes: list[subprocess.Popen[bytes]] = []
    (folder / "web").mkdir(parents=True)
    try:
        web, startup = ingest.start_server(port, folder / "web" / "data", "web", env)
        processes.append(web)
        for index in range(workers):
            processes.append(start_worker(env, folder / f"worker-{index}"))
        time.sleep(1.0)  # as ingest.py does: let start-up work settle before measuring
        print(f"\n== 1 web + {workers} worker{'s' if workers > 1 else ''} ==")
        print(f"web start-up to healthy    {startup:.2f} s")
        url = f"http://127.0.0.1:{port}"
        load = ingest.run(args, url, [p.pid for p in processes])
        try:
            # ingest.py waits for every span without end; a failing worker would hang here.
            return asyncio.run(asyncio.wait_for(load, args.timeout))
        except TimeoutError:
            logs = sorted(folder.glob("*/*.log"))
            tails = "\n".join(f"{log}:\n{log.read_text()[-1500:]}" for log in logs)
            message = f"not all spans readable after {args.timeout:.0f} s"
            raise SystemExit(f"{message}\n{tails}") from None
    finally:
        for process in reversed(processes):
            stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--blob", choices=["local", "s3"], default="local")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--traces", type=int, default=50, help="traces per request")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per run")
    parser.add_argument("--rate", type=float, help="offered spans/s (see bench/ingest.py)")
    args = parser.parse_args()
    port = postgres.free_port(range(13200, 13300))
    results: list[tuple[int, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="fathom-bench-scale-out-") as root:
        print(f"starting Postgres, Redis, ClickHouse HTTP and the {args.blob} blob store ...")
        try:
            with contextlib.ExitStack() as stack:
                engines = Engines(stack, Path(root), args.blob)
                for workers in args.workers:
                    results.append((workers, bench_one(args, engines, workers, port)))
        except pytest.skip.Exception as exc:  # a fixture found its engine missing
            raise SystemExit(f"cannot run: {exc.msg}") from None
    print_summary(args, results)


def print_summary(args: argparse.Namespace, results: list[tuple[int, dict[str, float]]]) -> None:
    spans = args.requests * args.traces * 5
    load = f"{spans} spans per run, {args.concurrency} concurrent POSTs, {args.blob} blobs"
    print(f"\nsummary: {load}")
    print(f"{'workers':>7}  {'spans/s accepted':>16}  {'spans/s end to end':>18}  CPU/span (sum)")
    for workers, figures in results:
        print(
            f"{workers:>7}  {figures['accepted']:>16,.0f}  {figures['end_to_end']:>18,.0f}  "
            f"{figures['cpu_us_per_span']:>9.1f} µs"
        )


if __name__ == "__main__":
    main()
