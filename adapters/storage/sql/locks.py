"""Locks held in PostgreSQL, for processes that share a Postgres record store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine

from fathom.adapters.storage.sql.repository import advisory_xact_lock
from fathom.adapters.storage.sql.store import SqlRecordStore
from fathom.core.ports.locks import Locks, ProcessLocks
from fathom.core.ports.records import RecordStore


class PostgresAdvisoryLocks:
    """`advisory_xact_lock` on a connection of its own: released when the block exits, and
    by the server when the holder's connection drops, so a killed worker never leaves it
    held."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        async with self._engine.begin() as connection:
            await connection.execute(advisory_xact_lock(key))
            yield


def record_store_locks(records: RecordStore) -> Locks:
    """Locks that reach every process sharing `records`: in PostgreSQL when the records
    live there; otherwise (SQLite belongs to one process) this process's own."""
    if isinstance(records, SqlRecordStore) and records.engine.dialect.name == "postgresql":
        return PostgresAdvisoryLocks(records.engine)
    return ProcessLocks()
