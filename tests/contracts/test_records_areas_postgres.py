"""The use cases of every records area against the real `SqlRecordStore`, on SQLite and on
PostgreSQL: access and keys, models, prompts, score configs, comments, annotation queues,
datasets with item versions and runs, experiments, media links.

The HTTP suites cover each area in depth on SQLite; this module runs a representative path
of each on both engines, plus what only differs between engines: string lengths and order,
time zones, JSON, case sensitivity, concurrent writers, and the start-up errors.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fathom.adapters.auth.hashing import Sha256SecretHasher
from fathom.adapters.blob.local import LocalBlobStore
from fathom.adapters.storage.sql.store import SqlRecordStore, masked, normalise_url
from fathom.core.domain.access import Role
from fathom.core.domain.datasets import FieldCondition
from fathom.core.domain.errors import (
    ConfigurationError,
    Conflict,
    InvalidInput,
    NotFound,
    Unavailable,
)
from fathom.core.domain.media import DatasetItemMediaLink, MediaLinkOrigin, media_signing_key
from fathom.core.domain.prompts import PromptActor, PromptListQuery, PromptType, PromptVersion
from fathom.core.ports.datasets import ExperimentQuery, ItemQuery
from fathom.core.ports.evaluation import AnnotationStatus, CommentObjectType, CommentQuery
from fathom.core.ports.system import UuidGenerator
from fathom.core.usecases.access import (
    AuthenticateApiKey,
    CreateApiKey,
    CreateOrganization,
    CreateProject,
    HeadlessInitRequest,
    InitializeHeadless,
    ListProjectsOfKey,
)
from fathom.core.usecases.datasets import (
    CreateDataset,
    CreateDatasetRunItem,
    DeleteDatasetItem,
    DeleteDatasetRun,
    GetDatasetItem,
    GetDatasetRun,
    ListDatasetItems,
    ListDatasetRuns,
    ListDatasets,
    ListExperimentItems,
    ListExperiments,
    UpsertDatasetItem,
)
from fathom.core.usecases.evaluation import (
    AssignAnnotationQueue,
    CreateAnnotationQueue,
    CreateAnnotationQueueItem,
    CreateComment,
    CreateScoreConfig,
    DeleteAnnotationQueueItem,
    GetComment,
    ListAnnotationQueueItems,
    ListComments,
    ListScoreConfigs,
    ScoreConfigCache,
    UnassignAnnotationQueue,
    UpdateAnnotationQueueItem,
    UpdateScoreConfig,
)
from fathom.core.usecases.media import GetMediaUploadUrl, MediaLinks, MediaLinkSigner
from fathom.core.usecases.models import CreateModel, DeleteModel, GetModel, ListModels, ModelCatalog
from fathom.core.usecases.prompts import (
    CreatePromptVersion,
    DeletePrompt,
    GetPrompt,
    InMemoryPromptCache,
    ListPrompts,
    ProtectPromptLabel,
    UpdatePromptLabels,
)
from tests.unit.fakes import FakeClock

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ORG = "org-1"
PROJECT = "project-1"
ADMIN = PromptActor("admin", may_change_protected_labels=True)


@pytest.fixture(params=["sqlite", "postgres"])
async def records(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlRecordStore]:
    if request.param == "sqlite":
        store = SqlRecordStore(f"sqlite+aiosqlite:///{tmp_path / 'records.db'}")
    else:
        # Requested only here, so the SQLite half never starts a PostgreSQL cluster.
        store = SqlRecordStore(request.getfixturevalue("fresh_postgres_url"))
    await store.migrate()
    yield store
    await store.close()


@pytest.fixture
async def postgres_records(fresh_postgres_url: str) -> AsyncIterator[SqlRecordStore]:
    """For what only PostgreSQL does (SQLite has one writer per file, no column types)."""
    store = SqlRecordStore(fresh_postgres_url)
    await store.migrate()
    yield store
    await store.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


async def make_project(records: SqlRecordStore, clock: FakeClock) -> str:
    ids = UuidGenerator()
    await CreateOrganization(records, clock, ids)("Org", ORG)
    await CreateProject(records, clock, ids)(ORG, "Project", PROJECT)
    return PROJECT


@pytest.fixture
async def project(records: SqlRecordStore, clock: FakeClock) -> str:
    return await make_project(records, clock)


def engine(records: SqlRecordStore) -> str:
    return records.engine.dialect.name


# --- access and keys ---------------------------------------------------------------------------


async def test_keys_authenticate_and_list_their_project(
    records: SqlRecordStore, clock: FakeClock, project: str
) -> None:
    hasher, ids = Sha256SecretHasher("salt"), UuidGenerator()
    issued = await CreateApiKey(records, hasher, clock, ids)(ORG, project, note="ci")
    authenticate = AuthenticateApiKey(records, hasher, clock)
    token = base64.b64encode(f"{issued.api_key.public_key}:{issued.secret_key}".encode()).decode()
    principal = await authenticate(f"Basic {token}")
    assert (principal.project_id, principal.organization_id) == (project, ORG)
    [(found, organization)] = await ListProjectsOfKey(records)(principal)
    assert (found.id, organization.id, found.created_at) == (project, ORG, T0)
    with pytest.raises(Conflict):
        await CreateApiKey(records, hasher, clock, ids)(
            ORG, project, public_key=issued.api_key.public_key
        )


async def test_headless_initialisation_is_idempotent_with_long_names(
    records: SqlRecordStore, clock: FakeClock
) -> None:
    hasher, ids = Sha256SecretHasher("salt"), UuidGenerator()
    request = HeadlessInitRequest(
        org_id="o" * 300,  # longer than the declared VARCHAR(255): no engine limits it
        org_name="Ö" * 400,
        project_id="p",
        project_public_key="pk-lf-" + "x" * 300,
        project_secret_key="sk-lf-secret",
        user_email="a@example.com",
        user_password="pw",
    )
    init = InitializeHeadless(records, hasher, clock, ids)
    await init(request)
    await init(request)
    async with records.unit_of_work() as uow:
        organization = await uow.organizations.get("o" * 300)
        key = await uow.api_keys.get_by_public_key("pk-lf-" + "x" * 300)
        user = await uow.users.get_by_email("a@example.com")
        assert user is not None
        membership = await uow.memberships.get("o" * 300, user.id)
    assert organization is not None and organization.name == "Ö" * 400
    assert key is not None and key.project_id == "p"
    assert membership is not None and membership.role is Role.OWNER


# --- models ------------------------------------------------------------------------------------


async def test_models_round_trip_with_offsets_and_exact_prices(
    records: SqlRecordStore, clock: FakeClock, project: str
) -> None:
    catalog = ModelCatalog(records, clock, [])
    body = {
        "modelName": "m" * 300,
        "matchPattern": "(?i)^my-model$",
        "startDate": "2026-02-01T12:00:00+02:00",
        "unit": "TOKENS",
        "inputPrice": 0.0000001,
        "outputPrice": 2e-7,
        "tokenizerConfig": {"tokenizerModel": "gpt-4o", "b": 1, "a": 2},
    }
    created = await CreateModel(records, clock, UuidGenerator(), catalog)(project, body)
    found = await GetModel(records, catalog)(project, created.id)
    assert found == created
    # SQLite keeps wall-clock text: the instant survives only because it is stored in UTC.
    assert found.start_date == datetime(2026, 2, 1, 10, 0, tzinfo=UTC)
    assert found.start_date is not None and found.start_date.utcoffset() == timedelta(0)
    assert found.pricing_tiers[0].prices == {"input": Decimal("1E-7"), "output": Decimal("2E-7")}
    listed = await ListModels(records, catalog)(project)
    assert [m.id for m in listed.items] == [created.id]
    assert [m.id for m in await catalog.models()] == [created.id]
    await DeleteModel(records, catalog)(project, created.id)
    with pytest.raises(NotFound):
        await GetModel(records, catalog)(project, created.id)


# --- prompts -----------------------------------------------------------------------------------


def prompt_use_cases(records: SqlRecordStore, clock: FakeClock) -> dict[str, Any]:
    cache = InMemoryPromptCache(clock)
    return {
        "create": CreatePromptVersion(records, clock, UuidGenerator(), cache),
        "get": GetPrompt(records, cache),
        "list": ListPrompts(records),
        "label": UpdatePromptLabels(records, clock, cache),
        "delete": DeletePrompt(records, clock, cache),
        "protect": ProtectPromptLabel(records, clock),
    }


async def test_prompt_versions_labels_moves_and_deletes(
    records: SqlRecordStore, clock: FakeClock, project: str
) -> None:
    use = prompt_use_cases(records, clock)
    config = {"temperature": 0.5, "model": "gpt-4o"}
    first = await use["create"](
        project,
        {"name": "greet", "prompt": "Hi {{name}}", "labels": ["production"], "config": config},
    )
    clock.advance(1)
    second = await use["create"](
        project, {"name": "greet", "prompt": "Hello {{name}}", "labels": ["production", "beta"]}
    )
    assert (first.version, second.version) == (1, 2)
    assert (await use["get"](project, "greet")).version == 2  # production moved
    assert (await use["get"](project, "greet", version=1)).labels == []
    assert (await use["get"](project, "greet", version=1)).config == config

    clock.advance(1)
    moved = await use["label"](project, "greet", 1, {"newLabels": ["production"]})
    assert moved.labels == ["production"]
    assert (await use["get"](project, "greet")).version == 1
    assert set((await use["get"](project, "greet", version=2)).labels) == {"latest", "beta"}

    await use["protect"](project, "production", ADMIN)
    await use["protect"](project, "production", ADMIN)  # idempotent
    deleted = await use["delete"](project, "greet", label="beta")
    assert [v.version for v in deleted] == [2]
    remaining = await use["get"](project, "greet", version=1)
    assert set(remaining.labels) == {"production", "latest"}  # `latest` fell back to version 1
    with pytest.raises(NotFound):
        await use["get"](project, "greet", label="beta")


async def test_prompt_references_tags_and_list_in_byte_order(
    records: SqlRecordStore, clock: FakeClock, project: str
) -> None:
    use = prompt_use_cases(records, clock)
    await use["create"](project, {"name": "base", "prompt": "be nice", "labels": ["production"]})
    for name in ("b", "B", "a", "_x", "Ä"):
        await use["create"](
            project,
            {
                "name": name,
                "prompt": "@@@langfusePrompt:name=base|label=production@@@ and more",
                "tags": ["t1"] if name != "a" else ["t2"],
            },
        )
    resolved = await use["get"](project, "b", label="latest")
    assert resolved.prompt == "be nice and more"
    listed = await use["list"](project, PromptListQuery(limit=50))
    # Code-point order on both engines, whatever the PostgreSQL cluster's locale is.
    assert [p.name for p in listed.items] == ["B", "_x", "a", "b", "base", "Ä"]
    tagged = await use["list"](project, PromptListQuery(tag="t1", limit=50))
    assert [p.name for p in tagged.items] == ["B", "_x", "b", "Ä"]
    since = await use["list"](
        project,
        PromptListQuery(from_updated_at=T0.astimezone(timezone(timedelta(hours=5))), limit=50),
    )
    assert since.total == 6
    with pytest.raises(InvalidInput):  # still referenced by the others
        await use["delete"](project, "base")


async def test_concurrent_creates_of_one_prompt_each_get_a_version(
    records: SqlRecordStore, clock: FakeClock, project: str
) -> None:
    use = prompt_use_cases(records, clock)
    created = await asyncio.gather(
        *(
            use["create"](project, {"name": "busy", "prompt": f"v{i}", "labels": ["production"]})
            for i in range(8)
        )
    )
    assert sorted(p.version for p in created) == list(range(1, 9))
    async with records.unit_of_work() as uow:
        versions = await uow.prompts.list_versions(project, "busy")
    holders = [v.version for v in versions if "production" in v.labels]
    assert len(holders) == 1
    assert (await use["get"](project, "busy")).version == holders[0]


async def test_prompt_writers_in_separate_processes_queue_on_postgres(
    postgres_records: SqlRecordStore, clock: FakeClock
) -> None:
    """Two record stores on one database stand for two processes: the second writer's first
    read waits for the first writer's commit, then sees its version."""
    records = postgres_records
    project = await make_project(records, clock)
    other = SqlRecordStore(records.url)
    try:
        async with records.unit_of_work() as first:
            assert await first.prompts.list_versions(project, "p") == []
            second_started = asyncio.Event()

            async def second_writer() -> int:
                async with other.unit_of_work() as second:
                    second_started.set()
                    return len(await second.prompts.list_versions(project, "p"))

            task = asyncio.create_task(second_writer())
            await second_started.wait()
            await asyncio.sleep(0.2)
            assert not task.done()  # queued behind `first`
            version = PromptVersion(
                "id-1", project, "p", 1, PromptType.TEXT, "x", {}, ["latest"], [], None, "API",
                T0, T0,
            )  # fmt: skip
            await first.prompts.add(version, [])
            await first.commit()
        assert await asyncio.wait_for(task, 5) == 1
    finally:
        await other.close()


