"""SQL storage of score configs, comments and annotation queues: tables and repositories.

The tables join `tables.metadata`; migration `0004_evaluation` creates them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    select,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from fathom.adapters.storage.sql.repository import SqlRepository
from fathom.adapters.storage.sql.tables import metadata
from fathom.adapters.storage.sql.types import Json, UtcDateTime, aware, required_time
from fathom.core.domain.errors import Conflict
from fathom.core.domain.score_configs import ConfigCategory, ScoreConfig
from fathom.core.domain.scores import ScoreDataType
from fathom.core.ports.evaluation import (
    AnnotationObjectType,
    AnnotationQueue,
    AnnotationQueueItem,
    AnnotationStatus,
    Comment,
    CommentObjectType,
    CommentQuery,
)
from fathom.core.ports.telemetry import Page

score_configs = Table(
    "score_configs",
    metadata,
    Column("id", String(255), primary_key=True),
    Column(
        "project_id",
        String(255),
        ForeignKey("projects.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(255), nullable=False),
    Column("data_type", String(32), nullable=False),
    Column("is_archived", Boolean, nullable=False, default=False),
    Column("min_value", Float, nullable=True),
    Column("max_value", Float, nullable=True),
    # [{"label", "value"}], always read and written with the config.
    Column("categories", Json, nullable=True),
    Column("description", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_score_configs_project_id_created_at", "project_id", "created_at"),
)

comments = Table(
    "comments",
    metadata,
    Column("id", String(255), primary_key=True),
    Column(
        "project_id",
        String(255),
        ForeignKey("projects.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("object_type", String(32), nullable=False),
    Column("object_id", String(800), nullable=False),
    Column("content", Text, nullable=False),
    Column("author_user_id", String(255), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_comments_project_id_object", "project_id", "object_type", "object_id"),
)

annotation_queues = Table(
    "annotation_queues",
    metadata,
    Column("id", String(255), primary_key=True),
    Column(
        "project_id",
        String(255),
        ForeignKey("projects.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=True),
    Column("score_config_ids", Json, nullable=False, default=list),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    UniqueConstraint("project_id", "name", name="uq_annotation_queues_project_id_name"),
)

# The lock and annotator columns are not in the public API; the annotation UI will need them
# and adding them now spares a migration of a table that may be large by then.
annotation_queue_items = Table(
    "annotation_queue_items",
    metadata,
    Column("id", String(255), primary_key=True),
    Column(
        "project_id",
        String(255),
        ForeignKey("projects.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "queue_id",
        String(255),
        ForeignKey("annotation_queues.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("object_id", String(800), nullable=False),
    Column("object_type", String(32), nullable=False),
    Column("status", String(32), nullable=False),
    Column("completed_at", UtcDateTime(), nullable=True),
    Column("locked_at", UtcDateTime(), nullable=True),
    Column("locked_by_user_id", String(255), nullable=True),
    Column("annotator_user_id", String(255), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_annotation_queue_items_queue", "project_id", "queue_id", "status"),
    Index("ix_annotation_queue_items_object", "project_id", "object_id", "object_type"),
)

annotation_queue_assignments = Table(
    "annotation_queue_assignments",
    metadata,
    Column(
        "project_id",
        String(255),
        ForeignKey("projects.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "queue_id",
        String(255),
        ForeignKey("annotation_queues.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("user_id", String(255), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", UtcDateTime(), nullable=False),
)


# --- score configs -----------------------------------------------------------------------------


def _config(row: RowMapping) -> ScoreConfig:
    raw = row["categories"]
    return ScoreConfig(
        id=row["id"],
        project_id=row["project_id"],
        name=row["name"],
        data_type=ScoreDataType(row["data_type"]),
        created_at=required_time(row["created_at"]),
        updated_at=required_time(row["updated_at"]),
        is_archived=bool(row["is_archived"]),
        min_value=row["min_value"],
        max_value=row["max_value"],
        categories=(
            None
            if raw is None
            else tuple(ConfigCategory(c["label"], float(c["value"])) for c in raw)
        ),
        description=row["description"],
    )


def _config_values(config: ScoreConfig) -> dict[str, Any]:
    return {
        "name": config.name,
        "data_type": config.data_type.value,
        "is_archived": config.is_archived,
        "min_value": config.min_value,
        "max_value": config.max_value,
        "categories": (
            None
            if config.categories is None
            else [{"label": c.label, "value": c.value} for c in config.categories]
        ),
        "description": config.description,
        "updated_at": config.updated_at,
    }


class SqlScoreConfigRepository(SqlRepository):
    async def get(self, project_id: str, config_id: str) -> ScoreConfig | None:
        return await self._one_as(
            select(score_configs).where(
                score_configs.c.project_id == project_id, score_configs.c.id == config_id
            ),
            _config,
        )

    async def get_many(self, project_id: str, config_ids: Sequence[str]) -> list[ScoreConfig]:
        if not config_ids:
            return []
        rows = await self._all(
            select(score_configs).where(
                score_configs.c.project_id == project_id,
                score_configs.c.id.in_(list(config_ids)),
            )
        )
        return [_config(row) for row in rows]

    async def add(self, config: ScoreConfig) -> None:
        await self._insert(
            score_configs,
            {
                "id": config.id,
                "project_id": config.project_id,
                "created_at": config.created_at,
                **_config_values(config),
            },
        )

    async def update(self, config: ScoreConfig) -> None:
        await self._uow.connection.execute(
            update(score_configs)
            .where(
                score_configs.c.project_id == config.project_id,
                score_configs.c.id == config.id,
            )
            .values(**_config_values(config))
        )

    async def list_for_project(self, project_id: str, page: int, limit: int) -> Page[ScoreConfig]:
        c = score_configs.c
        return await self._page(
            score_configs,
            [c.project_id == project_id],
            [c.created_at.desc(), c.id.desc()],
            page,
            limit,
            _config,
        )


# --- comments ----------------------------------------------------------------------------------


def _comment(row: RowMapping) -> Comment:
    return Comment(
        id=row["id"],
        project_id=row["project_id"],
        object_type=CommentObjectType(row["object_type"]),
        object_id=row["object_id"],
        content=row["content"],
        created_at=required_time(row["created_at"]),
        updated_at=required_time(row["updated_at"]),
        author_user_id=row["author_user_id"],
    )


class SqlCommentRepository(SqlRepository):
    async def get(self, project_id: str, comment_id: str) -> Comment | None:
        return await self._one_as(
            select(comments).where(
                comments.c.project_id == project_id, comments.c.id == comment_id
            ),
            _comment,
        )

    async def add(self, comment: Comment) -> None:
        await self._insert(
            comments,
            {
                "id": comment.id,
                "project_id": comment.project_id,
                "object_type": comment.object_type.value,
                "object_id": comment.object_id,
                "content": comment.content,
                "author_user_id": comment.author_user_id,
                "created_at": comment.created_at,
                "updated_at": comment.updated_at,
            },
        )

    async def find(self, project_id: str, query: CommentQuery) -> Page[Comment]:
        conditions: list[Any] = [comments.c.project_id == project_id]
        if query.object_type is not None:
            conditions.append(comments.c.object_type == query.object_type.value)
        if query.object_id is not None:
            conditions.append(comments.c.object_id == query.object_id)
        if query.author_user_id is not None:
            conditions.append(comments.c.author_user_id == query.author_user_id)
        return await self._page(
            comments,
            conditions,
            [comments.c.created_at.desc(), comments.c.id.desc()],
            query.page,
            query.limit,
            _comment,
        )


# --- annotation queues -------------------------------------------------------------------------


def _queue(row: RowMapping) -> AnnotationQueue:
    return AnnotationQueue(
        id=row["id"],
        project_id=row["project_id"],
        name=row["name"],
        created_at=required_time(row["created_at"]),
        updated_at=required_time(row["updated_at"]),
        description=row["description"],
        score_config_ids=list(row["score_config_ids"] or ()),
    )


def _item(row: RowMapping) -> AnnotationQueueItem:
    return AnnotationQueueItem(
        id=row["id"],
        project_id=row["project_id"],
        queue_id=row["queue_id"],
        object_id=row["object_id"],
        object_type=AnnotationObjectType(row["object_type"]),
        created_at=required_time(row["created_at"]),
        updated_at=required_time(row["updated_at"]),
        status=AnnotationStatus(row["status"]),
        completed_at=aware(row["completed_at"]),
    )


class SqlAnnotationQueueRepository(SqlRepository):
    async def get(self, project_id: str, queue_id: str) -> AnnotationQueue | None:
        return await self._one_as(
            select(annotation_queues).where(
                annotation_queues.c.project_id == project_id, annotation_queues.c.id == queue_id
            ),
            _queue,
        )

    async def get_by_name(self, project_id: str, name: str) -> AnnotationQueue | None:
        return await self._one_as(
            select(annotation_queues).where(
                annotation_queues.c.project_id == project_id, annotation_queues.c.name == name
            ),
            _queue,
        )

    async def add(self, queue: AnnotationQueue) -> None:
        values = {
            "id": queue.id,
            "project_id": queue.project_id,
            "name": queue.name,
            "description": queue.description,
            "score_config_ids": list(queue.score_config_ids),
            "created_at": queue.created_at,
            "updated_at": queue.updated_at,
        }
        try:
            await self._insert(annotation_queues, values)
        except IntegrityError:
            # Lost a race for the name (the use case checked it first); the unit of work is
            # rolled back as the error leaves it.
            raise Conflict("A queue with this name already exists.") from None

    async def list_for_project(
        self, project_id: str, page: int, limit: int
    ) -> Page[AnnotationQueue]:
        c = annotation_queues.c
        return await self._page(
            annotation_queues,
            [c.project_id == project_id],
            [c.created_at.desc(), c.id.desc()],
            page,
            limit,
            _queue,
        )

    def _item_where(self, project_id: str, queue_id: str, item_id: str) -> tuple[Any, ...]:
        c = annotation_queue_items.c
        return (c.project_id == project_id, c.queue_id == queue_id, c.id == item_id)

    async def get_item(
        self, project_id: str, queue_id: str, item_id: str
    ) -> AnnotationQueueItem | None:
        return await self._one_as(
            select(annotation_queue_items).where(*self._item_where(project_id, queue_id, item_id)),
            _item,
        )

    async def add_item(self, item: AnnotationQueueItem) -> None:
        await self._insert(
            annotation_queue_items,
            {
                "id": item.id,
                "project_id": item.project_id,
                "queue_id": item.queue_id,
                "object_id": item.object_id,
                "object_type": item.object_type.value,
                "status": item.status.value,
                "completed_at": item.completed_at,
                "created_at": item.created_at,
                "updated_at": item.updated_at,
            },
        )

    async def update_item(self, item: AnnotationQueueItem) -> None:
        await self._uow.connection.execute(
            update(annotation_queue_items)
            .where(*self._item_where(item.project_id, item.queue_id, item.id))
            .values(
                status=item.status.value,
                completed_at=item.completed_at,
                updated_at=item.updated_at,
            )
        )

    async def delete_item(self, project_id: str, queue_id: str, item_id: str) -> bool:
        result = await self._uow.connection.execute(
            delete(annotation_queue_items).where(*self._item_where(project_id, queue_id, item_id))
        )
        return bool(result.rowcount)

    async def list_items(
        self,
        project_id: str,
        queue_id: str,
        status: AnnotationStatus | None,
        page: int,
        limit: int,
    ) -> Page[AnnotationQueueItem]:
        c = annotation_queue_items.c
        conditions: list[Any] = [c.project_id == project_id, c.queue_id == queue_id]
        if status is not None:
            conditions.append(c.status == status.value)
        return await self._page(
            annotation_queue_items,
            conditions,
            [c.created_at.desc(), c.id.desc()],
            page,
            limit,
            _item,
        )

    async def assign(self, project_id: str, queue_id: str, user_id: str, at: datetime) -> None:
        values = {"project_id": project_id, "queue_id": queue_id, "user_id": user_id}
        # Assigning twice, even concurrently, leaves one row.
        await self._insert_ignore(
            annotation_queue_assignments, {**values, "created_at": at}, index_elements=list(values)
        )

    async def unassign(self, project_id: str, queue_id: str, user_id: str) -> bool:
        c = annotation_queue_assignments.c
        result = await self._uow.connection.execute(
            delete(annotation_queue_assignments).where(
                c.project_id == project_id, c.queue_id == queue_id, c.user_id == user_id
            )
        )
        return bool(result.rowcount)

    async def assignees(self, project_id: str, queue_id: str) -> list[str]:
        c = annotation_queue_assignments.c
        rows = await self._all(
            select(c.user_id)
            .where(c.project_id == project_id, c.queue_id == queue_id)
            .order_by(c.user_id)
        )
        return [row["user_id"] for row in rows]
