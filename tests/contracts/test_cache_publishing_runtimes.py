"""Two runtimes wired as two processes of a scaled-out deployment (Postgres records, Redis
cache bus): a score config or model changed through one is seen by the other's caches well
before their TTL (5 s for score configs, 30 s for the model catalog), which only the bus can
explain. This goes through the container, so it also checks the wiring."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from fathom.core.usecases.evaluation import CreateScoreConfig, ScoreConfigCache, UpdateScoreConfig
from fathom.core.usecases.models import CreateModel, DeleteModel, ModelCatalog
from fathom.entrypoints.bootstrap import Runtime
from tests.conftest import PROJECT_ID, make_settings

# Far below either TTL, far above a pub/sub round trip on loopback.
SOON = 1.0


@pytest.fixture
async def two_runtimes(
    fresh_postgres_url: str, redis_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Runtime, Runtime]]:
    channel = f"fathom:test:runtimes:{uuid.uuid4().hex}"
    runtimes = [
        Runtime(
            make_settings(
                tmp_path / name,
                records={"kind": "postgres", "url": fresh_postgres_url},
                cache={"kind": "redis", "url": redis_url, "channel": channel},
            )
        )
        for name in ("a", "b")
    ]
    started: list[Runtime] = []
    try:
        for runtime in runtimes:
            await runtime.start(telemetry=False)
            started.append(runtime)
        yield runtimes[0], runtimes[1]
    finally:
        for runtime in started:
            await runtime.stop()


async def seen_within(check: Callable[[], Awaitable[bool]], seconds: float = SOON) -> float:
    """Seconds until `check()` held; fails after `seconds`."""
    begun = time.monotonic()
    async with asyncio.timeout(seconds):
        while not await check():
            await asyncio.sleep(0.01)
    return time.monotonic() - begun


async def test_score_config_changes_reach_the_other_runtime_before_the_ttl(
    two_runtimes: tuple[Runtime, Runtime],
) -> None:
    a, b = two_runtimes
    cache = b.resolve(ScoreConfigCache)
    body = {"name": "quality", "dataType": "NUMERIC", "minValue": 0, "maxValue": 1}
    created = await a.resolve(CreateScoreConfig)(PROJECT_ID, body)
    # b caches the config as created (for 5 s), then a changes it.
    assert (await cache.get_many(PROJECT_ID, [created.id]))[created.id].is_archived is False
    await a.resolve(UpdateScoreConfig)(PROJECT_ID, created.id, {"isArchived": True})

    async def archived_in_b() -> bool:
        found = await cache.get_many(PROJECT_ID, [created.id])
        return found[created.id].is_archived

    await seen_within(archived_in_b)
    await a.resolve(UpdateScoreConfig)(PROJECT_ID, created.id, {"isArchived": False})

    async def restored_in_b() -> bool:
        found = await cache.get_many(PROJECT_ID, [created.id])
        return not found[created.id].is_archived

    await seen_within(restored_in_b)


async def test_model_changes_reach_the_other_runtimes_catalog_before_the_ttl(
    two_runtimes: tuple[Runtime, Runtime],
) -> None:
    a, b = two_runtimes
    catalog = b.resolve(ModelCatalog)

    async def names_in_b() -> set[str]:
        return {model.model_name for model in await catalog.models() if model.project_id}

    assert await names_in_b() == set()  # loaded and cached in b for 30 s
    body = {"modelName": "bus-model", "matchPattern": "(?i)^bus-model$", "unit": "TOKENS"}
    model = await a.resolve(CreateModel)(PROJECT_ID, {**body, "inputPrice": 1.0})

    async def b_has_it() -> bool:
        return await names_in_b() == {"bus-model"}

    await seen_within(b_has_it)
    await a.resolve(DeleteModel)(PROJECT_ID, model.id)

    async def b_dropped_it() -> bool:
        return await names_in_b() == set()

    await seen_within(b_dropped_it)
