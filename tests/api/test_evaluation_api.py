"""Score configs, comments and annotation queues over HTTP, and scores checked against configs
on `POST /api/public/scores`, with Langfuse's shapes and messages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import punq
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from fathom.core.domain.access import Membership, Principal, Role, User
from fathom.core.domain.score_configs import CONFIG_NOT_FOUND
from fathom.core.domain.tracing import Observation, ObservationType, Trace
from fathom.core.ports.records import RecordStore
from fathom.core.ports.system import Clock, IdGenerator
from fathom.core.usecases.evaluation import (
    AssignAnnotationQueue,
    CreateAnnotationQueue,
    CreateAnnotationQueueItem,
    CreateComment,
    CreateScoreConfig,
    DeleteAnnotationQueueItem,
    GetAnnotationQueue,
    GetAnnotationQueueItem,
    GetComment,
    GetScoreConfig,
    ListAnnotationQueueItems,
    ListAnnotationQueues,
    ListComments,
    ListScoreConfigs,
    ScoreConfigCache,
    UnassignAnnotationQueue,
    UpdateAnnotationQueueItem,
    UpdateScoreConfig,
)
from fathom.core.usecases.ingestion import AcceptIngestionBatch, AcceptScores, ScoreConfigCheck
from fathom.entrypoints.bootstrap import Runtime
from fathom.entrypoints.http import context
from fathom.entrypoints.http.errors import error_middleware
from fathom.entrypoints.http.routes import evaluation, ingestion
from tests.conftest import ORG_ID, PROJECT_ID, basic_auth

CONFIG_KEYS = {
    "id",
    "name",
    "createdAt",
    "updatedAt",
    "projectId",
    "dataType",
    "isArchived",
    "minValue",
    "maxValue",
    "categories",
    "description",
}
COMMENT_KEYS = {
    "id",
    "projectId",
    "createdAt",
    "updatedAt",
    "objectType",
    "objectId",
    "content",
    "authorUserId",
}
QUEUE_KEYS = {"id", "name", "description", "scoreConfigIds", "createdAt", "updatedAt"}
ITEM_KEYS = {
    "id",
    "queueId",
    "objectId",
    "objectType",
    "status",
    "completedAt",
    "createdAt",
    "updatedAt",
}
NOW = datetime(2026, 1, 1, tzinfo=UTC)
EVALUATION_USE_CASES = (
    CreateScoreConfig,
    ListScoreConfigs,
    GetScoreConfig,
    UpdateScoreConfig,
    ListComments,
    GetComment,
    CreateAnnotationQueue,
    ListAnnotationQueues,
    GetAnnotationQueue,
    CreateAnnotationQueueItem,
    ListAnnotationQueueItems,
    GetAnnotationQueueItem,
    UpdateAnnotationQueueItem,
    DeleteAnnotationQueueItem,
    AssignAnnotationQueue,
    UnassignAnnotationQueue,
)


@dataclass
class FakeTelemetry:
    """The reads `CreateComment` makes to check that the commented object exists."""

    traces: set[str] = field(default_factory=lambda: {"trace-1"})
    observations: set[str] = field(default_factory=lambda: {"obs-1"})
    sessions: set[str] = field(default_factory=lambda: {"session-1"})

    async def get_traces(self, project_id: str, trace_ids: list[str]) -> list[Trace]:
        return [Trace(i, project_id, NOW) for i in trace_ids if i in self.traces]

    async def get_observations(self, project_id: str, ids: list[str]) -> list[Observation]:
        return [
            Observation(i, "trace-1", project_id, ObservationType.SPAN, NOW)
            for i in ids
            if i in self.observations
        ]

    async def get_session(self, project_id: str, session_id: str) -> list[Trace]:
        if session_id not in self.sessions:
            return []
        return [Trace("trace-1", project_id, NOW, session_id=session_id)]


class CapturingWriter:
    """Stands in for the durable writer: the score envelopes `AcceptScores` would store."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def mask(
        self, principal: Principal, events: list[dict[str, Any]], headers: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        return events

    async def write(self, project_id: str, events: list[dict[str, Any]]) -> None:
        self.events.extend(events)

    def bodies(self) -> dict[str, dict[str, Any]]:
        return {event["body"]["id"]: event["body"] for event in self.events}


