"""Score configs, comments and annotation queues (`/api/public/score-configs`, `/comments`,
`/annotation-queues`), and the config lookup score ingestion validates against.

Request bodies are checked here like upstream's zod schemas do; messages keep upstream's words
where it has them (see `core.domain.score_configs` for the config rules).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

from fathom.core.domain.access import Role
from fathom.core.domain.errors import Conflict, InvalidInput, NotFound
from fathom.core.domain.score_configs import (
    BOOLEAN_CATEGORIES,
    CONFIG_DATA_TYPES,
    ConfigCategory,
    ScoreConfig,
    config_problems,
    name_problem,
    parse_categories,
)
from fathom.core.domain.scores import ScoreDataType
from fathom.core.ports.cache import EVERYTHING, SCORE_CONFIGS, InvalidationBus, cache_key, key_parts
from fathom.core.ports.evaluation import (
    AnnotationObjectType,
    AnnotationQueue,
    AnnotationQueueItem,
    AnnotationStatus,
    Comment,
    CommentObjectType,
    CommentQuery,
)
from fathom.core.ports.records import RecordStore
from fathom.core.ports.system import Clock, IdGenerator
from fathom.core.ports.telemetry import Page, TelemetryStore

MAX_COMMENT_LENGTH: Final = 5000
CONFIG_NOT_FOUND_IN_PROJECT: Final = "Score config not found within authorized project"
COMMENT_NOT_FOUND: Final = "Comment not found within authorized project"
QUEUE_NOT_FOUND: Final = "Annotation queue not found"
ITEM_NOT_FOUND: Final = "Annotation queue item not found"
QUEUE_NAME_TAKEN: Final = "A queue with this name already exists."
UNKNOWN_QUEUE_CONFIGS: Final = (
    "At least one of the score config IDs cannot be found for the given project."
)
USER_NOT_AUTHORIZED: Final = "User not found or not authorized for this project"
E = TypeVar("E", CommentObjectType, AnnotationObjectType, AnnotationStatus)

EMPTY_UPDATE: Final = (
    "Request body cannot be empty. At least one field must be provided for update."
)


def _invalid(problem: str) -> InvalidInput:
    return InvalidInput(f"Invalid request data: {problem}")


def _object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise _invalid("expected a JSON object")
    return body


def _required_string(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise _invalid(f"{key} is required and must be a string")
    if not value:
        raise _invalid(f"{key} must not be empty")
    return value


def _optional_string(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise _invalid(f"{key} must be a string or null")
    return value


def _optional_number(body: Mapping[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _invalid(f"{key} must be a number")
    return float(value)


def _enum(kind: type[E], value: Any, key: str) -> E:
    # Upper-cased first: the contract's descriptions spell the object types in lower case.
    if isinstance(value, str) and value.upper() in kind.__members__:
        return kind(value.upper())
    raise _invalid(f"{key} must be one of {', '.join(kind)}")


# --- score configs ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Cached:
    config: ScoreConfig | None  # None remembers a miss, so made-up ids don't hit the database
    expires_at: datetime


class ScoreConfigCache:
    """Score configs by id for score ingestion, cached in-process for `ttl_seconds`.

    `CreateScoreConfig`/`UpdateScoreConfig` publish every change on the invalidation bus and
    the container subscribes `invalidate` to it, so a change made through any process shows
    in every process at once; the TTL only bounds staleness when a message is lost.
    """

    def __init__(
        self,
        records: RecordStore,
        clock: Clock,
        ttl_seconds: float = 5.0,
        max_entries: int = 10_000,
    ) -> None:
        self._records = records
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_seconds)
        self._max_entries = max_entries
        self._entries: dict[tuple[str, str], _Cached] = {}
        # Bumped by every invalidation, so a read that overlapped one is not remembered.
        self._generation = 0

    def put(self, config: ScoreConfig) -> None:
        self._remember(config.project_id, config.id, config)

    def invalidate(self, key: str = EVERYTHING) -> None:
        """Forget the config a `cache_key(project_id, config_id)` names, or everything."""
        self._generation += 1
        parts = key_parts(key)
        if len(parts) == 2:
            self._entries.pop((parts[0], parts[1]), None)
        else:
            self._entries.clear()

    def _remember(self, project_id: str, config_id: str, config: ScoreConfig | None) -> None:
        if len(self._entries) >= self._max_entries:
            self._entries.clear()  # a client spraying ids must not grow memory without bound
        self._entries[(project_id, config_id)] = _Cached(config, self._clock.now() + self._ttl)

    async def get_many(self, project_id: str, config_ids: Iterable[str]) -> dict[str, ScoreConfig]:
        """The known configs among `config_ids`; one database read for all the missing ones."""
        now = self._clock.now()
        found: dict[str, ScoreConfig] = {}
        missing: list[str] = []
        for config_id in dict.fromkeys(config_ids):
            entry = self._entries.get((project_id, config_id))
            if entry is None or entry.expires_at <= now:
                missing.append(config_id)
            elif entry.config is not None:
                found[config_id] = entry.config
        if missing:
            generation = self._generation
            async with self._records.unit_of_work() as uow:
                loaded = {c.id: c for c in await uow.score_configs.get_many(project_id, missing)}
            # A change published while reading may postdate what was read: use the result
            # for this call only rather than serve it for a whole TTL.
            remember = generation == self._generation
            for config_id in missing:
                config = loaded.get(config_id)
                if remember:
                    self._remember(project_id, config_id, config)
                if config is not None:
                    found[config_id] = config
        return found


def _create_config(body: Any, project_id: str, config_id: str, now: datetime) -> ScoreConfig:
    body = _object(body)
    name = body.get("name")
    problem = name_problem(name)
    if problem is not None:
        raise _invalid(problem)
    raw_type = body.get("dataType")
    if raw_type not in CONFIG_DATA_TYPES:
        raise _invalid(f"dataType must be one of {', '.join(CONFIG_DATA_TYPES)}")
    data_type = ScoreDataType(raw_type)
    description = _optional_string(body, "description")
    min_value = _optional_number(body, "minValue")
    max_value = _optional_number(body, "maxValue")
    raw_categories = body.get("categories")
    categories: tuple[ConfigCategory, ...] | None = None
    if data_type is ScoreDataType.BOOLEAN:
        if raw_categories is not None:
            raise _invalid(
                "categories cannot be passed for BOOLEAN score configs: they are always "
                "True (1) and False (0)"
            )
        # Upstream's BOOLEAN body has no range fields and drops them silently.
        min_value = max_value = None
        categories = BOOLEAN_CATEGORIES
    elif raw_categories is not None:
        categories, shape_problem = parse_categories(raw_categories)
        if shape_problem is not None:
            raise _invalid(shape_problem)
    config = ScoreConfig(
        id=config_id,
        project_id=project_id,
        name=name,
        data_type=data_type,
        created_at=now,
        updated_at=now,
        min_value=min_value,
        max_value=max_value,
        categories=categories,
        description=description,
    )
    problems = config_problems(config)
    if problems:
        raise _invalid(", ".join(problems))
    return config


async def _publish_config(
    bus: InvalidationBus | None, cache: ScoreConfigCache, config: ScoreConfig
) -> None:
    """After the commit: every process forgets the config (another one may remember it as
    missing or as it was), then this process keeps the new one."""
    if bus is not None:
        await bus.publish(SCORE_CONFIGS, cache_key(config.project_id, config.id))
    cache.put(config)


class CreateScoreConfig:
    """`POST /api/public/score-configs`. With a `bus`, other processes stop treating the id
    as unknown at once instead of after their cache's TTL."""

    def __init__(
        self,
        records: RecordStore,
        clock: Clock,
        ids: IdGenerator,
        cache: ScoreConfigCache,
        bus: InvalidationBus | None = None,
    ) -> None:
        self._records, self._clock, self._ids, self._cache = records, clock, ids, cache
        self._bus = bus

    async def __call__(self, project_id: str, body: Any) -> ScoreConfig:
        config = _create_config(body, project_id, self._ids.new_id(), self._clock.now())
        async with self._records.unit_of_work() as uow:
            await uow.score_configs.add(config)
            await uow.commit()
        await _publish_config(self._bus, self._cache, config)
        return config