# --- score configs, comments, annotation queues --------------------------------------------------


@dataclass
class FakeTelemetry:
    """The reads comments and datasets make of the telemetry store."""

    traces: set[str] = field(default_factory=set)

    async def get_traces(self, project_id: str, ids: list[str]) -> list[str]:
        return [i for i in ids if i in self.traces]

    async def get_observations(self, project_id: str, ids: list[str]) -> list[Any]:
        return []

    async def get_session(self, project_id: str, session_id: str) -> Any:
        return None


async def test_score_configs_create_update_list_and_cache(
    records: SqlRecordStore, clock: FakeClock, project: str
) -> None:
    cache = ScoreConfigCache(records, clock)
    create = CreateScoreConfig(records, clock, UuidGenerator(), cache)
    numeric = await create(
        project, {"name": "accuracy", "dataType": "NUMERIC", "minValue": 0, "maxValue": 1}
    )
    clock.advance(1)
    categorical = await create(
        project,
        {
            "name": "tone",
            "dataType": "CATEGORICAL",
            "categories": [{"label": "good", "value": 1}, {"label": "bad", "value": 0}],
        },
    )
    clock.advance(1)
    boolean = await create(project, {"name": "ok", "dataType": "BOOLEAN"})
    archived = await UpdateScoreConfig(records, clock, cache)(
        project, numeric.id, {"isArchived": True, "maxValue": 10}
    )
    assert (archived.is_archived, archived.max_value) == (True, 10.0)
    listed = await ListScoreConfigs(records)(project)
    assert [c.id for c in listed.items] == [boolean.id, categorical.id, numeric.id]
    assert listed.items[2].is_archived is True
    assert listed.items[1].categories == categorical.categories
    fresh = ScoreConfigCache(records, clock)
    found = await fresh.get_many(project, [numeric.id, "missing", boolean.id])
    assert set(found) == {numeric.id, boolean.id}


