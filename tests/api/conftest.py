"""HTTP tests go through aiohttp's test client against the real app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient

from fathom.entrypoints.bootstrap import Runtime
from fathom.entrypoints.http.app import create_app


@pytest.fixture
async def records_client(
    records_runtime: Runtime, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> TestClient:
    """The app on a runtime whose telemetry engine is never started."""
    return await aiohttp_client(create_app(records_runtime, start_runtime=False))
