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


@pytest.fixture(params=["chdb", "clickhouse-http"])
async def engine_client(
    request: pytest.FixtureRequest,
    telemetry_data_dir: Path,
    aiohttp_client: Callable[..., Awaitable[TestClient]],
) -> TestClient:
    """The whole app with its worker on each engine in turn: the embedded one, then a
    ClickHouse HTTP server with the tables in the module's `DATABASE`. A read suite makes it
    its `client`."""
    telemetry: dict[str, Any] = {}
    data_dir = telemetry_data_dir
    if request.param == "clickhouse-http":
        url = request.getfixturevalue("clickhouse_http_url")
        telemetry = {"kind": "clickhouse", "url": url, "database": request.module.DATABASE}
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
        return await self.get_pairs(path, list(params.items()), status)

    async def get_pairs(self, path: str, pairs: list[tuple[str, str]], status: int = 200) -> Any:
        """A GET whose parameters may repeat (`[("tags", "a"), ("tags", "b")]`)."""
        response = await self.client.get(path, headers=basic_auth(), params=pairs)
        body = await response.json()
        assert response.status == status, body
        return body


def ids(body: dict[str, Any]) -> list[str]:
    """The ids of a list response's items, in order."""
    return [item["id"] for item in body["data"]]


async def seed_once(client: TestClient, marker: str, batch: list[dict[str, Any]]) -> None:
    """Ingest a module's data set unless `marker` (a GET path of its last entity) already
    answers: the data set is shared by the module's tests, on one engine's database."""
    found = await client.get(marker, headers=basic_auth())
    if found.status != 200:
        response = await client.post(
            "/api/public/ingestion", json={"batch": batch}, headers=basic_auth()
        )
        assert response.status == 207 and not (await response.json())["errors"]


async def wait_until_gone(client: TestClient, path: str, timeout: float = 5) -> None:
    """Poll a GET until it answers 404; deletions are asynchronous."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (await client.get(path, headers=basic_auth())).status != 404:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{path} is still there")
        await asyncio.sleep(0.05)


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