def ensure_evaluation_wired(runtime: Runtime) -> None:
    """Register the evaluation use cases as bootstrap is meant to, unless it already does."""
    container = runtime.wiring.container
    try:
        container.resolve(ScoreConfigCache)
        return
    except punq.MissingDependencyError:
        pass
    container.register(ScoreConfigCache, scope=punq.Scope.singleton)
    for use_case in EVALUATION_USE_CASES:
        container.register(use_case, scope=punq.Scope.singleton)


@pytest.fixture
def writer() -> CapturingWriter:
    return CapturingWriter()


@pytest.fixture
async def client(
    records_runtime: Runtime,
    writer: CapturingWriter,
    aiohttp_client: Callable[..., Awaitable[TestClient]],
) -> TestClient:
    ensure_evaluation_wired(records_runtime)
    container = records_runtime.wiring.container
    resolve = records_runtime.resolve
    # The latest registration wins: comments check objects against a fake telemetry store,
    # scores go to a capturing writer, both without the telemetry engine.
    container.register(
        CreateComment,
        instance=CreateComment(
            resolve(RecordStore),
            FakeTelemetry(),  # type: ignore[arg-type]
            resolve(Clock),
            resolve(IdGenerator),
        ),
    )
    container.register(
        AcceptScores,
        instance=AcceptScores(
            writer,  # type: ignore[arg-type]
            resolve(Clock),
            resolve(IdGenerator),
            ScoreConfigCheck(resolve(RecordStore), resolve(Clock), resolve(ScoreConfigCache)),
        ),
    )
    container.register(
        AcceptIngestionBatch,
        instance=AcceptIngestionBatch(
            writer,  # type: ignore[arg-type]
            ScoreConfigCheck(resolve(RecordStore), resolve(Clock), resolve(ScoreConfigCache)),
        ),
    )
    app = web.Application(middlewares=[error_middleware])
    context.install(app, records_runtime)
    app.add_routes(evaluation.routes)
    app.add_routes(ingestion.routes)
    return await aiohttp_client(app)


async def post(client: TestClient, path: str, body: Any, expect: int = 200) -> Any:
    response = await client.post(path, json=body, headers=basic_auth())
    assert response.status == expect, await response.text()
    return await response.json()


async def get(client: TestClient, path: str, expect: int = 200, **query: str) -> Any:
    response = await client.get(path, params=query, headers=basic_auth())
    assert response.status == expect, await response.text()
    return await response.json()


async def patch(client: TestClient, path: str, body: Any, expect: int = 200) -> Any:
    response = await client.patch(path, json=body, headers=basic_auth())
    assert response.status == expect, await response.text()
    return await response.json()


async def create_config(client: TestClient, **body: Any) -> dict[str, Any]:
    return await post(client, "/api/public/score-configs", {"name": "quality", **body})


def assert_error(body: dict[str, Any], error: str, *fragments: str) -> None:
    assert body["error"] == error, body
    for fragment in fragments:
        assert fragment in body["message"], body


# --- score configs ----------------------------------------------------------------------------


async def test_create_numeric_config(client: TestClient) -> None:
    body = await create_config(
        client, dataType="NUMERIC", minValue=0, maxValue=10, description="0 to 10"
    )
    assert set(body) == CONFIG_KEYS
    assert body["projectId"] == PROJECT_ID
    assert (body["dataType"], body["minValue"], body["maxValue"]) == ("NUMERIC", 0, 10)
    assert body["categories"] is None and body["isArchived"] is False
    assert body["description"] == "0 to 10"
    assert body["createdAt"].endswith("Z") and body["createdAt"] == body["updatedAt"]