async def test_comments_filter_and_reject_what_the_engine_cannot_store(
    records: SqlRecordStore, clock: FakeClock, project: str
) -> None:
    telemetry = FakeTelemetry({"trace-1"})
    create = CreateComment(records, telemetry, clock, UuidGenerator())  # type: ignore[arg-type]
    first = await create(
        project, {"objectType": "TRACE", "objectId": "trace-1", "content": "x" * 5000}
    )
    clock.advance(1)
    second = await create(
        project,
        {"objectType": "trace", "objectId": "trace-1", "content": "Ünïcode ✓", "authorUserId": "u"},
    )
    query = CommentQuery(object_type=CommentObjectType.TRACE, object_id="trace-1")
    listed = await ListComments(records)(project, query)
    assert [c.id for c in listed.items] == [second.id, first.id]
    assert (await GetComment(records)(project, second.id)).content == "Ünïcode ✓"
    by_author = await ListComments(records)(project, CommentQuery(author_user_id="u"))
    assert by_author.total == 1

    nul = {"objectType": "TRACE", "objectId": "trace-1", "content": "a\x00b"}
    if engine(records) == "postgresql":
        # PostgreSQL cannot store U+0000 in text: a 400 naming the problem, not a 500.
        with pytest.raises(InvalidInput, match="0x00"):
            await create(project, nul)
    else:
        stored = await create(project, nul)
        assert (await GetComment(records)(project, stored.id)).content == "a\x00b"


