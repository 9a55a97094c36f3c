"""Caches shared by the processes of a scaled-out deployment, on Redis.

- `RedisInvalidationBus`: the `InvalidationBus` over one pub/sub channel (`fathom:invalidate`).
  A process runs its own subscribers when it publishes and ignores its own messages when they
  come back; after a lost connection it re-subscribes and tells every subscriber to drop
  everything, since messages published meanwhile were missed.
- `RedisPromptCache`: a `PromptCache` every process shares, so an invalidation is seen by all
  of them at once without a bus. Entries expire after the prompt-cache TTL.

Both degrade rather than fail: with Redis unreachable, a publish is logged (the change is
already stored; other processes' caches expire within their TTL) and the prompt cache
misses, so prompts are read from the record store.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from fathom.adapters.queue.redis import masked_url
from fathom.core.domain.errors import ConfigurationError, Unavailable
from fathom.core.domain.prompts import PromptType, PromptVersion
from fathom.core.ports.cache import EVERYTHING, InvalidationHandler, run_handlers
from fathom.core.ports.prompts import PromptCacheKey

logger = logging.getLogger(__name__)

_RECONNECT_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)
# How often the listener looks up from its socket to notice `close()`.
_POLL_SECONDS = 0.2


def _client(url: str, setting: str) -> aioredis.Redis:
    try:
        return aioredis.Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)
    except ValueError as exc:
        raise ConfigurationError(f"{setting}={masked_url(url)}: not a Redis URL ({exc})") from None


class RedisInvalidationBus:
    """`InvalidationBus` over Redis pub/sub. Call `start()` once subscriptions are made."""

    def __init__(
        self,
        url: str,
        *,
        channel: str = "fathom:invalidate",
        setting: str = "FATHOM_CACHE__URL",
    ) -> None:
        self._where = f"{setting}={masked_url(url)}"
        self._client = _client(url, setting)
        self._channel = channel
        # Tells this process's messages apart when Redis echoes them back.
        self._origin = uuid.uuid4().hex
        self._handlers: dict[str, list[InvalidationHandler]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._closed = False

    def subscribe(self, topic: str, handler: InvalidationHandler) -> None:
        self._handlers.setdefault(topic, []).append(handler)

    async def publish(self, topic: str, key: str) -> None:
        await run_handlers(self._handlers.get(topic, []), topic, key)
        message = orjson.dumps({"o": self._origin, "t": topic, "k": key})
        try:
            await self._client.publish(self._channel, message)
        except RedisError as exc:
            logger.warning(
                "%s: could not tell other processes that %s %r changed (their caches "
                "expire within their TTL): %r",
                self._where,
                topic,
                key,
                exc,
            )

    async def start(self) -> None:
        """Subscribe and listen; returns once the subscription is in place, so nothing
        published after it is missed. Raises `Unavailable` when Redis cannot be reached."""
        if self._closed:
            raise Unavailable(f"{self._where}: the invalidation bus is closed")
        if self._listener is None:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
            except RedisError as exc:
                await _close_quietly(pubsub)
                raise Unavailable(f"{self._where}: Redis is unreachable: {exc}") from exc
            self._subscribed.set()
            self._listener = asyncio.create_task(
                self._listen(pubsub), name=f"fathom-invalidation:{self._channel}"
            )

    async def ping(self) -> None:
        await self.start()

    async def close(self) -> None:
        self._closed = True
        if self._listener is not None:
            # Not cancelled: the listener notices within one poll and closes its connection.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._listener), 5)
            self._listener = None
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()

    async def _listen(self, pubsub: Any) -> None:
        failures = 0
        while not self._closed:
            try:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=_POLL_SECONDS
                )
            except (RedisError, OSError) as exc:
                if self._closed:
                    break
                delay = _RECONNECT_SECONDS[min(failures, len(_RECONNECT_SECONDS) - 1)]
                failures += 1
                logger.warning("%s: invalidation channel lost (%r); reconnecting", self._where, exc)
                await _close_quietly(pubsub)
                await asyncio.sleep(delay)
                pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                try:
                    await pubsub.subscribe(self._channel)
                except (RedisError, OSError):
                    continue
                failures = 0
                # Whatever was published while we were away is lost: drop everything.
                for topic, handlers in list(self._handlers.items()):
                    await run_handlers(handlers, topic, EVERYTHING)
                continue
            if message is not None and message.get("type") == "message":
                await self._deliver(message.get("data"))
        await _close_quietly(pubsub)

    async def _deliver(self, data: Any) -> None:
        try:
            message = orjson.loads(data)
            origin, topic, key = message["o"], message["t"], message["k"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            logger.warning("ignoring a malformed invalidation message: %r", data)
            return
        if origin == self._origin:
            return  # ours: our subscribers ran when we published
        await run_handlers(self._handlers.get(str(topic), []), str(topic), str(key))


async def _close_quietly(pubsub: Any) -> None:
    with contextlib.suppress(RedisError, OSError, RuntimeError):
        await pubsub.aclose()


# --- the shared prompt cache --------------------------------------------------------------------

# KEYS: generation, entry, then one name-index set per name. ARGV: token, ttl ms, document.
# Stores only when the project's generation is still the token the reader took.
_PUT = """
local generation = tonumber(redis.call('GET', KEYS[1]) or '0')
if generation ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2])
for i = 3, #KEYS do
  redis.call('SADD', KEYS[i], KEYS[2])
  redis.call('PEXPIRE', KEYS[i], ARGV[2])
