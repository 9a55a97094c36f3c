"""Datasets, versioned dataset items, dataset runs and SDK experiments.

Behaviour follows upstream's public API (`publicDatasetService`, `upsertDataset`,
`upsertDatasetItem`): datasets upsert by name, items upsert by id (ids are unique per project),
a write keeps the previous version so reads can ask for the state as of a time, `null` fields
in a write keep the stored value, and lists of items show only ACTIVE ones. Runs created through
`POST /dataset-run-items` take the id SDK 5 gives an experiment with the same run name, so both
ways of recording a run on a dataset land in one run. SDK 5 experiments arrive only as span
attributes: `RecordExperimentLinks` turns them into runs and run items on the worker.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

from fathom.core.domain.datasets import (
    Dataset,
    DatasetItem,
    DatasetRun,
    DatasetRunItem,
    DatasetStatus,
    ExperimentLink,
    ExperimentSummary,
    ItemChanges,
    dataset_name_problem,
    item_schema_problem,
    metadata_object,
    parse_experiment_link,
    revise_item,
    schema_problem,
    stable_experiment_id,
    tombstone,
)
from fathom.core.domain.errors import Conflict, InvalidInput, NotFound
from fathom.core.domain.ingestion import UNSET
from fathom.core.domain.media import DatasetItemMediaLink, MediaLinkOrigin, find_media_references
from fathom.core.domain.scores import Score
from fathom.core.domain.tracing import DEFAULT_ENVIRONMENT, Level, Observation
from fathom.core.ports.datasets import ExperimentQuery, ItemQuery
from fathom.core.ports.records import RecordStore, UnitOfWork
from fathom.core.ports.system import Clock, IdGenerator
from fathom.core.ports.telemetry import Page, ScoreQuery, TelemetryStore

log = logging.getLogger(__name__)

MAX_ITEM_ID_LENGTH: Final = 255
# Upstream lists at most this many failing items when a new schema rejects stored ones.
MAX_REPORTED_ITEMS: Final = 10

DATASET_NOT_FOUND: Final = "Dataset not found"
ITEM_NOT_FOUND: Final = "Dataset item not found"
RUN_NOT_FOUND: Final = "Dataset run not found"


# --- request parsing --------------------------------------------------------------------------


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
    return value


def _optional_string(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise _invalid(f"{key} must be a string or null")
    return value


def _optional_timestamp(body: Mapping[str, Any], key: str) -> datetime | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(f"{key} must be an ISO 8601 datetime string or null")
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _invalid(f"{key} must be an ISO 8601 datetime, got {value!r}") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _status(body: Mapping[str, Any]) -> DatasetStatus | None:
    value = body.get("status")
    if value is None:
        return None
    try:
        return DatasetStatus(value)
    except ValueError:
        raise _invalid(f"status must be one of {[s.value for s in DatasetStatus]}") from None


def _schema(body: Mapping[str, Any], key: str) -> Any:
    """UNSET when absent (keep), None when null (clear), else a checked JSON Schema."""
    if key not in body:
        return UNSET
    value = body[key]
    if value is None:
        return None
    problem = schema_problem(value)
    if problem is not None:
        raise _invalid(f"{key} is not a valid JSON Schema: {problem}")
    return value


async def _dataset_by_name(uow: UnitOfWork, project_id: str, name: str) -> Dataset:
    dataset = await uow.datasets.get_by_name(project_id, name)
    if dataset is None:
        raise NotFound(DATASET_NOT_FOUND)
    return dataset


# --- datasets ---------------------------------------------------------------------------------


class CreateDataset:
    """`POST /api/public/v2/datasets`: create, or update the dataset of that name.

    As upstream: a missing or null description/metadata keeps the stored value, an absent
    schema keeps the stored one and an explicit null removes it; setting a schema re-validates
    the dataset's current items and refuses the change when any of them fails.
    """

    def __init__(self, records: RecordStore, clock: Clock, ids: IdGenerator) -> None:
        self._records = records
        self._clock = clock
        self._ids = ids

    async def __call__(self, project_id: str, body: Any) -> Dataset:
        body = _object(body)
        name = _required_string(body, "name")
        problem = dataset_name_problem(name)
        if problem is not None:
            raise InvalidInput(f"Dataset name not valid. {problem}")
        description = _optional_string(body, "description")
        metadata = body.get("metadata")
        input_schema = _schema(body, "inputSchema")
        expected_output_schema = _schema(body, "expectedOutputSchema")
        now = self._clock.now()
        async with self._records.unit_of_work() as uow:
            existing = await uow.datasets.get_by_name(project_id, name)
            if existing is None:
                dataset = Dataset(
                    id=self._ids.new_id(),
                    project_id=project_id,
                    name=name,
                    created_at=now,
                    updated_at=now,
                    description=description,
                    metadata=metadata,
                    input_schema=None if input_schema is UNSET else input_schema,
                    expected_output_schema=(
                        None if expected_output_schema is UNSET else expected_output_schema
                    ),
                )
                await uow.datasets.add(dataset)
            else:
                dataset = replace(
                    existing,
                    updated_at=now,
                    description=existing.description if description is None else description,
                    metadata=existing.metadata if metadata is None else metadata,
                    input_schema=(existing.input_schema if input_schema is UNSET else input_schema),
                    expected_output_schema=(
                        existing.expected_output_schema
                        if expected_output_schema is UNSET
                        else expected_output_schema
                    ),
                )
                schemas_set = not (input_schema is UNSET and expected_output_schema is UNSET)
                if schemas_set:
                    await self._check_items(uow, dataset)
                await uow.datasets.update(dataset)
            await uow.commit()
        return dataset

    async def _check_items(self, uow: UnitOfWork, dataset: Dataset) -> None:
        if dataset.input_schema is None and dataset.expected_output_schema is None:
            return
        failures: list[dict[str, Any]] = []
        for item in await uow.datasets.current_items_of_dataset(dataset.project_id, dataset.id):
            problem = item_schema_problem(dataset, item.input, item.expected_output)
            if problem is not None:
                failures.append({"datasetItemId": item.id, "message": problem})
                if len(failures) == MAX_REPORTED_ITEMS:
                    break
        if failures:
            count = (
                f"more than {MAX_REPORTED_ITEMS}"
                if len(failures) == MAX_REPORTED_ITEMS
                else str(len(failures))
            )
            raise InvalidInput(
                f"Schema validation failed for {count} item(s). Details: {json.dumps(failures)}"
            )


class ListDatasets:
    """`GET /api/public/v2/datasets`."""

    def __init__(self, records: RecordStore) -> None:
        self._records = records

    async def __call__(self, project_id: str, page: int = 1, limit: int = 50) -> Page[Dataset]:
        async with self._records.unit_of_work() as uow:
            return await uow.datasets.list_datasets(project_id, page, limit)


class GetDataset:
    """`GET /api/public/v2/datasets/{datasetName}`."""

    def __init__(self, records: RecordStore) -> None:
        self._records = records

    async def __call__(self, project_id: str, name: str) -> Dataset:
        async with self._records.unit_of_work() as uow:
            return await _dataset_by_name(uow, project_id, name)


# --- dataset items ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NamedItem:
    """An item version with the name of its dataset (every item response carries it)."""

    item: DatasetItem
    dataset_name: str


class UpsertDatasetItem:
    """`POST /api/public/dataset-items`: create, or write a new version of the item `id`."""

    def __init__(self, records: RecordStore, clock: Clock, ids: IdGenerator) -> None:
        self._records = records
        self._clock = clock
        self._ids = ids

    async def __call__(self, project_id: str, body: Any) -> NamedItem:
        body = _object(body)
        dataset_name = _required_string(body, "datasetName")
        item_id = _optional_string(body, "id")
        if item_id is not None and not item_id:
            raise _invalid("id must not be empty")
        if item_id is not None and len(item_id) > MAX_ITEM_ID_LENGTH:
            raise _invalid(f"id must be at most {MAX_ITEM_ID_LENGTH} characters")
        changes = ItemChanges(
            input=body.get("input"),
            expected_output=body.get("expectedOutput"),
            metadata=body.get("metadata"),
            source_trace_id=_optional_string(body, "sourceTraceId"),
            source_observation_id=_optional_string(body, "sourceObservationId"),
            status=_status(body),
        )
        async with self._records.unit_of_work() as uow:
            dataset = await uow.datasets.get_by_name(project_id, dataset_name)
            if dataset is None:
                raise NotFound(f"Dataset {dataset_name} not found for project {project_id}")
            current = None
            if item_id is not None:
                current = await uow.datasets.current_item(project_id, item_id)
                if current is not None and not current.is_deleted:
                    if current.dataset_id != dataset.id:
                        raise Conflict(
                            f"The dataset item with id {item_id} already exists in a dataset "
                            f"other than {dataset_name}; item ids are unique per project"
                        )
            item = revise_item(
                current,
                item_id=item_id or self._ids.new_id(),
                project_id=project_id,
                dataset_id=dataset.id,
                changes=changes,
                now=self._clock.now(),
            )
            # Upstream requires an input only when it makes up the id (a plain create).
            problem = item_schema_problem(
                dataset, item.input, item.expected_output, require_input=item_id is None
            )
            if problem is not None:
                raise InvalidInput(f"Dataset item validation failed: {problem}")
            await uow.datasets.add_item_version(item)
            await _link_referenced_media(uow, item)
            await uow.commit()
        return NamedItem(item, dataset.name)


async def _link_referenced_media(uow: UnitOfWork, item: DatasetItem) -> None:
    """Links the item to the project's media its content references (an item copied from a
    trace carries the trace's media tokens), so that deleting that trace does not delete
    media the item still shows. References to media the project does not hold are left."""
    wanted = {
        (field, reference.media_id)
        for field, value in (
            ("input", item.input),
            ("expectedOutput", item.expected_output),
            ("metadata", item.metadata),
        )
        for reference in find_media_references(value)
    }
    links = [
        DatasetItemMediaLink(
            project_id=item.project_id,
            media_id=media_id,
            dataset_id=item.dataset_id,
            dataset_item_id=item.id,
            field=field,
            origin=MediaLinkOrigin.INGESTION_MEDIA_EXTRACTION,
            created_at=item.valid_from,
        )
        for field, media_id in sorted(wanted)
        if await uow.media.get(item.project_id, media_id) is not None
    ]
    if links:
        await uow.media.add_links(links)


class ListDatasetItems:
    """`GET /api/public/dataset-items`: ACTIVE items, now or as of `version`."""

    def __init__(self, records: RecordStore) -> None:
        self._records = records

    async def __call__(
        self,
        project_id: str,
        *,
        dataset_name: str | None = None,
        source_trace_id: str | None = None,
        source_observation_id: str | None = None,
        version: datetime | None = None,
        page: int = 1,
        limit: int = 50,
    ) -> Page[NamedItem]:
        if version is not None and dataset_name is None:
            raise _invalid("datasetName is required when version is given")
        async with self._records.unit_of_work() as uow:
            names: dict[str, str] = {}
            dataset_id = None
            if dataset_name is not None:
                dataset = await _dataset_by_name(uow, project_id, dataset_name)
                dataset_id = dataset.id
                names[dataset.id] = dataset.name
            found = await uow.datasets.list_items(
                project_id,
                ItemQuery(
                    page=page,
                    limit=limit,
                    dataset_id=dataset_id,
                    source_trace_id=source_trace_id,
                    source_observation_id=source_observation_id,
                    status=DatasetStatus.ACTIVE,
                    version=version.astimezone(UTC) if version else None,
                ),
            )
            items: list[NamedItem] = []
            for item in found.items:
                if item.dataset_id not in names:
                    owner = await uow.datasets.get(project_id, item.dataset_id)
                    names[item.dataset_id] = owner.name if owner else ""
                items.append(NamedItem(item, names[item.dataset_id]))
        return Page(items=items, total=found.total)


class GetDatasetItem:
    """`GET /api/public/dataset-items/{id}`: the current version, archived or not."""

    def __init__(self, records: RecordStore) -> None:
        self._records = records

    async def __call__(self, project_id: str, item_id: str) -> NamedItem:
        async with self._records.unit_of_work() as uow:
            item = await uow.datasets.item_as_of(project_id, item_id, None)
            if item is None:
                raise NotFound(ITEM_NOT_FOUND)
            dataset = await uow.datasets.get(project_id, item.dataset_id)
            if dataset is None:
                raise NotFound(DATASET_NOT_FOUND)
        return NamedItem(item, dataset.name)


class DeleteDatasetItem:
    """`DELETE /api/public/dataset-items/{id}`: a tombstone version, and the item's run items
    go (the contract: "Delete a dataset item and all its run items"), and its media links.
    The media stay: earlier versions of the item, still readable, may show them."""

    def __init__(self, records: RecordStore, clock: Clock) -> None:
        self._records = records
        self._clock = clock

    async def __call__(self, project_id: str, item_id: str) -> None:
        async with self._records.unit_of_work() as uow:
            current = await uow.datasets.item_as_of(project_id, item_id, None)
            if current is None:
                raise NotFound(f"Dataset item with id {item_id} not found for project {project_id}")
            await uow.datasets.add_item_version(tombstone(current, self._clock.now()))
            await uow.datasets.delete_run_items_of_item(project_id, item_id)
            await uow.media.delete_links_of_dataset_items(project_id, [item_id])
            await uow.commit()


# --- dataset runs -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunWithItems:
    dataset: Dataset
    run: DatasetRun
    items: list[DatasetRunItem]


async def _run_by_names(
    uow: UnitOfWork, project_id: str, dataset_name: str, run_name: str
) -> tuple[Dataset, DatasetRun]:
    dataset = await _dataset_by_name(uow, project_id, dataset_name)
    run = await uow.datasets.get_run_by_name(project_id, dataset.id, run_name)
    if run is None:
        raise NotFound(RUN_NOT_FOUND)
    return dataset, run


async def _ensure_run(
    uow: UnitOfWork,
    project_id: str,
    dataset_id: str | None,
    run_id: str,
    name: str,
    now: datetime,
) -> DatasetRun:
    """The run of this id, or of this dataset and name, created first when neither exists."""
    run = await uow.datasets.get_run(project_id, run_id)
    if run is not None:
        return run
    if dataset_id is not None:
        run = await uow.datasets.get_run_by_name(project_id, dataset_id, name)
        if run is not None:
            return run
    fresh = DatasetRun(
        id=run_id,
        project_id=project_id,
        name=name,
        created_at=now,
        updated_at=now,
        dataset_id=dataset_id,
        metadata={},
    )
    if await uow.datasets.add_run_if_absent(fresh):
        return fresh
    # Lost a race with another writer: its row is the run.
    run = await uow.datasets.get_run(project_id, run_id)
    if run is None and dataset_id is not None:
        run = await uow.datasets.get_run_by_name(project_id, dataset_id, name)
    if run is None:  # pragma: no cover - the conflicting row vanished meanwhile
        raise Conflict(f"Dataset run {name} was modified concurrently. Please retry the request.")
    return run


class CreateDatasetRunItem:
    """`POST /api/public/dataset-run-items`: link a trace (and observation) to an item in a run
    that is created by name when needed."""

    def __init__(
        self, records: RecordStore, telemetry: TelemetryStore, clock: Clock, ids: IdGenerator
    ) -> None:
        self._records = records
        self._telemetry = telemetry
        self._clock = clock
        self._ids = ids

    async def __call__(self, project_id: str, body: Any) -> tuple[DatasetRunItem, DatasetRun]:
        body = _object(body)
        run_name = _required_string(body, "runName")
        item_id = _required_string(body, "datasetItemId")
        description = _optional_string(body, "runDescription")
        trace_id = _optional_string(body, "traceId")
        observation_id = _optional_string(body, "observationId")
        dataset_version = _optional_timestamp(body, "datasetVersion")
        created_at = _optional_timestamp(body, "createdAt")
        if not trace_id and not observation_id:
            raise _invalid("observationId or traceId must be provided")
        metadata = metadata_object(body.get("metadata")) or {}
        if dataset_version is not None:
            metadata = {**metadata, "dataset_version": _iso(dataset_version)}

        async with self._records.unit_of_work() as uow:
            item = await uow.datasets.item_as_of(project_id, item_id, dataset_version)
        if item is None or item.status is not DatasetStatus.ACTIVE:
            raise NotFound(ITEM_NOT_FOUND)
        if not trace_id:
            assert observation_id is not None
            # Older SDKs linked observations only; their trace is looked up.
            found = await self._telemetry.get_observations(project_id, [observation_id])
            if not found:
                raise NotFound("Observation not found")
            trace_id = found[0].trace_id

        now = self._clock.now()
        created_at = created_at or now
        async with self._records.unit_of_work() as uow:
            run = await _ensure_run(
                uow,
                project_id,
                item.dataset_id,
                stable_experiment_id(project_id, item.dataset_id, run_name),
                run_name,
                created_at,
            )
            # The contract: description and metadata update an existing run.
            changed = replace(
                run,
                description=run.description if description is None else description,
                metadata={**(metadata_object(run.metadata) or {}), **metadata},
            )
            if changed != run:
                run = replace(changed, updated_at=now)
                await uow.datasets.update_run(run)
            run_item = DatasetRunItem(
                id=self._ids.new_id(),
                project_id=project_id,
                dataset_run_id=run.id,
                dataset_item_id=item.id,
                trace_id=trace_id,
                observation_id=observation_id,
                created_at=created_at,
                updated_at=created_at,
                start_time=created_at,
                dataset_item_version=item.valid_from,
                expected_output=item.expected_output,
                item_metadata=item.metadata,
            )
            await uow.datasets.add_run_item_if_absent(run_item)
            await uow.commit()
        return run_item, run


class ListDatasetRunItems:
    """`GET /api/public/dataset-run-items?datasetId=&runName=`."""

    def __init__(self, records: RecordStore) -> None:
        self._records = records

    async def __call__(
        self, project_id: str, dataset_id: str, run_name: str, page: int = 1, limit: int = 50
    ) -> tuple[DatasetRun, Page[DatasetRunItem]]:
        async with self._records.unit_of_work() as uow:
            run = await uow.datasets.get_run_by_name(project_id, dataset_id, run_name)
            if run is None:
                raise NotFound("Dataset run not found for the given project and dataset id")
            return run, await uow.datasets.list_run_items(project_id, run.id, page, limit)


class ListDatasetRuns:
    """`GET /api/public/datasets/{datasetName}/runs`: SDK experiments on it included."""

    def __init__(self, records: RecordStore) -> None:
        self._records = records

    async def __call__(
        self, project_id: str, dataset_name: str, page: int = 1, limit: int = 50
    ) -> tuple[Dataset, Page[DatasetRun]]:
        async with self._records.unit_of_work() as uow:
            dataset = await _dataset_by_name(uow, project_id, dataset_name)
            return dataset, await uow.datasets.list_runs(project_id, dataset.id, page, limit)


class GetDatasetRun:
    """`GET /api/public/datasets/{datasetName}/runs/{runName}`: the run with all its items."""

    def __init__(self, records: RecordStore) -> None:
        self._records = records

    async def __call__(self, project_id: str, dataset_name: str, run_name: str) -> RunWithItems:
        async with self._records.unit_of_work() as uow:
            dataset, run = await _run_by_names(uow, project_id, dataset_name, run_name)
            items = await uow.datasets.list_run_items(project_id, run.id)
        return RunWithItems(dataset, run, items.items)


class DeleteDatasetRun:
    """`DELETE /api/public/datasets/{datasetName}/runs/{runName}`: the run and its items."""

    def __init__(self, records: RecordStore) -> None:
        self._records = records

    async def __call__(self, project_id: str, dataset_name: str, run_name: str) -> None:
        async with self._records.unit_of_work() as uow:
            _, run = await _run_by_names(uow, project_id, dataset_name, run_name)
            await uow.datasets.delete_run(project_id, run.id)
            await uow.commit()


# --- experiments ------------------------------------------------------------------------------


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _first(values: Sequence[Any]) -> Any:
    return next((value for value in values if value is not None), None)


class RecordExperimentLinks:
    """The worker step after a batch is merged: experiment spans become runs and run items.

    `links` are `MergeResult.experiment_links` (observation id, trace id, the span's
    `langfuse.experiment.*` attributes); `observations` are the batch's merged observations
    (the item's root observation gives the run item its times, level and environment; one
    not in the batch is read from telemetry). Idempotent: the run id is the experiment id and
    a run item's id is its root observation id, so replays and late spans update in place.
    Experiments over local data (no dataset id) are recorded as runs without a dataset.
    """

    def __init__(self, records: RecordStore, telemetry: TelemetryStore, clock: Clock) -> None:
        self._records = records
        self._telemetry = telemetry
        self._clock = clock

    async def __call__(
        self,
        project_id: str,
        links: Sequence[tuple[str, str, Mapping[str, Any]]],
        observations: Sequence[Observation] = (),
    ) -> None:
        parsed = [
            link
            for observation_id, trace_id, attributes in links
            if (link := parse_experiment_link(observation_id, trace_id, attributes)) is not None
        ]
        if not parsed:
            return
        known = {o.id: o for o in observations}
        wanted = {link.observation_id for link in parsed}
        wanted |= {link.root_observation_id for link in parsed if link.root_observation_id}
        missing = sorted(wanted - known.keys())
        if missing:
            for observation in await self._telemetry.get_observations(project_id, missing):
                known[observation.id] = observation

        by_experiment: dict[str, list[ExperimentLink]] = {}
        for link in parsed:
            by_experiment.setdefault(link.experiment_id, []).append(link)
        now = self._clock.now()
        async with self._records.unit_of_work() as uow:
            for experiment_id, experiment_links in by_experiment.items():
                run = await self._run(uow, project_id, experiment_id, experiment_links, now)
                by_item: dict[str, list[ExperimentLink]] = {}
                for link in experiment_links:
                    key = link.root_observation_id or f"{link.trace_id}:{link.item_id}"
                    by_item.setdefault(key, []).append(link)
                for item_links in by_item.values():
                    await self._run_item(uow, project_id, run, item_links, known, now)
            await uow.commit()

    async def _run(
        self,
        uow: UnitOfWork,
        project_id: str,
        experiment_id: str,
        links: list[ExperimentLink],
        now: datetime,
    ) -> DatasetRun:
        name = _first([link.experiment_name for link in links]) or experiment_id
        dataset_id = _first([link.dataset_id for link in links])
        run = await _ensure_run(uow, project_id, dataset_id, experiment_id, name, now)
        if run.id != experiment_id:
            log.warning(
                "experiment %s joins run %s of the same dataset and name", experiment_id, run.id
            )
        # Only the root and task spans carry the description; fill in what the run lacks.
        description = _first([link.description for link in links])
        metadata = metadata_object(_first([link.metadata for link in links]))
        changed = replace(
            run,
            description=description if run.description is None else run.description,
            metadata=metadata if not run.metadata and metadata else run.metadata,
        )
        if changed != run:
            run = replace(changed, updated_at=now)
            await uow.datasets.update_run(run)
        return run

    async def _run_item(
        self,
        uow: UnitOfWork,
        project_id: str,
        run: DatasetRun,
        links: list[ExperimentLink],
        known: Mapping[str, Observation],
        now: datetime,
    ) -> None:
        root_id = _first([link.root_observation_id for link in links])
        root = known.get(root_id) if root_id else None
        seen = [known[link.observation_id] for link in links if link.observation_id in known]
        if root is None and seen:
            # Without the task span the earliest span of the item stands in for it.
            root = min(seen, key=lambda o: o.start_time)
        with_output = next((link for link in links if link.has_expected_output), None)
        fresh = DatasetRunItem(
            id=root_id or f"{links[0].trace_id}-{links[0].item_id}",
            project_id=project_id,
            dataset_run_id=run.id,
            dataset_item_id=links[0].item_id,
            trace_id=links[0].trace_id,
            created_at=now,
            updated_at=now,
            start_time=root.start_time if root else now,
            observation_id=root_id or (root.id if root else None),
            end_time=root.end_time if root else None,
            level=root.level if root else Level.DEFAULT,
            environment=root.environment if root else DEFAULT_ENVIRONMENT,
            dataset_item_version=_first([link.item_version for link in links]),
            expected_output=with_output.expected_output if with_output else None,
            item_metadata=_first([link.item_metadata for link in links]),
        )
        if await uow.datasets.add_run_item_if_absent(fresh):
            return
        stored = await uow.datasets.get_run_item(project_id, fresh.id)
        if stored is None:  # pragma: no cover - deleted between the two statements
            return
        authoritative = root is not None and root.id == root_id
        merged = replace(
            stored,
            start_time=fresh.start_time if authoritative else stored.start_time,
            end_time=fresh.end_time if authoritative else stored.end_time,
            level=fresh.level if authoritative else stored.level,
            environment=fresh.environment if authoritative else stored.environment,
            dataset_item_version=stored.dataset_item_version or fresh.dataset_item_version,
            expected_output=(
                fresh.expected_output if with_output is not None else stored.expected_output
            ),
            item_metadata=(
                stored.item_metadata if stored.item_metadata is not None else fresh.item_metadata
            ),
        )
        if merged != stored:
            await uow.datasets.update_run_item(replace(merged, updated_at=now))


@dataclass(frozen=True, slots=True)
class ExperimentView:
    summary: ExperimentSummary
    scores: list[Score] | None = None


class ListExperiments:
    """`GET /api/public/experiments`: runs with items in the time window, latest first.

    Run-level scores are the scores whose `datasetRunId` is the experiment id.
    """

    def __init__(self, records: RecordStore, telemetry: TelemetryStore) -> None:
        self._records = records
        self._telemetry = telemetry

    async def __call__(
        self,
        project_id: str,
        query: ExperimentQuery,
        *,
        with_scores: bool = False,
        score_limit: int = 50,
    ) -> list[ExperimentView]:
        async with self._records.unit_of_work() as uow:
            summaries = await uow.datasets.list_experiments(project_id, query)
        if not with_scores:
            return [ExperimentView(summary) for summary in summaries]
        views = []
        for summary in summaries:
            scores = await self._telemetry.list_scores(
                project_id,
                ScoreQuery(limit=score_limit, dataset_run_id=summary.run.id),
                with_total=False,
            )
            views.append(ExperimentView(summary, scores.items))
        return views


@dataclass(frozen=True, slots=True)
class ExperimentItemView:
    item: DatasetRunItem
    run: DatasetRun
    observation: Observation | None = None
    scores: list[Score] | None = None


class ListExperimentItems:
    """`GET /api/public/experiment-items`: run items started in the window, latest first.

    Input, output and metadata come from the item's root observation; item scores are the
    trace's scores and those of the root observation.
    """

    def __init__(self, records: RecordStore, telemetry: TelemetryStore) -> None:
        self._records = records
        self._telemetry = telemetry

    async def __call__(
        self,
        project_id: str,
        query: ExperimentQuery,
        *,
        with_observations: bool = False,
        with_scores: bool = False,
        score_limit: int = 50,
    ) -> list[ExperimentItemView]:
        async with self._records.unit_of_work() as uow:
            rows = await uow.datasets.list_experiment_items(project_id, query)
        observations: dict[str, Observation] = {}
        if with_observations and rows:
            ids = sorted({item.observation_id for item, _ in rows if item.observation_id})
            if ids:
                found = await self._telemetry.get_observations(project_id, ids)
                observations = {observation.id: observation for observation in found}
        scores_by_trace: dict[str, list[Score]] = {}
        if with_scores and rows:
            trace_ids = sorted({item.trace_id for item, _ in rows})
            for score in await self._telemetry.scores_of_traces(project_id, trace_ids):
                if score.trace_id:
                    scores_by_trace.setdefault(score.trace_id, []).append(score)
        views = []
        for item, run in rows:
            scores = None
            if with_scores:
                scores = sorted(
                    (
                        score
                        for score in scores_by_trace.get(item.trace_id, [])
                        if score.observation_id in (None, item.observation_id)
                    ),
                    key=lambda score: (score.timestamp, score.id),
                    reverse=True,
                )[:score_limit]
            observation = observations.get(item.observation_id) if item.observation_id else None
            views.append(ExperimentItemView(item, run, observation, scores))
        return views
