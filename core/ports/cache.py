"""Cache invalidation that reaches every process.

Web processes keep small in-process caches (verified API keys, resolved prompts, score
configs, the model catalog). When one process changes what such a cache holds, it publishes
the change on the bus; every subscriber of that topic, in every process, drops its entries.
The in-process implementation below is the embedded default (one process: the publisher's
own subscribers are all there is); `fathom.adapters.queue.redis_cache` carries the same
messages between processes over Redis pub/sub.

Messages are hints, not a log: a process that was disconnected misses some, which is why
implementations deliver `EVERYTHING` after a reconnect and why every cache keeps its TTL.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Protocol

from fathom.core.ports.prompts import PromptCache

log = logging.getLogger(__name__)

# Topics, one per kind of cached record. Keys are the topic's own (see `cache_key`).
API_KEYS: Final = "api_keys"
PROMPTS: Final = "prompts"
SCORE_CONFIGS: Final = "score_configs"
MODELS: Final = "models"
# The key meaning "drop every entry of this topic".
EVERYTHING: Final = "*"

# Called with the changed key; may be a plain function or a coroutine function.
InvalidationHandler = Callable[[str], Awaitable[None] | None]


class InvalidationBus(Protocol):
    def subscribe(self, topic: str, handler: InvalidationHandler) -> None:
        """Run `handler(key)` whenever any process publishes on `topic` from now on
        (nothing published earlier is replayed)."""
        ...

    async def publish(self, topic: str, key: str) -> None:
        """Tell every subscriber, in every process, that `key` of `topic` changed.

        This process's subscribers have run when it returns (a process reads its own
        writes); other processes' run moments later. Call it after the change committed.
        Never raises for a transport failure: the change is already stored, and the caches'
        TTL bounds how long another process may serve the old value."""
        ...

    async def start(self) -> None:
        """Begin receiving other processes' messages (idempotent)."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Caching:
    """What the `cache` adapter provides: the bus, and the prompt cache when the adapter
    has one (one process's own, or one shared by every process). None: each process keeps
    an in-process prompt cache that the bus keeps true (`BroadcastingPromptCache`)."""

    bus: InvalidationBus
    prompts: PromptCache | None = None

    async def start(self) -> None:
        await self.bus.start()

    async def close(self) -> None:
        await self.bus.close()
        close = getattr(self.prompts, "close", None)
        if close is not None:
            await close()


def cache_key(*parts: str) -> str:
    """One key from several parts (e.g. project id and prompt name), unambiguously."""
    return json.dumps(parts, ensure_ascii=False, separators=(",", ":"))


def key_parts(key: str) -> list[str]:
    """The parts `cache_key` joined; [] for `EVERYTHING` or a key it did not make."""
    try:
        parts = json.loads(key)
    except ValueError:
        return []
    return [str(part) for part in parts] if isinstance(parts, list) else []


async def run_handlers(handlers: list[InvalidationHandler], topic: str, key: str) -> None:
    """Run every handler; one that fails is logged and does not stop the others."""
    for handler in list(handlers):
        try:
            result = handler(key)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("invalidation handler for %s %r failed", topic, key)


class LocalInvalidationHub:
    """What `LocalInvalidationBus` instances share. A process has one (so publishing reaches
    its own subscribers only); tests give several buses one hub to stand for a broker."""

    def __init__(self) -> None:
        self.buses: list[LocalInvalidationBus] = []


class LocalInvalidationBus:
    """`InvalidationBus` inside one process: publishing runs the subscribers at once."""

    def __init__(self, hub: LocalInvalidationHub | None = None) -> None:
        self._hub = hub or LocalInvalidationHub()
        self._hub.buses.append(self)
        self._handlers: dict[str, list[InvalidationHandler]] = {}

    def subscribe(self, topic: str, handler: InvalidationHandler) -> None:
        self._handlers.setdefault(topic, []).append(handler)

    async def publish(self, topic: str, key: str) -> None:
        # The publisher's own subscribers first, as the Redis bus does.
        await self.deliver(topic, key)
        for bus in list(self._hub.buses):
            if bus is not self:
                await bus.deliver(topic, key)

    async def deliver(self, topic: str, key: str) -> None:
        await run_handlers(self._handlers.get(topic, []), topic, key)

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        if self in self._hub.buses:
            self._hub.buses.remove(self)