async def test_create_categorical_boolean_and_text_configs(client: TestClient) -> None:
    categories = [{"label": "good", "value": 1}, {"label": "bad", "value": 0}]
    cat = await create_config(client, dataType="CATEGORICAL", categories=categories)
    assert cat["categories"] == categories
    assert cat["minValue"] is None and cat["maxValue"] is None
    boolean = await create_config(client, name="correct", dataType="BOOLEAN")
    assert boolean["categories"] == [{"label": "True", "value": 1}, {"label": "False", "value": 0}]
    text = await create_config(client, name="notes", dataType="TEXT")
    assert text["categories"] is None and text["dataType"] == "TEXT"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"name": "x/y", "dataType": "NUMERIC"}, "name may only contain"),
        ({"name": "x" * 36, "dataType": "NUMERIC"}, "at most 35 characters"),
        ({"dataType": "NUMERIC"}, "name must be a string"),
        ({"name": "q", "dataType": "PERCENT"}, "dataType must be one of"),
        (
            {"name": "q", "dataType": "NUMERIC", "minValue": 5, "maxValue": 5},
            "Maximum value must be greater than Minimum value",
        ),
        ({"name": "q", "dataType": "NUMERIC", "minValue": "1"}, "minValue must be a number"),
        ({"name": "q", "dataType": "CATEGORICAL"}, "need at least one category"),
        (
            {"name": "q", "dataType": "CATEGORICAL", "categories": [{"label": "a"}]},
            "Category must be an array of objects with label value pairs",
        ),
        (
            {
                "name": "q",
                "dataType": "CATEGORICAL",
                "categories": [{"label": "a", "value": 1}, {"label": "a", "value": 2}],
            },
            "Duplicate category label: a, category labels must be unique",
        ),
        (
            {
                "name": "q",
                "dataType": "CATEGORICAL",
                "categories": [{"label": "a", "value": 1}],
                "maxValue": 3,
            },
            "minValue and maxValue can only be set on NUMERIC",
        ),
        (
            {"name": "q", "dataType": "BOOLEAN", "categories": [{"label": "Yes", "value": 1}]},
            "categories cannot be passed for BOOLEAN",
        ),
        (
            {"name": "q", "dataType": "NUMERIC", "categories": [{"label": "a", "value": 1}]},
            "categories can only be set on CATEGORICAL",
        ),
    ],
)
async def test_invalid_configs_are_400(
    client: TestClient, body: dict[str, Any], fragment: str
) -> None:
    result = await post(client, "/api/public/score-configs", body, expect=400)
    assert_error(result, "InvalidRequestError", "Invalid request data", fragment)


async def test_config_body_must_be_json(client: TestClient) -> None:
    response = await client.post("/api/public/score-configs", data=b"{nope", headers=basic_auth())
    assert response.status == 400


async def test_list_configs_newest_first_with_paging(client: TestClient) -> None:
    names = [f"config-{i}" for i in range(3)]
    for name in names:
        await create_config(client, name=name, dataType="NUMERIC")
    body = await get(client, "/api/public/score-configs", page="1", limit="2")
    assert [c["name"] for c in body["data"]] == ["config-2", "config-1"]
    assert body["meta"] == {"page": 1, "limit": 2, "totalItems": 3, "totalPages": 2}
    body = await get(client, "/api/public/score-configs", page="2", limit="2")
    assert [c["name"] for c in body["data"]] == ["config-0"]
    await get(client, "/api/public/score-configs", expect=400, limit="101")


async def test_get_config_and_404(client: TestClient) -> None:
    created = await create_config(client, dataType="BOOLEAN")
    assert await get(client, f"/api/public/score-configs/{created['id']}") == created
    missing = await get(client, "/api/public/score-configs/nope", expect=404)
    assert missing == {
        "message": "Score config not found within authorized project",
        "error": "LangfuseNotFoundError",
    }