async def test_annotation_queues_items_and_assignments(
    records: SqlRecordStore, clock: FakeClock, project: str
) -> None:
    ids = UuidGenerator()
    config = await CreateScoreConfig(records, clock, ids, ScoreConfigCache(records, clock))(
        project, {"name": "ok", "dataType": "BOOLEAN"}
    )
    queue = await CreateAnnotationQueue(records, clock, ids)(
        project, {"name": "review", "scoreConfigIds": [config.id]}
    )
    with pytest.raises(Conflict):
        await CreateAnnotationQueue(records, clock, ids)(
            project, {"name": "review", "scoreConfigIds": [config.id]}
        )
    create_item = CreateAnnotationQueueItem(records, clock, ids)
    pending = await create_item(project, queue.id, {"objectId": "t1", "objectType": "TRACE"})
    clock.advance(1)
    done = await create_item(
        project, queue.id, {"objectId": "o1", "objectType": "OBSERVATION", "status": "COMPLETED"}
    )
    assert done.completed_at == T0 + timedelta(seconds=1)
    clock.advance(1)
    updated = await UpdateAnnotationQueueItem(records, clock)(
        project, queue.id, pending.id, {"status": "COMPLETED"}
    )
    assert updated.completed_at == T0 + timedelta(seconds=2)
    listed = ListAnnotationQueueItems(records)
    completed = await listed(project, queue.id, AnnotationStatus.COMPLETED)
    assert [i.id for i in completed.items] == [done.id, pending.id]  # newest first
    await DeleteAnnotationQueueItem(records)(project, queue.id, done.id)
    assert (await listed(project, queue.id)).total == 1

    hasher = Sha256SecretHasher("salt")
    await InitializeHeadless(records, hasher, clock, ids)(
        HeadlessInitRequest(org_id=ORG, user_email="annotator@example.com")
    )
    async with records.unit_of_work() as uow:
        user = await uow.users.get_by_email("annotator@example.com")
    assert user is not None
    assign = AssignAnnotationQueue(records, clock)
    await asyncio.gather(*(assign(project, queue.id, {"userId": user.id}) for _ in range(3)))
    async with records.unit_of_work() as uow:
        assert await uow.annotation_queues.assignees(project, queue.id) == [user.id]
    await UnassignAnnotationQueue(records)(project, queue.id, {"userId": user.id})
    await UnassignAnnotationQueue(records)(project, queue.id, {"userId": user.id})
    async with records.unit_of_work() as uow:
        assert await uow.annotation_queues.assignees(project, queue.id) == []


