"""`/api/public/models` over HTTP: project models next to the built-ins, Langfuse's shapes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pluggy
import punq
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from fathom.core.domain.tracing import Observation, ObservationType
from fathom.core.ports.records import RecordStore
from fathom.core.ports.system import Clock
from fathom.core.usecases.access import CreateApiKey
from fathom.core.usecases.models import CreateModel, DeleteModel, GetModel, ListModels, ModelCatalog
from fathom.core.usecases.pricing import PriceObservations
from fathom.entrypoints.bootstrap import Runtime
from fathom.entrypoints.http import context
from fathom.entrypoints.http.errors import error_middleware
from fathom.entrypoints.http.routes import models
from tests.conftest import ORG_ID, PROJECT_ID, basic_auth

MODEL_KEYS = {
    "id",
    "modelName",
    "matchPattern",
    "startDate",
    "unit",
    "inputPrice",
    "outputPrice",
    "totalPrice",
    "tokenizerId",
    "tokenizerConfig",
    "isLangfuseManaged",
    "createdAt",
    "prices",
    "pricingTiers",
}


def ensure_models_wired(runtime: Runtime) -> None:
    """Register the model use cases as bootstrap is meant to, unless it already does."""
    container = runtime.wiring.container
    try:
        container.resolve(ModelCatalog)
        return
    except punq.MissingDependencyError:
        pass
    plugins = runtime.resolve(pluggy.PluginManager)
    builtin = [m for models_ in plugins.hook.fathom_model_definitions() for m in models_ or []]
    container.register(
        ModelCatalog,
        factory=lambda: ModelCatalog(
            container.resolve(RecordStore), container.resolve(Clock), builtin
        ),
        scope=punq.Scope.singleton,
    )
    for use_case in (CreateModel, ListModels, GetModel, DeleteModel):
        container.register(use_case, scope=punq.Scope.singleton)


@pytest.fixture
async def client(
    records_runtime: Runtime, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> TestClient:
    # create_app() freezes its router, so until the models routes are registered there this
    # builds a minimal app of its own around the same runtime.
    ensure_models_wired(records_runtime)
    app = web.Application(middlewares=[error_middleware])
    context.install(app, records_runtime)
    app.add_routes(models.routes)
    return await aiohttp_client(app)


FLAT = {
    "modelName": "my-gpt",
    "matchPattern": "(?i)^my-gpt$",
    "unit": "TOKENS",
    "inputPrice": 0.000001,
    "outputPrice": 0.000002,
}
TIERED = {
    "modelName": "my-tiered",
    "matchPattern": "(?i)^my-tiered$",
    "unit": "TOKENS",
    "startDate": "2025-03-01T12:00:00.000Z",
    "tokenizerId": "openai",
    "tokenizerConfig": {"tokenizerModel": "gpt-4o", "tokensPerMessage": 3},
    "pricingTiers": [
        {
            "name": "Large",
            "isDefault": False,
            "priority": 1,
            "conditions": [
                {
                    "usageDetailPattern": "input",
                    "operator": "gt",
                    "value": 200000,
                    "caseSensitive": False,
                },
                {
                    "source": "model_parameters",
                    "key": "service_tier",
                    "operator": "in",
                    "values": ["priority"],
                },
            ],
            "prices": {"input": 0.000005, "output": 0.00001},
        },
        {
            "name": "Standard",
            "isDefault": True,
            "priority": 0,
            "conditions": [],
            "prices": {"input": 0.0000025, "output": 0.000005},
        },
    ],
}


async def create(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/public/models", json=body, headers=basic_auth())
    assert response.status == 200, await response.text()
    return await response.json()


async def test_create_flat_price_model(client: TestClient) -> None:
    body = await create(client, FLAT)
    assert set(body) == MODEL_KEYS
    assert body["modelName"] == "my-gpt"
    assert body["matchPattern"] == "(?i)^my-gpt$"
    assert body["unit"] == "TOKENS"
    assert body["startDate"] is None
    assert (body["inputPrice"], body["outputPrice"], body["totalPrice"]) == (1e-6, 2e-6, None)
    assert body["prices"] == {"input": {"price": 1e-6}, "output": {"price": 2e-6}}
    assert body["isLangfuseManaged"] is False
    assert body["tokenizerId"] is None and body["tokenizerConfig"] is None
    assert body["createdAt"].endswith("Z")
    assert body["pricingTiers"] == [
        {
            "id": f"{body['id']}_tier_default",
            "name": "Standard",
            "isDefault": True,
            "priority": 0,
            "conditions": [],
            "prices": {"input": 1e-6, "output": 2e-6},
        }
    ]


async def test_create_tiered_model(client: TestClient) -> None:
    body = await create(client, TIERED)
    assert body["startDate"] == "2025-03-01T12:00:00.000Z"
    assert body["tokenizerId"] == "openai"
    assert body["tokenizerConfig"] == TIERED["tokenizerConfig"]
    # Legacy flat fields mirror the default tier.
    assert (body["inputPrice"], body["outputPrice"], body["totalPrice"]) == (2.5e-6, 5e-6, None)
    assert body["prices"] == {"input": {"price": 2.5e-6}, "output": {"price": 5e-6}}
    standard, large = body["pricingTiers"]
    assert (standard["name"], standard["priority"], standard["isDefault"]) == ("Standard", 0, True)
    assert large["conditions"] == TIERED["pricingTiers"][0]["conditions"]
    assert large["prices"] == {"input": 5e-6, "output": 1e-5}
    assert large["id"] and large["id"] != standard["id"]


async def test_start_date_is_rendered_in_utc_and_case_sensitive_defaults_false(
    client: TestClient,
) -> None:
    condition = {"usageDetailPattern": "input", "operator": "gt", "value": 10}
    tiers = [
        {**TIERED["pricingTiers"][1]},
        {**TIERED["pricingTiers"][0], "conditions": [condition]},
    ]
    body = await create(
        client, {**TIERED, "startDate": "2025-03-01T12:00:00+02:00", "pricingTiers": tiers}
    )
    # A timestamptz column upstream: whatever offset was sent, the answer is UTC.
    assert body["startDate"] == "2025-03-01T10:00:00.000Z"
    assert body["pricingTiers"][1]["conditions"] == [{**condition, "caseSensitive": False}]
    fetched = await client.get(f"/api/public/models/{body['id']}", headers=basic_auth())
    assert (await fetched.json())["startDate"] == "2025-03-01T10:00:00.000Z"


async def test_invalid_regex_is_400(client: TestClient) -> None:
    response = await client.post(
        "/api/public/models", json={**FLAT, "matchPattern": "(unclosed"}, headers=basic_auth()
    )
    assert response.status == 400
    body = await response.json()
    assert body["error"] == "InvalidRequestError"
    assert body["message"].startswith("matchPattern is not a valid regex pattern")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({k: v for k, v in FLAT.items() if k != "modelName"}, "modelName is required"),
        ({k: v for k, v in FLAT.items() if k != "matchPattern"}, "matchPattern is required"),
        ({k: v for k, v in FLAT.items() if k != "unit"}, "unit is required"),
        (
            {k: v for k, v in FLAT.items() if not k.endswith("Price")},
            "Must provide either flat prices (inputPrice/outputPrice/totalPrice) OR pricingTiers",
        ),
        ({**FLAT, "pricingTiers": TIERED["pricingTiers"]}, "not both"),
        (
            {**TIERED, "pricingTiers": TIERED["pricingTiers"][:1]},
            "Exactly one pricing tier must have isDefault: true",
        ),
    ],
)
async def test_missing_or_conflicting_fields_are_400(
    client: TestClient, body: dict[str, Any], expected: str
) -> None:
    response = await client.post("/api/public/models", json=body, headers=basic_auth())
    assert response.status == 400
    result = await response.json()
    assert result["error"] == "InvalidRequestError"
    assert expected in result["message"]


async def test_body_that_is_not_json_is_400(client: TestClient) -> None:
    response = await client.post(
        "/api/public/models", data=b"{nope", headers={**basic_auth(), "Content-Type": "json"}
    )
    assert response.status == 400
    response = await client.post("/api/public/models", headers=basic_auth())
    assert response.status == 400


async def test_duplicate_name_is_400(client: TestClient) -> None:
    await create(client, FLAT)
    response = await client.post("/api/public/models", json=FLAT, headers=basic_auth())
    assert response.status == 400
    assert (await response.json())["message"] == "Model name 'my-gpt' already exists in project"


async def test_list_includes_builtins_and_project_models_with_paging(client: TestClient) -> None:
    own = await create(client, {**FLAT, "modelName": "aaa-mine", "matchPattern": "^aaa-mine$"})
    response = await client.get("/api/public/models?page=1&limit=2", headers=basic_auth())
    assert response.status == 200
    body = await response.json()
    total = body["meta"]["totalItems"]
    assert total > 100  # the built-in price table
    assert body["meta"] == {
        "page": 1,
        "limit": 2,
        "totalItems": total,
        "totalPages": (total + 1) // 2,
    }
    assert body["data"][0] == own  # sorted by model name
    assert body["data"][1]["isLangfuseManaged"] is True
    assert set(body["data"][1]) == MODEL_KEYS

    response = await client.get("/api/public/models", headers=basic_auth())
    default_page = await response.json()
    assert default_page["meta"]["limit"] == 50 and len(default_page["data"]) == 50

    last = (total + 99) // 100
    response = await client.get(f"/api/public/models?page={last}&limit=100", headers=basic_auth())
    tail = await response.json()
    assert len(tail["data"]) == total - (last - 1) * 100

    everything: list[dict[str, Any]] = []
    for page in range(1, last + 1):
        response = await client.get(
            f"/api/public/models?page={page}&limit=100", headers=basic_auth()
        )
        everything += (await response.json())["data"]
    assert len({m["id"] for m in everything}) == total
    gpt4o = next(m for m in everything if m["modelName"] == "gpt-4o")
    assert gpt4o["matchPattern"] == "(?i)^(openai/)?(gpt-4o)$"
    assert gpt4o["inputPrice"] == 2.5e-6 and gpt4o["totalPrice"] is None
    assert [t["name"] for t in gpt4o["pricingTiers"]] == ["Standard", "Fast mode"]
    assert gpt4o["createdAt"] == "2024-05-13T23:15:07.670Z"


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "page=0", "page=x"])
async def test_bad_paging_is_400(client: TestClient, query: str) -> None:
    response = await client.get(f"/api/public/models?{query}", headers=basic_auth())
    assert response.status == 400


async def test_get_project_and_builtin_models(client: TestClient) -> None:
    own = await create(client, TIERED)
    response = await client.get(f"/api/public/models/{own['id']}", headers=basic_auth())
    assert response.status == 200
    assert await response.json() == own

    listing = await (await client.get("/api/public/models", headers=basic_auth())).json()
    builtin = next(m for m in listing["data"] if m["isLangfuseManaged"])
    response = await client.get(f"/api/public/models/{builtin['id']}", headers=basic_auth())
    assert response.status == 200
    assert await response.json() == builtin


async def test_get_unknown_model_is_404(client: TestClient) -> None:
    response = await client.get("/api/public/models/nope", headers=basic_auth())
    assert response.status == 404
    assert await response.json() == {
        "message": "No model with this id found.",
        "error": "LangfuseNotFoundError",
    }


async def test_delete_project_model(client: TestClient) -> None:
    own = await create(client, FLAT)
    response = await client.delete(f"/api/public/models/{own['id']}", headers=basic_auth())
    assert response.status == 200
    assert await response.json() == {"message": "Model successfully deleted"}
    response = await client.get(f"/api/public/models/{own['id']}", headers=basic_auth())
    assert response.status == 404
    response = await client.delete(f"/api/public/models/{own['id']}", headers=basic_auth())
    assert response.status == 404
    # The name is free again.
    await create(client, FLAT)


async def test_builtin_models_cannot_be_deleted(client: TestClient) -> None:
    listing = await (await client.get("/api/public/models", headers=basic_auth())).json()
    builtin = next(m for m in listing["data"] if m["isLangfuseManaged"])
    response = await client.delete(f"/api/public/models/{builtin['id']}", headers=basic_auth())
    assert response.status == 404
    body = await response.json()
    assert body["error"] == "LangfuseNotFoundError"
    assert "You cannot delete built-in models" in body["message"]


async def test_auth_is_required(client: TestClient) -> None:
    response = await client.get("/api/public/models")
    assert response.status == 401
    response = await client.post("/api/public/models", json=FLAT)
    assert response.status == 401


async def test_organization_key_gets_403(client: TestClient, records_runtime: Runtime) -> None:
    issued = await records_runtime.resolve(CreateApiKey)(ORG_ID, None)
    headers = basic_auth(issued.api_key.public_key, issued.secret_key)
    for method, path in (
        ("GET", "/api/public/models"),
        ("POST", "/api/public/models"),
        ("GET", "/api/public/models/x"),
        ("DELETE", "/api/public/models/x"),
    ):
        response = await client.request(method, path, json=FLAT, headers=headers)
        assert response.status == 403, (method, path)
        assert (await response.json())["error"] == "ForbiddenError"


async def test_created_model_prices_generations_through_the_catalog(
    client: TestClient, records_runtime: Runtime
) -> None:
    catalog = records_runtime.resolve(ModelCatalog)
    price = PriceObservations(catalog)
    before = await catalog.models()
    own = await create(client, {**FLAT, "modelName": "gpt-4o", "matchPattern": "(?i)^gpt-4o$"})
    assert await catalog.models() is not before  # the create invalidated the cached list
    generation = Observation(
        id="o1",
        project_id=PROJECT_ID,
        trace_id="t1",
        type=ObservationType.GENERATION,
        start_time=datetime(2026, 1, 1, tzinfo=UTC),
        model="gpt-4o",
        provided_usage_details={"input": 1_000_000, "output": 0},
    )
    await price(PROJECT_ID, [generation])
    assert generation.internal_model_id == own["id"]
    assert generation.cost_details["input"] == pytest.approx(1.0)
