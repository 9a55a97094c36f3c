"""HTTP tests go through aiohttp's test client against the real app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from fathom.entrypoints.bootstrap import Runtime
from fathom.entrypoints.http.app import create_app
from tests.conftest import basic_auth, make_settings


@pytest.fixture
async def records_client(
    records_runtime: Runtime, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> TestClient:
    """The app on a runtime whose telemetry engine is never started."""
    return await aiohttp_client(create_app(records_runtime, start_runtime=False))


@pytest.fixture(scope="module")
def telemetry_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data folder per module: chDB keeps one engine per process and path."""
    return tmp_path_factory.mktemp("telemetry")


@pytest.fixture
async def client(
    telemetry_data_dir: Path, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> AsyncIterator[TestClient]:
    """The whole app with its worker, on the embedded engines."""
    settings = make_settings(
        telemetry_data_dir, queue={"kind": "local", "backoff_base_seconds": 0.1}
    )
    runtime = Runtime(settings)
    yield await aiohttp_client(create_app(runtime, with_worker=True))


# The engines a read suite runs on: its `client` fixture takes these as params and builds
# the app with `app_on_engine`.
ENGINES = ["chdb", "clickhouse-http"]


async def app_on_engine(
    request: pytest.FixtureRequest,
    telemetry_data_dir: Path,
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    database: str,
) -> TestClient:
    """The whole app with its worker, on the embedded engine or on a ClickHouse HTTP server
    (tables in `database`), as `request.param` says."""
    telemetry: dict[str, Any] = {}
    data_dir = telemetry_data_dir
    if request.param == "clickhouse-http":
        url = request.getfixturevalue("clickhouse_http_url")
        telemetry = {"kind": "clickhouse", "url": url, "database": database}
        # Queue and blobs of their own: a job left by one engine's run is not the other's.
        data_dir = telemetry_data_dir / "http"
    settings = make_settings(
        data_dir,
        queue={"kind": "local", "backoff_base_seconds": 0.1},
        **({"telemetry": telemetry} if telemetry else {}),
    )
    return await aiohttp_client(create_app(Runtime(settings), with_worker=True))


@dataclass
class Api:
    """GETs of the public API that check the status and give the JSON body."""

    client: TestClient

    async def get(self, path: str, status: int = 200, **params: str) -> Any:
        response = await self.client.get(path, headers=basic_auth(), params=params)
        body = await response.json()
        assert response.status == status, body
        return body


async def wait_for(
    client: TestClient, path: str, ready: Callable[[dict], bool], timeout: float = 15, **params: str
) -> dict:
    """Poll a GET until `ready(body)`; ingestion is asynchronous."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await client.get(path, headers=basic_auth(), params=params)
        body = await response.json() if response.status == 200 else {}
        if response.status == 200 and ready(body):
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{path} not ready: {response.status} {body}")
        await asyncio.sleep(0.05)
