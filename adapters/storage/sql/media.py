"""SQL storage of media records and their links: tables and repository.

A project holds one record per content hash (the media id is derived from the hash, so the
primary key and the hash constraint agree). A link's primary key is upstream's unique
constraint of its table, so a repeated upload request stores it once; links go with their
media record (foreign key, on delete cascade).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    exists,
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
from fathom.core.domain.media import (
    DatasetItemMediaLink,
    Media,
    MediaLink,
    MediaLinkOrigin,
    ObservationMediaLink,
    TraceMediaLink,
)

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


def _to_media(table: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["project_id", "media_id"],
        ["media.project_id", "media.id"],
        ondelete="CASCADE",
        name=f"fk_{table}_media",
    )


trace_media = Table(
    "trace_media",
    metadata,
    Column("project_id", String(255), primary_key=True),
    Column("trace_id", String(255), primary_key=True),
    Column("media_id", String(255), primary_key=True),
    Column("field", String(32), primary_key=True),
    Column("origin", String(32), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    _to_media("trace_media"),
    Index("ix_trace_media_media", "project_id", "media_id"),
)

observation_media = Table(
    "observation_media",
    metadata,
    Column("project_id", String(255), primary_key=True),
    Column("trace_id", String(255), primary_key=True),
    Column("observation_id", String(255), primary_key=True),
    Column("media_id", String(255), primary_key=True),
    Column("field", String(32), primary_key=True),
    Column("origin", String(32), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    _to_media("observation_media"),
    Index("ix_observation_media_media", "project_id", "media_id"),
)

# Keyed as upstream's links declared at upload (project, item, field, media). No foreign key
# to the dataset: upstream's links have none, and the item may be written after the upload.
dataset_item_media = Table(
    "dataset_item_media",
    metadata,
    Column("project_id", String(255), primary_key=True),
    Column("dataset_item_id", String(255), primary_key=True),
    Column("field", String(32), primary_key=True),
    Column("media_id", String(255), primary_key=True),
    Column("dataset_id", String(255), nullable=False),
    Column("origin", String(32), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    _to_media("dataset_item_media"),
    Index("ix_dataset_item_media_media", "project_id", "media_id"),
)

_LINK_TABLES = (trace_media, observation_media, dataset_item_media)
_LINK_TABLE_OF: dict[type[Any], Table] = {
    TraceMediaLink: trace_media,
    ObservationMediaLink: observation_media,
    DatasetItemMediaLink: dataset_item_media,
}

# Ids per statement: far below SQLite's and asyncpg's 32,767 bound parameters.
_CHUNK = 1000

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


def _link_row(link: MediaLink) -> tuple[Table, dict[str, Any]]:
    """The table of a link and its row (the link's fields are the table's columns)."""
    return _LINK_TABLE_OF[type(link)], {**dataclasses.asdict(link), "origin": link.origin.value}


L = TypeVar("L", TraceMediaLink, ObservationMediaLink, DatasetItemMediaLink)


def _link(kind: type[L], row: RowMapping) -> L:
    """A stored link of one table as its domain object (the columns are its fields)."""
    values = {f.name: row[f.name] for f in dataclasses.fields(kind)}
    return kind(**{**values, "origin": MediaLinkOrigin(row["origin"])})


def _chunks(ids: Sequence[str]) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _CHUNK):
        yield unique[start : start + _CHUNK]


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

    async def add_links(self, links: Sequence[MediaLink]) -> None:
        rows: dict[Table, list[dict[str, Any]]] = {}
        for link in links:
            table, row = _link_row(link)
            rows.setdefault(table, []).append(row)
        for table, values in rows.items():
            await self._insert_ignore_many(table, values)

    async def links_of_traces(
        self, project_id: str, trace_ids: Sequence[str]
    ) -> list[TraceMediaLink | ObservationMediaLink]:
        readers: list[tuple[Table, type[TraceMediaLink | ObservationMediaLink]]]
        readers = [(trace_media, TraceMediaLink), (observation_media, ObservationMediaLink)]
        found: list[TraceMediaLink | ObservationMediaLink] = []
        for chunk in _chunks(trace_ids):
            for table, kind in readers:
                rows = await self._all(
                    select(table)
                    .where(table.c.project_id == project_id, table.c.trace_id.in_(chunk))
                    .order_by(*table.primary_key.columns)
                )
                found.extend(_link(kind, row) for row in rows)
        return found

    async def links_of_dataset_items(
        self, project_id: str, dataset_item_ids: Sequence[str]
    ) -> list[DatasetItemMediaLink]:
        table = dataset_item_media
        found: list[DatasetItemMediaLink] = []
        for chunk in _chunks(dataset_item_ids):
            rows = await self._all(
                select(table)
                .where(table.c.project_id == project_id, table.c.dataset_item_id.in_(chunk))
                .order_by(*table.primary_key.columns)
            )
            found.extend(_link(DatasetItemMediaLink, row) for row in rows)
        return found

    async def delete_links_of_traces(self, project_id: str, trace_ids: Sequence[str]) -> set[str]:
        media_ids: set[str] = set()
        for chunk in _chunks(trace_ids):
            for table in (trace_media, observation_media):
                media_ids |= await self._delete_links(
                    table, table.c.project_id == project_id, table.c.trace_id.in_(chunk)
                )
        return media_ids

    async def delete_links_of_dataset_items(
        self, project_id: str, dataset_item_ids: Sequence[str]
    ) -> set[str]:
        table = dataset_item_media
        media_ids: set[str] = set()
        for chunk in _chunks(dataset_item_ids):
            media_ids |= await self._delete_links(
                table, table.c.project_id == project_id, table.c.dataset_item_id.in_(chunk)
            )
        return media_ids

    async def delete_unlinked(self, project_id: str, media_ids: Sequence[str]) -> list[Media]:
        deleted: list[Media] = []
        for chunk in _chunks(media_ids):
            # The check and the delete in one statement, so they see the same links.
            unlinked = [
                ~exists().where(
                    table.c.project_id == media.c.project_id, table.c.media_id == media.c.id
                )
                for table in _LINK_TABLES
            ]
            result = await self._uow.connection.execute(
                delete(media)
                .where(media.c.project_id == project_id, media.c.id.in_(chunk), *unlinked)
                .returning(*media.c)
            )
            deleted.extend(_media(row) for row in result.mappings().all())
        return sorted(deleted, key=lambda m: m.id)

    async def _delete_links(self, table: Table, *conditions: Any) -> set[str]:
        result = await self._uow.connection.execute(
            delete(table).where(*conditions).returning(table.c.media_id)
        )
        return set(result.scalars().all())

    async def _replace(self, project_id: str, sha256_hash: str, values: dict[str, Any]) -> None:
        await self._uow.connection.execute(
            update(media)
            .where(media.c.project_id == project_id, media.c.sha256_hash == sha256_hash)
            .values(**values)
        )