async def test_patch_archives_restores_and_changes_fields(client: TestClient) -> None:
    created = await create_config(client, dataType="NUMERIC", minValue=0, maxValue=1)
    path = f"/api/public/score-configs/{created['id']}"
    archived = await patch(client, path, {"isArchived": True})
    assert archived["isArchived"] is True and archived["maxValue"] == 1
    assert archived["updatedAt"] >= created["updatedAt"]
    changed = await patch(
        client, path, {"isArchived": False, "name": "renamed", "maxValue": 5, "description": "d"}
    )
    assert (changed["isArchived"], changed["name"], changed["maxValue"]) == (False, "renamed", 5)
    assert changed["description"] == "d" and changed["dataType"] == "NUMERIC"
    cleared = await patch(client, path, {"minValue": None, "maxValue": None})
    assert cleared["minValue"] is None and cleared["maxValue"] is None
    assert await get(client, path) == cleared


async def test_patch_errors(client: TestClient) -> None:
    created = await create_config(client, dataType="NUMERIC", minValue=0, maxValue=1)
    path = f"/api/public/score-configs/{created['id']}"
    empty = await patch(client, path, {}, expect=400)
    assert_error(
        empty,
        "InvalidRequestError",
        "Request body cannot be empty. At least one field must be provided for update.",
    )
    only_unknown = await patch(client, path, {"dataType": "TEXT"}, expect=400)
    assert "cannot be empty" in only_unknown["message"]
    inverted = await patch(client, path, {"minValue": 2}, expect=400)
    assert inverted["message"] == "Maximum value must be greater than Minimum value"
    foreign = await patch(client, path, {"categories": [{"label": "a", "value": 1}]}, expect=400)
    assert "categories can only be set on CATEGORICAL" in foreign["message"]
    bad_name = await patch(client, path, {"name": "a/b"}, expect=400)
    assert "name may only contain" in bad_name["message"]
    await patch(client, "/api/public/score-configs/nope", {"isArchived": True}, expect=404)


async def test_patch_categories_of_a_categorical_config(client: TestClient) -> None:
    created = await create_config(
        client, dataType="CATEGORICAL", categories=[{"label": "a", "value": 1}]
    )
    path = f"/api/public/score-configs/{created['id']}"
    updated = await patch(
        client, path, {"categories": [{"label": "a", "value": 1}, {"label": "b", "value": 2}]}
    )
    assert [c["label"] for c in updated["categories"]] == ["a", "b"]
    duplicate = await patch(
        client,
        path,
        {"categories": [{"label": "a", "value": 1}, {"label": "b", "value": 1}]},
        expect=400,
    )
    assert "Duplicate category value: 1" in duplicate["message"]


async def test_routes_need_a_project_key(client: TestClient) -> None:
    response = await client.get("/api/public/score-configs")
    assert response.status == 401
    response = await client.get("/api/public/annotation-queues")
    assert response.status == 401


# --- scores checked against configs -----------------------------------------------------------


def score(**fields: Any) -> dict[str, Any]:
    return {"traceId": "trace-1", "name": "anything", "value": 1, **fields}


async def test_valid_single_score_is_inflated_from_its_config(
    client: TestClient, writer: CapturingWriter
) -> None:
    cat = await create_config(
        client,
        name="verdict",
        dataType="CATEGORICAL",
        categories=[{"label": "good", "value": 1}, {"label": "bad", "value": 0}],
    )
    result = await post(
        client, "/api/public/scores", score(id="s1", value="good", configId=cat["id"])
    )
    assert result == {"id": "s1"}
    body = writer.bodies()["s1"]
    assert (body["name"], body["dataType"], body["value"]) == ("verdict", "CATEGORICAL", "good")
    assert body["categoryValue"] == 1


