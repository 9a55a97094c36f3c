"""SQL storage of prompts: tables and repository.

One row per version in `prompts`, with its labels and tags as JSON arrays in the order
Langfuse shows them. Two small index tables make the hot reads and the label rule cheap:
`prompt_labels` maps (project, name, label) to the one version carrying it (its primary key
is what makes "a label lives on one version" hold under concurrent writers, and a fetch by
label one primary-key join), and `prompt_tags` answers the list endpoint's tag filter
without JSON functions that differ between SQLite and Postgres. The repository is their
only writer and updates them in the same transaction as the rows.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    distinct,
    func,
    select,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from fathom.adapters.storage.sql.repository import SqlRepository
from fathom.adapters.storage.sql.tables import metadata
from fathom.adapters.storage.sql.types import Json, UtcDateTime, required_time
from fathom.core.domain.errors import Conflict
from fathom.core.domain.prompts import (
    Dependent,
    PromptListQuery,
    PromptMeta,
    PromptReference,
    PromptType,
    PromptVersion,
)
from fathom.core.ports.telemetry import Page

prompts = Table(
    "prompts",
    metadata,
    Column("id", String(255), primary_key=True),
    Column(
        "project_id",
        String(255),
        ForeignKey("projects.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(255), nullable=False),
    Column("version", Integer, nullable=False),
    Column("type", String(16), nullable=False),
    Column("prompt", Json, nullable=False),
    Column("config", Json, nullable=False),
    Column("labels", Json, nullable=False),
    Column("tags", Json, nullable=False),
    Column("commit_message", Text, nullable=True),
    Column("created_by", String(255), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    UniqueConstraint("project_id", "name", "version", name="uq_prompts_project_name_version"),
)

prompt_labels = Table(
    "prompt_labels",
    metadata,
    Column("project_id", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("label", String(64), nullable=False),
    Column(
        "prompt_id",
        String(255),
        ForeignKey("prompts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    PrimaryKeyConstraint("project_id", "name", "label", name="pk_prompt_labels"),
)

prompt_tags = Table(
    "prompt_tags",
    metadata,
    Column(
        "project_id",
        String(255),
        ForeignKey("projects.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(255), nullable=False),
    Column("tag", Text, nullable=False),
    Column("position", Integer, nullable=False),
    PrimaryKeyConstraint("project_id", "name", "tag", name="pk_prompt_tags"),
    Index("ix_prompt_tags_project_id_tag", "project_id", "tag"),
)

# Composition edges, kept for the reverse question "who references this name?" (deletes).
# Resolution itself re-reads the tags from the (immutable) prompt text.
prompt_dependencies = Table(
    "prompt_dependencies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", String(255), nullable=False),
    Column(
        "parent_id",
        String(255),
        ForeignKey("prompts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("child_name", String(255), nullable=False),
    Column("child_label", String(64), nullable=True),
    Column("child_version", Integer, nullable=True),
    Index("ix_prompt_dependencies_project_id_child_name", "project_id", "child_name"),
)

prompt_protected_labels = Table(
    "prompt_protected_labels",
    metadata,
    Column(
        "project_id",
        String(255),
        ForeignKey("projects.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("label", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("project_id", "label", name="pk_prompt_protected_labels"),
)


def _prompt(row: RowMapping) -> PromptVersion:
    return PromptVersion(
        id=row["id"],
        project_id=row["project_id"],
        name=row["name"],
        version=row["version"],
        type=PromptType(row["type"]),
        prompt=row["prompt"],
        config=row["config"],
        labels=list(row["labels"] or ()),
        tags=list(row["tags"] or ()),
        commit_message=row["commit_message"],
        created_by=row["created_by"],
        created_at=required_time(row["created_at"]),
        updated_at=required_time(row["updated_at"]),
    )


class SqlPromptRepository(SqlRepository):
    async def get(
        self,
        project_id: str,
        name: str,
        *,
        version: int | None = None,
        label: str | None = None,
    ) -> PromptVersion | None:
        p = prompts
        if version is not None:
            statement = select(p).where(
                p.c.project_id == project_id, p.c.name == name, p.c.version == version
            )
        elif label is not None:
            pl = prompt_labels
            statement = (
                select(p)
                .select_from(pl.join(p, p.c.id == pl.c.prompt_id))
                .where(pl.c.project_id == project_id, pl.c.name == name, pl.c.label == label)
            )
        else:
            raise ValueError("give a version or a label")
        return await self._one_as(statement, _prompt)

    async def latest(self, project_id: str, name: str) -> PromptVersion | None:
        return await self._one_as(
            select(prompts)
            .where(prompts.c.project_id == project_id, prompts.c.name == name)
            .order_by(prompts.c.version.desc())
            .limit(1),
            _prompt,
        )

    async def list_versions(self, project_id: str, name: str) -> list[PromptVersion]:
        # Only writers (create, relabel, delete) list every version, as their first read: on
        # PostgreSQL this queues the writers of one name across processes, as `_NAME_LOCKS`
        # does inside one, so they compute the next version and label moves from committed
        # data instead of failing on the unique key or losing each other's label changes.
        await self._lock("prompt", project_id, name)
        rows = await self._all(
            select(prompts)
            .where(prompts.c.project_id == project_id, prompts.c.name == name)
            .order_by(prompts.c.version)
        )
        return [_prompt(row) for row in rows]

    async def add(self, prompt: PromptVersion, references: Sequence[PromptReference]) -> None:
        try:
            await self._insert(
                prompts,
                {
                    "id": prompt.id,
                    "project_id": prompt.project_id,
                    "name": prompt.name,
                    "version": prompt.version,
                    "type": prompt.type.value,
                    "prompt": prompt.prompt,
                    "config": prompt.config,
                    "labels": list(prompt.labels),
                    "tags": list(prompt.tags),
                    "commit_message": prompt.commit_message,
                    "created_by": prompt.created_by,
                    "created_at": prompt.created_at,
                    "updated_at": prompt.updated_at,
                },
            )
        except IntegrityError as exc:
            raise Conflict(
                f"prompt '{prompt.name}' version {prompt.version} already exists"
            ) from exc
        if references:
            await self._uow.connection.execute(
                prompt_dependencies.insert(),
                [
                    {
                        "project_id": prompt.project_id,
                        "parent_id": prompt.id,
                        "child_name": reference.name,
                        "child_label": reference.label,
                        "child_version": reference.version,
                    }
                    for reference in references
                ],
            )
        await self._point_labels(
            prompt.project_id, prompt.name, prompt.id, prompt.labels, prompt.created_at
        )

    async def _point_labels(
        self, project_id: str, name: str, prompt_id: str, labels: Sequence[str], at: datetime
    ) -> None:
        """Make each label's index row point at `prompt_id`. A label still held by another
        version is taken off that version's list too, so the rule holds whatever the
        caller passed (use cases pass complete lists and never hit that branch)."""
        if not labels:
            return
        pl = prompt_labels
        where = (pl.c.project_id == project_id, pl.c.name == name)
        rows = await self._all(
            select(pl.c.label, pl.c.prompt_id).where(*where, pl.c.label.in_(list(labels)))
        )
        current = {row["label"]: row["prompt_id"] for row in rows}
        taken: dict[str, set[str]] = {}
        connection = self._uow.connection
        try:
            for label in labels:
                holder = current.get(label)
                if holder is None:
                    await connection.execute(
                        pl.insert().values(
                            project_id=project_id, name=name, label=label, prompt_id=prompt_id
                        )
                    )
                elif holder != prompt_id:
                    await connection.execute(
                        update(pl).where(*where, pl.c.label == label).values(prompt_id=prompt_id)
                    )
                    taken.setdefault(holder, set()).add(label)
        except IntegrityError as exc:
            # Another transaction placed the same label meanwhile: let the caller retry.
            raise Conflict(f"label change of prompt '{name}' raced another one") from exc
        for holder, gone in taken.items():
            row = await self._one(select(prompts.c.labels).where(prompts.c.id == holder))
            if row is not None:
                kept = [label for label in row["labels"] or () if label not in gone]
                await connection.execute(
                    update(prompts).where(prompts.c.id == holder).values(labels=kept, updated_at=at)
                )

    async def save_labels(
        self, project_id: str, name: str, prompt_id: str, labels: Sequence[str], at: datetime
    ) -> None:
        connection = self._uow.connection
        await connection.execute(
            update(prompts)
            .where(prompts.c.id == prompt_id, prompts.c.project_id == project_id)
            .values(labels=list(labels), updated_at=at)
        )
        pl = prompt_labels
        gone = delete(pl).where(pl.c.prompt_id == prompt_id)
        if labels:
            gone = gone.where(pl.c.label.not_in(list(labels)))
        await connection.execute(gone)
        await self._point_labels(project_id, name, prompt_id, labels, at)

    async def set_tags(self, project_id: str, name: str, tags: Sequence[str], at: datetime) -> None:
        connection = self._uow.connection
        await connection.execute(
            update(prompts)
            .where(prompts.c.project_id == project_id, prompts.c.name == name)
            .values(tags=list(tags), updated_at=at)
        )
        pt = prompt_tags
        await connection.execute(delete(pt).where(pt.c.project_id == project_id, pt.c.name == name))
        if tags:
            await connection.execute(
                pt.insert(),
                [
                    {"project_id": project_id, "name": name, "tag": tag, "position": position}
                    for position, tag in enumerate(tags)
                ],
            )

    async def delete_versions(
        self, project_id: str, name: str, prompt_ids: Collection[str]
    ) -> None:
        ids = list(prompt_ids)
        if not ids:
            return
        connection = self._uow.connection
        # Explicit rather than relying on ON DELETE CASCADE, which SQLite only honours with
        # its foreign-key pragma on.
        await connection.execute(delete(prompt_labels).where(prompt_labels.c.prompt_id.in_(ids)))
        await connection.execute(
            delete(prompt_dependencies).where(prompt_dependencies.c.parent_id.in_(ids))
        )
        await connection.execute(
            delete(prompts).where(
                prompts.c.project_id == project_id, prompts.c.name == name, prompts.c.id.in_(ids)
            )
        )
        left = await self._one(
            select(prompts.c.id)
            .where(prompts.c.project_id == project_id, prompts.c.name == name)
            .limit(1)
        )
        if left is None:
            await connection.execute(
                delete(prompt_tags).where(
                    prompt_tags.c.project_id == project_id, prompt_tags.c.name == name
                )
            )

    async def dependents(self, project_id: str, name: str) -> list[Dependent]:
        d, p = prompt_dependencies, prompts
        rows = await self._all(
            select(p.c.id, p.c.name, p.c.version, d.c.child_version, d.c.child_label)
            .select_from(d.join(p, p.c.id == d.c.parent_id))
            .where(d.c.project_id == project_id, d.c.child_name == name)
            .order_by(p.c.name, p.c.version)
        )
        return [
            Dependent(
                parent_id=row["id"],
                parent_name=row["name"],
                parent_version=row["version"],
                child_version=row["child_version"],
                child_label=row["child_label"],
            )
            for row in rows
        ]

    async def list_meta(self, project_id: str, query: PromptListQuery) -> Page[PromptMeta]:
        p = prompts
        conditions: list[Any] = [p.c.project_id == project_id]
        if query.name is not None:
            conditions.append(p.c.name == query.name)
        if query.version is not None:
            conditions.append(p.c.version == query.version)
        if query.label is not None:
            pl = prompt_labels
            conditions.append(
                p.c.id.in_(
                    select(pl.c.prompt_id).where(
                        pl.c.project_id == project_id, pl.c.label == query.label
                    )
                )
            )
        if query.tag is not None:
            pt = prompt_tags
            conditions.append(
                p.c.name.in_(
                    select(pt.c.name).where(pt.c.project_id == project_id, pt.c.tag == query.tag)
                )
            )
        if query.from_updated_at is not None:
            conditions.append(p.c.updated_at >= query.from_updated_at)
        if query.to_updated_at is not None:
            conditions.append(p.c.updated_at < query.to_updated_at)

        total_row = await self._one(
            select(func.count(distinct(p.c.name)).label("n")).where(*conditions)
        )
        total = int(total_row["n"]) if total_row is not None else 0
        name_rows = await self._all(
            select(p.c.name)
            .where(*conditions)
            .group_by(p.c.name)
            .order_by(p.c.name)
            .limit(query.limit)
            .offset((query.page - 1) * query.limit)
        )
        names = [row["name"] for row in name_rows]
        if not names:
            return Page(items=[], total=total)
        rows = await self._all(
            select(
                p.c.name, p.c.version, p.c.type, p.c.config, p.c.labels, p.c.tags, p.c.updated_at
            )
            .where(*conditions, p.c.name.in_(names))
            .order_by(p.c.name, p.c.version)
        )
        by_name: dict[str, list[RowMapping]] = {}
        for row in rows:
            by_name.setdefault(row["name"], []).append(row)
        items: list[PromptMeta] = []
        for name in names:
            versions = by_name.get(name, [])
            if not versions:
                continue
            newest = versions[-1]
            items.append(
                PromptMeta(
                    name=name,
                    type=PromptType(newest["type"]),
                    versions=[row["version"] for row in versions],
                    # Upstream aggregates with array_agg(DISTINCT …): sorted, no duplicates.
                    labels=sorted({label for row in versions for label in row["labels"] or ()}),
                    tags=list(newest["tags"] or ()),
                    last_updated_at=max(required_time(row["updated_at"]) for row in versions),
                    last_config=newest["config"],
                )
            )
        return Page(items=items, total=total)

    async def protected_labels(self, project_id: str) -> list[str]:
        rows = await self._all(
            select(prompt_protected_labels.c.label)
            .where(prompt_protected_labels.c.project_id == project_id)
            .order_by(prompt_protected_labels.c.label)
        )
        return [row["label"] for row in rows]

    async def protect_label(self, project_id: str, label: str, at: datetime) -> None:
        # Idempotent even against a concurrent writer (the second one finds the row).
        await self._insert_ignore(
            prompt_protected_labels,
            {"project_id": project_id, "label": label, "created_at": at},
            index_elements=["project_id", "label"],
        )

    async def unprotect_label(self, project_id: str, label: str) -> bool:
        table = prompt_protected_labels
        result = await self._uow.connection.execute(
            delete(table).where(table.c.project_id == project_id, table.c.label == label)
        )
        return bool(result.rowcount)