end
return 1
"""

# KEYS: generation, the name's index set. Bumps the generation (reads in flight will not
# store) and drops every entry built from the name.
_INVALIDATE = """
redis.call('INCR', KEYS[1])
local entries = redis.call('SMEMBERS', KEYS[2])
for _, entry in ipairs(entries) do redis.call('DEL', entry) end
redis.call('DEL', KEYS[2])
return #entries
"""


def _digest(*parts: Any) -> str:
    return hashlib.sha256(orjson.dumps(parts)).hexdigest()[:32]


class RedisPromptCache:
    """`PromptCache` in Redis, shared by every process.

    A project's keys share one hash slot (`{…}` tag), so the scripts also run on Redis
    Cluster. Names and keys are hashed into the key names: any prompt name is safe."""

    def __init__(
        self,
        url: str,
        *,
        ttl_seconds: float = 300.0,
        prefix: str = "fathom:prompt-cache",
        setting: str = "FATHOM_CACHE__URL",
    ) -> None:
        self._where = f"{setting}={masked_url(url)}"
        self._client = _client(url, setting)
        self._ttl_ms = int(ttl_seconds * 1000)
        self._prefix = prefix
        self._put = self._client.register_script(_PUT)
        self._invalidate = self._client.register_script(_INVALIDATE)

    def _project(self, project_id: str) -> str:
        return f"{self._prefix}:{{{_digest(project_id)}}}"

    def _entry(self, key: PromptCacheKey) -> str:
        return f"{self._project(key.project_id)}:e:{_digest(key.name, key.version, key.label)}"

    def _names(self, project_id: str, name: str) -> str:
        return f"{self._project(project_id)}:n:{_digest(name)}"

    async def get(self, key: PromptCacheKey) -> PromptVersion | None:
        try:
            raw = await self._client.get(self._entry(key))
        except RedisError as exc:
            logger.warning("%s: prompt cache unavailable, reading the store: %r", self._where, exc)
            return None
        return None if raw is None else _decode(raw)

    async def token(self, project_id: str) -> object:
        try:
            raw = await self._client.get(f"{self._project(project_id)}:g")
        except RedisError:
            return None  # `put` stores nothing with it
        return int(raw or 0)

    async def put(
        self,
        key: PromptCacheKey,
        prompt: PromptVersion,
        names: Collection[str],
        token: object,
    ) -> None:
        if self._ttl_ms <= 0 or not isinstance(token, int):
            return
        keys = [f"{self._project(key.project_id)}:g", self._entry(key)]
        keys += [self._names(key.project_id, name) for name in sorted({key.name, *names})]
        try:
            await self._put(keys=keys, args=[token, self._ttl_ms, _encode(prompt)])
        except RedisError as exc:
            logger.warning("%s: could not cache prompt %r: %r", self._where, key.name, exc)

    async def invalidate(self, project_id: str, name: str) -> None:
        keys = [f"{self._project(project_id)}:g", self._names(project_id, name)]
        try:
            await self._invalidate(keys=keys, args=[])
        except RedisError as exc:
            # The change is stored; entries built from the old version expire with the TTL.
            logger.error(
                "%s: could not invalidate cached prompt %r (stale for at most %d s): %r",
                self._where,
                name,
                self._ttl_ms // 1000,
                exc,
            )

    async def ping(self) -> None:
        try:
            await self._client.ping()
        except RedisError as exc:
            raise Unavailable(f"{self._where}: Redis is unreachable: {exc}") from exc

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()


def _encode(prompt: PromptVersion) -> bytes:
    return orjson.dumps(
        {
            "id": prompt.id,
            "project_id": prompt.project_id,
            "name": prompt.name,
            "version": prompt.version,
            "type": prompt.type.value,
            "prompt": prompt.prompt,
            "config": prompt.config,
            "labels": prompt.labels,
            "tags": prompt.tags,
            "commit_message": prompt.commit_message,
            "created_by": prompt.created_by,
            "created_at": prompt.created_at.isoformat(),
            "updated_at": prompt.updated_at.isoformat(),
            "resolution_graph": prompt.resolution_graph,
        }
    )


def _decode(raw: bytes) -> PromptVersion | None:
    try:
        data = orjson.loads(raw)
        return PromptVersion(
            id=data["id"],
            project_id=data["project_id"],
            name=data["name"],
            version=int(data["version"]),
            type=PromptType(data["type"]),
            prompt=data["prompt"],
            config=data["config"],
            labels=list(data["labels"]),
            tags=list(data["tags"]),
            commit_message=data["commit_message"],
            created_by=data["created_by"],
            created_at=datetime.fromisoformat(data["created_at"]),
            updated_at=datetime.fromisoformat(data["updated_at"]),
            resolution_graph=data["resolution_graph"],
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None  # an entry of another version of Fathom: read the store instead