@pytest.mark.parametrize(
    ("config", "item", "fragment"),
    [
        (
            {"dataType": "NUMERIC", "maxValue": 1},
            {"value": 2},
            "Value exceeds maximum value of 1 defined in config",
        ),
        (
            {"dataType": "NUMERIC", "minValue": 0},
            {"value": -1},
            "Value is below minimum value of 0 defined in config",
        ),
        ({"dataType": "BOOLEAN"}, {"value": 0.5}, "Value must be either 0 or 1"),
        (
            {"dataType": "CATEGORICAL", "categories": [{"label": "good", "value": 1}]},
            {"value": "great"},
            "Value great does not map to a valid category",
        ),
        (
            {"dataType": "NUMERIC"},
            {"value": 1, "dataType": "BOOLEAN"},
            "Data type mismatch based on config: expected NUMERIC, got BOOLEAN",
        ),
        ({"dataType": "NUMERIC"}, {"value": "high"}, "Value must be a number"),
    ],
)
async def test_single_score_violating_its_config_is_400(
    client: TestClient,
    writer: CapturingWriter,
    config: dict[str, Any],
    item: dict[str, Any],
    fragment: str,
) -> None:
    created = await create_config(client, **config)
    result = await post(
        client, "/api/public/scores", score(configId=created["id"], **item), expect=400
    )
    assert_error(result, "InvalidRequestError", fragment)
    assert writer.events == []


async def test_unknown_config_is_400(client: TestClient, writer: CapturingWriter) -> None:
    result = await post(client, "/api/public/scores", score(configId="nope"), expect=400)
    assert result == {"message": CONFIG_NOT_FOUND, "error": "InvalidRequestError"}
    assert writer.events == []


async def test_archiving_a_config_applies_to_scores_at_once(client: TestClient) -> None:
    created = await create_config(client, dataType="NUMERIC")
    await post(client, "/api/public/scores", score(configId=created["id"]))
    path = f"/api/public/score-configs/{created['id']}"
    await patch(client, path, {"isArchived": True})
    result = await post(client, "/api/public/scores", score(configId=created["id"]), expect=400)
    assert "Config is archived and cannot be used to create new scores" in result["message"]
    await patch(client, path, {"isArchived": False})
    await post(client, "/api/public/scores", score(configId=created["id"]))


async def test_mixed_array_is_207_and_stores_only_the_valid_scores(
    client: TestClient, writer: CapturingWriter
) -> None:
    created = await create_config(client, name="correct", dataType="BOOLEAN")
    items = [
        score(id="ok", value=1, configId=created["id"]),
        score(id="bad", value=3, configId=created["id"]),
        score(id="unknown", configId="nope"),
        score(id="plain", value=0.3),
    ]
    response = await client.post("/api/public/scores", json=items, headers=basic_auth())
    assert response.status == 207
    body = await response.json()
    assert (body["accepted"], body["rejected"]) == (2, 2)
    assert "Value must be either 0 or 1" in body["errors"][0]["message"]
    assert body["errors"][1]["message"] == CONFIG_NOT_FOUND
    stored = writer.bodies()
    assert sorted(stored) == ["ok", "plain"]
    assert (stored["ok"]["name"], stored["ok"]["dataType"]) == ("correct", "BOOLEAN")


async def test_batch_score_events_are_checked_against_their_configs(
    client: TestClient, writer: CapturingWriter
) -> None:
    created = await create_config(client, name="correct", dataType="BOOLEAN")

    def event(event_id: str, event_type: str, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": event_id,
            "type": event_type,
            "timestamp": "2026-01-01T00:00:00Z",
            "body": body,
        }

    batch = [
        event("e-ok", "score-create", score(id="ok", value=1, configId=created["id"])),
        event("e-bad", "score-create", score(id="bad", value=3, configId=created["id"])),
        event("e-unknown", "score-create", score(id="unknown", configId="nope")),
        event("e-plain", "score-create", score(id="plain", value=0.3, categoryValue=7)),
        event("e-trace", "trace-create", {"id": "trace-1", "name": "kept"}),
    ]
    response = await client.post(
        "/api/public/ingestion", json={"batch": batch}, headers=basic_auth()
    )
    assert response.status == 207
    body = await response.json()
    assert sorted(s["id"] for s in body["successes"]) == ["e-ok", "e-plain", "e-trace"]
    errors = {e["id"]: e for e in body["errors"]}
    assert sorted(errors) == ["e-bad", "e-unknown"]
    assert errors["e-bad"]["status"] == 400
    assert "Value must be either 0 or 1" in errors["e-bad"]["error"]
    assert errors["e-unknown"]["error"] == CONFIG_NOT_FOUND
    stored = writer.bodies()
    assert sorted(stored) == ["ok", "plain", "trace-1"]
    assert (stored["ok"]["name"], stored["ok"]["dataType"]) == ("correct", "BOOLEAN")
    assert "categoryValue" not in stored["plain"]  # only the server sets it


