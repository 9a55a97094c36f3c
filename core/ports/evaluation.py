"""Storage ports of score configs, comments and annotation queues, with their records.

Comments and annotation queues have no rules beyond their fields, so their records live here
next to the repositories; score configs carry rules and live in `core.domain.score_configs`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from fathom.core.domain.score_configs import ScoreConfig
from fathom.core.ports.telemetry import Page


class CommentObjectType(enum.StrEnum):
    TRACE = "TRACE"
    OBSERVATION = "OBSERVATION"
    SESSION = "SESSION"
    PROMPT = "PROMPT"


@dataclass(slots=True)
class Comment:
    id: str
    project_id: str
    object_type: CommentObjectType
    object_id: str
    content: str
    created_at: datetime
    updated_at: datetime
    author_user_id: str | None = None


@dataclass(slots=True)
class CommentQuery:
    object_type: CommentObjectType | None = None
    object_id: str | None = None
    author_user_id: str | None = None
    page: int = 1
    limit: int = 50


class AnnotationObjectType(enum.StrEnum):
    TRACE = "TRACE"
    OBSERVATION = "OBSERVATION"
    SESSION = "SESSION"


class AnnotationStatus(enum.StrEnum):
    PENDING = "PENDING"
    COMPLETED = "COMPLETED"


@dataclass(slots=True)
class AnnotationQueue:
    id: str
    project_id: str
    name: str
    created_at: datetime
    updated_at: datetime
    description: str | None = None
    score_config_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class AnnotationQueueItem:
    id: str
    project_id: str
    queue_id: str
    object_id: str
    object_type: AnnotationObjectType
    created_at: datetime
    updated_at: datetime
    status: AnnotationStatus = AnnotationStatus.PENDING
    completed_at: datetime | None = None


class ScoreConfigRepository(Protocol):
    """Score configs per project (never deleted: archived instead)."""

    async def get(self, project_id: str, config_id: str) -> ScoreConfig | None: ...
    async def get_many(self, project_id: str, config_ids: Sequence[str]) -> list[ScoreConfig]:
        """The configs of `config_ids` that exist in the project, in no particular order."""
        ...

    async def add(self, config: ScoreConfig) -> None: ...
    async def update(self, config: ScoreConfig) -> None:
        """Store every field of an existing config (matched by project and id)."""
        ...

    async def list_for_project(self, project_id: str, page: int, limit: int) -> Page[ScoreConfig]:
        """Newest first."""
        ...


class CommentRepository(Protocol):
    """Comments on traces, observations, sessions and prompts."""

    async def get(self, project_id: str, comment_id: str) -> Comment | None: ...
    async def add(self, comment: Comment) -> None: ...
    async def find(self, project_id: str, query: CommentQuery) -> Page[Comment]:
        """Newest first."""
        ...


class AnnotationQueueRepository(Protocol):
    """Annotation queues, their items and assignments."""

    async def get(self, project_id: str, queue_id: str) -> AnnotationQueue | None: ...
    async def get_by_name(self, project_id: str, name: str) -> AnnotationQueue | None: ...
    async def add(self, queue: AnnotationQueue) -> None: ...
    async def list_for_project(
        self, project_id: str, page: int, limit: int
    ) -> Page[AnnotationQueue]:
        """Newest first."""
        ...

    async def get_item(
        self, project_id: str, queue_id: str, item_id: str
    ) -> AnnotationQueueItem | None: ...
    async def add_item(self, item: AnnotationQueueItem) -> None: ...
    async def update_item(self, item: AnnotationQueueItem) -> None:
        """Store status, completion and update time of an existing item."""
        ...

    async def delete_item(self, project_id: str, queue_id: str, item_id: str) -> bool: ...
    async def list_items(
        self,
        project_id: str,
        queue_id: str,
        status: AnnotationStatus | None,
        page: int,
        limit: int,
    ) -> Page[AnnotationQueueItem]:
        """Newest first."""
        ...

    async def assign(self, project_id: str, queue_id: str, user_id: str, at: datetime) -> None:
        """Idempotent: assigning an assigned user changes nothing."""
        ...

    async def unassign(self, project_id: str, queue_id: str, user_id: str) -> bool: ...
    async def assignees(self, project_id: str, queue_id: str) -> list[str]:
        """User ids assigned to the queue, sorted."""
        ...