class ListScoreConfigs:
    """`GET /api/public/score-configs`: newest first, paged."""

    def __init__(self, records: RecordStore) -> None:
        self._records = records

    async def __call__(self, project_id: str, page: int = 1, limit: int = 50) -> Page[ScoreConfig]:
        async with self._records.unit_of_work() as uow:
            return await uow.score_configs.list_for_project(project_id, page, limit)


class GetScoreConfig:
    """`GET /api/public/score-configs/{configId}`."""

    def __init__(self, records: RecordStore) -> None:
        self._records = records

    async def __call__(self, project_id: str, config_id: str) -> ScoreConfig:
        async with self._records.unit_of_work() as uow:
            config = await uow.score_configs.get(project_id, config_id)
        if config is None:
            raise NotFound(CONFIG_NOT_FOUND_IN_PROJECT)
        return config


_UPDATABLE: Final = ("isArchived", "name", "minValue", "maxValue", "categories", "description")


class UpdateScoreConfig:
    """`PATCH /api/public/score-configs/{configId}`: change fields, archive or restore.

    The data type never changes. The changed config must still be valid as a whole (a range
    only on NUMERIC, categories only on CATEGORICAL, ...). A JSON `null` clears `minValue`,
    `maxValue` and `description` and is ignored for the other fields. With a `bus`, every
    process validates scores against the changed config at once (an archived config must stop
    accepting scores everywhere, not after a TTL).
    """

    def __init__(
        self,
        records: RecordStore,
        clock: Clock,
        cache: ScoreConfigCache,
        bus: InvalidationBus | None = None,
    ) -> None:
        self._records, self._clock, self._cache = records, clock, cache
        self._bus = bus

    @staticmethod
    def _changes(body: Any) -> dict[str, Any]:
        body = _object(body)
        # Unknown keys are dropped before the emptiness check, as zod strips them first.
        changes = {key: body[key] for key in _UPDATABLE if key in body}
        if not changes:
            raise _invalid(EMPTY_UPDATE)
        return changes

    @staticmethod
    def _apply(config: ScoreConfig, changes: Mapping[str, Any]) -> ScoreConfig:
        updated = replace(config)
        if changes.get("isArchived") is not None:
            if not isinstance(changes["isArchived"], bool):
                raise _invalid("isArchived must be a boolean")
            updated.is_archived = changes["isArchived"]
        if changes.get("name") is not None:
            problem = name_problem(changes["name"])
            if problem is not None:
                raise _invalid(problem)
            updated.name = changes["name"]
        if "minValue" in changes:
            updated.min_value = _optional_number(changes, "minValue")
        if "maxValue" in changes:
            updated.max_value = _optional_number(changes, "maxValue")
        if "description" in changes:
            updated.description = _optional_string(changes, "description")
        if changes.get("categories") is not None:
            categories, problem = parse_categories(changes["categories"])
            if problem is not None:
                raise _invalid(problem)
            updated.categories = categories
        return updated

    async def __call__(self, project_id: str, config_id: str, body: Any) -> ScoreConfig:
        changes = self._changes(body)
        async with self._records.unit_of_work() as uow:
            existing = await uow.score_configs.get(project_id, config_id)
            if existing is None:
                raise NotFound(CONFIG_NOT_FOUND_IN_PROJECT)
            updated = self._apply(existing, changes)
            problems = config_problems(updated)
            if problems:
                raise InvalidInput(", ".join(problems))
            updated.updated_at = self._clock.now()
            await uow.score_configs.update(updated)
            await uow.commit()
        await _publish_config(self._bus, self._cache, updated)
        return updated