# --- comments ---------------------------------------------------------------------------------


def comment(**fields: Any) -> dict[str, Any]:
    return {
        "projectId": PROJECT_ID,
        "objectType": "TRACE",
        "objectId": "trace-1",
        "content": "looks good",
        **fields,
    }


async def test_create_and_get_a_comment(client: TestClient) -> None:
    created = await post(
        client, "/api/public/comments", comment(content="  **nice**  ", authorUserId="u1")
    )
    assert set(created) == {"id"}
    body = await get(client, f"/api/public/comments/{created['id']}")
    assert set(body) == COMMENT_KEYS
    assert body["id"] == created["id"] and body["projectId"] == PROJECT_ID
    assert (body["objectType"], body["objectId"]) == ("TRACE", "trace-1")
    assert body["content"] == "**nice**"  # trimmed like upstream
    assert body["authorUserId"] == "u1" and body["createdAt"].endswith("Z")


async def test_comments_on_every_object_type(client: TestClient) -> None:
    for object_type, object_id in (
        ("OBSERVATION", "obs-1"),
        ("SESSION", "session-1"),
        ("PROMPT", "any-prompt-id"),
        ("trace", "trace-1"),
    ):
        await post(
            client, "/api/public/comments", comment(objectType=object_type, objectId=object_id)
        )


async def test_comment_on_a_missing_object_is_404(client: TestClient) -> None:
    trace = await post(client, "/api/public/comments", comment(objectId="nope"), expect=404)
    assert trace == {
        "message": "Reference object, TRACE: nope not found in Clickhouse. Skipping creating "
        "comment.",
        "error": "LangfuseNotFoundError",
    }
    session = await post(
        client,
        "/api/public/comments",
        comment(objectType="SESSION", objectId="nope"),
        expect=404,
    )
    assert session["message"] == f"No traceSession with id nope in project {PROJECT_ID}"


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"content": "x" * 5001}, "at most 5000 characters"),
        ({"content": "   "}, "content must not be empty"),
        ({"objectType": "DATASET"}, "objectType must be one of"),
        ({"objectId": ""}, "objectId must not be empty"),
        ({"authorUserId": 5}, "authorUserId must be a string"),
    ],
)
async def test_invalid_comments_are_400(
    client: TestClient, fields: dict[str, Any], fragment: str
) -> None:
    result = await post(client, "/api/public/comments", comment(**fields), expect=400)
    assert_error(result, "InvalidRequestError", fragment)


async def test_comment_of_5000_characters_is_fine(client: TestClient) -> None:
    await post(client, "/api/public/comments", comment(content="x" * 5000))


async def test_list_comments_with_filters(client: TestClient) -> None:
    first = await post(client, "/api/public/comments", comment(authorUserId="u1"))
    second = await post(
        client, "/api/public/comments", comment(objectType="OBSERVATION", objectId="obs-1")
    )
    third = await post(client, "/api/public/comments", comment(authorUserId="u2"))
    everything = await get(client, "/api/public/comments")
    assert [c["id"] for c in everything["data"]] == [third["id"], second["id"], first["id"]]
    assert everything["meta"] == {"page": 1, "limit": 50, "totalItems": 3, "totalPages": 1}
    on_trace = await get(client, "/api/public/comments", objectType="TRACE", objectId="trace-1")
    assert {c["id"] for c in on_trace["data"]} == {first["id"], third["id"]}
    by_author = await get(client, "/api/public/comments", authorUserId="u2")
    assert [c["id"] for c in by_author["data"]] == [third["id"]]
    paged = await get(client, "/api/public/comments", page="2", limit="2")
    assert [c["id"] for c in paged["data"]] == [first["id"]]
    assert paged["meta"]["totalPages"] == 2


