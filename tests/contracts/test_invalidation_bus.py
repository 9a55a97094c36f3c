"""Contract of `InvalidationBus` (in-process and Redis) and of the shared caches behind it.

Two bus instances stand for two processes: in-process buses share a hub, Redis buses share a
server and a channel. Then the use cases of two such "processes" on one record store show a
change made through one reaching the other's caches at once.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fathom.adapters.auth.hashing import Sha256SecretHasher
from fathom.adapters.storage.sql.store import SqlRecordStore
from fathom.core.domain.errors import Unauthorized
from fathom.core.ports.cache import (
    API_KEYS,
    EVERYTHING,
    MODELS,
    PROMPTS,
    InvalidationBus,
    LocalInvalidationBus,
    LocalInvalidationHub,
    cache_key,
    key_parts,
)
from fathom.core.ports.prompts import PromptCache, PromptCacheKey
from fathom.core.ports.system import UuidGenerator
from fathom.core.usecases.access import (
    AuthenticateApiKey,
    CreateApiKey,
    CreateOrganization,
    CreateProject,
)
from fathom.core.usecases.prompts import (
    BroadcastingPromptCache,
    CreatePromptVersion,
    GetPrompt,
    InMemoryPromptCache,
    UpdatePromptLabels,
)
from tests.unit.fakes import FakeClock

TIMEOUT = 5.0
T0 = datetime(2026, 1, 1, tzinfo=UTC)

# Opens one more "process" on the shared medium; all are closed after the test.
BusFactory = Callable[[], InvalidationBus]


@pytest.fixture(params=["local", "redis"])
async def new_bus(request: pytest.FixtureRequest) -> AsyncIterator[BusFactory]:
    opened: list[InvalidationBus] = []
    if request.param == "local":
        hub = LocalInvalidationHub()

        def factory() -> InvalidationBus:
            opened.append(LocalInvalidationBus(hub))
            return opened[-1]
    else:
        url = request.getfixturevalue("redis_url")
        from fathom.adapters.queue.redis_cache import RedisInvalidationBus

        channel = f"fathom:test:invalidate:{uuid.uuid4().hex}"

        def factory() -> InvalidationBus:
            opened.append(RedisInvalidationBus(url, channel=channel))
            return opened[-1]

    yield factory
    for bus in opened:
        await bus.close()


class Seen:
    """A handler that records keys and lets a test wait for them."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self._changed = asyncio.Event()

    async def __call__(self, key: str) -> None:
        self.keys.append(key)
        self._changed.set()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(TIMEOUT):
            while len(self.keys) < count:
                self._changed.clear()
                await self._changed.wait()


async def test_a_publish_reaches_the_other_process_and_its_own_at_once(
    new_bus: BusFactory,
) -> None:
    a, b = new_bus(), new_bus()
    mine, theirs, other_topic = Seen(), Seen(), Seen()
    a.subscribe(PROMPTS, mine)
    b.subscribe(PROMPTS, theirs)
    b.subscribe(MODELS, other_topic)
    await a.start()
    await b.start()

    await a.publish(PROMPTS, cache_key("project", "greeting"))
    assert mine.keys == [cache_key("project", "greeting")]  # before publish returned
    await theirs.wait_for(1)
    assert key_parts(theirs.keys[0]) == ["project", "greeting"]
    await asyncio.sleep(0.1)
    assert len(mine.keys) == 1  # its own message coming back is not applied twice
    assert other_topic.keys == []


async def test_every_subscriber_runs_even_when_one_fails(new_bus: BusFactory) -> None:
    a, b = new_bus(), new_bus()
    calls: list[str] = []

    def broken(key: str) -> None:
        raise RuntimeError("handler bug")

    seen = Seen()
    b.subscribe(API_KEYS, broken)
    b.subscribe(API_KEYS, lambda key: calls.append(key))  # plain functions work too
    b.subscribe(API_KEYS, seen)
    await a.start()
    await b.start()
    for n in range(3):
        await a.publish(API_KEYS, f"pk-{n}")
    await seen.wait_for(3)
    assert seen.keys == calls == ["pk-0", "pk-1", "pk-2"]  # in publishing order


