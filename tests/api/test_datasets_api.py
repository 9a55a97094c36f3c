"""Datasets, items, runs and experiments over HTTP, in Langfuse's shapes.

The app is built here around the records runtime (create_app() freezes its router) with the
dataset use cases wired to a controllable clock and an in-memory telemetry store, which holds
the observations and scores the experiment reads join in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from fathom.core.domain.scores import Score, ScoreDataType
from fathom.core.domain.tracing import Level, Observation, ObservationType
from fathom.core.ports.records import RecordStore
from fathom.core.ports.system import UuidGenerator
from fathom.core.ports.telemetry import Page, ScoreQuery
from fathom.core.usecases.access import CreateApiKey
from fathom.core.usecases.datasets import (
    CreateDataset,
    CreateDatasetRunItem,
    DeleteDatasetItem,
    DeleteDatasetRun,
    GetDataset,
    GetDatasetItem,
    GetDatasetRun,
    ListDatasetItems,
    ListDatasetRunItems,
    ListDatasetRuns,
    ListDatasets,
    ListExperimentItems,
    ListExperiments,
    RecordExperimentLinks,
    UpsertDatasetItem,
)
from fathom.entrypoints.bootstrap import Runtime
from fathom.entrypoints.http import context
from fathom.entrypoints.http.errors import error_middleware
from fathom.entrypoints.http.routes import datasets
from tests.conftest import ORG_ID, PROJECT_ID, basic_auth
from tests.unit.fakes import FakeClock

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FROM = "2025-01-01T00:00:00Z"

DATASET_KEYS = {
    "id",
    "name",
    "description",
    "metadata",
    "inputSchema",
    "expectedOutputSchema",
    "projectId",
    "createdAt",
    "updatedAt",
}
ITEM_KEYS = {
    "id",
    "status",
    "input",
    "expectedOutput",
    "metadata",
    "sourceTraceId",
    "sourceObservationId",
    "datasetId",
    "datasetName",
    "createdAt",
    "updatedAt",
    "mediaReferences",
}
RUN_KEYS = {
    "id",
    "name",
    "description",
    "metadata",
    "datasetId",
    "datasetName",
    "createdAt",
    "updatedAt",
}
RUN_ITEM_KEYS = {
    "id",
    "datasetRunId",
    "datasetRunName",
    "datasetItemId",
    "traceId",
    "observationId",
    "createdAt",
    "updatedAt",
}
EXPERIMENT_KEYS = {"id", "name", "description", "startTime", "endTime", "itemCount", "datasetId"}
EXPERIMENT_ITEM_KEYS = {
    "id",
    "traceId",
    "startTime",
    "endTime",
    "level",
    "environment",
    "experimentId",
    "experimentName",
    "experimentItemId",
}


@dataclass
class FakeTelemetry:
    """The reads the dataset use cases make of the telemetry store."""

    observations: dict[str, Observation] = field(default_factory=dict)
    scores: list[Score] = field(default_factory=list)

    async def get_observations(self, project_id: str, ids: list[str]) -> list[Observation]:
        return [self.observations[i] for i in ids if i in self.observations]

    async def list_scores(
        self, project_id: str, query: ScoreQuery, *, with_total: bool = True
    ) -> Page[Score]:
        found = [
            s
            for s in self.scores
            if (query.dataset_run_id is None or s.dataset_run_id == query.dataset_run_id)
            and (query.trace_id is None or s.trace_id == query.trace_id)
        ]
        found.sort(key=lambda s: (s.timestamp, s.id), reverse=True)
        return Page(items=found[: query.limit], total=len(found))

    async def scores_of_traces(self, project_id: str, trace_ids: list[str]) -> list[Score]:
        return [s for s in self.scores if s.trace_id in trace_ids]


@dataclass
class Env:
    client: TestClient
    clock: FakeClock
    telemetry: FakeTelemetry
    record: RecordExperimentLinks
    runtime: Runtime

    async def call(
        self, method: str, path: str, body: Any = None, status: int = 200, **kw: Any
    ) -> Any:
        response = await self.client.request(method, path, json=body, headers=basic_auth(), **kw)
        assert response.status == status, await response.text()
        return await response.json()


@pytest.fixture
async def env(
    records_runtime: Runtime, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> Env:
    clock = FakeClock(T0)
    telemetry = FakeTelemetry()
    records = records_runtime.resolve(RecordStore)
    ids = UuidGenerator()
    container = records_runtime.wiring.container
    instances: list[Any] = [
        CreateDataset(records, clock, ids),
        ListDatasets(records),
        GetDataset(records),
        UpsertDatasetItem(records, clock, ids),
        ListDatasetItems(records),
        GetDatasetItem(records),
        DeleteDatasetItem(records, clock),
        CreateDatasetRunItem(records, telemetry, clock, ids),  # type: ignore[arg-type]
        ListDatasetRunItems(records),
        ListDatasetRuns(records),
        GetDatasetRun(records),
        DeleteDatasetRun(records),
        ListExperiments(records, telemetry),  # type: ignore[arg-type]
        ListExperimentItems(records, telemetry),  # type: ignore[arg-type]
    ]
    for instance in instances:
        container.register(type(instance), instance=instance)
    app = web.Application(middlewares=[error_middleware])
    context.install(app, records_runtime)
    app.add_routes(datasets.routes)
    client = await aiohttp_client(app)
    record = RecordExperimentLinks(records, telemetry, clock)  # type: ignore[arg-type]
    return Env(client, clock, telemetry, record, records_runtime)


async def make_dataset(env: Env, name: str = "qa", **extra: Any) -> dict[str, Any]:
    return await env.call("POST", "/api/public/v2/datasets", {"name": name, **extra})


async def make_item(env: Env, dataset: str = "qa", **fields: Any) -> dict[str, Any]:
    return await env.call("POST", "/api/public/dataset-items", {"datasetName": dataset, **fields})


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- datasets ---------------------------------------------------------------------------------


async def test_create_dataset_with_the_sdk_body(env: Env) -> None:
    body = await make_dataset(
        env,
        "probe-ds",
        description="d",
        metadata={"dm": 1},
        inputSchema=None,
        expectedOutputSchema=None,
    )
    assert set(body) == DATASET_KEYS
    assert body["name"] == "probe-ds" and body["projectId"] == PROJECT_ID
    assert (body["description"], body["metadata"]) == ("d", {"dm": 1})
    assert body["inputSchema"] is None and body["expectedOutputSchema"] is None
    assert body["createdAt"] == body["updatedAt"] == "2026-01-01T00:00:00.000Z"
    assert await env.call("GET", "/api/public/v2/datasets/probe-ds") == body


async def test_duplicate_name_updates_the_dataset_as_upstream(env: Env) -> None:
    first = await make_dataset(env, description="one", metadata={"a": 1})
    env.clock.advance(5)
    # Upstream upserts on the name: same id, null fields keep their stored values.
    second = await make_dataset(env, description=None, metadata=None)
    assert second["id"] == first["id"]
    assert (second["description"], second["metadata"]) == ("one", {"a": 1})
    assert second["createdAt"] == first["createdAt"] != second["updatedAt"]
    third = await make_dataset(env, description="two")
    assert third["id"] == first["id"] and third["description"] == "two"
    listing = await env.call("GET", "/api/public/v2/datasets")
    assert listing["meta"]["totalItems"] == 1


async def test_list_datasets_newest_first_with_paging(env: Env) -> None:
    for name in ("a", "b", "c"):
        await make_dataset(env, name)
        env.clock.advance(1)
    page = await env.call("GET", "/api/public/v2/datasets?page=1&limit=2")
    assert [d["name"] for d in page["data"]] == ["c", "b"]
    assert page["meta"] == {"page": 1, "limit": 2, "totalItems": 3, "totalPages": 2}
    page = await env.call("GET", "/api/public/v2/datasets?page=2&limit=2")
    assert [d["name"] for d in page["data"]] == ["a"]


async def test_folder_names_travel_url_encoded(env: Env) -> None:
    created = await make_dataset(env, "evaluation/qa dataset")
    assert await env.call("GET", "/api/public/v2/datasets/evaluation%2Fqa%20dataset") == created
    items = await env.call(
        "GET", "/api/public/dataset-items", params={"datasetName": "evaluation/qa dataset"}
    )
    assert items["data"] == []


async def test_unknown_dataset_is_404(env: Env) -> None:
    body = await env.call("GET", "/api/public/v2/datasets/nope", status=404)
    assert body == {"message": "Dataset not found", "error": "LangfuseNotFoundError"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, "name is required"),
        ({"name": 5}, "name is required"),
        ({"name": "/x"}, "Dataset name not valid. Name cannot start with a slash"),
        ({"name": "x", "description": 3}, "description must be a string or null"),
        ({"name": "x", "inputSchema": {"type": "txt"}}, "inputSchema is not a valid JSON Schema"),
        ({"name": "x", "expectedOutputSchema": {"foo": 1}}, "unknown keyword: 'foo'"),
        ([1], "expected a JSON object"),
    ],
)
async def test_invalid_dataset_bodies_are_400(env: Env, body: Any, expected: str) -> None:
    result = await env.call("POST", "/api/public/v2/datasets", body, status=400)
    assert result["error"] == "InvalidRequestError"
    assert expected in result["message"]


async def test_schemas_are_kept_cleared_and_checked_against_stored_items(env: Env) -> None:
    schema = {"type": "object", "required": ["q"]}
    created = await make_dataset(env, inputSchema=schema)
    assert created["inputSchema"] == schema
    kept = await make_dataset(env, description="x")  # absent schema: kept
    assert kept["inputSchema"] == schema
    cleared = await make_dataset(env, inputSchema=None)  # explicit null: removed
    assert cleared["inputSchema"] is None
    await make_item(env, id="bad", input={"other": 1})
    await make_item(env, id="good", input={"q": 1})
    refused = await env.call(
        "POST", "/api/public/v2/datasets", {"name": "qa", "inputSchema": schema}, 400
    )
    assert refused["message"].startswith("Schema validation failed for 1 item(s). Details: ")
    assert '"datasetItemId": "bad"' in refused["message"]
    assert (await env.call("GET", "/api/public/v2/datasets/qa"))["inputSchema"] is None


# --- dataset items ----------------------------------------------------------------------------

SDK_ITEM = {
    "datasetName": "qa",
    "input": {"q": "2+2"},
    "expectedOutput": "4",
    "metadata": {"im": 1},
    "sourceTraceId": None,
    "sourceObservationId": None,
    "id": "0ea317ee-d744-4f30-94af-a83659d3cb30",
    "status": None,
}


async def test_create_item_with_the_sdk_body(env: Env) -> None:
    dataset = await make_dataset(env)
    item = await env.call("POST", "/api/public/dataset-items", SDK_ITEM)
    assert set(item) == ITEM_KEYS
    assert item["id"] == SDK_ITEM["id"] and item["status"] == "ACTIVE"
    assert (item["input"], item["expectedOutput"], item["metadata"]) == (
        {"q": "2+2"},
        "4",
        {"im": 1},
    )
    assert (item["datasetId"], item["datasetName"]) == (dataset["id"], "qa")
    assert item["mediaReferences"] == []
    assert item["sourceTraceId"] is None and item["sourceObservationId"] is None
    assert await env.call("GET", f"/api/public/dataset-items/{item['id']}") == item


async def test_items_without_id_get_one_and_need_an_input(env: Env) -> None:
    await make_dataset(env)
    item = await make_item(env, input="hello", sourceTraceId="t1", sourceObservationId="o1")
    assert len(item["id"]) == 36
    assert (item["sourceTraceId"], item["sourceObservationId"]) == ("t1", "o1")
    refused = await env.call("POST", "/api/public/dataset-items", {"datasetName": "qa"}, 400)
    assert refused["message"] == "Dataset item validation failed: Dataset item input cannot be null"
    # With an id the input may be left out, as upstream allows.
    assert (await make_item(env, id="no-input"))["input"] is None


async def test_upsert_by_id_keeps_what_is_null_or_absent(env: Env) -> None:
    await make_dataset(env)
    first = await env.call("POST", "/api/public/dataset-items", SDK_ITEM)
    env.clock.advance(10)
    second = await make_item(
        env, id=SDK_ITEM["id"], input=None, expectedOutput="5", status="ARCHIVED"
    )
    assert second["input"] == {"q": "2+2"} and second["metadata"] == {"im": 1}
    assert (second["expectedOutput"], second["status"]) == ("5", "ARCHIVED")
    assert second["createdAt"] == first["createdAt"]
    assert second["updatedAt"] == "2026-01-01T00:00:10.000Z"
    back = await make_item(env, id=SDK_ITEM["id"], status="ACTIVE")
    assert back["status"] == "ACTIVE" and back["expectedOutput"] == "5"


async def test_item_id_of_another_dataset_is_409(env: Env) -> None:
    await make_dataset(env, "first")
    await make_dataset(env, "second")
    await make_item(env, "first", id="shared", input=1)
    conflict = await env.call(
        "POST", "/api/public/dataset-items", {"datasetName": "second", "id": "shared"}, 409
    )
    assert conflict["error"] == "LangfuseConflictError"
    assert "already exists in a dataset other than second" in conflict["message"]
    # The item stays where it was.
    assert (await env.call("GET", "/api/public/dataset-items/shared"))["datasetName"] == "first"


async def test_item_of_unknown_dataset_is_404(env: Env) -> None:
    body = await env.call(
        "POST", "/api/public/dataset-items", {"datasetName": "nope", "input": 1}, 404
    )
    assert body["message"] == f"Dataset nope not found for project {PROJECT_ID}"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"input": {"x": 1}}, "Input validation failed: must have required property 'q'"),
        ({"input": {"q": 1}}, "Input validation failed: /q must be string"),
        (
            {"input": {"q": "a"}, "expectedOutput": 4},
            "Expected output validation failed: must be string",
        ),
        ({"input": {"q": "a"}, "status": "DONE"}, "status must be one of ['ACTIVE', 'ARCHIVED']"),
        ({"input": {"q": "a"}, "id": "x" * 256}, "id must be at most 255 characters"),
        ({"input": {"q": "a"}, "sourceTraceId": 1}, "sourceTraceId must be a string or null"),
    ],
)
async def test_invalid_items_are_400_naming_the_problem(
    env: Env, fields: dict[str, Any], expected: str
) -> None:
    await make_dataset(
        env,
        inputSchema={"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
        expectedOutputSchema={"type": "string"},
    )
    body = await env.call("POST", "/api/public/dataset-items", {"datasetName": "qa", **fields}, 400)
    assert body["error"] == "InvalidRequestError"
    assert expected in body["message"]


async def test_list_items_filters_and_pages(env: Env) -> None:
    await make_dataset(env)
    await make_dataset(env, "other")
    for n in range(3):
        await make_item(env, id=f"i{n}", input=n, sourceTraceId="t" if n else None)
        env.clock.advance(1)
    await make_item(env, "other", id="o1", input="x", sourceTraceId="t")
    await make_item(env, id="archived", input="a", status="ARCHIVED")

    everything = await env.call("GET", "/api/public/dataset-items")
    assert [i["id"] for i in everything["data"]] == ["o1", "i2", "i1", "i0"]  # newest first
    assert {i["datasetName"] for i in everything["data"]} == {"qa", "other"}
    page = await env.call("GET", "/api/public/dataset-items?datasetName=qa&page=2&limit=2")
    assert [i["id"] for i in page["data"]] == ["i0"]
    assert page["meta"] == {"page": 2, "limit": 2, "totalItems": 3, "totalPages": 2}
    by_trace = await env.call("GET", "/api/public/dataset-items?sourceTraceId=t")
    assert [i["id"] for i in by_trace["data"]] == ["o1", "i2", "i1"]
    # Archived items are left out of lists (future runs skip them) but can be fetched.
    assert (await env.call("GET", "/api/public/dataset-items/archived"))["status"] == "ARCHIVED"
    missing = await env.call("GET", "/api/public/dataset-items?datasetName=nope", status=404)
    assert missing["message"] == "Dataset not found"


async def test_items_as_of_a_version(env: Env) -> None:
    await make_dataset(env)
    t_created = env.clock.now()
    await make_item(env, id="i", input="v1")
    await make_item(env, id="gone", input="g")
    env.clock.advance(60)
    t_updated = env.clock.now()
    await make_item(env, id="i", input="v2")
    env.clock.advance(60)
    t_archived = env.clock.now()
    await make_item(env, id="i", status="ARCHIVED")
    env.clock.advance(60)
    t_deleted = env.clock.now()
    await env.call("DELETE", "/api/public/dataset-items/gone")

    async def as_of(moment: datetime) -> dict[str, Any]:
        listing = await env.call(
            "GET", "/api/public/dataset-items", params={"datasetName": "qa", "version": iso(moment)}
        )
        return {item["id"]: item["input"] for item in listing["data"]}

    assert await as_of(t_created - timedelta(seconds=1)) == {}
    assert await as_of(t_created) == {"i": "v1", "gone": "g"}
    assert await as_of(t_updated + timedelta(seconds=30)) == {"i": "v2", "gone": "g"}
    assert await as_of(t_archived + timedelta(seconds=30)) == {"gone": "g"}
    assert await as_of(t_deleted) == {}
    offset = (
        (t_updated + timedelta(seconds=30))
        .astimezone(datetime.now().astimezone().tzinfo)
        .isoformat()
    )
    # Any offset is read as the instant it names.
    listing = await env.call(
        "GET", "/api/public/dataset-items", params={"datasetName": "qa", "version": offset}
    )
    assert {i["input"] for i in listing["data"]} == {"v2", "g"}
    refused = await env.call("GET", f"/api/public/dataset-items?version={iso(T0)}", status=400)
    assert "datasetName is required when version is given" in refused["message"]
    bad = await env.call("GET", "/api/public/dataset-items?datasetName=qa&version=soon", status=400)
    assert "version" in bad["message"]


async def test_delete_item(env: Env) -> None:
    await make_dataset(env)
    await make_item(env, id="i", input=1)
    assert await env.call("DELETE", "/api/public/dataset-items/i") == {
        "message": "Dataset item successfully deleted"
    }
    missing = await env.call("GET", "/api/public/dataset-items/i", status=404)
    assert missing == {"message": "Dataset item not found", "error": "LangfuseNotFoundError"}
    again = await env.call("DELETE", "/api/public/dataset-items/i", status=404)
    assert again["message"] == f"Dataset item with id i not found for project {PROJECT_ID}"
    # The id can be used again, even in another dataset.
    await make_dataset(env, "other")
    env.clock.advance(1)
    reborn = await make_item(env, "other", id="i", input=2)
    assert reborn["datasetName"] == "other" and reborn["input"] == 2


# --- dataset runs (legacy) ----------------------------------------------------------------------


async def test_dataset_run_items_create_the_run_by_name(env: Env) -> None:
    dataset = await make_dataset(env)
    await make_item(env, id="i1", input=1)
    await make_item(env, id="i2", input=2)
    first = await env.call(
        "POST",
        "/api/public/dataset-run-items",
        {
            "runName": "run-1",
            "runDescription": "first run",
            "metadata": {"model": "m"},
            "datasetItemId": "i1",
            "traceId": "trace-1",
            "observationId": None,
        },
    )
    assert set(first) == RUN_ITEM_KEYS
    assert (first["datasetRunName"], first["datasetItemId"], first["traceId"]) == (
        "run-1",
        "i1",
        "trace-1",
    )
    assert first["observationId"] is None
    env.clock.advance(1)
    second = await env.call(
        "POST",
        "/api/public/dataset-run-items",
        {"runName": "run-1", "datasetItemId": "i2", "traceId": "trace-2", "observationId": "o2"},
    )
    assert second["datasetRunId"] == first["datasetRunId"]

    runs = await env.call("GET", "/api/public/datasets/qa/runs")
    assert runs["meta"]["totalItems"] == 1
    (run,) = runs["data"]
    assert set(run) == RUN_KEYS
    assert (run["name"], run["description"], run["metadata"]) == (
        "run-1",
        "first run",
        {"model": "m"},
    )
    assert (run["datasetId"], run["datasetName"]) == (dataset["id"], "qa")

    with_items = await env.call("GET", "/api/public/datasets/qa/runs/run-1")
    assert set(with_items) == RUN_KEYS | {"datasetRunItems"}
    assert [i["id"] for i in with_items["datasetRunItems"]] == [second["id"], first["id"]]

    listed = await env.call(
        "GET", f"/api/public/dataset-run-items?datasetId={dataset['id']}&runName=run-1&limit=1"
    )
    assert listed["data"] == [second]
    assert listed["meta"] == {"page": 1, "limit": 1, "totalItems": 2, "totalPages": 2}


async def test_run_id_is_the_sdk_experiment_id(env: Env) -> None:
    dataset = await make_dataset(env)
    await make_item(env, id="i1", input=1)
    created = await env.call(
        "POST",
        "/api/public/dataset-run-items",
        {"runName": "nightly", "datasetItemId": "i1", "traceId": "t"},
    )
    from fathom.core.domain.datasets import stable_experiment_id

    assert created["datasetRunId"] == stable_experiment_id(PROJECT_ID, dataset["id"], "nightly")


async def test_run_description_and_metadata_update_an_existing_run(env: Env) -> None:
    await make_dataset(env)
    await make_item(env, id="i1", input=1)
    body = {"runName": "r", "datasetItemId": "i1", "traceId": "t", "metadata": "plain"}
    await env.call("POST", "/api/public/dataset-run-items", body)
    await env.call(
        "POST",
        "/api/public/dataset-run-items",
        {**body, "runDescription": "now described", "metadata": {"k": 2}},
    )
    run = await env.call("GET", "/api/public/datasets/qa/runs/r")
    assert run["description"] == "now described"
    assert run["metadata"] == {"metadata": "plain", "k": 2}


async def test_run_item_from_an_observation_only(env: Env) -> None:
    await make_dataset(env)
    await make_item(env, id="i1", input=1)
    env.telemetry.observations["obs-1"] = Observation(
        "obs-1", PROJECT_ID, "trace-of-obs", ObservationType.SPAN, T0
    )
    item = await env.call(
        "POST",
        "/api/public/dataset-run-items",
        {"runName": "r", "datasetItemId": "i1", "observationId": "obs-1"},
    )
    assert (item["traceId"], item["observationId"]) == ("trace-of-obs", "obs-1")
    missing = await env.call(
        "POST",
        "/api/public/dataset-run-items",
        {"runName": "r", "datasetItemId": "i1", "observationId": "nope"},
        404,
    )
    assert missing["message"] == "Observation not found"


async def test_run_item_with_dataset_version_and_created_at(env: Env) -> None:
    await make_dataset(env)
    await make_item(env, id="i1", input="old")
    env.clock.advance(60)
    await make_item(env, id="i1", input="new")
    body = {
        "runName": "pinned",
        "datasetItemId": "i1",
        "traceId": "t",
        "datasetVersion": "2026-01-01T00:00:30Z",
        "createdAt": "2025-12-31T23:00:00Z",
    }
    item = await env.call("POST", "/api/public/dataset-run-items", body)
    assert item["createdAt"] == item["updatedAt"] == "2025-12-31T23:00:00.000Z"
    run = await env.call("GET", "/api/public/datasets/qa/runs/pinned")
    assert run["metadata"] == {"dataset_version": "2026-01-01T00:00:30.000Z"}
    too_early = {**body, "datasetVersion": "2025-01-01T00:00:00Z"}
    await env.call("POST", "/api/public/dataset-run-items", too_early, 404)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"runName": "r", "datasetItemId": "i1"}, 400, "observationId or traceId must be provided"),
        ({"datasetItemId": "i1", "traceId": "t"}, 400, "runName is required"),
        ({"runName": "r", "traceId": "t"}, 400, "datasetItemId is required"),
        ({"runName": "r", "datasetItemId": "nope", "traceId": "t"}, 404, "Dataset item not found"),
        (
            {"runName": "r", "datasetItemId": "archived", "traceId": "t"},
            404,
            "Dataset item not found",
        ),
        (
            {"runName": "r", "datasetItemId": "i1", "traceId": "t", "createdAt": "later"},
            400,
            "createdAt must be an ISO 8601 datetime",
        ),
    ],
)
async def test_bad_run_items(env: Env, body: dict[str, Any], status: int, message: str) -> None:
    await make_dataset(env)
    await make_item(env, id="i1", input=1)
    await make_item(env, id="archived", input=1, status="ARCHIVED")
    result = await env.call("POST", "/api/public/dataset-run-items", body, status)
    assert message in result["message"]


async def test_run_reads_and_delete(env: Env) -> None:
    dataset = await make_dataset(env)
    await make_item(env, id="i1", input=1)
    for name in ("old", "new"):
        await env.call(
            "POST",
            "/api/public/dataset-run-items",
            {"runName": name, "datasetItemId": "i1", "traceId": f"t-{name}"},
        )
        env.clock.advance(1)
    runs = await env.call("GET", "/api/public/datasets/qa/runs?limit=1")
    assert [r["name"] for r in runs["data"]] == ["new"]
    assert runs["meta"]["totalPages"] == 2

    deleted = await env.call("DELETE", "/api/public/datasets/qa/runs/old")
    assert deleted == {"message": "Dataset run successfully deleted"}
    await env.call("GET", "/api/public/datasets/qa/runs/old", status=404)
    await env.call("DELETE", "/api/public/datasets/qa/runs/old", status=404)
    await env.call(
        "GET", f"/api/public/dataset-run-items?datasetId={dataset['id']}&runName=old", status=404
    )
    assert (await env.call("GET", "/api/public/datasets/nope/runs", status=404))["message"] == (
        "Dataset not found"
    )
    missing = await env.call("GET", "/api/public/dataset-run-items?runName=new", status=400)
    assert "datasetId" in missing["message"]


async def test_deleting_an_item_removes_its_run_items(env: Env) -> None:
    await make_dataset(env)
    await make_item(env, id="i1", input=1)
    await make_item(env, id="i2", input=2)
    for item in ("i1", "i2"):
        await env.call(
            "POST",
            "/api/public/dataset-run-items",
            {"runName": "r", "datasetItemId": item, "traceId": f"t-{item}"},
        )
    await env.call("DELETE", "/api/public/dataset-items/i1")
    run = await env.call("GET", "/api/public/datasets/qa/runs/r")
    assert [i["datasetItemId"] for i in run["datasetRunItems"]] == ["i2"]


# --- experiments from SDK spans ---------------------------------------------------------------


def experiment_spans(
    env: Env,
    *,
    experiment_id: str,
    run_name: str,
    trace_id: str,
    item_id: str,
    dataset_id: str | None,
    start: datetime,
    task_output: Any = "4",
) -> tuple[list[tuple[str, str, dict[str, Any]]], list[Observation]]:
    """What the OTLP pipeline hands over for one item of `run_experiment`: the item-run root,
    the task span (the item's root observation) and an evaluator span, with their attributes."""
    root_id, task_id, evaluator_id = (f"{trace_id}-{n}" for n in ("run", "task", "eval"))
    common: dict[str, Any] = {
        "id": experiment_id,
        "name": run_name,
        "item_id": item_id,
        "item_root_observation_id": task_id,
        "metadata": {"em": "x"},
        "item_metadata": {"im": 1},
    }
    if dataset_id is not None:
        common["dataset_id"] = dataset_id
    described = {**common, "description": "desc", "item_expected_output": "4"}
    spans = [
        (root_id, start, start + timedelta(seconds=3), None, described),
        (task_id, start + timedelta(seconds=1), start + timedelta(seconds=2), root_id, described),
        (evaluator_id, start + timedelta(seconds=2), start + timedelta(seconds=3), root_id, common),
    ]
    links = []
    observations = []
    for span_id, begin, end, parent, attributes in spans:
        links.append((span_id, trace_id, attributes))
        observation = Observation(
            span_id,
            PROJECT_ID,
            trace_id,
            ObservationType.SPAN,
            begin,
            end_time=end,
            parent_observation_id=parent,
            environment="sdk-experiment",
            input={"q": "2+2"},
            output=task_output,
            metadata={"experiment_name": "exp"},
        )
        observations.append(observation)
        env.telemetry.observations[span_id] = observation
    return links, observations


async def test_sdk_experiment_becomes_a_dataset_run(env: Env) -> None:
    dataset = await make_dataset(env)
    await make_item(env, id="item-1", input={"q": "2+2"}, expectedOutput="4")
    links, observations = experiment_spans(
        env,
        experiment_id="exp-1",
        run_name="run-1",
        trace_id="trace-1",
        item_id="item-1",
        dataset_id=dataset["id"],
        start=T0,
    )
    await env.record(PROJECT_ID, links, observations)
    await env.record(PROJECT_ID, links, observations)  # a replayed batch changes nothing

    runs = await env.call("GET", "/api/public/datasets/qa/runs")
    assert runs["meta"]["totalItems"] == 1
    run = runs["data"][0]
    assert (run["id"], run["name"], run["description"]) == ("exp-1", "run-1", "desc")
    assert run["metadata"] == {"em": "x"}
    with_items = await env.call("GET", "/api/public/datasets/qa/runs/run-1")
    (item,) = with_items["datasetRunItems"]
    assert (item["id"], item["datasetItemId"], item["traceId"], item["observationId"]) == (
        "trace-1-task",
        "item-1",
        "trace-1",
        "trace-1-task",
    )
    assert item["datasetRunId"] == "exp-1" and item["datasetRunName"] == "run-1"


async def test_experiment_spans_in_separate_batches(env: Env) -> None:
    dataset = await make_dataset(env)
    links, observations = experiment_spans(
        env,
        experiment_id="exp-1",
        run_name="run-1",
        trace_id="trace-1",
        item_id="item-1",
        dataset_id=dataset["id"],
        start=T0,
    )
    # The evaluator span arrives first, alone; the task span comes later.
    await env.record(PROJECT_ID, [links[2]], [observations[2]])
    run = await env.call("GET", "/api/public/datasets/qa/runs/run-1")
    assert run["description"] is None
    await env.record(PROJECT_ID, links[:2], observations[:2])
    run = await env.call("GET", "/api/public/datasets/qa/runs/run-1")
    assert run["description"] == "desc"
    assert len(run["datasetRunItems"]) == 1
    items = await env.call("GET", f"/api/public/experiment-items?fromStartTime={FROM}&fields=io")
    (item,) = items["data"]
    # The task span's own times, not the evaluator's that came first.
    assert (item["startTime"], item["endTime"]) == (
        "2026-01-01T00:00:01.000Z",
        "2026-01-01T00:00:02.000Z",
    )
    assert item["expectedOutput"] == "4"


async def test_root_observation_read_from_telemetry_when_not_in_the_batch(env: Env) -> None:
    links, _ = experiment_spans(
        env,
        experiment_id="exp-1",
        run_name="run-1",
        trace_id="trace-1",
        item_id="item-1",
        dataset_id=None,
        start=T0,
    )
    await env.record(PROJECT_ID, [links[2]], [])
    (item,) = (await env.call("GET", f"/api/public/experiment-items?fromStartTime={FROM}"))["data"]
    assert item["startTime"] == "2026-01-01T00:00:01.000Z"
    assert (item["level"], item["environment"]) == ("DEFAULT", "sdk-experiment")


async def test_experiments_and_their_items(env: Env) -> None:
    dataset = await make_dataset(env)
    for n in range(2):
        await make_item(env, id=f"item-{n}", input=n)
    batch: list[Any] = []
    observations: list[Observation] = []
    for n in range(2):
        links, seen = experiment_spans(
            env,
            experiment_id="exp-ds",
            run_name="ds run",
            trace_id=f"trace-{n}",
            item_id=f"item-{n}",
            dataset_id=dataset["id"],
            start=T0 + timedelta(minutes=n),
        )
        batch += links
        observations += seen
    local, seen = experiment_spans(
        env,
        experiment_id="exp-local",
        run_name="local run",
        trace_id="trace-local",
        item_id="hash-of-input",
        dataset_id=None,
        start=T0 + timedelta(minutes=5),
    )
    seen[1].level = Level.ERROR  # the local item's task span failed
    await env.record(PROJECT_ID, batch + local, observations + seen)
    env.telemetry.scores += [
        Score("s-run", PROJECT_ID, "avg", T0, ScoreDataType.NUMERIC, 0.5, dataset_run_id="exp-ds"),
        Score(
            "s-item",
            PROJECT_ID,
            "acc",
            T0,
            ScoreDataType.NUMERIC,
            1.0,
            trace_id="trace-0",
            observation_id="trace-0-task",
        ),
        Score(
            "s-trace",
            PROJECT_ID,
            "t",
            T0,
            ScoreDataType.CATEGORICAL,
            string_value="ok",
            trace_id="trace-0",
        ),
        Score(
            "s-other",
            PROJECT_ID,
            "x",
            T0,
            ScoreDataType.NUMERIC,
            1.0,
            trace_id="trace-0",
            observation_id="trace-0-eval",
        ),
    ]

    listing = await env.call("GET", f"/api/public/experiments?fromStartTime={FROM}")
    assert [e["id"] for e in listing["data"]] == ["exp-local", "exp-ds"]  # latest activity first
    assert listing["meta"] == {}
    local_exp, ds_exp = listing["data"]
    assert set(ds_exp) == EXPERIMENT_KEYS
    assert (ds_exp["name"], ds_exp["description"], ds_exp["datasetId"]) == (
        "ds run",
        "desc",
        dataset["id"],
    )
    assert (ds_exp["startTime"], ds_exp["endTime"], ds_exp["itemCount"]) == (
        "2026-01-01T00:00:01.000Z",
        "2026-01-01T00:01:02.000Z",
        2,
    )
    assert local_exp["datasetId"] is None
    # A local-data experiment is no dataset's run.
    assert [r["id"] for r in (await env.call("GET", "/api/public/datasets/qa/runs"))["data"]] == [
        "exp-ds"
    ]

    detailed = await env.call(
        "GET", f"/api/public/experiments?fromStartTime={FROM}&fields=core,metadata,scores&id=exp-ds"
    )
    (exp,) = detailed["data"]
    assert exp["metadata"] == {"em": "x"}
    assert [(s["id"], s["value"], s["subject"]) for s in exp["scores"]] == [
        ("s-run", 0.5, {"kind": "experiment", "id": "exp-ds"})
    ]

    items = await env.call("GET", f"/api/public/experiment-items?fromStartTime={FROM}")
    assert [i["id"] for i in items["data"]] == ["trace-local-task", "trace-1-task", "trace-0-task"]
    first = items["data"][2]
    assert set(first) == EXPERIMENT_ITEM_KEYS | {"experimentDatasetId", "experimentItemVersion"}
    assert (first["experimentId"], first["experimentName"], first["experimentItemId"]) == (
        "exp-ds",
        "ds run",
        "item-0",
    )
    assert (first["level"], first["environment"]) == ("DEFAULT", "sdk-experiment")
    assert first["experimentDatasetId"] == dataset["id"]
    assert items["data"][0]["experimentDatasetId"] is None
    assert items["data"][0]["level"] == "ERROR"

    full = await env.call(
        "GET",
        f"/api/public/experiment-items?fromStartTime={FROM}&experimentItemId=item-0"
        "&fields=core,io,metadata,itemMetadata,experimentMetadata,scores",
    )
    (item,) = full["data"]
    assert (item["input"], item["output"], item["expectedOutput"]) == ({"q": "2+2"}, "4", "4")
    assert item["metadata"] == {"experiment_name": "exp"}
    assert item["experimentItemMetadata"] == {"im": 1}
    assert (item["experimentMetadata"], item["experimentDescription"]) == ({"em": "x"}, "desc")
    assert sorted(s["id"] for s in item["scores"]) == ["s-item", "s-trace"]
    assert "experimentDatasetId" not in item


async def test_experiment_filters_windows_and_cursors(env: Env) -> None:
    for n in range(3):
        links, observations = experiment_spans(
            env,
            experiment_id=f"exp-{n}",
            run_name=f"run {n}",
            trace_id=f"trace-{n}",
            item_id="i",
            dataset_id=None,
            start=T0 + timedelta(hours=n),
        )
        await env.record(PROJECT_ID, links, observations)

    seen: list[str] = []
    cursor = None
    for _ in range(4):
        query = f"/api/public/experiments?fromStartTime={FROM}&limit=1"
        page = await env.call("GET", query, params={"cursor": cursor} if cursor else None)
        seen += [e["id"] for e in page["data"]]
        cursor = page["meta"].get("cursor")
        if cursor is None:
            break
    assert seen == ["exp-2", "exp-1", "exp-0"]

    seen = []
    cursor = None
    for _ in range(4):
        query = f"/api/public/experiment-items?fromStartTime={FROM}&limit=2"
        page = await env.call("GET", query, params={"cursor": cursor} if cursor else None)
        seen += [i["id"] for i in page["data"]]
        cursor = page["meta"].get("cursor")
        if cursor is None:
            break
    assert seen == ["trace-2-task", "trace-1-task", "trace-0-task"]

    window = await env.call(
        "GET",
        "/api/public/experiments",
        params={"fromStartTime": "2026-01-01T00:30:00Z", "toStartTime": "2026-01-01T01:30:00Z"},
    )
    assert [e["id"] for e in window["data"]] == ["exp-1"]
    by_name = await env.call(
        "GET", f"/api/public/experiments?fromStartTime={FROM}&name=run%200,run%202"
    )
    assert [e["id"] for e in by_name["data"]] == ["exp-2", "exp-0"]
    filtered = await env.call(
        "GET",
        "/api/public/experiment-items",
        params={
            "fromStartTime": FROM,
            "filter": '[{"type": "string", "column": "experimentName", "operator": "ends with",'
            ' "value": " 1"}]',
        },
    )
    assert [i["experimentId"] for i in filtered["data"]] == ["exp-1"]
    excluded = await env.call(
        "GET",
        "/api/public/experiments",
        params={
            "fromStartTime": FROM,
            "filter": '[{"column": "id", "operator": "none of", "value": ["exp-1"]}]',
        },
    )
    assert [e["id"] for e in excluded["data"]] == ["exp-2", "exp-0"]


@pytest.mark.parametrize("path", ["/api/public/experiments", "/api/public/experiment-items"])
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "'fromStartTime' is required"),
        (f"fromStartTime={FROM}&cursor=eyJ2IjogMn0", "Invalid cursor format"),
        (f"fromStartTime={FROM}&cursor=bm9wZQ", "is not a valid cursor"),
        (f"fromStartTime={FROM}&cursor=%%%", "cursor"),
        (f"fromStartTime={FROM}&filter=nope", "Invalid JSON in filter parameter"),
        (f"fromStartTime={FROM}&filter=%5B%7B%7D%5D", "column must be one of"),
        (f"fromStartTime={FROM}&fields=everything", "unknown field groups"),
        (f"fromStartTime={FROM}&limit=101", "'limit'"),
        (f"fromStartTime={FROM}&scoreLimit=51", "'scoreLimit'"),
        ("fromStartTime=yesterday", "'fromStartTime' must be an ISO 8601 datetime"),
    ],
)
async def test_bad_experiment_queries_are_400(
    env: Env, path: str, query: str, message: str
) -> None:
    body = await env.call("GET", f"{path}?{query}", status=400)
    assert message in body["message"]


