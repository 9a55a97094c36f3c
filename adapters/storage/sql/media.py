"""SQL storage of media records: table and repository.

A project holds one record per content hash (the media id is derived from the hash, so the
primary key and the hash constraint agree). Links of media to traces, observations and
dataset items are not stored: Langfuse's UI lists them, the public API never reads them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from fathom.adapters.storage.sql.repository import SqlRepository
from fathom.adapters.storage.sql.tables import metadata
from fathom.adapters.storage.sql.types import UtcDateTime
from fathom.core.domain.errors import Conflict
from fathom.core.domain.media import Media

media = Table(
    "media",
    metadata,
    Column(
        "project_id",
        String(255),
        ForeignKey("projects.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("id", String(255), primary_key=True),
    Column("sha256_hash", String(64), nullable=False),
    Column("content_type", String(255), nullable=False),
    Column("content_length", BigInteger, nullable=False),
    Column("blob_key", Text, nullable=False),
    Column("uploaded_at", UtcDateTime(), nullable=True),
    Column("upload_http_status", Integer, nullable=True),
    Column("upload_http_error", Text, nullable=True),
    Column("upload_time_ms", BigInteger, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    UniqueConstraint("project_id", "sha256_hash", name="uq_media_project_id_sha256_hash"),
)

# What a repeated upload request may change; id, creation time and upload status stay.
_REPLACED = ("content_type", "content_length", "blob_key", "updated_at")


def _media(row: RowMapping) -> Media:
    return Media(
        id=row["id"],
        project_id=row["project_id"],
        sha256_hash=row["sha256_hash"],
        content_type=row["content_type"],
        content_length=int(row["content_length"]),
        blob_key=row["blob_key"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        uploaded_at=row["uploaded_at"],
        upload_http_status=row["upload_http_status"],
        upload_http_error=row["upload_http_error"],
        upload_time_ms=row["upload_time_ms"],
    )


class SqlMediaRepository(SqlRepository):
    async def get(self, project_id: str, media_id: str) -> Media | None:
        return await self._one_as(
            select(media).where(media.c.project_id == project_id, media.c.id == media_id), _media
        )

    async def get_by_hash(self, project_id: str, sha256_hash: str) -> Media | None:
        return await self._one_as(
            select(media).where(
                media.c.project_id == project_id, media.c.sha256_hash == sha256_hash
            ),
            _media,
        )

    async def upsert(self, record: Media) -> None:
        values: dict[str, Any] = {
            "project_id": record.project_id,
            "id": record.id,
            "sha256_hash": record.sha256_hash,
            "content_type": record.content_type,
            "content_length": record.content_length,
            "blob_key": record.blob_key,
            "uploaded_at": record.uploaded_at,
            "upload_http_status": record.upload_http_status,
            "upload_http_error": record.upload_http_error,
            "upload_time_ms": record.upload_time_ms,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
        }
        replaced = {name: values[name] for name in _REPLACED}
        connection = self._uow.connection
        dialect = connection.dialect.name
        # One statement, so two clients requesting the same new file at once both succeed.
        statement: Any
        if dialect == "sqlite":
            statement = sqlite.insert(media).values(**values)
        elif dialect == "postgresql":
            statement = postgresql.insert(media).values(**values)
        else:  # other engines: insert, and update what a concurrent writer inserted first
            try:
                async with connection.begin_nested():
                    await connection.execute(insert(media).values(**values))
            except IntegrityError:
                await self._replace(record.project_id, record.sha256_hash, replaced)
            return
        statement = statement.on_conflict_do_update(
            index_elements=["project_id", "sha256_hash"], set_=replaced
        )
        try:
            await connection.execute(statement)
        except IntegrityError as exc:
            # Only a different hash with the same 132-bit id prefix can get here.
            raise Conflict(f"media id {record.id!r} is taken by other content") from exc

    async def record_upload(
        self,
        project_id: str,
        media_id: str,
        *,
        uploaded_at: datetime,
        upload_http_status: int,
        upload_http_error: str | None,
        upload_time_ms: int | None,
        updated_at: datetime,
    ) -> bool:
        result = await self._uow.connection.execute(
            update(media)
            .where(media.c.project_id == project_id, media.c.id == media_id)
            .values(
                uploaded_at=uploaded_at,
                upload_http_status=upload_http_status,
                upload_http_error=upload_http_error,
                upload_time_ms=upload_time_ms,
                updated_at=updated_at,
            )
        )
        return bool(result.rowcount)

    async def _replace(self, project_id: str, sha256_hash: str, values: dict[str, Any]) -> None:
        await self._uow.connection.execute(
            update(media)
            .where(media.c.project_id == project_id, media.c.sha256_hash == sha256_hash)
            .values(**values)
        )