def test_keys_join_and_split_any_text() -> None:
    for parts in (["p", "a/b|c"], ["p:1", '"quoted" ,[]'], ["ü", ""]):
        assert key_parts(cache_key(*parts)) == parts
    assert key_parts(EVERYTHING) == []


# --- redis specifics -----------------------------------------------------------------------------


async def test_redis_bus_drops_everything_after_a_lost_connection(redis_url: str) -> None:
    import redis.asyncio as aioredis

    from fathom.adapters.queue.redis_cache import RedisInvalidationBus

    bus = RedisInvalidationBus(redis_url, channel="fathom:test:reconnect")
    seen = Seen()
    bus.subscribe(PROMPTS, seen)
    await bus.start()
    admin = aioredis.Redis.from_url(redis_url)
    try:
        await admin.client_kill_filter(_type="pubsub")  # what a Redis restart would do
        await seen.wait_for(1)
        assert seen.keys == [EVERYTHING]
        other = RedisInvalidationBus(redis_url, channel="fathom:test:reconnect")
        await other.publish(PROMPTS, "after")  # and messages flow again
        await seen.wait_for(2)
        await other.close()
    finally:
        await admin.aclose()
        await bus.close()


async def test_redis_bus_publish_survives_an_unreachable_server() -> None:
    pytest.importorskip("redis")
    from fathom.adapters.queue.redis_cache import RedisInvalidationBus
    from fathom.core.domain.errors import Unavailable

    bus = RedisInvalidationBus("redis://127.0.0.1:1/0")
    seen = Seen()
    bus.subscribe(MODELS, seen)
    try:
        await bus.publish(MODELS, "p")  # logged, not raised: the change is already stored
        assert seen.keys == ["p"]
        with pytest.raises(Unavailable, match="FATHOM_CACHE__URL=redis://127.0.0.1:1/0"):
            await bus.start()
    finally:
        await bus.close()


# --- prompt caches ------------------------------------------------------------------------------

PromptCacheFactory = Callable[[], PromptCache]


@pytest.fixture(params=["memory", "redis"])
async def new_prompt_cache(request: pytest.FixtureRequest) -> AsyncIterator[PromptCacheFactory]:
    """Caches of two processes: separate in memory (tied by a bus), one Redis for all."""
    opened: list[Any] = []
    if request.param == "memory":
        hub = LocalInvalidationHub()

        def factory() -> PromptCache:
            cache = BroadcastingPromptCache(
                InMemoryPromptCache(FakeClock(T0)), LocalInvalidationBus(hub)
            )
            return cache
    else:
        url = request.getfixturevalue("redis_url")
        from fathom.adapters.queue.redis_cache import RedisPromptCache

        def factory() -> PromptCache:
            opened.append(RedisPromptCache(url, ttl_seconds=60))
            return opened[-1]

    yield factory
    for cache in opened:
        await cache.close()


def _prompt(name: str, version: int, text: str = "hi") -> Any:
    from fathom.core.domain.prompts import PromptType, PromptVersion

    return PromptVersion(
        f"id-{name}-{version}", "p", name, version, PromptType.TEXT, text, {"t": 0.5},
        ["production"], ["tag"], None, "API", T0, T0,
        resolution_graph={"root": {"name": name}},
    )  # fmt: skip


async def test_prompt_cache_invalidation_reaches_every_process(
    new_prompt_cache: PromptCacheFactory,
) -> None:
    a, b = new_prompt_cache(), new_prompt_cache()
    key = PromptCacheKey("p", "outer", None, "production")
    other = PromptCacheKey("p", "unrelated", 1, None)
    await b.put(key, _prompt("outer", 1), ["inner"], await b.token("p"))
    await b.put(other, _prompt("unrelated", 1), [], await b.token("p"))
    assert await b.get(key) == _prompt("outer", 1)

    await a.invalidate("p", "inner")  # a name the cached prompt embeds
    async with asyncio.timeout(TIMEOUT):
        while await b.get(key) is not None:
            await asyncio.sleep(0.01)
    assert await b.get(other) == _prompt("unrelated", 1)


