"""A live server for the official `langfuse` SDK tests (one per session: chDB start is slow)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

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