# --- datasets, runs, experiments ------------------------------------------------------------------


async def test_dataset_items_keep_versions_and_read_as_of(
    records: SqlRecordStore, clock: FakeClock, project: str
) -> None:
    ids = UuidGenerator()
    dataset = await CreateDataset(records, clock, ids)(
        project, {"name": "qa/" + "d" * 300, "metadata": {"z": 1, "a": [1, 2.5, None]}}
    )
    upsert = UpsertDatasetItem(records, clock, ids)
    await upsert(project, {"datasetName": dataset.name, "id": "i1", "input": {"q": "one"}})
    version_one = clock.now()
    clock.advance(60)
    await upsert(project, {"datasetName": dataset.name, "id": "i1", "input": {"q": "two"}})
    clock.advance(60)
    await upsert(project, {"datasetName": dataset.name, "id": "i2", "input": "plain text"})
    items = ListDatasetItems(records)
    current = await items(project, dataset_name=dataset.name)
    assert [(i.item.id, i.item.input) for i in current.items] == [
        ("i2", "plain text"),
        ("i1", {"q": "two"}),
    ]
    as_of = await items(
        project,
        dataset_name=dataset.name,
        version=(version_one + timedelta(seconds=1)).astimezone(timezone(timedelta(hours=-7))),
    )
    assert [(i.item.id, i.item.input) for i in as_of.items] == [("i1", {"q": "one"})]
    clock.advance(1)
    await DeleteDatasetItem(records, clock)(project, "i1")
    with pytest.raises(NotFound):
        await GetDatasetItem(records)(project, "i1")
    listed = await ListDatasets(records)(project)
    assert [d.metadata for d in listed.items] == [{"z": 1, "a": [1, 2.5, None]}]


