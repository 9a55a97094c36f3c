"""Use cases that change cached records publish the change, so the caches of every process
drop them at once rather than after their TTL.

Two "processes" share one record store; each has its own caches, subscribed to its own
in-process bus, and the buses share a hub that stands for the broker. The clocks never move,
so a change that shows in the other process can only have come through the bus.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Self

import pytest

from fathom.core.domain.score_configs import ScoreConfig
from fathom.core.ports.cache import (
    EVERYTHING,
    MODELS,
    SCORE_CONFIGS,
    InvalidationBus,
    LocalInvalidationBus,
    LocalInvalidationHub,
    cache_key,
)
from fathom.core.usecases.evaluation import CreateScoreConfig, ScoreConfigCache, UpdateScoreConfig
from fathom.core.usecases.models import CreateModel, DeleteModel, ModelCatalog
from tests.unit.fakes import FakeClock, InMemoryRecordStore, SequentialIds

P1 = "p1"
MODEL_BODY = {"modelName": "my-gpt", "matchPattern": "(?i)^my-gpt$", "unit": "TOKENS"}
CONFIG_BODY = {"name": "quality", "dataType": "NUMERIC", "minValue": 0, "maxValue": 1}


class FakeScoreConfigs:
    def __init__(self, rows: dict[str, ScoreConfig], reads: list[int]) -> None:
        self.rows = rows
        self.reads = reads

    async def add(self, config: ScoreConfig) -> None:
        self.rows[config.id] = config

    async def update(self, config: ScoreConfig) -> None:
        self.rows[config.id] = config

    async def get(self, project_id: str, config_id: str) -> ScoreConfig | None:
        config = self.rows.get(config_id)
        return replace(config) if config and config.project_id == project_id else None

    async def get_many(self, project_id: str, config_ids: Sequence[str]) -> list[ScoreConfig]:
        self.reads.append(len(config_ids))
        return [c for i in config_ids if (c := await self.get(project_id, i)) is not None]


class ScoreConfigRecords:
    """Just enough of a record store for score configs (the shared fakes have none)."""

    def __init__(self) -> None:
        self.rows: dict[str, ScoreConfig] = {}
        self.reads: list[int] = []

    def unit_of_work(self) -> Self:
        return self

    async def __aenter__(self) -> Self:
        self.score_configs = FakeScoreConfigs(self.rows, self.reads)
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass

    async def commit(self) -> None:
        pass


class Process:
    """One process's caches and the use cases that change them, on shared records."""

    def __init__(
        self, models: InMemoryRecordStore, configs: ScoreConfigRecords, bus: InvalidationBus | None
    ) -> None:
        clock, ids = FakeClock(), SequentialIds()
        self.catalog = ModelCatalog(models, clock, [], ttl_seconds=30)
        records: Any = configs
        self.configs = ScoreConfigCache(records, clock, ttl_seconds=5)
        if bus is not None:  # what the container does for every process
            bus.subscribe(MODELS, lambda _key: self.catalog.invalidate())
            bus.subscribe(SCORE_CONFIGS, self.configs.invalidate)
        self.create_model = CreateModel(models, clock, ids, self.catalog, bus=bus)
        self.delete_model = DeleteModel(models, self.catalog, bus=bus)
        self.create_config = CreateScoreConfig(records, clock, ids, self.configs, bus=bus)
        self.update_config = UpdateScoreConfig(records, clock, self.configs, bus=bus)

    async def model_names(self) -> list[str]:
        return [model.model_name for model in await self.catalog.models()]


@pytest.fixture
def hub() -> LocalInvalidationHub:
    return LocalInvalidationHub()


@pytest.fixture
def pair(hub: LocalInvalidationHub) -> tuple[Process, Process]:
    models, configs = InMemoryRecordStore(), ScoreConfigRecords()
    a = Process(models, configs, LocalInvalidationBus(hub))
    b = Process(models, configs, LocalInvalidationBus(hub))
    return a, b


async def test_a_model_created_or_deleted_in_one_process_prices_in_the_other_at_once(
    pair: tuple[Process, Process],
) -> None:
    a, b = pair
    assert await b.model_names() == []  # cached in b for 30 s
    model = await a.create_model(P1, {**MODEL_BODY, "inputPrice": 1.0})
    assert await b.model_names() == ["my-gpt"]
    await a.delete_model(P1, model.id)
    assert await b.model_names() == []
    assert await a.model_names() == []  # and the publisher reads its own writes


