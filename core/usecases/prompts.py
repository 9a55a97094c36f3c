"""Prompt management (`/api/public/v2/prompts*`): create versions, fetch, list, relabel,
delete, protected labels, and the server-side prompt cache.

Behaviour follows Langfuse's prompt service: a new version is max+1 and always takes
`latest`; labels given to a version leave every other version in the same transaction;
`tags: null` keeps the previous version's tags; references to other text prompts are
checked on create and resolved on fetch; a fetch names a version or a label (never both,
`production` by default).
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from fathom.core.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from fathom.core.domain.prompts import (
    API_ACTOR,
    COMMIT_MESSAGE_MAX_LENGTH,
    LATEST_IS_MANAGED,
    LATEST_LABEL,
    MAX_NESTING_DEPTH,
    PRODUCTION_LABEL,
    PromptActor,
    PromptContent,
    PromptListQuery,
    PromptMeta,
    PromptReference,
    PromptType,
    PromptVersion,
    blocking_message,
    graph_names,
    label_problem,
    labels_after_add,
    labels_after_create,
    parse_references,
    plan_deletion,
    plan_label_move,
    resolve_prompt,
    tags_changed,
    unique,
    validate_chat_messages,
    validate_labels,
    validate_name,
)
from fathom.core.domain.tracing import Observation
from fathom.core.ports.cache import PROMPTS, InvalidationBus, cache_key, key_parts
from fathom.core.ports.prompts import PromptCache, PromptCacheKey
from fathom.core.ports.records import RecordStore, UnitOfWork
from fathom.core.ports.system import Clock, IdGenerator
from fathom.core.ports.telemetry import Page

BOTH_VERSION_AND_LABEL: Final = "Cannot specify both version and label"
TYPE_CHANGED: Final = (
    "Previous versions have different prompt type. Create a new prompt with a different name."
)
PROTECTED_ON_CREATE: Final = (
    "You don't have permission to create a prompt with a protected label. Please contact your "
    "project admin for assistance."
)
PROTECTED_ON_UPDATE: Final = (
    "You don't have permission to add a protected label to a prompt. Please contact your "
    "project admin for assistance."
)
PROTECTED_ON_DELETE: Final = (
    "You don't have permission to delete a prompt with a protected label. Please contact your "
    "project admin for assistance."
)
PROTECTED_LABELS_ADMIN_ONLY: Final = (
    "Only project owners and admins can change which prompt labels are protected."
)


def not_found_message(name: str, version: int | None, label: str | None) -> str:
    if version is not None:
        return f"Prompt not found: '{name}' with version {version}"
    return f"Prompt not found: '{name}' with label '{label or PRODUCTION_LABEL}'"


def _concurrent_create(name: str) -> InvalidInput:
    return InvalidInput(
        f"Failed to create prompt '{name}' due to unique constraint failure. This is likely due "
        "to too many concurrent prompt creations for this prompt name. Please add a delay."
    )


class _NameLocks:
    """Serialises writes to one prompt name inside this process (striped, so bounded).

    The database still decides across processes (unique keys raise `Conflict`); this only
    spares concurrent requests of one process from failing on each other. Locks are kept
    per event loop: an asyncio lock must not be shared between loops."""

    def __init__(self, stripes: int = 64) -> None:
        self._stripes = stripes
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[asyncio.Lock]]
        self._by_loop = weakref.WeakKeyDictionary()

    def __call__(self, project_id: str, name: str) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        locks = self._by_loop.get(loop)
        if locks is None:
            locks = self._by_loop[loop] = [asyncio.Lock() for _ in range(self._stripes)]
        return locks[hash((project_id, name)) % self._stripes]


_NAME_LOCKS = _NameLocks()


async def _check_protected(
    uow: UnitOfWork,
    project_id: str,
    labels: Collection[str],
    actor: PromptActor,
    message: str,
) -> None:
    if actor.may_change_protected_labels or not labels:
        return
    wanted = set(labels)
    hit = [label for label in await uow.prompts.protected_labels(project_id) if label in wanted]
    if hit:
        raise Forbidden(f"{message}\n\n Protected labels are: {', '.join(hit)}")


async def _resolve(
    uow: UnitOfWork, root: PromptVersion
) -> tuple[PromptContent, dict[str, Any] | None]:
    """Fetch every prompt the root's references reach (breadth first, as deep as
    resolution may go), then resolve with the pure domain rules."""
    references = parse_references(root.prompt)
    if not references:
        return root.prompt, None
    found: dict[PromptReference, PromptVersion | None] = {}
    frontier = references
    depth = 0
    while frontier and depth < MAX_NESTING_DEPTH:
        following: list[PromptReference] = []
        for reference in frontier:
            if reference in found:
                continue
            dependency = await uow.prompts.get(
                root.project_id, reference.name, version=reference.version, label=reference.label
            )
            found[reference] = dependency
            if dependency is not None and dependency.type is PromptType.TEXT:
                following.extend(parse_references(dependency.prompt))
        frontier = following
        depth += 1
    return resolve_prompt(root, found.get)


# --- request parsing ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewPrompt:
    name: str
    type: PromptType
    prompt: PromptContent
    config: Any
    labels: list[str]
    tags: list[str] | None
    commit_message: str | None


def _json_safe(value: Any) -> bool:
    # Config is "any JSON"; NaN/Infinity are not JSON and break other clients.
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _json_safe(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_json_safe(v) for v in value)
    return value is None or isinstance(value, (str, int, bool))


def parse_create_request(body: Any) -> NewPrompt:
    """Langfuse's `CreatePromptSchema` (text or chat); unknown keys are ignored."""
    if not isinstance(body, Mapping):
        raise InvalidInput("Invalid request data: expected a JSON object")
    name = validate_name(body.get("name"))
    kind = body.get("type")
    raw = body.get("prompt")
    if kind == PromptType.CHAT:
        prompt: PromptContent = validate_chat_messages(raw)
        prompt_type = PromptType.CHAT
    elif kind is None or kind == PromptType.TEXT:
        if not isinstance(raw, str):
            raise InvalidInput(
                "Invalid request data: prompt must be a string for a text prompt "
                "(send type 'chat' with a list of messages for a chat prompt)"
            )
        prompt, prompt_type = raw, PromptType.TEXT
    else:
        raise InvalidInput("Invalid request data: type must be 'text' or 'chat'")
    config = body.get("config")
    if config is None:
        config = {}
    elif not _json_safe(config):
        raise InvalidInput("Invalid request data: config must be JSON")
    tags = body.get("tags")
    if tags is not None and (
        not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags)
    ):
        raise InvalidInput("Invalid request data: tags must be an array of strings or null")
    commit_message = body.get("commitMessage")
    if commit_message is not None:
        if not isinstance(commit_message, str):
            raise InvalidInput("Invalid request data: commitMessage must be a string or null")
        if len(commit_message) > COMMIT_MESSAGE_MAX_LENGTH:
            raise InvalidInput(
                "Invalid request data: commitMessage must be at most "
                f"{COMMIT_MESSAGE_MAX_LENGTH} characters"
            )
    return NewPrompt(
        name=name,
        type=prompt_type,
        prompt=prompt,
        config=config,
        labels=validate_labels(body.get("labels")),
        tags=unique(tags) if tags is not None else None,
        commit_message=commit_message,
    )


