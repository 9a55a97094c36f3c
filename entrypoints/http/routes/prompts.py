"""Prompt management (`/api/public/v2/prompts*`), in Langfuse's shapes.

Prompt names arrive URL-encoded (`a%2Fb` for the folder path `a/b`). aiohttp matches
routes on the still-encoded path and decodes each `match_info` value afterwards, so an
encoded slash stays inside `{promptName}` and every other character round-trips too.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from fathom.core.domain.errors import InvalidInput
from fathom.core.domain.prompts import PromptListQuery, PromptMeta, PromptVersion
from fathom.core.usecases.prompts import (
    CreatePromptVersion,
    DeletePrompt,
    GetPrompt,
    ListPrompts,
    UpdatePromptLabels,
)
from fathom.entrypoints.http import params
from fathom.entrypoints.http.context import project_id, settings, use
from fathom.entrypoints.http.json import json_response, read_json
from fathom.entrypoints.http.presenters import iso, page_meta

routes = web.RouteTableDef()


def prompt_json(prompt: PromptVersion, *, with_graph: bool = False) -> dict[str, Any]:
    """The `Prompt` shape (text or chat, told apart by `type`). Fetches carry
    `resolutionGraph`; create and label updates answer with the stored row, as upstream."""
    body: dict[str, Any] = {
        "id": prompt.id,
        "createdAt": iso(prompt.created_at),
        "updatedAt": iso(prompt.updated_at),
        "projectId": prompt.project_id,
        "createdBy": prompt.created_by,
        "prompt": prompt.prompt,
        "name": prompt.name,
        "version": prompt.version,
        "type": prompt.type.value,
        "config": prompt.config,
        "tags": prompt.tags,
        "labels": prompt.labels,
        "commitMessage": prompt.commit_message,
    }
    if with_graph:
        body["resolutionGraph"] = prompt.resolution_graph
    return body


def prompt_meta_json(meta: PromptMeta) -> dict[str, Any]:
    return {
        "name": meta.name,
        "type": meta.type.value,
        "versions": meta.versions,
        "labels": meta.labels,
        "tags": meta.tags,
        "lastUpdatedAt": iso(meta.last_updated_at),
        "lastConfig": meta.last_config,
    }


def _version(raw: str | None, name: str) -> int | None:
    """An integer version; like upstream, 0 (falsy there) means "not given"."""
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(
            f"Invalid request data: {name} must be an integer, got {raw!r}"
        ) from None
    return value or None


@routes.get("/api/public/v2/prompts")
async def list_prompts(request: web.Request) -> web.Response:
    project = await project_id(request)
    query = request.query
    page = params.integer(query, "page", 1)
    limit = params.integer(query, "limit", 10, maximum=100)
    found = await use(request, ListPrompts)(
        project,
        PromptListQuery(
            name=params.string(query, "name"),
            version=_version(query.get("version"), "query parameter 'version'"),
            label=params.string(query, "label"),
            tag=params.string(query, "tag"),
            from_updated_at=params.timestamp(query, "fromUpdatedAt"),
            to_updated_at=params.timestamp(query, "toUpdatedAt"),
            page=page,
            limit=limit,
        ),
    )
    meta = page_meta(page, limit, found.total)
    return json_response(
        {
            "data": [prompt_meta_json(item) for item in found.items],
            "meta": meta,
            # Upstream first shipped this key instead of `meta` and still sends both.
            "pagination": meta,
        }
    )


@routes.post("/api/public/v2/prompts")
async def create_prompt(request: web.Request) -> web.Response:
    project = await project_id(request)
    body = await read_json(request, settings(request).max_body_bytes)
    created = await use(request, CreatePromptVersion)(project, body)
    # Upstream answers 201 (its spec says 200; SDKs accept any 2xx).
    return json_response(prompt_json(created), status=201)


@routes.get("/api/public/v2/prompts/{promptName}")
async def get_prompt(request: web.Request) -> web.Response:
    project = await project_id(request)
    query = request.query
    resolve = params.boolean(query, "resolve")
    prompt = await use(request, GetPrompt)(
        project,
        request.match_info["promptName"],
        version=_version(query.get("version"), "query parameter 'version'"),
        label=params.string(query, "label"),
        resolve=resolve is not False,
    )
    return json_response(prompt_json(prompt, with_graph=True))


@routes.delete("/api/public/v2/prompts/{promptName}")
async def delete_prompt(request: web.Request) -> web.Response:
    project = await project_id(request)
    query = request.query
    await use(request, DeletePrompt)(
        project,
        request.match_info["promptName"],
        version=_version(query.get("version"), "query parameter 'version'"),
        label=params.string(query, "label"),
    )
    return web.Response(status=204)


@routes.patch("/api/public/v2/prompts/{name}/versions/{version}")
async def update_prompt_labels(request: web.Request) -> web.Response:
    project = await project_id(request)
    version = _version(request.match_info["version"], "path parameter 'version'")
    body = await read_json(request, settings(request).max_body_bytes)
    updated = await use(request, UpdatePromptLabels)(
        project, request.match_info["name"], version or 0, body
    )
    return json_response(prompt_json(updated))
