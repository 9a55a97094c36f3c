"""`fathom_model_price_resolver`: a plugin's pricer replaces the built-in one in the worker,
is prepared once when the worker starts, and prices what the batch endpoint ingests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from fathom.core.domain.tracing import Observation
from fathom.entrypoints import bootstrap
from fathom.entrypoints.bootstrap import Runtime
from fathom.entrypoints.http.app import create_app
from fathom.plugins.hookspecs import hookimpl
from fathom.plugins.manager import build_plugin_manager
from tests.api.conftest import wait_for
from tests.conftest import basic_auth, make_settings


class FlatFeePricer:
    """Charges every observation with a model one cent, whatever the model."""

    def __init__(self) -> None:
        self.prepared = 0
        self.priced: list[str] = []

    async def prepare(self) -> None:
        self.prepared += 1

    async def __call__(self, project_id: str, observations: list[Observation]) -> None:
        for observation in observations:
            if observation.model:
                self.priced.append(observation.id)
                observation.cost_details = {"total": 0.01}
                observation.total_cost = 0.01


PRICER = FlatFeePricer()


class FlatFeePlugin:
    @hookimpl
    def fathom_model_price_resolver(self, settings: Any) -> FlatFeePricer:
        return PRICER


@pytest.fixture
async def client(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_client: Callable[..., Awaitable[TestClient]],
) -> TestClient:
    def with_plugin(blocked: Any = ()) -> Any:
        manager = build_plugin_manager(blocked)
        manager.register(FlatFeePlugin(), name="flat-fee")
        return manager

    monkeypatch.setattr(bootstrap, "build_plugin_manager", with_plugin)
    runtime = Runtime(make_settings(tmp_path / "data"))
    return await aiohttp_client(create_app(runtime, with_worker=True))


async def test_the_plugin_pricer_prices_ingested_generations(client: TestClient) -> None:
    now = datetime.now(UTC).isoformat()
    body = {"id": "g1", "traceId": "t1", "model": "no-such-model", "startTime": now}
    batch = [
        {"id": "e0", "type": "trace-create", "timestamp": now, "body": {"id": "t1"}},
        {"id": "e1", "type": "generation-create", "timestamp": now, "body": body},
    ]
    response = await client.post(
        "/api/public/ingestion", json={"batch": batch}, headers=basic_auth()
    )
    assert response.status == 207
    assert (await response.json())["errors"] == []
    trace = await wait_for(client, "/api/public/traces/t1", lambda t: len(t["observations"]) == 1)
    (generation,) = trace["observations"]
    assert generation["calculatedTotalCost"] == pytest.approx(0.01)
    assert PRICER.priced == ["g1"]
    assert PRICER.prepared == 1  # once, when the worker started
