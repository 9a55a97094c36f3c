"""SIGKILL the server while it ingests: every acknowledged batch is stored exactly once."""

from __future__ import annotations

import base64
import signal
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import httpx

from bench.otlp_payloads import build_export
from tests.conftest import PUBLIC_KEY, SECRET_KEY
from tests.live_server import LiveServer

CRASH_PORT = 13032
SPANS_PER_TRACE = 5
TRACES_PER_REQUEST = 10
AUTH = "Basic " + base64.b64encode(f"{PUBLIC_KEY}:{SECRET_KEY}".encode()).decode()


def sender(url: str, acked: list[str], stop: threading.Event) -> None:
    while not stop.is_set():
        body, trace_ids = build_export(TRACES_PER_REQUEST, spans_per_trace=SPANS_PER_TRACE)
        request = urllib.request.Request(
            f"{url}/api/public/otel/v1/traces",
            data=body,
            method="POST",
            headers={"Authorization": AUTH, "Content-Type": "application/x-protobuf"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    acked.extend(trace_ids)
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            # The server is dead: nothing more can be acknowledged.
            return


def test_acknowledged_batches_survive_sigkill() -> None:
    with tempfile.TemporaryDirectory(prefix="fathom-crash-") as folder:
        server = LiveServer(port=CRASH_PORT, data_dir=Path(folder) / "data")
        server.start()
        acked: list[str] = []
        stop = threading.Event()
        threads = [
            threading.Thread(target=sender, args=(server.url, acked, stop)) for _ in range(4)
        ]
        try:
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 60
            while len(acked) < 40 * TRACES_PER_REQUEST and time.monotonic() < deadline:
                time.sleep(0.05)
            # Killed mid-load: requests are in flight, batches are queued but not processed.
            server.stop(signal.SIGKILL)
            stop.set()
            for thread in threads:
                thread.join(timeout=10)
            assert len(acked) >= 40 * TRACES_PER_REQUEST

            server.start()
            with httpx.Client(
                base_url=server.url, auth=(PUBLIC_KEY, SECRET_KEY), timeout=10
            ) as api:
                missing = set(acked)
                deadline = time.monotonic() + 90
                while missing and time.monotonic() < deadline:
                    for trace_id in sorted(missing):
                        response = api.get(
                            "/api/public/observations", params={"traceId": trace_id, "limit": 50}
                        )
                        if response.json()["meta"]["totalItems"] >= SPANS_PER_TRACE:
                            missing.discard(trace_id)
                    time.sleep(0.2)
                assert not missing, f"{len(missing)} acknowledged traces were lost"

                # Exactly once: no duplicated observations, traces or spans.
                for trace_id in acked[:: max(1, len(acked) // 50)]:
                    page = api.get(
                        "/api/public/observations", params={"traceId": trace_id, "limit": 50}
                    ).json()
                    assert page["meta"]["totalItems"] == SPANS_PER_TRACE
                    assert len({o["id"] for o in page["data"]}) == SPANS_PER_TRACE
                listed = api.get(
                    "/api/public/traces", params={"userId": "bench-user", "limit": 1}
                ).json()
                assert listed["meta"]["totalItems"] >= len(set(acked))
                assert len(set(acked)) == len(acked)
        finally:
            stop.set()
            server.stop()