# --- comments ---------------------------------------------------------------------------------


class CreateComment:
    """`POST /api/public/comments`: the commented trace, observation or session must exist.

    Prompts are not looked up: the prompt store has no lookup by id yet.
    """

    def __init__(
        self, records: RecordStore, telemetry: TelemetryStore, clock: Clock, ids: IdGenerator
    ) -> None:
        self._records, self._telemetry, self._clock, self._ids = records, telemetry, clock, ids

    @staticmethod
    def _parse(body: Any) -> tuple[CommentObjectType, str, str, str | None]:
        body = _object(body)
        object_type = _enum(CommentObjectType, body.get("objectType"), "objectType")
        object_id = _required_string(body, "objectId")
        content = body.get("content")
        if not isinstance(content, str):
            raise _invalid("content is required and must be a string")
        content = content.strip()  # upstream's schema trims before the length checks
        if not content:
            raise _invalid("content must not be empty")
        if len(content) > MAX_COMMENT_LENGTH:
            raise _invalid(f"content must be at most {MAX_COMMENT_LENGTH} characters")
        _optional_string(body, "projectId")  # required by the contract, ignored by upstream
        return object_type, object_id, content, _optional_string(body, "authorUserId")

    async def _missing_target(
        self, project_id: str, object_type: CommentObjectType, object_id: str
    ) -> str | None:
        if object_type is CommentObjectType.TRACE:
            found = bool(await self._telemetry.get_traces(project_id, [object_id]))
        elif object_type is CommentObjectType.OBSERVATION:
            found = bool(await self._telemetry.get_observations(project_id, [object_id]))
        elif object_type is CommentObjectType.SESSION:
            if not await self._telemetry.get_session(project_id, object_id):
                return f"No traceSession with id {object_id} in project {project_id}"
            return None
        else:
            return None
        if found:
            return None
        return (
            f"Reference object, {object_type}: {object_id} not found in Clickhouse. "
            "Skipping creating comment."
        )

    async def __call__(self, project_id: str, body: Any) -> Comment:
        object_type, object_id, content, author = self._parse(body)
        missing = await self._missing_target(project_id, object_type, object_id)
        if missing is not None:
            raise NotFound(missing)
        now = self._clock.now()
        comment = Comment(
            id=self._ids.new_id(),
            project_id=project_id,
            object_type=object_type,
            object_id=object_id,
            content=content,
            created_at=now,
            updated_at=now,
            author_user_id=author,
        )
        async with self._records.unit_of_work() as uow:
            await uow.comments.add(comment)
            await uow.commit()
        return comment


