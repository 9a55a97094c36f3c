"""A live server for the official `langfuse` SDK tests (one per session: chDB start is slow)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from langfuse import Langfuse

from tests.conftest import PUBLIC_KEY, SECRET_KEY
from tests.live_server import LiveServer

SDK_PORT = 13031


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    with tempfile.TemporaryDirectory(prefix="fathom-sdk-") as folder:
        server = LiveServer(port=SDK_PORT, data_dir=Path(folder) / "data")
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def langfuse(live_server: LiveServer) -> Iterator[Langfuse]:
    """One SDK client per session: the SDK shares resources per public key in a process,
    so a second client's shutdown would stop the first one's exporters."""
    client = Langfuse(
        host=live_server.url,
        public_key=PUBLIC_KEY,
        secret_key=SECRET_KEY,
        environment="staging",
        release="rel-1",
        flush_interval=0.2,
    )
    yield client
    client.shutdown()
