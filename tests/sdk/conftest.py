"""A live server for the official `langfuse` SDK tests (one per session: chDB start is slow)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
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


@pytest.fixture(scope="module")
def api(live_server: LiveServer) -> Iterator[httpx.Client]:
    """The public REST API of the live server, to read back what the SDK wrote."""
    with httpx.Client(
        base_url=live_server.url, auth=(PUBLIC_KEY, SECRET_KEY), timeout=10
    ) as client:
        yield client


def poll(
    fetch: Callable[[], Any],
    ready: Callable[[Any], bool],
    timeout: float = 20,
    interval: float = 0.1,
) -> Any:
    """`fetch()` again until `ready` holds for its value: the SDK exports in the background
    and the worker writes later, so reads lag behind the SDK's calls."""
    deadline = time.monotonic() + timeout
    value = fetch()
    while not ready(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"not ready after {timeout}s: {value}")
        time.sleep(interval)
        value = fetch()
    return value