class ListComments:
    """`GET /api/public/comments`: filtered, newest first, paged."""

    def __init__(self, records: RecordStore) -> None:
        self._records = records

    async def __call__(self, project_id: str, query: CommentQuery) -> Page[Comment]:
        if query.object_id is not None and query.object_type is None:
            raise _invalid("objectType is required when objectId is provided")
        async with self._records.unit_of_work() as uow:
            return await uow.comments.find(project_id, query)


def comment_object_type(value: str | None) -> CommentObjectType | None:
    """A query parameter's object type (None when absent); 400 when unknown."""
    return None if value is None else _enum(CommentObjectType, value, "objectType")


class GetComment:
    """`GET /api/public/comments/{commentId}`."""

    def __init__(self, records: RecordStore) -> None:
        self._records = records

    async def __call__(self, project_id: str, comment_id: str) -> Comment:
        async with self._records.unit_of_work() as uow:
            comment = await uow.comments.get(project_id, comment_id)
        if comment is None:
            raise NotFound(COMMENT_NOT_FOUND)
        return comment


# --- annotation queues ------------------------------------------------------------------------


class CreateAnnotationQueue:
    """`POST /api/public/annotation-queues`: a unique name and at least one existing config."""

    def __init__(self, records: RecordStore, clock: Clock, ids: IdGenerator) -> None:
        self._records, self._clock, self._ids = records, clock, ids

    async def __call__(self, project_id: str, body: Any) -> AnnotationQueue:
        body = _object(body)
        name = _required_string(body, "name")
        description = _optional_string(body, "description")
        config_ids = body.get("scoreConfigIds")
        if not isinstance(config_ids, list) or not all(isinstance(i, str) for i in config_ids):
            raise _invalid("scoreConfigIds is required and must be an array of strings")
        if not config_ids:
            raise _invalid("scoreConfigIds must contain at least one score config id")
        now = self._clock.now()
        queue = AnnotationQueue(
            id=self._ids.new_id(),
            project_id=project_id,
            name=name,
            created_at=now,
            updated_at=now,
            description=description,
            score_config_ids=list(config_ids),
        )
        async with self._records.unit_of_work() as uow:
            if await uow.annotation_queues.get_by_name(project_id, name) is not None:
                raise Conflict(QUEUE_NAME_TAKEN)
            known = {c.id for c in await uow.score_configs.get_many(project_id, config_ids)}
            if any(config_id not in known for config_id in config_ids):
                raise InvalidInput(UNKNOWN_QUEUE_CONFIGS)
            await uow.annotation_queues.add(queue)
            await uow.commit()
        return queue


