"""`/api/public/v2/prompts*` over HTTP: Langfuse's shapes, rules and error messages."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import punq
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from fathom.core.domain.access import Role
from fathom.core.domain.errors import Forbidden
from fathom.core.domain.prompts import PromptActor
from fathom.core.ports.prompts import PromptCache
from fathom.core.ports.records import RecordStore
from fathom.core.ports.system import Clock
from fathom.core.usecases.access import CreateApiKey
from fathom.core.usecases.prompts import (
    CreatePromptVersion,
    DeletePrompt,
    GetPrompt,
    InMemoryPromptCache,
    ListPrompts,
    ListProtectedLabels,
    ProtectPromptLabel,
    UnprotectPromptLabel,
    UpdatePromptLabels,
)
from fathom.entrypoints.bootstrap import Runtime
from fathom.entrypoints.http import context
from fathom.entrypoints.http.errors import error_middleware
from fathom.entrypoints.http.routes import prompts
from tests.conftest import ORG_ID, PROJECT_ID, basic_auth

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PROMPT_KEYS = {
    "id",
    "createdAt",
    "updatedAt",
    "projectId",
    "createdBy",
    "prompt",
    "name",
    "version",
    "type",
    "config",
    "tags",
    "labels",
    "commitMessage",
}
USE_CASES = (
    CreatePromptVersion,
    GetPrompt,
    ListPrompts,
    UpdatePromptLabels,
    DeletePrompt,
    ListProtectedLabels,
    ProtectPromptLabel,
    UnprotectPromptLabel,
)


def ensure_prompts_wired(runtime: Runtime) -> None:
    """Register the prompt use cases as bootstrap is meant to, unless it already does."""
    container = runtime.wiring.container
    try:
        container.resolve(GetPrompt)
        return
    except punq.MissingDependencyError:
        pass
    container.register(
        PromptCache,
        factory=lambda: InMemoryPromptCache(container.resolve(Clock)),
        scope=punq.Scope.singleton,
    )
    for use_case in USE_CASES:
        container.register(use_case, scope=punq.Scope.singleton)


@pytest.fixture
async def client(
    records_runtime: Runtime, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> TestClient:
    # create_app() freezes its router, so until the prompt routes are registered there this
    # builds a minimal app of its own around the same runtime.
    ensure_prompts_wired(records_runtime)
    app = web.Application(middlewares=[error_middleware])
    context.install(app, records_runtime)
    app.add_routes(prompts.routes)
    return await aiohttp_client(app)


def path(name: str, suffix: str = "") -> str:
    # What the SDK sends: the whole name percent-encoded, slashes included.
    return f"/api/public/v2/prompts/{quote(name, safe='')}{suffix}"


async def create(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/public/v2/prompts", json=body, headers=basic_auth())
    assert response.status == 201, await response.text()
    return await response.json()


async def fetch(client: TestClient, name: str, query: str = "", status: int = 200) -> Any:
    response = await client.get(path(name) + (f"?{query}" if query else ""), headers=basic_auth())
    assert response.status == status, await response.text()
    return await response.json()


async def patch(client: TestClient, name: str, version: int, labels: list[str]) -> Any:
    response = await client.patch(
        path(name, f"/versions/{version}"), json={"newLabels": labels}, headers=basic_auth()
    )
    return response.status, await response.json()


TEXT = {
    "name": "greeting",
    "prompt": "Hi {{name}}",
    "config": {"model": "x", "temperature": 0.2},
    "labels": ["production"],
    "tags": ["tg"],
    "commitMessage": "first",
}
CHAT = {
    "name": "probe-chat",
    "prompt": [
        {"role": "system", "content": "sys {{a}}"},
        {"name": "history", "type": "placeholder"},
    ],
    "config": {},
    "type": "chat",
    "labels": ["staging"],
    "tags": None,
    "commitMessage": None,
}


# --- create ------------------------------------------------------------------------------------


async def test_create_text_prompt_shape(client: TestClient) -> None:
    body = await create(client, TEXT)
    assert set(body) == PROMPT_KEYS
    assert body["name"] == "greeting" and body["version"] == 1 and body["type"] == "text"
    assert body["prompt"] == "Hi {{name}}"
    assert body["config"] == {"model": "x", "temperature": 0.2}
    assert body["labels"] == ["production", "latest"]
    assert body["tags"] == ["tg"]
    assert body["commitMessage"] == "first"
    assert body["createdBy"] == "API" and body["projectId"] == PROJECT_ID
    assert body["createdAt"].endswith("Z") and body["createdAt"] == body["updatedAt"]


async def test_create_chat_prompt_and_fetch_by_label(client: TestClient) -> None:
    body = await create(client, CHAT)
    assert body["type"] == "chat"
    assert body["prompt"] == [
        {"role": "system", "content": "sys {{a}}"},
        {"type": "placeholder", "name": "history"},
    ]
    assert body["labels"] == ["staging", "latest"] and body["tags"] == []
    assert body["commitMessage"] is None and body["config"] == {}
    fetched = await fetch(client, "probe-chat", "label=staging")
    assert fetched == {**body, "resolutionGraph": None}


async def test_versions_increment_and_labels_move(client: TestClient) -> None:
    v1 = await create(client, TEXT)
    v2 = await create(client, {**TEXT, "prompt": "v2", "labels": ["production"], "tags": None})
    assert v2["version"] == 2 and v2["labels"] == ["production", "latest"]
    # tags: null keeps the previous version's tags.
    assert v2["tags"] == ["tg"]
    old = await fetch(client, "greeting", "version=1")
    assert old["labels"] == [] and old["id"] == v1["id"]
    # Creating without labels takes only `latest`; production stays on v2.
    v3 = await create(client, {**TEXT, "prompt": "v3", "labels": [], "tags": ["new", "tags"]})
    assert v3["labels"] == ["latest"]
    assert (await fetch(client, "greeting"))["version"] == 2
    assert (await fetch(client, "greeting", "label=latest"))["version"] == 3
    # A tag change rewrites every version's tags.
    assert (await fetch(client, "greeting", "version=1"))["tags"] == ["new", "tags"]


async def test_type_cannot_change_between_versions(client: TestClient) -> None:
    await create(client, TEXT)
    response = await client.post(
        "/api/public/v2/prompts", json={**CHAT, "name": "greeting"}, headers=basic_auth()
    )
    assert response.status == 400
    assert await response.json() == {
        "message": "Previous versions have different prompt type. Create a new prompt with a "
        "different name.",
        "error": "InvalidRequestError",
    }


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({**TEXT, "labels": ["Production"]}, "lowercase alphanumeric"),
        ({**TEXT, "name": "a|b"}, "cannot contain '|'"),
        ({**TEXT, "name": "/a"}, "cannot start with a slash"),
        ({**TEXT, "prompt": 3}, "must be a string"),
        ({k: v for k, v in TEXT.items() if k != "name"}, "name is required"),
    ],
)
async def test_create_validation_is_400(
    client: TestClient, body: dict[str, Any], problem: str
) -> None:
    response = await client.post("/api/public/v2/prompts", json=body, headers=basic_auth())
    assert response.status == 400
    result = await response.json()
    assert result["error"] == "InvalidRequestError" and problem in result["message"]


async def test_concurrent_creates_get_distinct_versions(client: TestClient) -> None:
    bodies = [{**TEXT, "prompt": f"p{i}", "labels": []} for i in range(8)]
    results = await asyncio.gather(*(create(client, body) for body in bodies))
    assert sorted(r["version"] for r in results) == list(range(1, 9))
    latest = await fetch(client, "greeting", "label=latest")
    assert latest["version"] == 8
    listing = await (await client.get("/api/public/v2/prompts", headers=basic_auth())).json()
    assert listing["data"][0]["labels"] == ["latest"]


# --- get ---------------------------------------------------------------------------------------


async def test_get_defaults_to_production_and_404s_like_langfuse(client: TestClient) -> None:
    await create(client, {**TEXT, "labels": []})
    assert await fetch(client, "greeting", status=404) == {
        "message": "Prompt not found: 'greeting' with label 'production'",
        "error": "LangfuseNotFoundError",
    }
    missing = await fetch(client, "greeting", "version=9", status=404)
    assert missing["message"] == "Prompt not found: 'greeting' with version 9"
    missing = await fetch(client, "nope", "label=staging", status=404)
    assert missing["message"] == "Prompt not found: 'nope' with label 'staging'"


async def test_get_with_both_version_and_label_is_400(client: TestClient) -> None:
    await create(client, TEXT)
    body = await fetch(client, "greeting", "version=1&label=production", status=400)
    assert body == {
        "message": "Cannot specify both version and label",
        "error": "InvalidRequestError",
    }
    body = await fetch(client, "greeting", "version=abc", status=400)
    assert "version" in body["message"]


@pytest.mark.parametrize(
    "name",
    [
        "folder/sub/my prompt",
        "special ?#&%+=:;@,$!*'()[]~ chars",
        "ünïcödé/名前/😀",
        "100% done",
    ],
)
async def test_names_with_folders_and_special_characters_round_trip(
    client: TestClient, name: str
) -> None:
    created = await create(client, {**TEXT, "name": name})
    assert created["name"] == name
    fetched = await fetch(client, name)
    assert fetched["name"] == name and fetched["id"] == created["id"]
    status, updated = await patch(client, name, 1, ["staging"])
    assert status == 200 and "staging" in updated["labels"]
    listing = await client.get(
        "/api/public/v2/prompts", params={"name": name}, headers=basic_auth()
    )
    assert [p["name"] for p in (await listing.json())["data"]] == [name]
    response = await client.delete(path(name), headers=basic_auth())
    assert response.status == 204
    await fetch(client, name, status=404)


async def test_unencoded_folder_path_does_not_match(client: TestClient) -> None:
    await create(client, {**TEXT, "name": "a/b"})
    response = await client.get("/api/public/v2/prompts/a/b", headers=basic_auth())
    assert response.status == 404


# --- composition -------------------------------------------------------------------------------


async def test_references_are_resolved_on_fetch(client: TestClient) -> None:
    child = await create(client, {**TEXT, "name": "snippets/tone", "prompt": "Be brief."})
    parent = await create(
        client,
        {
            **TEXT,
            "name": "assistant",
            "prompt": "Rules: @@@langfusePrompt:name=snippets/tone|label=production@@@ {{q}}",
        },
    )
    # Create answers with the stored text, tags intact.
    assert "@@@langfusePrompt" in parent["prompt"]
    fetched = await fetch(client, "assistant")
    assert fetched["prompt"] == "Rules: Be brief. {{q}}"
    assert fetched["resolutionGraph"] == {
        "root": {"name": "assistant", "version": 1, "id": parent["id"]},
        "dependencies": {
            parent["id"]: [{"id": child["id"], "name": "snippets/tone", "version": 1}]
        },
    }
    raw = await fetch(client, "assistant", "resolve=false")
    assert raw["prompt"] == parent["prompt"] and raw["resolutionGraph"] is None

    chat = await create(
        client,
        {
            **CHAT,
            "name": "chat-with-ref",
            "prompt": [
                {"role": "system", "content": "@@@langfusePrompt:name=snippets/tone|version=1@@@"}
            ],
        },
    )
    fetched_chat = await fetch(client, "chat-with-ref", "label=staging")
    assert fetched_chat["prompt"] == [{"role": "system", "content": "Be brief."}]
    assert fetched_chat["id"] == chat["id"]


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        (
            "@@@langfusePrompt:name=ghost|label=production@@@",
            "Prompt dependency not found: ghost - label production",
        ),
        (
            "@@@langfusePrompt:name=chatty|label=staging@@@",
            "Prompt dependency is not a text prompt: chatty - label staging",
        ),
        (
            "@@@langfusePrompt:name=composite|version=1@@@",
            "Circular dependency detected involving prompt 'composite' version 1",
        ),
    ],
)
async def test_invalid_references_are_400(client: TestClient, prompt: str, message: str) -> None:
    await create(client, {**CHAT, "name": "chatty"})
    await create(client, {**TEXT, "name": "composite", "prompt": "v1"})
    response = await client.post(
        "/api/public/v2/prompts",
        json={**TEXT, "name": "composite", "prompt": prompt},
        headers=basic_auth(),
    )
    assert response.status == 400
    assert await response.json() == {"message": message, "error": "InvalidRequestError"}


async def test_cycle_through_another_prompt_is_400(client: TestClient) -> None:
    await create(client, {**TEXT, "name": "a", "prompt": "a1"})
    await create(client, {**TEXT, "name": "b", "prompt": "@@@langfusePrompt:name=a|version=1@@@"})
    response = await client.post(
        "/api/public/v2/prompts",
        json={**TEXT, "name": "a", "prompt": "@@@langfusePrompt:name=b|label=production@@@"},
        headers=basic_auth(),
    )
    assert response.status == 400
    assert (await response.json())["message"] == (
        "Circular dependency detected involving prompt 'a' version 1"
    )
    assert (await fetch(client, "a", "label=latest"))["version"] == 1


async def test_cached_parent_sees_a_changed_child(client: TestClient) -> None:
    await create(client, {**TEXT, "name": "child", "prompt": "old"})
    await create(
        client,
        {**TEXT, "name": "parent", "prompt": "<@@@langfusePrompt:name=child|label=production@@@>"},
    )
    assert (await fetch(client, "parent"))["prompt"] == "<old>"
    await create(client, {**TEXT, "name": "child", "prompt": "new"})
    assert (await fetch(client, "parent"))["prompt"] == "<new>"


# --- labels (PATCH) ----------------------------------------------------------------------------


async def test_patch_moves_labels_and_keeps_existing_ones(client: TestClient) -> None:
    await create(client, {**TEXT, "labels": ["production", "staging"]})
    await create(client, {**TEXT, "prompt": "v2", "labels": []})
    status, body = await patch(client, "greeting", 2, ["production"])
    assert status == 200
    assert set(body) == PROMPT_KEYS
    assert body["version"] == 2 and body["labels"] == ["production", "latest"]
    v1 = await fetch(client, "greeting", "version=1")
    assert v1["labels"] == ["staging"]
    assert (await fetch(client, "greeting"))["version"] == 2
    # Only one version ever carries a label.
    listing = await (await client.get("/api/public/v2/prompts", headers=basic_auth())).json()
    assert listing["data"][0]["labels"] == ["latest", "production", "staging"]
    # Rollback = move the label back.
    status, body = await patch(client, "greeting", 1, ["production"])
    assert body["labels"] == ["production", "staging"]
    assert (await fetch(client, "greeting"))["version"] == 1
    assert (await fetch(client, "greeting", "version=2"))["labels"] == ["latest"]


async def test_patch_errors(client: TestClient) -> None:
    await create(client, TEXT)
    status, body = await patch(client, "greeting", 1, ["latest"])
    assert status == 400 and "always assigned to the latest" in body["message"]
    status, body = await patch(client, "greeting", 7, ["staging"])
    assert status == 404
    assert body["message"] == "Prompt 'greeting' version 7 not found in project"
    status, body = await patch(client, "greeting", 1, ["Bad Label"])
    assert status == 400
    response = await client.patch(
        path("greeting", "/versions/x"), json={"newLabels": []}, headers=basic_auth()
    )
    assert response.status == 400


async def test_store_keeps_a_label_on_one_version_only(
    client: TestClient, records_runtime: Runtime
) -> None:
    await create(client, {**TEXT, "labels": ["staging"]})
    await create(client, {**TEXT, "prompt": "v2", "labels": []})
    records = records_runtime.resolve(RecordStore)
    async with records.unit_of_work() as uow:
        v1, v2 = await uow.prompts.list_versions(PROJECT_ID, "greeting")
        # Even a careless writer that does not take the label off v1 first cannot end up
        # with it on both versions.
        await uow.prompts.save_labels(PROJECT_ID, "greeting", v2.id, ["staging", "latest"], NOW)
        await uow.commit()
    assert (await fetch(client, "greeting", "label=staging"))["version"] == 2
    assert (await fetch(client, "greeting", "version=1"))["labels"] == []
    async with records.unit_of_work() as uow:
        v1, v2 = await uow.prompts.list_versions(PROJECT_ID, "greeting")
    assert (v1.labels, v2.labels) == ([], ["staging", "latest"])


# --- protected labels --------------------------------------------------------------------------


async def test_protected_labels(client: TestClient, records_runtime: Runtime) -> None:
    admin = PromptActor.for_user("u-admin", Role.ADMIN)
    member = PromptActor.for_user("u-member", Role.MEMBER)
    await records_runtime.resolve(ProtectPromptLabel)(PROJECT_ID, "production", admin)
    with pytest.raises(Forbidden):
        await records_runtime.resolve(ProtectPromptLabel)(PROJECT_ID, "staging", member)
    assert await records_runtime.resolve(ListProtectedLabels)(PROJECT_ID) == ["production"]

    # Project API keys may promote protected labels (CI), as in Langfuse.
    await create(client, TEXT)
    await create(client, {**TEXT, "prompt": "v2", "labels": []})
    status, _ = await patch(client, "greeting", 2, ["production"])
    assert status == 200

    # People below admin may not set, move or delete them.
    create_version = records_runtime.resolve(CreatePromptVersion)
    with pytest.raises(Forbidden, match="create a prompt with a protected label") as info:
        await create_version(PROJECT_ID, {**TEXT, "prompt": "v3"}, member)
    assert info.value.message.endswith("Protected labels are: production")
    unprotected = await create_version(PROJECT_ID, {**TEXT, "prompt": "v3", "labels": []}, member)
    assert unprotected.created_by == "u-member"
    update = records_runtime.resolve(UpdatePromptLabels)
    with pytest.raises(Forbidden, match="add a protected label"):
        await update(PROJECT_ID, "greeting", 1, {"newLabels": ["production"]}, member)
    await update(PROJECT_ID, "greeting", 1, {"newLabels": ["staging"]}, member)
    with pytest.raises(Forbidden, match="delete a prompt with a protected label"):
        await records_runtime.resolve(DeletePrompt)(PROJECT_ID, "greeting", actor=member)
    await records_runtime.resolve(DeletePrompt)(PROJECT_ID, "greeting", version=3, actor=member)
    await update(PROJECT_ID, "greeting", 1, {"newLabels": ["production"]}, admin)

    await records_runtime.resolve(UnprotectPromptLabel)(PROJECT_ID, "production", admin)
    await update(PROJECT_ID, "greeting", 2, {"newLabels": ["production"]}, member)
    assert (await fetch(client, "greeting"))["version"] == 2


# --- list --------------------------------------------------------------------------------------


async def test_list_groups_versions_with_filters_and_paging(client: TestClient) -> None:
    await create(client, {**TEXT, "name": "b/one", "tags": ["t1"], "config": {"v": 1}})
    await create(
        client, {**TEXT, "name": "b/one", "labels": ["staging"], "tags": None, "config": {"v": 2}}
    )
    await create(client, {**CHAT, "name": "a-chat", "tags": ["t2"]})
    await create(client, {**TEXT, "name": "c", "labels": [], "tags": []})

    response = await client.get("/api/public/v2/prompts", headers=basic_auth())
    assert response.status == 200
    body = await response.json()
    assert body["meta"] == {"page": 1, "limit": 10, "totalItems": 3, "totalPages": 1}
    assert body["pagination"] == body["meta"]
    assert [p["name"] for p in body["data"]] == ["a-chat", "b/one", "c"]
    one = body["data"][1]
    assert set(one) == {"name", "type", "versions", "labels", "tags", "lastUpdatedAt", "lastConfig"}
    assert one["versions"] == [1, 2] and one["type"] == "text"
    assert one["labels"] == ["latest", "production", "staging"]
    assert one["tags"] == ["t1"] and one["lastConfig"] == {"v": 2}
    assert body["data"][0]["type"] == "chat"

    async def names(query: dict[str, str]) -> list[str]:
        found = await client.get("/api/public/v2/prompts", params=query, headers=basic_auth())
        assert found.status == 200, await found.text()
        return [p["name"] for p in (await found.json())["data"]]

    assert await names({"tag": "t2"}) == ["a-chat"]
    assert await names({"label": "production"}) == ["b/one"]
    assert await names({"name": "c"}) == ["c"]
    assert await names({"limit": "2", "page": "2"}) == ["c"]
    # A filter narrows the versions aggregated, not just the names.
    filtered = await client.get(
        "/api/public/v2/prompts", params={"label": "production"}, headers=basic_auth()
    )
    only = (await filtered.json())["data"][0]
    assert only["versions"] == [1] and only["labels"] == ["production"]
    assert only["lastConfig"] == {"v": 1}

    last = one["lastUpdatedAt"]
    assert await names({"fromUpdatedAt": "2000-01-01T00:00:00+02:00"}) == ["a-chat", "b/one", "c"]
    assert await names({"toUpdatedAt": "2000-01-01T00:00:00Z"}) == []
    assert "b/one" in await names({"fromUpdatedAt": last})


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "page=0", "fromUpdatedAt=yesterday"])
async def test_list_bad_query_is_400(client: TestClient, query: str) -> None:
    response = await client.get(f"/api/public/v2/prompts?{query}", headers=basic_auth())
    assert response.status == 400


# --- delete ------------------------------------------------------------------------------------


async def test_delete_one_version_moves_latest(client: TestClient) -> None:
    await create(client, TEXT)
    await create(client, {**TEXT, "prompt": "v2", "labels": []})
    await create(client, {**TEXT, "prompt": "v3", "labels": ["staging"]})
    response = await client.delete(path("greeting") + "?version=3", headers=basic_auth())
    assert response.status == 204
    assert (await fetch(client, "greeting", "label=latest"))["version"] == 2
    await fetch(client, "greeting", "label=staging", status=404)
    # A new version continues after the highest remaining one.
    assert (await create(client, {**TEXT, "labels": []}))["version"] == 3


async def test_delete_by_label_and_everything(client: TestClient) -> None:
    await create(client, TEXT)
    await create(client, {**TEXT, "prompt": "v2", "labels": ["staging"]})
    response = await client.delete(path("greeting") + "?label=production", headers=basic_auth())
    assert response.status == 204
    await fetch(client, "greeting", "version=1", status=404)
    assert (await fetch(client, "greeting", "label=staging"))["version"] == 2
    response = await client.delete(path("greeting"), headers=basic_auth())
    assert response.status == 204
    listing = await (await client.get("/api/public/v2/prompts", headers=basic_auth())).json()
    assert listing["data"] == []
    response = await client.delete(path("greeting"), headers=basic_auth())
    assert response.status == 404
    assert await response.json() == {
        "message": "Prompt not found",
        "error": "LangfuseNotFoundError",
    }
    # The name starts over, tags included.
    fresh = await create(client, {**TEXT, "tags": None})
    assert fresh["version"] == 1 and fresh["tags"] == []


async def test_delete_errors(client: TestClient) -> None:
    await create(client, TEXT)
    response = await client.delete(
        path("greeting") + "?version=1&label=production", headers=basic_auth()
    )
    assert response.status == 400
    assert (await response.json())["message"] == "Cannot specify both version and label"


async def test_delete_refused_while_referenced(client: TestClient) -> None:
    await create(client, {**TEXT, "name": "child"})
    await create(client, {**TEXT, "name": "child", "prompt": "v2", "labels": []})
    await create(
        client,
        {**TEXT, "name": "parent", "prompt": "@@@langfusePrompt:name=child|label=production@@@"},
    )
    response = await client.delete(path("child") + "?version=1", headers=basic_auth())
    assert response.status == 400
    assert (await response.json())["message"] == (
        "Other prompts are depending on prompt versions you are trying to delete:\n\n"
        "parent v1 depends on child production\n\nPlease delete the dependent prompts first."
    )
    # Version 2 is not referenced.
    response = await client.delete(path("child") + "?version=2", headers=basic_auth())
    assert response.status == 204
    response = await client.delete(path("parent"), headers=basic_auth())
    assert response.status == 204
    response = await client.delete(path("child"), headers=basic_auth())
    assert response.status == 204


# --- the server cache --------------------------------------------------------------------------


async def test_cache_never_serves_stale_prompts(
    client: TestClient, records_runtime: Runtime
) -> None:
    cache = records_runtime.resolve(PromptCache)
    assert isinstance(cache, InMemoryPromptCache)
    await create(client, TEXT)
    first = await fetch(client, "greeting")
    assert len(cache) == 1
    assert await fetch(client, "greeting") == first
    # New version taking production.
    await create(client, {**TEXT, "prompt": "second"})
    assert (await fetch(client, "greeting"))["prompt"] == "second"
    # Label moved back.
    await patch(client, "greeting", 1, ["production"])
    assert (await fetch(client, "greeting"))["prompt"] == "Hi {{name}}"
    # Version fetches see label changes too.
    assert (await fetch(client, "greeting", "version=2"))["labels"] == ["latest"]
    await patch(client, "greeting", 2, ["staging"])
    assert (await fetch(client, "greeting", "version=2"))["labels"] == ["staging", "latest"]
    # Deleted.
    await client.delete(path("greeting") + "?version=1", headers=basic_auth())
    await fetch(client, "greeting", status=404)
    await client.delete(path("greeting"), headers=basic_auth())
    await fetch(client, "greeting", "version=2", status=404)
    assert len(cache) == 0


async def test_cache_is_per_project(client: TestClient, records_runtime: Runtime) -> None:
    cache = records_runtime.resolve(PromptCache)
    await create(client, TEXT)
    await fetch(client, "greeting")
    assert isinstance(cache, InMemoryPromptCache)
    await cache.invalidate("other-project", "greeting")
    assert len(cache) == 1


# --- auth --------------------------------------------------------------------------------------


async def test_auth_is_required(client: TestClient) -> None:
    for method, url in (
        ("GET", "/api/public/v2/prompts"),
        ("POST", "/api/public/v2/prompts"),
        ("GET", path("x")),
        ("DELETE", path("x")),
        ("PATCH", path("x", "/versions/1")),
    ):
        response = await client.request(method, url, json={})
        assert response.status == 401, (method, url)


async def test_organization_key_gets_403(client: TestClient, records_runtime: Runtime) -> None:
    issued = await records_runtime.resolve(CreateApiKey)(ORG_ID, None)
    headers = basic_auth(issued.api_key.public_key, issued.secret_key)
    response = await client.get("/api/public/v2/prompts", headers=headers)
    assert response.status == 403
    assert (await response.json())["error"] == "ForbiddenError"


async def test_public_key_bearer_is_refused(client: TestClient) -> None:
    response = await client.get(
        "/api/public/v2/prompts", headers={"Authorization": "Bearer pk-lf-test-public"}
    )
    assert response.status == 401