async def test_comment_filter_errors_and_404(client: TestClient) -> None:
    result = await get(client, "/api/public/comments", expect=400, objectId="trace-1")
    assert "objectType is required when objectId is provided" in result["message"]
    await get(client, "/api/public/comments", expect=400, objectType="DATASET")
    missing = await get(client, "/api/public/comments/nope", expect=404)
    assert missing["message"] == "Comment not found within authorized project"


# --- annotation queues ------------------------------------------------------------------------


async def create_queue(client: TestClient, name: str = "review", **fields: Any) -> dict[str, Any]:
    if "scoreConfigIds" not in fields:
        config = await create_config(client, name=f"{name}-config", dataType="NUMERIC")
        fields["scoreConfigIds"] = [config["id"]]
    return await post(client, "/api/public/annotation-queues", {"name": name, **fields})


async def test_create_list_and_get_queues(client: TestClient) -> None:
    first = await create_queue(client, "first", description="check outputs")
    assert set(first) == QUEUE_KEYS
    assert first["description"] == "check outputs" and len(first["scoreConfigIds"]) == 1
    second = await create_queue(client, "second")
    assert second["description"] is None
    listed = await get(client, "/api/public/annotation-queues", limit="1")
    assert [q["id"] for q in listed["data"]] == [second["id"]]
    assert listed["meta"] == {"page": 1, "limit": 1, "totalItems": 2, "totalPages": 2}
    assert await get(client, f"/api/public/annotation-queues/{first['id']}") == first
    missing = await get(client, "/api/public/annotation-queues/nope", expect=404)
    assert missing == {"message": "Annotation queue not found", "error": "LangfuseNotFoundError"}


async def test_queue_creation_errors(client: TestClient) -> None:
    queue = await create_queue(client, "taken")
    duplicate = await post(
        client,
        "/api/public/annotation-queues",
        {"name": "taken", "scoreConfigIds": queue["scoreConfigIds"]},
        expect=409,
    )
    assert duplicate == {
        "message": "A queue with this name already exists.",
        "error": "LangfuseConflictError",
    }
    unknown = await post(
        client,
        "/api/public/annotation-queues",
        {"name": "other", "scoreConfigIds": [*queue["scoreConfigIds"], "nope"]},
        expect=400,
    )
    assert unknown["message"] == (
        "At least one of the score config IDs cannot be found for the given project."
    )
    empty = await post(
        client, "/api/public/annotation-queues", {"name": "x", "scoreConfigIds": []}, expect=400
    )
    assert "at least one score config id" in empty["message"]
    await post(client, "/api/public/annotation-queues", {"scoreConfigIds": ["a"]}, expect=400)