async def test_deleting_a_dataset_item_deletes_its_media_links_not_the_media(
    records: SqlRecordStore, clock: FakeClock, project: str, tmp_path: Path
) -> None:
    ids = UuidGenerator()
    dataset = await CreateDataset(records, clock, ids)(project, {"name": "d"})
    upsert = UpsertDatasetItem(records, clock, ids)
    links = MediaLinks(
        LocalBlobStore(tmp_path / "blobs", fsync=False),
        MediaLinkSigner(media_signing_key("salt"), clock),
    )
    get_upload_url = GetMediaUploadUrl(records, links, clock)
    for item_id in ("i1", "i2"):
        await upsert(project, {"datasetName": "d", "id": item_id, "input": "see attachment"})
        body = {
            "datasetId": dataset.id,
            "datasetItemId": item_id,
            "contentType": "image/png",
            "contentLength": 3,
            "sha256Hash": base64.b64encode(bytes(32)).decode(),
            "field": "expectedOutput",
        }
        found = await get_upload_url(project, body, base_url="http://x")
    clock.advance(1)
    await DeleteDatasetItem(records, clock)(project, "i1")
    async with records.unit_of_work() as uow:
        assert await uow.media.links_of_dataset_items(project, ["i1", "i2"]) == [
            DatasetItemMediaLink(
                project,
                found.media_id,
                dataset.id,
                "i2",
                "expectedOutput",
                MediaLinkOrigin.CLIENT_UPLOAD,
                T0,
            )
        ]
        assert await uow.media.get(project, found.media_id) is not None


async def test_concurrent_upserts_of_one_item_leave_one_current_version(
    postgres_records: SqlRecordStore, clock: FakeClock
) -> None:
    records = postgres_records
    project = await make_project(records, clock)
    ids = UuidGenerator()
    await CreateDataset(records, clock, ids)(project, {"name": "d"})
    # Each writer's own clock: versions are keyed by time, as requests a moment apart are.
    writers = [
        UpsertDatasetItem(records, FakeClock(T0 + timedelta(seconds=n)), ids) for n in range(6)
    ]
    await asyncio.gather(
        *(
            write(project, {"datasetName": "d", "id": "i", "input": n})
            for n, write in enumerate(writers)
        )
    )
    async with records.unit_of_work() as uow:
        current = await uow.datasets.list_items(project, ItemQuery())
    assert current.total == 1


async def test_runs_run_items_and_experiments(
    records: SqlRecordStore, clock: FakeClock, project: str
) -> None:
    ids = UuidGenerator()
    telemetry = FakeTelemetry()
    dataset = await CreateDataset(records, clock, ids)(project, {"name": "qa"})
    upsert = UpsertDatasetItem(records, clock, ids)
    for item in ("i1", "i2"):
        await upsert(project, {"datasetName": "qa", "id": item, "input": item})
    link = CreateDatasetRunItem(records, telemetry, clock, ids)  # type: ignore[arg-type]
    for n, (run, item) in enumerate([("Run A", "i1"), ("Run A", "i2"), ("run b", "i1")]):
        clock.advance(1)
        await link(
            project,
            {
                "runName": run,
                "datasetItemId": item,
                "traceId": f"trace-{n}",
                "metadata": {"n": n},
                "createdAt": (T0 + timedelta(minutes=n)).isoformat(),
            },
        )
    _, runs = await ListDatasetRuns(records)(project, "qa")
    assert sorted(r.name for r in runs.items) == ["Run A", "run b"]
    with_items = await GetDatasetRun(records)(project, "qa", "Run A")
    assert [i.dataset_item_id for i in with_items.items] == ["i2", "i1"]
    assert with_items.run.metadata == {"n": 1}

    experiments = ListExperiments(records, telemetry)  # type: ignore[arg-type]
    summaries = await experiments(project, ExperimentQuery(from_start_time=T0 - timedelta(days=1)))
    assert [(s.summary.run.name, s.summary.item_count) for s in summaries] == [
        ("run b", 1),
        ("Run A", 2),
    ]
    # Case-sensitive on both engines, as upstream's position()/startsWith/endsWith.
    for operator, value, expected in [
        ("contains", "Run", ["Run A"]),
        ("contains", "run", ["run b"]),
        ("does not contain", "Run", ["run b"]),
        ("starts with", "r", ["run b"]),
        ("ends with", "A", ["Run A"]),
        ("ends with", "", ["run b", "Run A"]),
        ("starts with", "Run A and more", []),
    ]:
        query = ExperimentQuery(
            from_start_time=T0 - timedelta(days=1),
            conditions=[FieldCondition("experiment_name", operator, (value,))],
        )
        found = [s.summary.run.name for s in await experiments(project, query)]
        assert found == expected, (operator, value)
    items = ListExperimentItems(records, telemetry)  # type: ignore[arg-type]
    page = await items(project, ExperimentQuery(from_start_time=T0, limit=2))
    assert [v.item.trace_id for v in page] == ["trace-2", "trace-1"]
    last = page[-1].item
    rest = await items(
        project,
        ExperimentQuery(from_start_time=T0, limit=2, after=(last.start_time, last.id)),
    )
    assert [v.item.trace_id for v in rest] == ["trace-0"]

    await DeleteDatasetRun(records)(project, "qa", "Run A")
    _, runs = await ListDatasetRuns(records)(project, dataset.name)
    assert [r.name for r in runs.items] == ["run b"]


