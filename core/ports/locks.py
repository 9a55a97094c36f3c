"""Mutual exclusion across every process that shares a deployment's engines.

Workers merge a batch's events with the rows already stored and write the result. Two
workers doing that for the same trace at the same time would each merge with what was
stored before either wrote, and the later write would drop the other's fields (a root
span's name and input, say, under a child span's propagated user id). Holding the
project's merge lock around merge-and-write makes each batch merge with what the previous
one wrote; decoding and converting, the expensive part, still run in parallel.

`ProcessLocks` below is the embedded default (one process: an asyncio lock is enough);
`fathom.adapters.storage.sql.locks` holds the lock in PostgreSQL when records live there.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol


class Locks(Protocol):
    def hold(self, key: str) -> AbstractAsyncContextManager[None]:
        """Enter once no other holder of `key`, in any process, is inside; exit releases it.
        A holder whose process dies releases it too."""
        ...


class ProcessLocks:
    """Locks of this process only: enough when one process does all the writing."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            yield