class ListAnnotationQueues:
    """`GET /api/public/annotation-queues`: newest first, paged."""

    def __init__(self, records: RecordStore) -> None:
        self._records = records

    async def __call__(
        self, project_id: str, page: int = 1, limit: int = 50
    ) -> Page[AnnotationQueue]:
        async with self._records.unit_of_work() as uow:
            return await uow.annotation_queues.list_for_project(project_id, page, limit)


class GetAnnotationQueue:
    """`GET /api/public/annotation-queues/{queueId}`."""

    def __init__(self, records: RecordStore) -> None:
        self._records = records

    async def __call__(self, project_id: str, queue_id: str) -> AnnotationQueue:
        async with self._records.unit_of_work() as uow:
            queue = await uow.annotation_queues.get(project_id, queue_id)
        if queue is None:
            raise NotFound(QUEUE_NOT_FOUND)
        return queue


def annotation_status(value: str | None) -> AnnotationStatus | None:
    """A query parameter's item status (None when absent); 400 when unknown."""
    return None if value is None else _enum(AnnotationStatus, value, "status")


class CreateAnnotationQueueItem:
    """`POST /api/public/annotation-queues/{queueId}/items` (PENDING unless told otherwise)."""

    def __init__(self, records: RecordStore, clock: Clock, ids: IdGenerator) -> None:
        self._records, self._clock, self._ids = records, clock, ids

    async def __call__(self, project_id: str, queue_id: str, body: Any) -> AnnotationQueueItem:
        body = _object(body)
        object_id = _required_string(body, "objectId")
        object_type = _enum(AnnotationObjectType, body.get("objectType"), "objectType")
        raw_status = body.get("status")
        status = (
            AnnotationStatus.PENDING
            if raw_status is None
            else _enum(AnnotationStatus, raw_status, "status")
        )
        now = self._clock.now()
        item = AnnotationQueueItem(
            id=self._ids.new_id(),
            project_id=project_id,
            queue_id=queue_id,
            object_id=object_id,
            object_type=object_type,
            created_at=now,
            updated_at=now,
            status=status,
            completed_at=now if status is AnnotationStatus.COMPLETED else None,
        )
        async with self._records.unit_of_work() as uow:
            if await uow.annotation_queues.get(project_id, queue_id) is None:
                raise NotFound(QUEUE_NOT_FOUND)
            await uow.annotation_queues.add_item(item)
            await uow.commit()
        return item


class ListAnnotationQueueItems:
    """`GET /api/public/annotation-queues/{queueId}/items`: optionally by status, newest first."""

    def __init__(self, records: RecordStore) -> None:
        self._records = records

    async def __call__(
        self,
        project_id: str,
        queue_id: str,
        status: AnnotationStatus | None = None,
        page: int = 1,
        limit: int = 50,
    ) -> Page[AnnotationQueueItem]:
        async with self._records.unit_of_work() as uow:
            if await uow.annotation_queues.get(project_id, queue_id) is None:
                raise NotFound(QUEUE_NOT_FOUND)
            return await uow.annotation_queues.list_items(project_id, queue_id, status, page, limit)