# --- PostgreSQL specifics ----------------------------------------------------------------------


async def test_postgres_schema_stores_text_in_byte_order_and_jsonb(
    postgres_records: SqlRecordStore,
) -> None:
    from sqlalchemy import text

    async with postgres_records.engine.connect() as connection:
        rows = (
            await connection.execute(
                text(
                    "SELECT table_name, column_name, data_type, collation_name "
                    "FROM information_schema.columns WHERE table_schema = 'public' "
                    "AND table_name <> 'alembic_version'"
                )
            )
        ).all()
    kinds = {row.data_type for row in rows}
    assert "character varying" not in kinds and "json" not in kinds
    assert {"text", "jsonb", "timestamp with time zone", "boolean"} <= kinds
    assert {row.collation_name for row in rows if row.data_type == "text"} == {"C"}


async def test_concurrent_migrations_of_one_database(fresh_postgres_url: str) -> None:
    stores = [SqlRecordStore(fresh_postgres_url) for _ in range(3)]
    try:
        await asyncio.gather(*(store.migrate() for store in stores))
        await stores[0].ping()
    finally:
        for store in stores:
            await store.close()


async def test_unreachable_postgres_is_one_line_naming_the_setting() -> None:
    store = SqlRecordStore("postgresql://fathom:s3cret@127.0.0.1:1/records", connect_timeout=2)
    try:
        for operation in (store.ping, store.migrate):
            with pytest.raises(Unavailable) as caught:
                await operation()
            message = caught.value.message
            assert message.startswith("FATHOM_RECORDS__URL=postgresql+asyncpg://fathom:***@")
            assert "s3cret" not in message and "\n" not in message
        with pytest.raises(Unavailable):
            async with store.unit_of_work():
                pass
    finally:
        await store.close()


async def test_a_database_that_refuses_us_is_a_configuration_error(
    postgres_url: str,
) -> None:
    store = SqlRecordStore(postgres_url.rsplit("/", 1)[0] + "/no_such_database")
    try:
        with pytest.raises(ConfigurationError, match="FATHOM_RECORDS__URL=.*no_such_database"):
            await store.ping()
    finally:
        await store.close()


def test_operator_urls_are_normalised_for_asyncpg() -> None:
    url = normalise_url("postgres://u:p@db:5432/lf?sslmode=require&connection_limit=5")
    assert url == "postgresql+asyncpg://u:p@db:5432/lf?ssl=require"
    assert masked(url) == "postgresql+asyncpg://u:***@db:5432/lf?ssl=require"
    assert normalise_url("sqlite+aiosqlite:////tmp/x.db") == "sqlite+aiosqlite:////tmp/x.db"
    with pytest.raises(ConfigurationError, match="FATHOM_RECORDS__URL"):
        normalise_url("not a url")


async def test_runtime_wires_the_postgres_records_adapter(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    from fathom.core.ports.records import RecordStore
    from fathom.entrypoints.bootstrap import Runtime
    from tests.conftest import PROJECT_ID, make_settings

    # As an operator writes it: libpq scheme, no driver.
    url = fresh_postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    runtime = Runtime(make_settings(tmp_path, records={"kind": "postgres", "url": url}))
    await runtime.start(telemetry=False)
    try:
        records = runtime.resolve(RecordStore)
        assert isinstance(records, SqlRecordStore) and engine(records) == "postgresql"
        async with records.unit_of_work() as uow:
            assert await uow.projects.get(PROJECT_ID) is not None  # headless init ran
    finally:
        await runtime.stop()


async def test_an_unusable_sqlite_path_names_its_setting(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("not a folder")
    store = SqlRecordStore(f"sqlite+aiosqlite:///{tmp_path / 'taken' / 'records.db'}")
    try:
        with pytest.raises(Unavailable, match="^FATHOM_RECORDS__PATH=.*taken"):
            await store.migrate()
    finally:
        await store.close()
