"""Session fixture: a ClickHouse HTTP endpoint (the chDB engine behind tests' own shim)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services.postgres import free_port
from tests.services.support import stop, wait_for_port

PREFERRED_PORT = 18123
SHIM = Path(__file__).with_name("chdb_http_shim.py")


@pytest.fixture(scope="session")
def clickhouse_http_url() -> Iterator[str]:
    """`http://127.0.0.1:18123/?compress=false`: a separate process owns its chDB engine, so
    the test process can still open an embedded engine of its own."""
    folder = tempfile.mkdtemp(prefix="fathom-chdb-http-")
    port = free_port(range(PREFERRED_PORT, PREFERRED_PORT + 50))
    process = subprocess.Popen(
        [sys.executable, str(SHIM), "--port", str(port), "--path", folder],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={"TZ": "UTC", "PATH": "/usr/bin:/bin"},
    )
    try:
        wait_for_port(port, timeout=60, process=process)
        yield f"http://127.0.0.1:{port}/?compress=false"
    finally:
        stop(process)
        shutil.rmtree(folder, ignore_errors=True)