# --- access -----------------------------------------------------------------------------------

ROUTES = [
    ("GET", "/api/public/v2/datasets"),
    ("POST", "/api/public/v2/datasets"),
    ("GET", "/api/public/v2/datasets/x"),
    ("POST", "/api/public/dataset-items"),
    ("GET", "/api/public/dataset-items"),
    ("GET", "/api/public/dataset-items/x"),
    ("DELETE", "/api/public/dataset-items/x"),
    ("POST", "/api/public/dataset-run-items"),
    ("GET", "/api/public/dataset-run-items"),
    ("GET", "/api/public/datasets/x/runs"),
    ("GET", "/api/public/datasets/x/runs/y"),
    ("DELETE", "/api/public/datasets/x/runs/y"),
    ("GET", "/api/public/experiments"),
    ("GET", "/api/public/experiment-items"),
]


async def test_auth_is_required(env: Env) -> None:
    for method, path in ROUTES:
        response = await env.client.request(method, path, json={})
        assert response.status == 401, (method, path)


async def test_organization_key_gets_403(env: Env) -> None:
    issued = await env.runtime.resolve(CreateApiKey)(ORG_ID, None)
    headers = basic_auth(issued.api_key.public_key, issued.secret_key)
    for method, path in ROUTES:
        response = await env.client.request(method, path, json={}, headers=headers)
        assert response.status == 403, (method, path)
        assert (await response.json())["error"] == "ForbiddenError"