class GetAnnotationQueueItem:
    """`GET /api/public/annotation-queues/{queueId}/items/{itemId}`."""

    def __init__(self, records: RecordStore) -> None:
        self._records = records

    async def __call__(self, project_id: str, queue_id: str, item_id: str) -> AnnotationQueueItem:
        async with self._records.unit_of_work() as uow:
            if await uow.annotation_queues.get(project_id, queue_id) is None:
                raise NotFound(QUEUE_NOT_FOUND)
            item = await uow.annotation_queues.get_item(project_id, queue_id, item_id)
        if item is None:
            raise NotFound(ITEM_NOT_FOUND)
        return item


class UpdateAnnotationQueueItem:
    """`PATCH /api/public/annotation-queues/{queueId}/items/{itemId}`: the status.

    Completing stamps `completedAt`; moving back to PENDING keeps it, as upstream does.
    """

    def __init__(self, records: RecordStore, clock: Clock) -> None:
        self._records, self._clock = records, clock

    async def __call__(
        self, project_id: str, queue_id: str, item_id: str, body: Any
    ) -> AnnotationQueueItem:
        body = _object(body)
        raw_status = body.get("status")
        status = None if raw_status is None else _enum(AnnotationStatus, raw_status, "status")
        async with self._records.unit_of_work() as uow:
            if await uow.annotation_queues.get(project_id, queue_id) is None:
                raise NotFound(QUEUE_NOT_FOUND)
            item = await uow.annotation_queues.get_item(project_id, queue_id, item_id)
            if item is None:
                raise NotFound(ITEM_NOT_FOUND)
            now = self._clock.now()
            if status is not None:
                item.status = status
            if status is AnnotationStatus.COMPLETED:
                item.completed_at = now
            item.updated_at = now
            await uow.annotation_queues.update_item(item)
            await uow.commit()
        return item


class DeleteAnnotationQueueItem:
    """`DELETE /api/public/annotation-queues/{queueId}/items/{itemId}`."""

    def __init__(self, records: RecordStore) -> None:
        self._records = records

    async def __call__(self, project_id: str, queue_id: str, item_id: str) -> None:
        async with self._records.unit_of_work() as uow:
            if await uow.annotation_queues.get(project_id, queue_id) is None:
                raise NotFound(QUEUE_NOT_FOUND)
            if not await uow.annotation_queues.delete_item(project_id, queue_id, item_id):
                raise NotFound(ITEM_NOT_FOUND)
            await uow.commit()


def _user_id(body: Any) -> str:
    return _required_string(_object(body), "userId")


class AssignAnnotationQueue:
    """`POST /api/public/annotation-queues/{queueId}/assignments`: idempotent.

    The user must be a member (with a role other than NONE) of the project's organization.
    """

    def __init__(self, records: RecordStore, clock: Clock) -> None:
        self._records, self._clock = records, clock

    async def __call__(self, project_id: str, queue_id: str, body: Any) -> str:
        user_id = _user_id(body)
        async with self._records.unit_of_work() as uow:
            if await uow.annotation_queues.get(project_id, queue_id) is None:
                raise NotFound(QUEUE_NOT_FOUND)
            project = await uow.projects.get(project_id)
            membership = (
                await uow.memberships.get(project.organization_id, user_id) if project else None
            )
            if membership is None or membership.role is Role.NONE:
                raise NotFound(USER_NOT_AUTHORIZED)
            await uow.annotation_queues.assign(project_id, queue_id, user_id, self._clock.now())
            await uow.commit()
        return user_id


class UnassignAnnotationQueue:
    """`DELETE /api/public/annotation-queues/{queueId}/assignments`: succeeds when absent too."""

    def __init__(self, records: RecordStore) -> None:
        self._records = records

    async def __call__(self, project_id: str, queue_id: str, body: Any) -> None:
        user_id = _user_id(body)
        async with self._records.unit_of_work() as uow:
            if await uow.annotation_queues.get(project_id, queue_id) is None:
                raise NotFound(QUEUE_NOT_FOUND)
            await uow.annotation_queues.unassign(project_id, queue_id, user_id)
            await uow.commit()
