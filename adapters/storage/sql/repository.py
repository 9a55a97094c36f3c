"""The base of every SQL repository: runs statements on its unit of work's connection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import insert
from sqlalchemy.engine import RowMapping

if TYPE_CHECKING:
    from fathom.adapters.storage.sql.store import SqlUnitOfWork


class SqlRepository:
    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    async def _one(self, statement: Any) -> RowMapping | None:
        result = await self._uow.connection.execute(statement)
        return result.mappings().first()

    async def _all(self, statement: Any) -> list[RowMapping]:
        result = await self._uow.connection.execute(statement)
        return list(result.mappings().all())

    async def _insert(self, table: Any, values: dict[str, Any]) -> None:
        await self._uow.connection.execute(insert(table).values(**values))
