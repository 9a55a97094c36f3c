"""The base of every SQL repository: runs statements on its unit of work's connection, and
the few statements whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

if TYPE_CHECKING:
    from fathom.adapters.storage.sql.store import SqlUnitOfWork


class SqlRepository:
    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    @property
    def _dialect(self) -> str:
        return self._uow.connection.dialect.name

    async def _one(self, statement: Any) -> RowMapping | None:
        result = await self._uow.connection.execute(statement)
        return result.mappings().first()

    async def _all(self, statement: Any) -> list[RowMapping]:
        result = await self._uow.connection.execute(statement)
        return list(result.mappings().all())

    async def _insert(self, table: Any, values: dict[str, Any]) -> None:
        await self._uow.connection.execute(insert(table).values(**values))

    async def _insert_ignore(
        self, table: Any, values: dict[str, Any], index_elements: Sequence[str] | None = None
    ) -> bool:
        """Insert unless a row with the same key exists; True when a row was written.

        ON CONFLICT DO NOTHING rather than catching the duplicate: on PostgreSQL a failed
        statement aborts the whole transaction, and two concurrent writers would make the
        second one fail instead of finding the row there."""
        dialect = self._dialect
        if dialect == "postgresql":
            statement: Any = postgresql.insert(table).values(**values)
        elif dialect == "sqlite":
            statement = sqlite.insert(table).values(**values)
        else:  # other engines: a savepoint keeps the transaction usable after a duplicate
            connection = self._uow.connection
            try:
                async with connection.begin_nested():
                    await connection.execute(insert(table).values(**values))
            except IntegrityError:
                return False
            return True
        statement = statement.on_conflict_do_nothing(
            index_elements=list(index_elements) if index_elements else None
        )
        result = await self._uow.connection.execute(statement)
        return bool(result.rowcount)

    async def _lock(self, *key: str) -> None:
        """Hold a lock on `key` until the unit of work ends (PostgreSQL only).

        PostgreSQL runs writers concurrently under READ COMMITTED: two read-then-write
        transactions on one record could both act on what they read before the other
        committed. Taking this lock before the first read queues them instead, as SQLite's
        single writer does. It is an advisory lock on a 64-bit hash of the key, so it
        locks no rows and costs one round trip."""
        if self._dialect != "postgresql":
            return
        text = "\x1f".join(key)
        await self._uow.connection.execute(
            select(func.pg_advisory_xact_lock(func.hashtextextended(text, 0)))
        )
