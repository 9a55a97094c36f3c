"""Health, projects and authentication over HTTP, with Langfuse's status codes and bodies."""

from __future__ import annotations

import base64

import pytest
from aiohttp.test_utils import TestClient

from fathom.core.ports.foreground import RequestGauge
from fathom.core.usecases.access import CreateApiKey
from fathom.entrypoints.bootstrap import Runtime
from tests.conftest import ORG_ID, PROJECT_ID, PUBLIC_KEY, basic_auth


async def test_health_is_ok_without_auth(records_client: TestClient) -> None:
    response = await records_client.get("/api/public/health")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "OK" and body["version"]


async def test_projects_returns_the_key_project_with_its_organization(
    records_client: TestClient,
) -> None:
    response = await records_client.get("/api/public/projects", headers=basic_auth())
    assert response.status == 200
    assert await response.json() == {
        "data": [
            {
                "id": PROJECT_ID,
                "name": "Test Project",
                "organization": {"id": ORG_ID, "name": "Test Org"},
                "metadata": {},
            }
        ]
    }


async def test_wrong_secret_is_401_with_langfuse_message(records_client: TestClient) -> None:
    response = await records_client.get(
        "/api/public/projects", headers=basic_auth(secret_key="sk-lf-wrong")
    )
    assert response.status == 401
    assert await response.json() == {
        "message": "Invalid credentials. Confirm that you've configured the correct host.",
        "error": "UnauthorizedError",
    }


async def test_missing_and_malformed_authorization(records_client: TestClient) -> None:
    response = await records_client.get("/api/public/projects")
    assert response.status == 401
    assert (await response.json())["message"] == "No authorization header"
    for header in ("Basic %%%", "Basic " + base64.b64encode(b"nocolon").decode(), "Digest x"):
        response = await records_client.get(
            "/api/public/projects", headers={"Authorization": header}
        )
        assert response.status == 401, header
        body = await response.json()
        assert body["error"] == "UnauthorizedError"
        assert body["message"].startswith("Invalid authorization header")


async def test_organization_key_gets_403_on_project_routes(
    records_client: TestClient, records_runtime: Runtime
) -> None:
    issued = await records_runtime.resolve(CreateApiKey)(ORG_ID, None)
    headers = basic_auth(issued.api_key.public_key, issued.secret_key)
    # The org key lists its organization's projects...
    response = await records_client.get("/api/public/projects", headers=headers)
    assert response.status == 200
    assert [p["id"] for p in (await response.json())["data"]] == [PROJECT_ID]
    # ...but cannot act on a project: a project route answers Langfuse's 403.
    response = await records_client.get("/api/public/traces", headers=headers)
    assert response.status == 403
    assert await response.json() == {
        "message": "Project ID not found for API token. Are you using an organization key?",
        "error": "ForbiddenError",
    }


async def test_unknown_route_and_method_are_json(records_client: TestClient) -> None:
    response = await records_client.get("/api/public/nope", headers=basic_auth())
    assert response.status == 404
    assert (await response.json())["error"] == "LangfuseNotFoundError"
    response = await records_client.delete("/api/public/health")
    assert response.status == 405
    assert (await response.json())["error"] == "MethodNotAllowedError"


async def test_public_key_header_is_not_a_secret(records_client: TestClient) -> None:
    response = await records_client.get(
        "/api/public/projects", headers={"Authorization": f"Bearer {PUBLIC_KEY}"}
    )
    assert response.status == 200  # scores access still sees its project


async def test_requests_in_flight_are_counted_for_the_worker(
    records_client: TestClient, records_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    gauge = records_runtime.resolve(RequestGauge)
    busy_on_entry: list[bool] = []
    enter = RequestGauge.enter

    def entering(self: RequestGauge) -> None:
        enter(self)
        busy_on_entry.append(self.busy())

    monkeypatch.setattr(RequestGauge, "enter", entering)
    assert (await records_client.get("/api/public/health")).status == 200
    assert (await records_client.get("/api/public/projects")).status == 401  # refused
    assert busy_on_entry == [True, True]
    assert not gauge.busy()  # every request left the count, answered or refused
