"""SQL storage of datasets: tables and repository.

Item versions are rows keyed (project_id, id, valid_from); the current version of an id has
`valid_to` NULL, and a delete is a tombstone row (`is_deleted`). Reading "as of" a time picks the
row whose [valid_from, valid_to) contains it. Runs hold SDK experiments too, so `dataset_id` may
be NULL and is not a foreign key: an experiment may name a dataset this server never saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from fathom.adapters.storage.sql.repository import SqlRepository
from fathom.adapters.storage.sql.tables import metadata
from fathom.adapters.storage.sql.types import NullableJson, UtcDateTime, aware, required_time
from fathom.core.domain.datasets import (
    Dataset,
    DatasetItem,
    DatasetRun,
    DatasetRunItem,
    DatasetStatus,
    ExperimentSummary,
    FieldCondition,
)
from fathom.core.domain.errors import Conflict
from fathom.core.domain.tracing import Level
from fathom.core.ports.datasets import ExperimentQuery, ItemQuery
from fathom.core.ports.telemetry import Page

# NULL, not JSON `null`, for absent values: one representation on every engine.
Json = NullableJson
Timestamp = UtcDateTime()

datasets = Table(
    "datasets",
    metadata,
    Column(
        "project_id",
        String(255),
        ForeignKey("projects.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("id", String(255), primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=True),
    Column("metadata", Json, nullable=True),
    Column("input_schema", Json, nullable=True),
    Column("expected_output_schema", Json, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    UniqueConstraint("project_id", "name", name="uq_datasets_project_id_name"),
)

dataset_items = Table(
    "dataset_items",
    metadata,
    Column("project_id", String(255), primary_key=True),
    Column("id", String(255), primary_key=True),
    Column("valid_from", Timestamp, primary_key=True),
    Column("valid_to", Timestamp, nullable=True),
    Column("is_deleted", Boolean, nullable=False, default=False),
    Column("dataset_id", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("input", Json, nullable=True),
    Column("expected_output", Json, nullable=True),
    Column("metadata", Json, nullable=True),
    Column("source_trace_id", String(255), nullable=True),
    Column("source_observation_id", String(255), nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    ForeignKeyConstraint(
        ["project_id", "dataset_id"],
        ["datasets.project_id", "datasets.id"],
        ondelete="CASCADE",
        name="fk_dataset_items_dataset",
    ),
    Index("ix_dataset_items_dataset_current", "project_id", "dataset_id", "valid_to"),
    Index("ix_dataset_items_id_current", "project_id", "id", "valid_to"),
    Index("ix_dataset_items_source_trace", "project_id", "source_trace_id"),
)

dataset_runs = Table(
    "dataset_runs",
    metadata,
    Column(
        "project_id",
        String(255),
        ForeignKey("projects.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("id", String(255), primary_key=True),
    Column("dataset_id", String(255), nullable=True),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=True),
    Column("metadata", Json, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    # NULL dataset ids (local-data experiments) never collide, as SQL unique constraints go.
    UniqueConstraint("project_id", "dataset_id", "name", name="uq_dataset_runs_dataset_name"),
    Index("ix_dataset_runs_dataset_created", "project_id", "dataset_id", "created_at"),
)

dataset_run_items = Table(
    "dataset_run_items",
    metadata,
    Column("project_id", String(255), primary_key=True),
    Column("id", String(255), primary_key=True),
    Column("dataset_run_id", String(255), nullable=False),
    Column("dataset_item_id", String(255), nullable=False),
    Column("trace_id", String(255), nullable=False),
    Column("observation_id", String(255), nullable=True),
    Column("start_time", Timestamp, nullable=False),
    Column("end_time", Timestamp, nullable=True),
    Column("level", String(16), nullable=False),
    Column("environment", String(255), nullable=False),
    Column("dataset_item_version", Timestamp, nullable=True),
    Column("expected_output", Json, nullable=True),
    Column("item_metadata", Json, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    ForeignKeyConstraint(
        ["project_id", "dataset_run_id"],
        ["dataset_runs.project_id", "dataset_runs.id"],
        ondelete="CASCADE",
        name="fk_dataset_run_items_run",
    ),
    Index("ix_dataset_run_items_run", "project_id", "dataset_run_id", "created_at"),
    Index("ix_dataset_run_items_start", "project_id", "start_time"),
    Index("ix_dataset_run_items_item", "project_id", "dataset_item_id"),
)


def _utc(value: datetime | None) -> datetime | None:
    # SQLite keeps wall-clock text without an offset: everything is written and compared in UTC.
    return None if value is None else value.astimezone(UTC)


def _dataset(row: RowMapping) -> Dataset:
    return Dataset(
        id=row["id"],
        project_id=row["project_id"],
        name=row["name"],
        created_at=required_time(row["created_at"]),
        updated_at=required_time(row["updated_at"]),
        description=row["description"],
        metadata=row["metadata"],
        input_schema=row["input_schema"],
        expected_output_schema=row["expected_output_schema"],
    )


def _item(row: RowMapping) -> DatasetItem:
    return DatasetItem(
        id=row["id"],
        project_id=row["project_id"],
        dataset_id=row["dataset_id"],
        valid_from=required_time(row["valid_from"]),
        created_at=required_time(row["created_at"]),
        updated_at=required_time(row["updated_at"]),
        status=DatasetStatus(row["status"]),
        input=row["input"],
        expected_output=row["expected_output"],
        metadata=row["metadata"],
        source_trace_id=row["source_trace_id"],
        source_observation_id=row["source_observation_id"],
        valid_to=aware(row["valid_to"]),
        is_deleted=bool(row["is_deleted"]),
    )


def _run(row: RowMapping) -> DatasetRun:
    return DatasetRun(
        id=row["id"],
        project_id=row["project_id"],
        name=row["name"],
        created_at=required_time(row["created_at"]),
        updated_at=required_time(row["updated_at"]),
        dataset_id=row["dataset_id"],
        description=row["description"],
        metadata=row["metadata"],
    )


def _run_item(row: RowMapping, prefix: str = "") -> DatasetRunItem:
    def get(name: str) -> Any:
        return row[prefix + name]

    return DatasetRunItem(
        id=get("id"),
        project_id=get("project_id"),
        dataset_run_id=get("dataset_run_id"),
        dataset_item_id=get("dataset_item_id"),
        trace_id=get("trace_id"),
        created_at=required_time(get("created_at")),
        updated_at=required_time(get("updated_at")),
        start_time=required_time(get("start_time")),
        observation_id=get("observation_id"),
        end_time=aware(get("end_time")),
        level=Level(get("level")),
        environment=get("environment"),
        dataset_item_version=aware(get("dataset_item_version")),
        expected_output=get("expected_output"),
        item_metadata=get("item_metadata"),
    )


def _item_values(item: DatasetItem) -> dict[str, Any]:
    return {
        "project_id": item.project_id,
        "id": item.id,
        "valid_from": _utc(item.valid_from),
        "valid_to": _utc(item.valid_to),
        "is_deleted": item.is_deleted,
        "dataset_id": item.dataset_id,
        "status": item.status.value,
        "input": item.input,
        "expected_output": item.expected_output,
        "metadata": item.metadata,
        "source_trace_id": item.source_trace_id,
        "source_observation_id": item.source_observation_id,
        "created_at": _utc(item.created_at),
        "updated_at": _utc(item.updated_at),
    }


def _run_values(run: DatasetRun) -> dict[str, Any]:
    return {
        "project_id": run.project_id,
        "id": run.id,
        "dataset_id": run.dataset_id,
        "name": run.name,
        "description": run.description,
        "metadata": run.metadata,
        "created_at": _utc(run.created_at),
        "updated_at": _utc(run.updated_at),
    }


def _run_item_values(item: DatasetRunItem) -> dict[str, Any]:
    return {
        "project_id": item.project_id,
        "id": item.id,
        "dataset_run_id": item.dataset_run_id,
        "dataset_item_id": item.dataset_item_id,
        "trace_id": item.trace_id,
        "observation_id": item.observation_id,
        "start_time": _utc(item.start_time),
        "end_time": _utc(item.end_time),
        "level": item.level.value,
        "environment": item.environment,
        "dataset_item_version": _utc(item.dataset_item_version),
        "expected_output": item.expected_output,
        "item_metadata": item.item_metadata,
        "created_at": _utc(item.created_at),
        "updated_at": _utc(item.updated_at),
    }


def _in_force(at: datetime | None) -> ColumnElement[bool]:
    t = dataset_items.c
    if at is None:
        return t.valid_to.is_(None)
    moment = _utc(at)
    return and_(t.valid_from <= moment, or_(t.valid_to.is_(None), t.valid_to > moment))


def _condition(column: Any, condition: FieldCondition, dialect: str) -> ColumnElement[bool]:
    # NULL dataset ids compare as "" so "none of"/"!=" keep local-data experiments.
    value = func.coalesce(column, "")
    first = condition.values[0] if condition.values else ""
    # Case-sensitive on every engine, as `FieldCondition.matches` (and upstream's
    # position/startsWith/endsWith): LIKE would ignore ASCII case on SQLite only.
    position = func.strpos if dialect == "postgresql" else func.instr
    match condition.operator:
        case "any of":
            return value.in_(condition.values)
        case "none of":
            return ~value.in_(condition.values)
        case "=":
            return value == first
        case "!=":
            return value != first
        case "contains":
            return position(value, first) > 0
        case "does not contain":
            return position(value, first) == 0
        case "starts with":
            return func.substr(value, 1, func.length(first)) == first
        case _:
            start = func.length(value) - func.length(first) + 1
            return func.substr(value, start) == first


def _conditions(conditions: Sequence[FieldCondition], dialect: str) -> list[ColumnElement[bool]]:
    columns = {
        "experiment_id": dataset_runs.c.id,
        "experiment_name": dataset_runs.c.name,
        "dataset_id": dataset_runs.c.dataset_id,
        "item_id": dataset_run_items.c.dataset_item_id,
    }
    return [_condition(columns[c.field], c, dialect) for c in conditions]


def _window(query: ExperimentQuery) -> list[ColumnElement[bool]]:
    t = dataset_run_items.c
    clauses = [t.start_time >= _utc(query.from_start_time)]
    if query.to_start_time is not None:
        clauses.append(t.start_time < _utc(query.to_start_time))
    return clauses


class SqlDatasetRepository(SqlRepository):
    # -- datasets --

    async def get(self, project_id: str, dataset_id: str) -> Dataset | None:
        t = datasets.c
        return await self._one_as(
            select(datasets).where(t.project_id == project_id, t.id == dataset_id), _dataset
        )

    async def get_by_name(self, project_id: str, name: str) -> Dataset | None:
        t = datasets.c
        return await self._one_as(
            select(datasets).where(t.project_id == project_id, t.name == name), _dataset
        )

    async def add(self, dataset: Dataset) -> None:
        values = {
            "project_id": dataset.project_id,
            "id": dataset.id,
            "name": dataset.name,
            "description": dataset.description,
            "metadata": dataset.metadata,
            "input_schema": dataset.input_schema,
            "expected_output_schema": dataset.expected_output_schema,
            "created_at": _utc(dataset.created_at),
            "updated_at": _utc(dataset.updated_at),
        }
        try:
            await self._insert(datasets, values)
        except IntegrityError:
            raise Conflict("Dataset name already in use") from None

    async def update(self, dataset: Dataset) -> None:
        t = datasets.c
        await self._uow.connection.execute(
            update(datasets)
            .where(t.project_id == dataset.project_id, t.id == dataset.id)
            .values(
                description=dataset.description,
                metadata=dataset.metadata,
                input_schema=dataset.input_schema,
                expected_output_schema=dataset.expected_output_schema,
                updated_at=_utc(dataset.updated_at),
            )
        )

    async def list_datasets(self, project_id: str, page: int, limit: int) -> Page[Dataset]:
        t = datasets.c
        return await self._page(
            datasets,
            [t.project_id == project_id],
            [t.created_at.desc(), t.id],
            page,
            limit,
            _dataset,
        )

    # -- items --

    async def current_item(self, project_id: str, item_id: str) -> DatasetItem | None:
        # The upsert's first read: on PostgreSQL two upserts of one item queue here, so the
        # second revises what the first wrote rather than a version that is no longer current.
        await self._lock("dataset_item", project_id, item_id)
        t = dataset_items.c
        return await self._one_as(
            select(dataset_items)
            .where(t.project_id == project_id, t.id == item_id, t.valid_to.is_(None))
            .order_by(t.valid_from.desc())
            .limit(1),
            _item,
        )

    async def item_as_of(
        self, project_id: str, item_id: str, at: datetime | None
    ) -> DatasetItem | None:
        t = dataset_items.c
        row = await self._one(
            select(dataset_items)
            .where(t.project_id == project_id, t.id == item_id, _in_force(at))
            .order_by(t.valid_from.desc())
            .limit(1)
        )
        if row is None or row["is_deleted"]:
            return None
        return _item(row)

    async def add_item_version(self, item: DatasetItem) -> None:
        # Without the lock a concurrent writer's new version (invisible to this statement's
        # snapshot under READ COMMITTED) would stay current next to this one.
        await self._lock("dataset_item", item.project_id, item.id)
        t = dataset_items.c
        await self._uow.connection.execute(
            update(dataset_items)
            .where(t.project_id == item.project_id, t.id == item.id, t.valid_to.is_(None))
            .values(valid_to=_utc(item.valid_from))
        )
        try:
            await self._insert(dataset_items, _item_values(item))
        except IntegrityError:
            raise Conflict(
                f"Dataset item {item.id} was modified concurrently. Please retry the request."
            ) from None

    def _item_filter(self, project_id: str, query: ItemQuery) -> list[ColumnElement[bool]]:
        t = dataset_items.c
        clauses = [t.project_id == project_id, t.is_deleted.is_(False), _in_force(query.version)]
        if query.dataset_id is not None:
            clauses.append(t.dataset_id == query.dataset_id)
        if query.source_trace_id is not None:
            clauses.append(t.source_trace_id == query.source_trace_id)
        if query.source_observation_id is not None:
            clauses.append(t.source_observation_id == query.source_observation_id)
        if query.status is not None:
            clauses.append(t.status == query.status.value)
        return clauses

    async def list_items(self, project_id: str, query: ItemQuery) -> Page[DatasetItem]:
        t = dataset_items.c
        clauses = self._item_filter(project_id, query)
        return await self._page(
            dataset_items, clauses, [t.valid_from.desc(), t.id], query.page, query.limit, _item
        )

    async def current_items_of_dataset(self, project_id: str, dataset_id: str) -> list[DatasetItem]:
        query = ItemQuery(dataset_id=dataset_id)
        rows = await self._all(
            select(dataset_items)
            .where(*self._item_filter(project_id, query))
            .order_by(dataset_items.c.valid_from.desc(), dataset_items.c.id)
        )
        return [_item(row) for row in rows]

    # -- runs --

    async def get_run(self, project_id: str, run_id: str) -> DatasetRun | None:
        t = dataset_runs.c
        return await self._one_as(
            select(dataset_runs).where(t.project_id == project_id, t.id == run_id), _run
        )

    async def get_run_by_name(
        self, project_id: str, dataset_id: str, name: str
    ) -> DatasetRun | None:
        t = dataset_runs.c
        return await self._one_as(
            select(dataset_runs).where(
                t.project_id == project_id, t.dataset_id == dataset_id, t.name == name
            ),
            _run,
        )

    async def add_run_if_absent(self, run: DatasetRun) -> bool:
        return await self._insert_if_absent(dataset_runs, _run_values(run))

    async def update_run(self, run: DatasetRun) -> None:
        t = dataset_runs.c
        await self._uow.connection.execute(
            update(dataset_runs)
            .where(t.project_id == run.project_id, t.id == run.id)
            .values(
                description=run.description,
                metadata=run.metadata,
                updated_at=_utc(run.updated_at),
            )
        )

    async def list_runs(
        self, project_id: str, dataset_id: str, page: int, limit: int
    ) -> Page[DatasetRun]:
        t = dataset_runs.c
        clauses = [t.project_id == project_id, t.dataset_id == dataset_id]
        return await self._page(
            dataset_runs, clauses, [t.created_at.desc(), t.id], page, limit, _run
        )

    async def delete_run(self, project_id: str, run_id: str) -> bool:
        # Explicit, not only ON DELETE CASCADE: SQLite enforces it only with its pragma on.
        await self._uow.connection.execute(
            delete(dataset_run_items).where(
                dataset_run_items.c.project_id == project_id,
                dataset_run_items.c.dataset_run_id == run_id,
            )
        )
        result = await self._uow.connection.execute(
            delete(dataset_runs).where(
                dataset_runs.c.project_id == project_id, dataset_runs.c.id == run_id
            )
        )
        return bool(result.rowcount)

    # -- run items --

    async def get_run_item(self, project_id: str, run_item_id: str) -> DatasetRunItem | None:
        t = dataset_run_items.c
        return await self._one_as(
            select(dataset_run_items).where(t.project_id == project_id, t.id == run_item_id),
            _run_item,
        )

    async def add_run_item_if_absent(self, item: DatasetRunItem) -> bool:
        return await self._insert_if_absent(dataset_run_items, _run_item_values(item))

    async def update_run_item(self, item: DatasetRunItem) -> None:
        t = dataset_run_items.c
        values = _run_item_values(item)
        for key in ("project_id", "id", "dataset_run_id", "created_at"):
            values.pop(key)
        await self._uow.connection.execute(
            update(dataset_run_items)
            .where(t.project_id == item.project_id, t.id == item.id)
            .values(**values)
        )

    async def list_run_items(
        self, project_id: str, run_id: str, page: int | None = None, limit: int | None = None
    ) -> Page[DatasetRunItem]:
        t = dataset_run_items.c
        clauses = [t.project_id == project_id, t.dataset_run_id == run_id]
        order_by = [t.created_at.desc(), t.id]
        if page is not None and limit is not None:
            return await self._page(dataset_run_items, clauses, order_by, page, limit, _run_item)
        rows = await self._all(select(dataset_run_items).where(*clauses).order_by(*order_by))
        return Page(items=[_run_item(row) for row in rows], total=len(rows))

    async def delete_run_items_of_item(self, project_id: str, dataset_item_id: str) -> int:
        t = dataset_run_items.c
        result = await self._uow.connection.execute(
            delete(dataset_run_items).where(
                t.project_id == project_id, t.dataset_item_id == dataset_item_id
            )
        )
        return int(result.rowcount or 0)

    # -- experiments --

    async def list_experiments(
        self, project_id: str, query: ExperimentQuery
    ) -> list[ExperimentSummary]:
        i = dataset_run_items.c
        r = dataset_runs.c
        window = (
            select(
                i.dataset_run_id.label("run_id"),
                func.min(i.start_time).label("start_time"),
                func.max(func.coalesce(i.end_time, i.start_time)).label("end_time"),
                func.max(i.start_time).label("last_activity"),
                func.count().label("item_count"),
            )
            .where(i.project_id == project_id, *_window(query))
            .group_by(i.dataset_run_id)
            .subquery()
        )
        statement = (
            select(
                dataset_runs,
                window.c.start_time.label("first_start"),
                window.c.end_time.label("last_end"),
                window.c.last_activity,
                window.c.item_count,
            )
            .join(window, window.c.run_id == r.id)
            .where(r.project_id == project_id, *_conditions(query.conditions, self._dialect))
            .order_by(window.c.last_activity.desc(), r.id.desc())
            .limit(query.limit)
        )
        if query.after is not None:
            last_time, last_id = query.after
            moment = _utc(last_time)
            statement = statement.where(
                or_(
                    window.c.last_activity < moment,
                    and_(window.c.last_activity == moment, r.id < last_id),
                )
            )
        rows = await self._all(statement)
        return [
            ExperimentSummary(
                run=_run(row),
                start_time=required_time(row["first_start"]),
                end_time=required_time(row["last_end"]),
                item_count=int(row["item_count"]),
                last_activity=required_time(row["last_activity"]),
            )
            for row in rows
        ]

    async def list_experiment_items(
        self, project_id: str, query: ExperimentQuery
    ) -> list[tuple[DatasetRunItem, DatasetRun]]:
        i = dataset_run_items.c
        r = dataset_runs.c
        item_columns = [column.label(f"item_{column.name}") for column in dataset_run_items.c]
        statement = (
            select(dataset_runs, *item_columns)
            .select_from(dataset_run_items)
            .join(dataset_runs, and_(r.project_id == i.project_id, r.id == i.dataset_run_id))
            .where(
                i.project_id == project_id,
                *_window(query),
                *_conditions(query.conditions, self._dialect),
            )
            .order_by(i.start_time.desc(), i.id.desc())
            .limit(query.limit)
        )
        if query.after is not None:
            last_time, last_id = query.after
            moment = _utc(last_time)
            statement = statement.where(
                or_(i.start_time < moment, and_(i.start_time == moment, i.id < last_id))
            )
        rows = await self._all(statement)
        return [(_run_item(row, "item_"), _run(row)) for row in rows]

    # -- helpers --

    async def _insert_if_absent(self, table: Table, values: dict[str, Any]) -> bool:
        # No conflict target: a run also collides on its (dataset, name) unique key.
        return await self._insert_ignore(table, values)