async def test_prompt_cache_drops_a_read_that_raced_a_change(
    new_prompt_cache: PromptCacheFactory,
) -> None:
    a, b = new_prompt_cache(), new_prompt_cache()
    key = PromptCacheKey("p", "x", 2, None)
    token = await b.token("p")  # b starts reading the store...
    await a.invalidate("p", "x")  # ...a changes the prompt meanwhile...
    await asyncio.sleep(0.05)
    await b.put(key, _prompt("x", 2), [], token)  # ...so b must not park what it read
    assert await b.get(key) is None
    await b.put(key, _prompt("x", 2), [], await b.token("p"))
    assert await b.get(key) == _prompt("x", 2)


# --- two processes, end to end ------------------------------------------------------------------


class Process:
    """The use cases one web process would have, with its own caches, on shared records."""

    def __init__(self, records: SqlRecordStore, bus: InvalidationBus, cache: PromptCache) -> None:
        clock, ids, hasher = FakeClock(T0), UuidGenerator(), Sha256SecretHasher("salt")
        self.bus = bus
        self.create_prompt = CreatePromptVersion(records, clock, ids, cache)
        self.get_prompt = GetPrompt(records, cache)
        self.label = UpdatePromptLabels(records, clock, cache)
        self.create_key = CreateApiKey(records, hasher, clock, ids, bus=bus)
        self.authenticate = AuthenticateApiKey(records, hasher, clock, bus=bus)


@pytest.fixture
async def records(tmp_path: Path) -> AsyncIterator[SqlRecordStore]:
    store = SqlRecordStore(f"sqlite+aiosqlite:///{tmp_path / 'records.db'}")
    await store.migrate()
    clock, ids = FakeClock(T0), UuidGenerator()
    await CreateOrganization(store, clock, ids)("Org", "o")
    await CreateProject(store, clock, ids)("o", "Project", "p")
    yield store
    await store.close()


@pytest.fixture(params=["in-process caches + bus", "shared redis prompt cache"])
async def two_processes(
    request: pytest.FixtureRequest, records: SqlRecordStore, redis_url: str
) -> AsyncIterator[tuple[Process, Process]]:
    from fathom.adapters.queue.redis_cache import RedisInvalidationBus, RedisPromptCache

    channel = f"fathom:test:e2e:{uuid.uuid4().hex}"
    closing: list[Any] = []
    processes = []
    for _ in range(2):
        bus = RedisInvalidationBus(redis_url, channel=channel)
        if request.param.startswith("in-process"):
            cache: PromptCache = BroadcastingPromptCache(InMemoryPromptCache(FakeClock(T0)), bus)
        else:
            cache = RedisPromptCache(redis_url)
            closing.append(cache)
        processes.append(Process(records, bus, cache))
        closing.append(bus)
        await bus.start()
    yield processes[0], processes[1]
    for item in closing:
        await item.close()


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(TIMEOUT):
        while not await check():
            await asyncio.sleep(0.01)


async def test_a_prompt_change_in_one_process_shows_in_the_other(
    two_processes: tuple[Process, Process],
) -> None:
    a, b = two_processes
    await a.create_prompt("p", {"name": "greet", "prompt": "v1", "labels": ["production"]})
    assert (await b.get_prompt("p", "greet")).prompt == "v1"  # now cached in b
    await a.create_prompt("p", {"name": "greet", "prompt": "v2", "labels": ["production"]})

    async def b_sees_v2() -> bool:
        return (await b.get_prompt("p", "greet")).prompt == "v2"

    await eventually(b_sees_v2)
    await a.label("p", "greet", 1, {"newLabels": ["production"]})

    async def b_sees_v1() -> bool:
        return (await b.get_prompt("p", "greet")).prompt == "v1"

    await eventually(b_sees_v1)


async def test_a_key_created_in_one_process_works_in_the_other_at_once(
    two_processes: tuple[Process, Process],
) -> None:
    a, b = two_processes
    secret = "sk-lf-new"
    header = "Basic " + base64.b64encode(f"pk-lf-new:{secret}".encode()).decode()
    with pytest.raises(Unauthorized):
        await b.authenticate(header)  # b now remembers the miss for its TTL...
    await a.create_key("o", "p", public_key="pk-lf-new", secret_key=secret)

    async def b_accepts() -> bool:
        try:
            await b.authenticate(header)
        except Unauthorized:
            return False
        return True

    await eventually(b_accepts)  # ...but forgets it as soon as a publishes the new key
