"""Model definitions and prices (`/api/public/models`): project models next to the built-ins."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from fathom.core.domain.pricing import Model, PricingTier
from fathom.core.usecases.models import (
    CreateModel,
    DeleteModel,
    GetModel,
    ListModels,
    condition_to_json,
)
from fathom.entrypoints.http import params
from fathom.entrypoints.http.context import project_id, settings, use
from fathom.entrypoints.http.json import json_response, read_json
from fathom.entrypoints.http.presenters import iso, page_meta

routes = web.RouteTableDef()


def tier_json(tier: PricingTier) -> dict[str, Any]:
    return {
        "id": tier.id,
        "name": tier.name,
        "isDefault": tier.is_default,
        "priority": tier.priority,
        "conditions": [condition_to_json(condition) for condition in tier.conditions],
        "prices": {key: float(price) for key, price in tier.prices.items()},
    }


def model_json(model: Model) -> dict[str, Any]:
    """The `Model` shape: legacy flat prices are the default tier's, as upstream renders them."""
    prices = {key: float(price) for key, price in model.prices.items()}
    return {
        "id": model.id,
        "modelName": model.model_name,
        "matchPattern": model.match_pattern,
        "startDate": iso(model.start_date),
        "unit": model.unit,
        "inputPrice": prices.get("input"),
        "outputPrice": prices.get("output"),
        "totalPrice": prices.get("total"),
        "tokenizerId": model.tokenizer_id,
        "tokenizerConfig": model.tokenizer_config,
        "isLangfuseManaged": model.is_langfuse_managed,
        "createdAt": iso(model.created_at),
        "prices": {key: {"price": price} for key, price in prices.items()},
        "pricingTiers": [
            tier_json(tier) for tier in sorted(model.pricing_tiers, key=lambda t: t.priority)
        ],
    }


@routes.get("/api/public/models")
async def list_models(request: web.Request) -> web.Response:
    project = await project_id(request)
    page = params.integer(request.query, "page", 1)
    limit = params.integer(request.query, "limit", 50, maximum=100)
    found = await use(request, ListModels)(project, page, limit)
    return json_response(
        {
            "data": [model_json(model) for model in found.items],
            "meta": page_meta(page, limit, found.total),
        }
    )


@routes.post("/api/public/models")
async def create_model(request: web.Request) -> web.Response:
    project = await project_id(request)
    body = await read_json(request, settings(request).max_body_bytes)
    model = await use(request, CreateModel)(project, body)
    return json_response(model_json(model))


@routes.get("/api/public/models/{model_id}")
async def get_model(request: web.Request) -> web.Response:
    project = await project_id(request)
    model = await use(request, GetModel)(project, request.match_info["model_id"])
    return json_response(model_json(model))


@routes.delete("/api/public/models/{model_id}")
async def delete_model(request: web.Request) -> web.Response:
    project = await project_id(request)
    await use(request, DeleteModel)(project, request.match_info["model_id"])
    # Upstream answers 200 with this body (the spec's 204 is not what the server sends).
    return json_response({"message": "Model successfully deleted"})
