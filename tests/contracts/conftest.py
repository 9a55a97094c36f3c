"""Fixtures shared by the telemetry store's contract modules.

chDB allows one engine per process, so all chDB tests share one data directory for the
session and one open engine per module (closed at the end so other modules may open their
own); each test isolates itself with a fresh random project id. The `clickhouse-http` run
talks HTTP to the chDB engine behind the test suite's own front end, or to the server
`FATHOM_TEST_CLICKHOUSE_URL` names (e.g. `http://localhost:8123/?compress=false`).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from fathom.adapters.storage.clickhouse.store import ClickHouseTelemetryStore

CLICKHOUSE_URL = os.environ.get("FATHOM_TEST_CLICKHOUSE_URL")
TELEMETRY_ADAPTERS = ["chdb", "clickhouse-http"]


@pytest.fixture(scope="session")
def chdb_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('chdb') / 'data'}"


def run_sync(coro: Coroutine[Any, Any, None]) -> None:
    # Fixtures may be set up while a test's event loop runs; use a loop of our own.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="module")
def chdb_engine(chdb_dsn: str) -> Iterator[str]:
    """Keeps the one chDB engine open (and migrated) for the module's tests."""
    keeper = ClickHouseTelemetryStore(chdb_dsn)
    run_sync(keeper.migrate())
    yield chdb_dsn
    run_sync(keeper.close())


@pytest.fixture(params=TELEMETRY_ADAPTERS)
async def telemetry_store(
    request: pytest.FixtureRequest,
) -> AsyncIterator[ClickHouseTelemetryStore]:
    if request.param == "chdb":
        dsn = request.getfixturevalue("chdb_engine")
    else:
        dsn = CLICKHOUSE_URL or request.getfixturevalue("clickhouse_http_url")
    store = ClickHouseTelemetryStore(dsn)
    await store.migrate()
    yield store
    await store.close()


@pytest.fixture
def project() -> str:
    return f"p-{uuid.uuid4().hex}"
