"""A durable job queue: a job enqueued and acknowledged survives a crash."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(slots=True)
class Job:
    id: str
    kind: str
    payload: dict[str, Any]
    attempts: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


JobHandler = Callable[[list[Job]], Awaitable[None]]


class JobQueue(Protocol):
    async def enqueue(self, kind: str, payload: dict[str, Any], delay_seconds: float = 0) -> str:
        """Persist a job; returns its id once it is durable."""
        ...

    async def consume(self, handler: JobHandler, *, batch_size: int = 100) -> None:
        """Run until cancelled: hand batches of due jobs to `handler`, ack on success,
        retry with backoff on failure, and dead-letter after the last attempt."""
        ...

    async def pending(self) -> int:
        """Jobs not yet acknowledged."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