async def test_model_changes_are_published_with_project_and_id(hub: LocalInvalidationHub) -> None:
    listener = LocalInvalidationBus(hub)
    seen: list[str] = []
    listener.subscribe(MODELS, seen.append)
    a = Process(InMemoryRecordStore(), ScoreConfigRecords(), LocalInvalidationBus(hub))
    model = await a.create_model(P1, {**MODEL_BODY, "totalPrice": 2.0})
    await a.delete_model(P1, model.id)
    assert seen == [cache_key(P1, model.id)] * 2


async def test_without_a_bus_the_other_process_waits_for_its_ttl() -> None:
    models, configs = InMemoryRecordStore(), ScoreConfigRecords()
    a, b = Process(models, configs, None), Process(models, configs, None)
    assert await b.model_names() == []
    await a.create_model(P1, {**MODEL_BODY, "inputPrice": 1.0})
    assert await a.model_names() == ["my-gpt"]  # its own catalog still refreshes
    assert await b.model_names() == []  # the reason for publishing


async def test_a_score_config_created_in_one_process_is_known_in_the_other_at_once(
    pair: tuple[Process, Process],
) -> None:
    a, b = pair
    config_id = "id-1"  # a's first id
    assert await b.configs.get_many(P1, [config_id]) == {}  # b remembers the miss for 5 s
    created = await a.create_config(P1, CONFIG_BODY)
    assert created.id == config_id
    assert await b.configs.get_many(P1, [config_id]) == {config_id: created}


async def test_a_score_config_update_reaches_the_other_process_at_once(
    pair: tuple[Process, Process],
) -> None:
    a, b = pair
    created = await a.create_config(P1, CONFIG_BODY)
    assert not (await b.configs.get_many(P1, [created.id]))[created.id].is_archived
    await a.update_config(P1, created.id, {"isArchived": True})
    assert (await b.configs.get_many(P1, [created.id]))[created.id].is_archived
    assert (await a.configs.get_many(P1, [created.id]))[created.id].is_archived


async def test_a_score_config_change_drops_only_that_entry(pair: tuple[Process, Process]) -> None:
    a, b = pair
    records: Any = b.configs._records  # the shared fake, to count reads
    first = await a.create_config(P1, CONFIG_BODY)
    second = await a.create_config(P1, {**CONFIG_BODY, "name": "other"})
    await b.configs.get_many(P1, [first.id, second.id])
    reads = len(records.reads)
    await a.update_config(P1, first.id, {"description": "changed"})
    found = await b.configs.get_many(P1, [first.id, second.id])
    assert found[first.id].description == "changed"
    assert records.reads[reads:] == [1]  # only the changed one was read again


async def test_everything_clears_the_score_config_cache(pair: tuple[Process, Process]) -> None:
    a, b = pair
    created = await a.create_config(P1, CONFIG_BODY)
    await b.configs.get_many(P1, [created.id])
    b.configs.invalidate(EVERYTHING)  # what a bus sends after a lost connection
    records: Any = b.configs._records
    reads = len(records.reads)
    await b.configs.get_many(P1, [created.id])
    assert len(records.reads) == reads + 1


async def test_a_read_that_overlapped_an_invalidation_is_not_kept() -> None:
    class SlowRecords(ScoreConfigRecords):
        """Holds the read until the test has published a change."""

        def __init__(self) -> None:
            super().__init__()
            self.reading = asyncio.Event()
            self.release = asyncio.Event()

        async def __aenter__(self) -> Self:
            await super().__aenter__()
            self.reading.set()
            await self.release.wait()
            return self

    records = SlowRecords()
    cache = ScoreConfigCache(records, FakeClock(), ttl_seconds=5)  # type: ignore[arg-type]
    read = asyncio.create_task(cache.get_many(P1, ["cfg"]))
    await records.reading.wait()
    cache.invalidate(cache_key(P1, "cfg"))  # "cfg" was created meanwhile, elsewhere
    records.release.set()
    assert await read == {}  # what the read saw, for this call...
    reads = len(records.reads)
    await cache.get_many(P1, ["cfg"])
    assert len(records.reads) == reads + 1  # ...but the miss was not remembered