async def test_body_that_is_not_json_is_400(env: Env) -> None:
    for path in ("/api/public/v2/datasets", "/api/public/dataset-items"):
        response = await env.client.post(
            path, data=b"{nope", headers={**basic_auth(), "Content-Type": "application/json"}
        )
        assert response.status == 400


async def test_experiment_with_a_taken_run_name_joins_that_run(env: Env) -> None:
    dataset = await make_dataset(env)
    await make_item(env, id="item-1", input=1)
    legacy = await env.call(
        "POST",
        "/api/public/dataset-run-items",
        {"runName": "shared", "datasetItemId": "item-1", "traceId": "legacy-trace"},
    )
    # An experiment id chosen by the caller, with a run name the dataset already has.
    links, observations = experiment_spans(
        env,
        experiment_id="caller-chosen-id",
        run_name="shared",
        trace_id="trace-1",
        item_id="item-1",
        dataset_id=dataset["id"],
        start=T0,
    )
    await env.record(PROJECT_ID, links, observations)
    run = await env.call("GET", "/api/public/datasets/qa/runs/shared")
    assert run["id"] == legacy["datasetRunId"]
    assert sorted(i["traceId"] for i in run["datasetRunItems"]) == ["legacy-trace", "trace-1"]


async def test_spans_without_experiment_or_item_are_ignored(env: Env) -> None:
    await env.record(
        PROJECT_ID,
        [("o1", "t1", {"id": "e"}), ("o2", "t2", {"item_id": "i"}), ("o3", "", {"id": "e"})],
        [],
    )
    listing = await env.call("GET", f"/api/public/experiments?fromStartTime={FROM}")
    assert listing == {"data": [], "meta": {}}
