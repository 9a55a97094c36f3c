"""Storage port of datasets, items (with versions), runs and run items."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from fathom.core.domain.datasets import (
    Dataset,
    DatasetItem,
    DatasetRun,
    DatasetRunItem,
    DatasetStatus,
    ExperimentSummary,
    FieldCondition,
)
from fathom.core.ports.telemetry import Page


@dataclass(slots=True)
class ItemQuery:
    """Items as of `version` (None: the current state); deleted items are never listed."""

    page: int = 1
    limit: int = 50
    dataset_id: str | None = None
    source_trace_id: str | None = None
    source_observation_id: str | None = None
    status: DatasetStatus | None = None
    version: datetime | None = None


@dataclass(slots=True)
class ExperimentQuery:
    """Experiments with items started in [from_start_time, to_start_time).

    Conditions use the field names experiment_id, experiment_name, item_id and dataset_id.
    `after` is the keyset cursor: rows strictly after (time desc, id desc).
    """

    from_start_time: datetime
    to_start_time: datetime | None = None
    limit: int = 50
    conditions: list[FieldCondition] = field(default_factory=list)
    after: tuple[datetime, str] | None = None


class DatasetRepository(Protocol):
    """Datasets and everything below them, per project."""

    # -- datasets --
    async def get(self, project_id: str, dataset_id: str) -> Dataset | None: ...
    async def get_by_name(self, project_id: str, name: str) -> Dataset | None: ...
    async def add(self, dataset: Dataset) -> None: ...
    async def update(self, dataset: Dataset) -> None:
        """Overwrite description, metadata, schemas and updated_at."""
        ...

    async def list_datasets(self, project_id: str, page: int, limit: int) -> Page[Dataset]:
        """Newest first."""
        ...

    # -- items (versioned) --
    async def current_item(self, project_id: str, item_id: str) -> DatasetItem | None:
        """The current version of an id, tombstones included (the caller decides)."""
        ...

    async def item_as_of(
        self, project_id: str, item_id: str, at: datetime | None
    ) -> DatasetItem | None:
        """The live (not deleted) version in force at `at`; None: the current one."""
        ...

    async def add_item_version(self, item: DatasetItem) -> None:
        """Close the current version of `item.id` at `item.valid_from`, then add `item`."""
        ...

    async def list_items(self, project_id: str, query: ItemQuery) -> Page[DatasetItem]:
        """Most recently written first (valid_from desc, then id)."""
        ...

    async def current_items_of_dataset(self, project_id: str, dataset_id: str) -> list[DatasetItem]:
        """Every live item of a dataset, for re-validating them against new schemas."""
        ...

    # -- runs --
    async def get_run(self, project_id: str, run_id: str) -> DatasetRun | None: ...
    async def get_run_by_name(
        self, project_id: str, dataset_id: str, name: str
    ) -> DatasetRun | None: ...
    async def add_run_if_absent(self, run: DatasetRun) -> bool:
        """Insert unless a run with this id, or this dataset and name, exists; True if added.
        Concurrent callers converge on one row without raising."""
        ...

    async def update_run(self, run: DatasetRun) -> None:
        """Overwrite description, metadata and updated_at."""
        ...

    async def list_runs(
        self, project_id: str, dataset_id: str, page: int, limit: int
    ) -> Page[DatasetRun]:
        """Newest first."""
        ...

    async def delete_run(self, project_id: str, run_id: str) -> bool:
        """Delete a run and its run items."""
        ...

    # -- run items --
    async def get_run_item(self, project_id: str, run_item_id: str) -> DatasetRunItem | None: ...
    async def add_run_item_if_absent(self, item: DatasetRunItem) -> bool: ...
    async def update_run_item(self, item: DatasetRunItem) -> None:
        """Overwrite everything but the identity, the run and created_at."""
        ...

    async def list_run_items(
        self, project_id: str, run_id: str, page: int | None = None, limit: int | None = None
    ) -> Page[DatasetRunItem]:
        """Newest first; every item when `page` is None."""
        ...

    async def delete_run_items_of_item(self, project_id: str, dataset_item_id: str) -> int: ...

    # -- experiments (runs seen through their items' times) --
    async def list_experiments(
        self, project_id: str, query: ExperimentQuery
    ) -> list[ExperimentSummary]:
        """Up to `query.limit` experiments, latest item start first."""
        ...

    async def list_experiment_items(
        self, project_id: str, query: ExperimentQuery
    ) -> list[tuple[DatasetRunItem, DatasetRun]]:
        """Up to `query.limit` run items with their runs, latest start first."""
        ...
