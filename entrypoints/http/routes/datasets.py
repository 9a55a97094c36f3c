"""Datasets, dataset items, dataset runs and experiments over HTTP, in Langfuse's shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from aiohttp import web
from multidict import MultiMapping

from fathom.core.domain.datasets import (
    Dataset,
    DatasetRun,
    DatasetRunItem,
    FieldCondition,
    metadata_object,
    parse_filter,
)
from fathom.core.domain.errors import InvalidInput
from fathom.core.ports.datasets import ExperimentQuery
from fathom.core.usecases.datasets import (
    CreateDataset,
    CreateDatasetRunItem,
    DeleteDatasetItem,
    DeleteDatasetRun,
    ExperimentItemView,
    ExperimentView,
    GetDataset,
    GetDatasetItem,
    GetDatasetRun,
    ListDatasetItems,
    ListDatasetRunItems,
    ListDatasetRuns,
    ListDatasets,
    ListExperimentItems,
    ListExperiments,
    NamedItem,
    UpsertDatasetItem,
)
from fathom.entrypoints.http import params
from fathom.entrypoints.http.context import project_id, settings, use
from fathom.entrypoints.http.json import json_response, read_json
from fathom.entrypoints.http.presenters import iso, page_meta, score_v3_json

routes = web.RouteTableDef()

EXPERIMENT_FIELDS = {"core", "metadata", "scores"}
EXPERIMENT_ITEM_FIELDS = {
    "core",
    "dataset",
    "io",
    "metadata",
    "itemMetadata",
    "experimentMetadata",
    "scores",
}
EXPERIMENT_FILTER_COLUMNS = {
    "id": "experiment_id",
    "name": "experiment_name",
    "datasetId": "dataset_id",
}
EXPERIMENT_ITEM_FILTER_COLUMNS = {
    "experimentId": "experiment_id",
    "experimentName": "experiment_name",
    "experimentItemId": "item_id",
    "datasetId": "dataset_id",
}
# Upstream scores experiment rows with the `core` and `subject` groups of ScoreV3.
SCORE_GROUPS = {"subject"}


# --- shapes -----------------------------------------------------------------------------------


def dataset_json(dataset: Dataset) -> dict[str, Any]:
    return {
        "id": dataset.id,
        "name": dataset.name,
        "description": dataset.description,
        "metadata": dataset.metadata,
        "inputSchema": dataset.input_schema,
        "expectedOutputSchema": dataset.expected_output_schema,
        "projectId": dataset.project_id,
        "createdAt": iso(dataset.created_at),
        "updatedAt": iso(dataset.updated_at),
    }


def item_json(named: NamedItem) -> dict[str, Any]:
    item = named.item
    return {
        "id": item.id,
        "status": item.status.value,
        "input": item.input,
        "expectedOutput": item.expected_output,
        "metadata": item.metadata,
        "sourceTraceId": item.source_trace_id,
        "sourceObservationId": item.source_observation_id,
        "datasetId": item.dataset_id,
        "datasetName": named.dataset_name,
        "createdAt": iso(item.created_at),
        "updatedAt": iso(item.updated_at),
        # Media references in items are not resolved yet: none are reported.
        "mediaReferences": [],
    }


def run_json(run: DatasetRun, dataset_name: str) -> dict[str, Any]:
    return {
        "id": run.id,
        "name": run.name,
        "description": run.description,
        "metadata": run.metadata,
        "datasetId": run.dataset_id,
        "datasetName": dataset_name,
        "createdAt": iso(run.created_at),
        "updatedAt": iso(run.updated_at),
    }


def run_item_json(item: DatasetRunItem, run_name: str) -> dict[str, Any]:
    return {
        "id": item.id,
        "datasetRunId": item.dataset_run_id,
        "datasetRunName": run_name,
        "datasetItemId": item.dataset_item_id,
        "traceId": item.trace_id,
        "observationId": item.observation_id,
        "createdAt": iso(item.created_at),
        "updatedAt": iso(item.updated_at),
    }


def experiment_json(view: ExperimentView, groups: set[str]) -> dict[str, Any]:
    summary = view.summary
    run = summary.run
    out: dict[str, Any] = {
        "id": run.id,
        "name": run.name,
        "description": run.description,
        "startTime": iso(summary.start_time),
        "endTime": iso(summary.end_time),
        "itemCount": summary.item_count,
        "datasetId": run.dataset_id,
    }
    if "metadata" in groups:
        out["metadata"] = metadata_object(run.metadata)
    if view.scores is not None:
        out["scores"] = [score_v3_json(score, SCORE_GROUPS) for score in view.scores]
    return out


def experiment_item_json(view: ExperimentItemView, groups: set[str]) -> dict[str, Any]:
    item, run, observation = view.item, view.run, view.observation
    out: dict[str, Any] = {
        "id": item.id,
        "traceId": item.trace_id,
        "startTime": iso(item.start_time),
        "endTime": iso(item.end_time),
        "level": item.level.value,
        "environment": item.environment,
        "experimentId": run.id,
        "experimentName": run.name,
        "experimentItemId": item.dataset_item_id,
    }
    if "dataset" in groups:
        out["experimentDatasetId"] = run.dataset_id
        out["experimentItemVersion"] = iso(item.dataset_item_version)
    if "io" in groups:
        out["input"] = observation.input if observation else None
        out["output"] = observation.output if observation else None
        out["expectedOutput"] = item.expected_output
    if "metadata" in groups:
        out["metadata"] = observation.metadata if observation else None
    if "itemMetadata" in groups:
        out["experimentItemMetadata"] = metadata_object(item.item_metadata)
    if "experimentMetadata" in groups:
        out["experimentMetadata"] = metadata_object(run.metadata)
        out["experimentDescription"] = run.description
    if view.scores is not None:
        out["scores"] = [score_v3_json(score, SCORE_GROUPS) for score in view.scores]
    return out


# --- datasets ---------------------------------------------------------------------------------


def _paging(query: MultiMapping[str]) -> tuple[int, int]:
    return (
        params.integer(query, "page", 1),
        params.integer(query, "limit", 50, maximum=100),
    )


@routes.get("/api/public/v2/datasets")
async def list_datasets(request: web.Request) -> web.Response:
    project = await project_id(request)
    page, limit = _paging(request.query)
    found = await use(request, ListDatasets)(project, page, limit)
    return json_response(
        {
            "data": [dataset_json(d) for d in found.items],
            "meta": page_meta(page, limit, found.total),
        }
    )


@routes.post("/api/public/v2/datasets")
async def create_dataset(request: web.Request) -> web.Response:
    project = await project_id(request)
    body = await read_json(request, settings(request).max_body_bytes)
    dataset = await use(request, CreateDataset)(project, body)
    return json_response(dataset_json(dataset))


@routes.get("/api/public/v2/datasets/{dataset_name}")
async def get_dataset(request: web.Request) -> web.Response:
    project = await project_id(request)
    dataset = await use(request, GetDataset)(project, request.match_info["dataset_name"])
    return json_response(dataset_json(dataset))


# --- dataset items ----------------------------------------------------------------------------


@routes.post("/api/public/dataset-items")
async def upsert_dataset_item(request: web.Request) -> web.Response:
    project = await project_id(request)
    config = settings(request)
    # Items carry whole inputs and outputs: upstream allows 4.5 MB here, like ingestion.
    limit = max(config.max_body_bytes, config.max_ingestion_body_bytes)
    body = await read_json(request, limit)
    named = await use(request, UpsertDatasetItem)(project, body)
    return json_response(item_json(named))


@routes.get("/api/public/dataset-items")
async def list_dataset_items(request: web.Request) -> web.Response:
    project = await project_id(request)
    query = request.query
    page, limit = _paging(query)
    found = await use(request, ListDatasetItems)(
        project,
        dataset_name=params.string(query, "datasetName"),
        source_trace_id=params.string(query, "sourceTraceId"),
        source_observation_id=params.string(query, "sourceObservationId"),
        version=params.timestamp(query, "version"),
        page=page,
        limit=limit,
    )
    return json_response(
        {"data": [item_json(i) for i in found.items], "meta": page_meta(page, limit, found.total)}
    )


@routes.get("/api/public/dataset-items/{item_id}")
async def get_dataset_item(request: web.Request) -> web.Response:
    project = await project_id(request)
    named = await use(request, GetDatasetItem)(project, request.match_info["item_id"])
    return json_response(item_json(named))


@routes.delete("/api/public/dataset-items/{item_id}")
async def delete_dataset_item(request: web.Request) -> web.Response:
    project = await project_id(request)
    await use(request, DeleteDatasetItem)(project, request.match_info["item_id"])
    return json_response({"message": "Dataset item successfully deleted"})


# --- dataset runs -----------------------------------------------------------------------------


@routes.post("/api/public/dataset-run-items")
async def create_dataset_run_item(request: web.Request) -> web.Response:
    project = await project_id(request)
    body = await read_json(request, settings(request).max_body_bytes)
    item, run = await use(request, CreateDatasetRunItem)(project, body)
    return json_response(run_item_json(item, run.name))


@routes.get("/api/public/dataset-run-items")
async def list_dataset_run_items(request: web.Request) -> web.Response:
    project = await project_id(request)
    query = request.query
    dataset_id = _required(query, "datasetId")
    run_name = _required(query, "runName")
    page, limit = _paging(query)
    run, found = await use(request, ListDatasetRunItems)(project, dataset_id, run_name, page, limit)
    return json_response(
        {
            "data": [run_item_json(item, run.name) for item in found.items],
            "meta": page_meta(page, limit, found.total),
        }
    )


@routes.get("/api/public/datasets/{dataset_name}/runs")
async def list_dataset_runs(request: web.Request) -> web.Response:
    project = await project_id(request)
    page, limit = _paging(request.query)
    dataset, found = await use(request, ListDatasetRuns)(
        project, request.match_info["dataset_name"], page, limit
    )
    return json_response(
        {
            "data": [run_json(run, dataset.name) for run in found.items],
            "meta": page_meta(page, limit, found.total),
        }
    )


@routes.get("/api/public/datasets/{dataset_name}/runs/{run_name}")
async def get_dataset_run(request: web.Request) -> web.Response:
    project = await project_id(request)
    found = await use(request, GetDatasetRun)(
        project, request.match_info["dataset_name"], request.match_info["run_name"]
    )
    return json_response(
        {
            **run_json(found.run, found.dataset.name),
            "datasetRunItems": [run_item_json(item, found.run.name) for item in found.items],
        }
    )


@routes.delete("/api/public/datasets/{dataset_name}/runs/{run_name}")
async def delete_dataset_run(request: web.Request) -> web.Response:
    project = await project_id(request)
    await use(request, DeleteDatasetRun)(
        project, request.match_info["dataset_name"], request.match_info["run_name"]
    )
    return json_response({"message": "Dataset run successfully deleted"})


# --- experiments ------------------------------------------------------------------------------


def _required(query: MultiMapping[str], name: str) -> str:
    value = params.string(query, name)
    if value is None:
        raise InvalidInput(f"Invalid request data: query parameter '{name}' is required")
    return value


def _experiment_query(
    query: MultiMapping[str], columns: dict[str, str], cursor_key: str
) -> ExperimentQuery:
    """The comma-separated list parameters and the `filter` JSON share the column names."""
    from_start = params.timestamp(query, "fromStartTime")
    if from_start is None:
        raise InvalidInput("Invalid request data: query parameter 'fromStartTime' is required")
    conditions = [
        FieldCondition(field, "any of", tuple(values))
        for name, field in columns.items()
        if (values := params.strings(query, name))
    ]
    raw_filter = query.get("filter")
    if raw_filter:
        try:
            parsed = orjson.loads(raw_filter)
        except orjson.JSONDecodeError:
            raise InvalidInput("Invalid JSON in filter parameter") from None
        conditions += parse_filter(parsed, columns)
    return ExperimentQuery(
        from_start_time=from_start,
        to_start_time=params.timestamp(query, "toStartTime"),
        limit=params.integer(query, "limit", 50, maximum=100),
        conditions=conditions,
        after=_cursor(query, cursor_key),
    )


def _cursor(query: MultiMapping[str], key: str) -> tuple[datetime, str] | None:
    """Upstream's versioned cursor `{v: 1, lastTime, lastTraceId, lastId, lastExperimentId}`."""
    cursor = params.decode_cursor(query)
    if cursor is None:
        return None
    try:
        if cursor.get("v") != 1:
            raise ValueError("unknown cursor version")
        raw_time = str(cursor["lastTime"])
        last_time = datetime.fromisoformat(raw_time.replace("Z", "+00:00"))
        return last_time, str(cursor[key])
    except (KeyError, ValueError, TypeError):
        raise InvalidInput("Invalid cursor format") from None


