"""The base of every SQL repository: runs statements on its unit of work's connection, and
the few statements whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Table, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from fathom.core.ports.telemetry import Page

if TYPE_CHECKING:
    from fathom.adapters.storage.sql.store import SqlUnitOfWork

R = TypeVar("R")


def advisory_xact_lock(key: str) -> Any:
    """PostgreSQL: wait for, then hold until the transaction ends, the advisory lock on a
    64-bit hash of `key`. It locks no rows and costs one round trip."""
    return select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0)))


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

    async def _one_as(self, statement: Any, row_to: Callable[[RowMapping], R]) -> R | None:
        """The first row `statement` finds, as a record; None when it finds none."""
        row = await self._one(statement)
        return None if row is None else row_to(row)

    async def _count(self, table: Table, *conditions: Any) -> int:
        row = await self._one(select(func.count().label("n")).select_from(table).where(*conditions))
        return int(row["n"]) if row is not None else 0

    async def _page(
        self,
        table: Table,
        conditions: Sequence[Any],
        order_by: Sequence[Any],
        page: int,
        limit: int,
        row_to: Callable[[RowMapping], R],
    ) -> Page[R]:
        """Page `page` (from 1) of `table`'s rows matching `conditions`, with how many match
        in all, as the public API's list endpoints answer."""
        rows = await self._all(
            select(table)
            .where(*conditions)
            .order_by(*order_by)
            .limit(limit)
            .offset((page - 1) * limit)
        )
        total = await self._count(table, *conditions)
        return Page(items=[row_to(row) for row in rows], total=total)

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

    async def _insert_ignore_many(self, table: Any, rows: Sequence[dict[str, Any]]) -> None:
        """`_insert_ignore` for many rows of one table, in one statement where the engine
        has ON CONFLICT DO NOTHING."""
        dialect = self._dialect
        if dialect == "postgresql":
            statement: Any = postgresql.insert(table).on_conflict_do_nothing()
        elif dialect == "sqlite":
            statement = sqlite.insert(table).on_conflict_do_nothing()
        else:
            for row in rows:
                await self._insert_ignore(table, row)
            return
        await self._uow.connection.execute(statement, list(rows))

    async def _lock(self, *key: str) -> None:
        """Hold a lock on `key` until the unit of work ends (PostgreSQL only).

        PostgreSQL runs writers concurrently under READ COMMITTED: two read-then-write
        transactions on one record could both act on what they read before the other
        committed. Taking this lock before the first read queues them instead, as SQLite's
        single writer does (`advisory_xact_lock`)."""
        if self._dialect != "postgresql":
            return
        await self._uow.connection.execute(advisory_xact_lock("\x1f".join(key)))