def parse_new_labels(body: Any) -> list[str]:
    """The PATCH body `{"newLabels": [...]}`; `latest` cannot be set by hand."""
    if not isinstance(body, Mapping) or not isinstance(body.get("newLabels"), list):
        raise InvalidInput("Invalid request data: newLabels is required and must be an array")
    labels = body["newLabels"]
    if LATEST_LABEL in labels:
        raise InvalidInput(f"Invalid request data: newLabels: {LATEST_IS_MANAGED}")
    return validate_labels(labels, "newLabels")


# --- the cache ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    prompt: PromptVersion
    names: frozenset[str]
    expires_at: datetime


class InMemoryPromptCache:
    """`PromptCache` in this process: bounded (least recently stored goes first), with a
    TTL as a safety net for changes made by other processes.

    Every change in this process invalidates at once: the entries of that name and those
    of every prompt embedding it through a reference. A per-project generation counter is
    the `token`, so a read that raced a change never stores what it read."""

    def __init__(self, clock: Clock, ttl_seconds: float = 300.0, max_entries: int = 10_000) -> None:
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_seconds)
        self._max_entries = max_entries
        self._entries: OrderedDict[PromptCacheKey, _Entry] = OrderedDict()
        # (project, name) -> keys of entries built from that name.
        self._by_name: dict[tuple[str, str], set[PromptCacheKey]] = {}
        self._generations: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: PromptCacheKey) -> PromptVersion | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._clock.now():
            self._drop(key)
            return None
        return entry.prompt

    async def token(self, project_id: str) -> object:
        return self._generations.get(project_id, 0)

    async def put(
        self,
        key: PromptCacheKey,
        prompt: PromptVersion,
        names: Collection[str],
        token: object,
    ) -> None:
        if self._ttl <= timedelta(0) or token != self._generations.get(key.project_id, 0):
            return
        self._drop(key)
        every = frozenset({key.name, *names})
        self._entries[key] = _Entry(prompt, every, self._clock.now() + self._ttl)
        for name in every:
            self._by_name.setdefault((key.project_id, name), set()).add(key)
        while len(self._entries) > self._max_entries:
            self._drop(next(iter(self._entries)))

    async def invalidate(self, project_id: str, name: str) -> None:
        self._generations[project_id] = self._generations.get(project_id, 0) + 1
        for key in self._by_name.pop((project_id, name), set()):
            self._drop(key)

    def clear(self) -> None:
        self._entries.clear()
        self._by_name.clear()
        for project_id in self._generations:
            self._generations[project_id] += 1

    def _drop(self, key: PromptCacheKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        for name in entry.names:
            keys = self._by_name.get((key.project_id, name))
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_name[(key.project_id, name)]


class BroadcastingPromptCache:
    """The in-process `PromptCache` of one process among several: its invalidations reach
    every process.

    `invalidate` publishes on the bus; the bus runs this process's subscription before it
    returns (so a process reads its own writes) and the others' moments later. An
    invalidation of everything (sent after a lost connection) clears the cache."""

    def __init__(self, inner: InMemoryPromptCache, bus: InvalidationBus) -> None:
        self._inner = inner
        self._bus = bus
        bus.subscribe(PROMPTS, self._apply)

    def __len__(self) -> int:
        return len(self._inner)

    async def get(self, key: PromptCacheKey) -> PromptVersion | None:
        return await self._inner.get(key)

    async def token(self, project_id: str) -> object:
        return await self._inner.token(project_id)

    async def put(
        self,
        key: PromptCacheKey,
        prompt: PromptVersion,
        names: Collection[str],
        token: object,
    ) -> None:
        await self._inner.put(key, prompt, names, token)

    async def invalidate(self, project_id: str, name: str) -> None:
        await self._bus.publish(PROMPTS, cache_key(project_id, name))

    async def _apply(self, key: str) -> None:
        parts = key_parts(key)
        if len(parts) == 2:
            await self._inner.invalidate(parts[0], parts[1])
        else:
            self._inner.clear()


# --- use cases ---------------------------------------------------------------------------------


class CreatePromptVersion:
    """`POST /api/public/v2/prompts`: store version max+1 of a name."""

    def __init__(
        self, records: RecordStore, clock: Clock, ids: IdGenerator, cache: PromptCache
    ) -> None:
        self._records = records
        self._clock = clock
        self._ids = ids
        self._cache = cache

    async def __call__(
        self, project_id: str, body: Any, actor: PromptActor = API_ACTOR
    ) -> PromptVersion:
        request = parse_create_request(body)
        async with _NAME_LOCKS(project_id, request.name):
            try:
                created = await self._create(project_id, request, actor)
            except Conflict:
                raise _concurrent_create(request.name) from None
            finally:
                # Also after a failure: a half-done write is rolled back, but being
                # conservative costs one extra read.
                await self._cache.invalidate(project_id, request.name)
        return created

    async def _create(
        self, project_id: str, request: NewPrompt, actor: PromptActor
    ) -> PromptVersion:
        async with self._records.unit_of_work() as uow:
            await _check_protected(uow, project_id, request.labels, actor, PROTECTED_ON_CREATE)
            versions = await uow.prompts.list_versions(project_id, request.name)
            latest = versions[-1] if versions else None
            if latest is not None and latest.type is not request.type:
                raise InvalidInput(TYPE_CHANGED)
            now = self._clock.now()
            tags = request.tags if request.tags is not None else list(latest.tags if latest else [])
            prompt = PromptVersion(
                id=self._ids.new_id(),
                project_id=project_id,
                name=request.name,
                version=(latest.version + 1) if latest else 1,
                type=request.type,
                prompt=request.prompt,
                config=request.config,
                labels=labels_after_create(request.labels),
                tags=tags,
                commit_message=request.commit_message,
                created_by=actor.created_by,
                created_at=now,
                updated_at=now,
            )
            references = parse_references(prompt.prompt)
            if references:
                # Raises InvalidInput on a missing, non-text or circular reference.
                await _resolve(uow, prompt)
            for prompt_id, labels in plan_label_move(versions, prompt.id, prompt.labels).items():
                await uow.prompts.save_labels(project_id, prompt.name, prompt_id, labels, now)
            await uow.prompts.add(prompt, references)
            if tags_changed(latest.tags if latest else None, tags):
                await uow.prompts.set_tags(project_id, prompt.name, tags, now)
            await uow.commit()
        return prompt


@dataclass(frozen=True, slots=True)
class PromptSelector:
    version: int | None = None
    label: str | None = None

    @classmethod
    def of(cls, version: int | None, label: str | None) -> PromptSelector:
        if version is not None and label is not None:
            raise InvalidInput(BOTH_VERSION_AND_LABEL)
        if version is None and label is None:
            label = PRODUCTION_LABEL
        return cls(version, label)


class GetPrompt:
    """`GET /api/public/v2/prompts/{name}`: one version, references resolved, cached.

    A cached prompt is the same object for every caller: treat the result as read-only."""

    def __init__(self, records: RecordStore, cache: PromptCache) -> None:
        self._records = records
        self._cache = cache

    async def __call__(
        self,
        project_id: str,
        name: str,
        *,
        version: int | None = None,
        label: str | None = None,
        resolve: bool = True,
    ) -> PromptVersion:
        selector = PromptSelector.of(version, label)
        if not resolve:
            # Debugging reads: raw text with the tags intact, never cached.
            async with self._records.unit_of_work() as uow:
                found = await uow.prompts.get(
                    project_id, name, version=selector.version, label=selector.label
                )
            if found is None:
                raise NotFound(not_found_message(name, selector.version, selector.label))
            return found
        key = PromptCacheKey(project_id, name, selector.version, selector.label)
        cached = await self._cache.get(key)
        if cached is not None:
            return cached
        token = await self._cache.token(project_id)
        async with self._records.unit_of_work() as uow:
            found = await uow.prompts.get(
                project_id, name, version=selector.version, label=selector.label
            )
            if found is None:
                raise NotFound(not_found_message(name, selector.version, selector.label))
            content, graph = await _resolve(uow, found)
        resolved = replace(found, prompt=content, resolution_graph=graph)
        await self._cache.put(key, resolved, graph_names(graph), token)
        return resolved


class ListPrompts:
    """`GET /api/public/v2/prompts`: prompt names with their versions, labels and tags."""

    def __init__(self, records: RecordStore) -> None:
        self._records = records

    async def __call__(self, project_id: str, query: PromptListQuery) -> Page[PromptMeta]:
        # SQLite compares stored UTC text; a query in another offset must be UTC too.
        query = replace(
            query,
            from_updated_at=_utc(query.from_updated_at),
            to_updated_at=_utc(query.to_updated_at),
        )
        async with self._records.unit_of_work() as uow:
            return await uow.prompts.list_meta(project_id, query)


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


class UpdatePromptLabels:
    """`PATCH /api/public/v2/prompts/{name}/versions/{version}`: add labels to a version.

    The version keeps the labels it has (PATCH cannot remove one); each given label leaves
    whichever other version carried it."""

    def __init__(self, records: RecordStore, clock: Clock, cache: PromptCache) -> None:
        self._records = records
        self._clock = clock
        self._cache = cache

    async def __call__(
        self,
        project_id: str,
        name: str,
        version: int,
        body: Any,
        actor: PromptActor = API_ACTOR,
    ) -> PromptVersion:
        new_labels = parse_new_labels(body)
        async with _NAME_LOCKS(project_id, name):
            try:
                return await self._update(project_id, name, version, new_labels, actor)
            except Conflict as exc:
                raise InvalidInput(
                    f"Updating the labels of prompt '{name}' raced another change; please retry"
                ) from exc
            finally:
                await self._cache.invalidate(project_id, name)

    async def _update(
        self,
        project_id: str,
        name: str,
        version: int,
        new_labels: list[str],
        actor: PromptActor,
    ) -> PromptVersion:
        async with self._records.unit_of_work() as uow:
            versions = await uow.prompts.list_versions(project_id, name)
            target = next((v for v in versions if v.version == version), None)
            if target is None:
                raise NotFound(f"Prompt '{name}' version {version} not found in project")
            added = [label for label in new_labels if label not in target.labels]
            await _check_protected(uow, project_id, added, actor, PROTECTED_ON_UPDATE)
            labels = labels_after_add(target.labels, new_labels)
            now = self._clock.now()
            changes = plan_label_move(versions, target.id, labels)
            for prompt_id, changed in changes.items():
                await uow.prompts.save_labels(project_id, name, prompt_id, changed, now)
            await uow.commit()
        if target.id in changes:
            return replace(target, labels=labels, updated_at=now)
        return target


class DeletePrompt:
    """`DELETE /api/public/v2/prompts/{name}`: every version, one version, or the
    versions carrying a label. Refused while other prompts reference what would go."""

    def __init__(self, records: RecordStore, clock: Clock, cache: PromptCache) -> None:
        self._records = records
        self._clock = clock
        self._cache = cache

    async def __call__(
        self,
        project_id: str,
        name: str,
        *,
        version: int | None = None,
        label: str | None = None,
        actor: PromptActor = API_ACTOR,
    ) -> list[PromptVersion]:
        if version is not None and label is not None:
            raise InvalidInput(BOTH_VERSION_AND_LABEL)
        async with _NAME_LOCKS(project_id, name):
            try:
                return await self._delete(project_id, name, version, label, actor)
            finally:
                await self._cache.invalidate(project_id, name)

    async def _delete(
        self,
        project_id: str,
        name: str,
        version: int | None,
        label: str | None,
        actor: PromptActor,
    ) -> list[PromptVersion]:
        async with self._records.unit_of_work() as uow:
            versions = await uow.prompts.list_versions(project_id, name)
            doomed = [
                v
                for v in versions
                if (version is None or v.version == version)
                and (label is None or label in v.labels)
            ]
            if not doomed:
                raise NotFound("Prompt not found")
            touched = {label for v in doomed for label in v.labels}
            await _check_protected(uow, project_id, touched, actor, PROTECTED_ON_DELETE)
            plan = plan_deletion(versions, doomed, await uow.prompts.dependents(project_id, name))
            if plan.blocking:
                raise InvalidInput(blocking_message(name, plan.blocking))
            now = self._clock.now()
            await uow.prompts.delete_versions(project_id, name, [v.id for v in doomed])
            for prompt_id, labels in plan.relabelled.items():
                await uow.prompts.save_labels(project_id, name, prompt_id, labels, now)
            await uow.commit()
        return doomed


class ListProtectedLabels:
    def __init__(self, records: RecordStore) -> None:
        self._records = records

    async def __call__(self, project_id: str) -> list[str]:
        async with self._records.unit_of_work() as uow:
            return await uow.prompts.protected_labels(project_id)


class ProtectPromptLabel:
    """Mark a label as protected in a project (Langfuse: owners and admins only)."""

    def __init__(self, records: RecordStore, clock: Clock) -> None:
        self._records = records
        self._clock = clock

    async def __call__(self, project_id: str, label: str, actor: PromptActor) -> None:
        if not actor.may_change_protected_labels:
            raise Forbidden(PROTECTED_LABELS_ADMIN_ONLY)
        problem = label_problem(label)
        if problem is not None:
            raise InvalidInput(f"Invalid request data: label: {problem}")
        if label == LATEST_LABEL:
            raise InvalidInput(f"Invalid request data: label: {LATEST_IS_MANAGED}")
        async with self._records.unit_of_work() as uow:
            await uow.prompts.protect_label(project_id, label, self._clock.now())
            await uow.commit()


class UnprotectPromptLabel:
    def __init__(self, records: RecordStore) -> None:
        self._records = records

    async def __call__(self, project_id: str, label: str, actor: PromptActor) -> None:
        if not actor.may_change_protected_labels:
            raise Forbidden(PROTECTED_LABELS_ADMIN_ONLY)
        async with self._records.unit_of_work() as uow:
            removed = await uow.prompts.unprotect_label(project_id, label)
            await uow.commit()
        if not removed:
            raise NotFound(f"Label '{label}' is not protected in this project")


class LinkObservationsToPrompts:
    """Fills the `prompt_id` of observations that name a prompt version (`prompt_name` and
    `prompt_version`, from `promptName`/`promptVersion` or the OTLP prompt attributes), as
    upstream's worker does before writing. An observation naming a version the project does
    not hold keeps no id, and is looked up again whenever it is written anew."""

    def __init__(self, records: RecordStore) -> None:
        self._records = records

    async def __call__(self, project_id: str, observations: Sequence[Observation]) -> None:
        unlinked = [
            o
            for o in observations
            if o.prompt_id is None and o.prompt_name and o.prompt_version is not None
        ]
        if not unlinked:
            return
        wanted = {(o.prompt_name, o.prompt_version) for o in unlinked}
        ids: dict[tuple[str | None, int | None], str] = {}
        async with self._records.unit_of_work() as uow:
            for name, version in wanted:
                assert name is not None and version is not None
                prompt = await uow.prompts.get(project_id, name, version=version)
                if prompt is not None:
                    ids[name, version] = prompt.id
        for observation in unlinked:
            observation.prompt_id = ids.get((observation.prompt_name, observation.prompt_version))