def _next_cursor(last_time: datetime, trace_id: str, last_id: str, experiment_id: str) -> str:
    return params.encode_cursor(
        {
            "v": 1,
            "lastTime": iso_micro(last_time),
            "lastTraceId": trace_id,
            "lastId": last_id,
            "lastExperimentId": experiment_id,
        },
        urlsafe=True,
    ).rstrip("=")


def iso_micro(value: datetime) -> str:
    # Cursors keep microseconds: a millisecond-rounded time could skip or repeat rows.
    return value.isoformat(timespec="microseconds")


@routes.get("/api/public/experiments")
async def list_experiments(request: web.Request) -> web.Response:
    project = await project_id(request)
    query = request.query
    groups = params.field_groups(query, EXPERIMENT_FIELDS, {"core"})
    score_limit = params.integer(query, "scoreLimit", 50, maximum=50)
    experiment_query = _experiment_query(query, EXPERIMENT_FILTER_COLUMNS, "lastExperimentId")
    wanted = experiment_query.limit
    experiment_query.limit = wanted + 1
    views = await use(request, ListExperiments)(
        project, experiment_query, with_scores="scores" in groups, score_limit=score_limit
    )
    meta: dict[str, Any] = {}
    if len(views) > wanted:
        views = views[:wanted]
        last = views[-1].summary
        meta["cursor"] = _next_cursor(last.last_activity, "", last.run.id, last.run.id)
    return json_response({"data": [experiment_json(v, groups) for v in views], "meta": meta})


@routes.get("/api/public/experiment-items")
async def list_experiment_items(request: web.Request) -> web.Response:
    project = await project_id(request)
    query = request.query
    groups = params.field_groups(query, EXPERIMENT_ITEM_FIELDS, {"core", "dataset"})
    score_limit = params.integer(query, "scoreLimit", 50, maximum=50)
    experiment_query = _experiment_query(query, EXPERIMENT_ITEM_FILTER_COLUMNS, "lastId")
    wanted = experiment_query.limit
    experiment_query.limit = wanted + 1
    views = await use(request, ListExperimentItems)(
        project,
        experiment_query,
        with_observations=bool(groups & {"io", "metadata"}),
        with_scores="scores" in groups,
        score_limit=score_limit,
    )
    meta: dict[str, Any] = {}
    if len(views) > wanted:
        views = views[:wanted]
        last = views[-1]
        meta["cursor"] = _next_cursor(
            last.item.start_time, last.item.trace_id, last.item.id, last.run.id
        )
    return json_response({"data": [experiment_item_json(v, groups) for v in views], "meta": meta})
