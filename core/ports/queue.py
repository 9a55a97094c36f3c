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


class JobsFailed(Exception):
    """Raised by a handler when only part of its batch failed: `failed` are retried (and
    dead-lettered after their last attempt) with `cause` as their error; the batch's other
    jobs are acknowledged."""

    def __init__(self, failed: list[Job], cause: BaseException) -> None:
        super().__init__(f"{len(failed)} job(s) failed: {cause!r}")
        self.failed = failed
        self.cause = cause


class JobQueue(Protocol):
    async def enqueue(self, kind: str, payload: dict[str, Any], delay_seconds: float = 0) -> str:
        """Persist a job; returns its id once it is durable."""
        ...

    async def consume(self, handler: JobHandler, *, batch_size: int = 100) -> None:
        """Run until cancelled: hand batches of due jobs to `handler`, ack on success,
        retry with backoff on failure, and dead-letter after the last attempt. A handler that
        raises `JobsFailed` has the listed jobs retried and the rest acknowledged."""
        ...

    async def pending(self) -> int:
        """Jobs not yet acknowledged."""
        ...

    async def dead_letters(self) -> list[Job]:
        """Jobs that failed their last attempt, oldest failure first; `meta` holds
        `last_error`, `created_at` and `failed_at` (Unix seconds)."""
        ...

    async def requeue_dead_letters(self) -> int:
        """Move every dead letter back into the queue as a job due now with no attempts
        (after the cause of its failures was fixed); returns how many were moved."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