async def test_queue_items_lifecycle(client: TestClient) -> None:
    queue = await create_queue(client)
    items_path = f"/api/public/annotation-queues/{queue['id']}/items"
    pending = await post(client, items_path, {"objectId": "trace-1", "objectType": "TRACE"})
    assert set(pending) == ITEM_KEYS
    assert (pending["queueId"], pending["status"], pending["completedAt"]) == (
        queue["id"],
        "PENDING",
        None,
    )
    done = await post(
        client,
        items_path,
        {"objectId": "session-1", "objectType": "SESSION", "status": "COMPLETED"},
    )
    assert done["status"] == "COMPLETED" and done["completedAt"].endswith("Z")

    listed = await get(client, items_path)
    assert [i["id"] for i in listed["data"]] == [done["id"], pending["id"]]
    assert listed["meta"]["totalItems"] == 2
    only_pending = await get(client, items_path, status="PENDING")
    assert [i["id"] for i in only_pending["data"]] == [pending["id"]]
    bad_status = await get(client, items_path, expect=400, status="DONE")
    assert "status must be one of" in bad_status["message"]

    item_path = f"{items_path}/{pending['id']}"
    assert await get(client, item_path) == pending
    completed = await patch(client, item_path, {"status": "COMPLETED"})
    assert completed["status"] == "COMPLETED" and completed["completedAt"] is not None
    reopened = await patch(client, item_path, {"status": "PENDING"})
    # Upstream keeps the completion time when an item is reopened.
    assert reopened["status"] == "PENDING" and reopened["completedAt"] == completed["completedAt"]

    response = await client.delete(item_path, headers=basic_auth())
    assert response.status == 200
    assert await response.json() == {
        "success": True,
        "message": "Annotation queue item deleted successfully",
    }
    gone = await get(client, item_path, expect=404)
    assert gone["message"] == "Annotation queue item not found"
    response = await client.delete(item_path, headers=basic_auth())
    assert response.status == 404


async def test_queue_item_errors(client: TestClient) -> None:
    queue = await create_queue(client)
    items_path = f"/api/public/annotation-queues/{queue['id']}/items"
    bad_type = await post(client, items_path, {"objectId": "p", "objectType": "PROMPT"}, expect=400)
    assert "objectType must be one of" in bad_type["message"]
    await post(client, items_path, {"objectType": "TRACE"}, expect=400)
    await post(
        client, items_path, {"objectId": "t", "objectType": "TRACE", "status": "X"}, expect=400
    )
    missing_queue = "/api/public/annotation-queues/nope/items"
    result = await post(client, missing_queue, {"objectId": "t", "objectType": "TRACE"}, expect=404)
    assert result["message"] == "Annotation queue not found"
    await get(client, missing_queue, expect=404)
    await get(client, f"{missing_queue}/x", expect=404)
    await patch(client, f"{items_path}/nope", {"status": "COMPLETED"}, expect=404)


async def add_member(runtime: Runtime, user_id: str, role: Role = Role.MEMBER) -> None:
    async with runtime.resolve(RecordStore).unit_of_work() as uow:
        await uow.users.add(User(user_id, f"{user_id}@example.com", user_id, NOW))
        await uow.memberships.add(Membership(ORG_ID, user_id, role, NOW))
        await uow.commit()


async def assignees(runtime: Runtime, queue_id: str) -> list[str]:
    async with runtime.resolve(RecordStore).unit_of_work() as uow:
        return await uow.annotation_queues.assignees(PROJECT_ID, queue_id)


async def test_assignments(client: TestClient, records_runtime: Runtime) -> None:
    await add_member(records_runtime, "user-1")
    await add_member(records_runtime, "outsider", Role.NONE)
    queue = await create_queue(client)
    path = f"/api/public/annotation-queues/{queue['id']}/assignments"
    created = await post(client, path, {"userId": "user-1"})
    assert created == {"userId": "user-1", "projectId": PROJECT_ID, "queueId": queue["id"]}
    assert await post(client, path, {"userId": "user-1"}) == created  # idempotent
    assert await assignees(records_runtime, queue["id"]) == ["user-1"]

    for user_id in ("nobody", "outsider"):
        refused = await post(client, path, {"userId": user_id}, expect=404)
        assert refused["message"] == "User not found or not authorized for this project"
    await post(client, path, {}, expect=400)
    await post(
        client, "/api/public/annotation-queues/nope/assignments", {"userId": "user-1"}, expect=404
    )

    for _ in range(2):  # removing an absent assignment succeeds too
        response = await client.delete(path, json={"userId": "user-1"}, headers=basic_auth())
        assert response.status == 200
        assert await response.json() == {"success": True}
    assert await assignees(records_runtime, queue["id"]) == []
    response = await client.delete(
        "/api/public/annotation-queues/nope/assignments",
        json={"userId": "user-1"},
        headers=basic_auth(),
    )
    assert response.status == 404
