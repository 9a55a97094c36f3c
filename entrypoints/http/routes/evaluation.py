"""Score configs, comments and annotation queues: `/api/public/score-configs`, `/comments`,
`/annotation-queues` with Langfuse's JSON shapes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from fathom.core.domain.score_configs import ScoreConfig
from fathom.core.ports.evaluation import (
    AnnotationQueue,
    AnnotationQueueItem,
    Comment,
    CommentQuery,
)
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
    UnassignAnnotationQueue,
    UpdateAnnotationQueueItem,
    UpdateScoreConfig,
    annotation_status,
    comment_object_type,
)
from fathom.entrypoints.http import params
from fathom.entrypoints.http.context import project_id, settings, use
from fathom.entrypoints.http.json import json_response, read_json
from fathom.entrypoints.http.presenters import iso, page_meta

routes = web.RouteTableDef()

MAX_LIMIT = 100


def _paging(request: web.Request) -> tuple[int, int]:
    return (
        params.integer(request.query, "page", 1),
        params.integer(request.query, "limit", 50, maximum=MAX_LIMIT),
    )


async def _body(request: web.Request) -> Any:
    return await read_json(request, settings(request).max_body_bytes)


# --- JSON shapes -----------------------------------------------------------------------------


def score_config_json(config: ScoreConfig) -> dict[str, Any]:
    """`ScoreConfig`: every key always present, null where the data type has no such field."""
    return {
        "id": config.id,
        "name": config.name,
        "createdAt": iso(config.created_at),
        "updatedAt": iso(config.updated_at),
        "projectId": config.project_id,
        "dataType": config.data_type.value,
        "isArchived": config.is_archived,
        "minValue": config.min_value,
        "maxValue": config.max_value,
        "categories": (
            None
            if config.categories is None
            else [{"label": c.label, "value": c.value} for c in config.categories]
        ),
        "description": config.description,
    }


def comment_json(comment: Comment) -> dict[str, Any]:
    return {
        "id": comment.id,
        "projectId": comment.project_id,
        "createdAt": iso(comment.created_at),
        "updatedAt": iso(comment.updated_at),
        "objectType": comment.object_type.value,
        "objectId": comment.object_id,
        "content": comment.content,
        "authorUserId": comment.author_user_id,
    }


def queue_json(queue: AnnotationQueue) -> dict[str, Any]:
    return {
        "id": queue.id,
        "name": queue.name,
        "description": queue.description,
        "scoreConfigIds": list(queue.score_config_ids),
        "createdAt": iso(queue.created_at),
        "updatedAt": iso(queue.updated_at),
    }


def queue_item_json(item: AnnotationQueueItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "queueId": item.queue_id,
        "objectId": item.object_id,
        "objectType": item.object_type.value,
        "status": item.status.value,
        "completedAt": iso(item.completed_at),
        "createdAt": iso(item.created_at),
        "updatedAt": iso(item.updated_at),
    }


# --- score configs ----------------------------------------------------------------------------


@routes.get("/api/public/score-configs")
async def list_score_configs(request: web.Request) -> web.Response:
    project = await project_id(request)
    page, limit = _paging(request)
    found = await use(request, ListScoreConfigs)(project, page, limit)
    return json_response(
        {
            "data": [score_config_json(config) for config in found.items],
            "meta": page_meta(page, limit, found.total),
        }
    )


@routes.post("/api/public/score-configs")
async def create_score_config(request: web.Request) -> web.Response:
    project = await project_id(request)
    config = await use(request, CreateScoreConfig)(project, await _body(request))
    return json_response(score_config_json(config))


@routes.get("/api/public/score-configs/{config_id}")
async def get_score_config(request: web.Request) -> web.Response:
    project = await project_id(request)
    config = await use(request, GetScoreConfig)(project, request.match_info["config_id"])
    return json_response(score_config_json(config))


@routes.patch("/api/public/score-configs/{config_id}")
async def update_score_config(request: web.Request) -> web.Response:
    project = await project_id(request)
    config = await use(request, UpdateScoreConfig)(
        project, request.match_info["config_id"], await _body(request)
    )
    return json_response(score_config_json(config))


# --- comments ---------------------------------------------------------------------------------


@routes.get("/api/public/comments")
async def list_comments(request: web.Request) -> web.Response:
    project = await project_id(request)
    page, limit = _paging(request)
    q = request.query
    query = CommentQuery(
        object_type=comment_object_type(params.string(q, "objectType")),
        object_id=params.string(q, "objectId"),
        author_user_id=params.string(q, "authorUserId"),
        page=page,
        limit=limit,
    )
    found = await use(request, ListComments)(project, query)
    return json_response(
        {
            "data": [comment_json(comment) for comment in found.items],
            "meta": page_meta(page, limit, found.total),
        }
    )


@routes.post("/api/public/comments")
async def create_comment(request: web.Request) -> web.Response:
    project = await project_id(request)
    comment = await use(request, CreateComment)(project, await _body(request))
    return json_response({"id": comment.id})


@routes.get("/api/public/comments/{comment_id}")
async def get_comment(request: web.Request) -> web.Response:
    project = await project_id(request)
    comment = await use(request, GetComment)(project, request.match_info["comment_id"])
    return json_response(comment_json(comment))


# --- annotation queues ------------------------------------------------------------------------


@routes.get("/api/public/annotation-queues")
async def list_annotation_queues(request: web.Request) -> web.Response:
    project = await project_id(request)
    page, limit = _paging(request)
    found = await use(request, ListAnnotationQueues)(project, page, limit)
    return json_response(
        {
            "data": [queue_json(queue) for queue in found.items],
            "meta": page_meta(page, limit, found.total),
        }
    )


@routes.post("/api/public/annotation-queues")
async def create_annotation_queue(request: web.Request) -> web.Response:
    project = await project_id(request)
    queue = await use(request, CreateAnnotationQueue)(project, await _body(request))
    return json_response(queue_json(queue))


@routes.get("/api/public/annotation-queues/{queue_id}")
async def get_annotation_queue(request: web.Request) -> web.Response:
    project = await project_id(request)
    queue = await use(request, GetAnnotationQueue)(project, request.match_info["queue_id"])
    return json_response(queue_json(queue))


@routes.get("/api/public/annotation-queues/{queue_id}/items")
async def list_annotation_queue_items(request: web.Request) -> web.Response:
    project = await project_id(request)
    page, limit = _paging(request)
    status = annotation_status(params.string(request.query, "status"))
    found = await use(request, ListAnnotationQueueItems)(
        project, request.match_info["queue_id"], status, page, limit
    )
    return json_response(
        {
            "data": [queue_item_json(item) for item in found.items],
            "meta": page_meta(page, limit, found.total),
        }
    )


@routes.post("/api/public/annotation-queues/{queue_id}/items")
async def create_annotation_queue_item(request: web.Request) -> web.Response:
    project = await project_id(request)
    item = await use(request, CreateAnnotationQueueItem)(
        project, request.match_info["queue_id"], await _body(request)
    )
    return json_response(queue_item_json(item))


@routes.get("/api/public/annotation-queues/{queue_id}/items/{item_id}")
async def get_annotation_queue_item(request: web.Request) -> web.Response:
    project = await project_id(request)
    item = await use(request, GetAnnotationQueueItem)(
        project, request.match_info["queue_id"], request.match_info["item_id"]
    )
    return json_response(queue_item_json(item))


@routes.patch("/api/public/annotation-queues/{queue_id}/items/{item_id}")
async def update_annotation_queue_item(request: web.Request) -> web.Response:
    project = await project_id(request)
    item = await use(request, UpdateAnnotationQueueItem)(
        project,
        request.match_info["queue_id"],
        request.match_info["item_id"],
        await _body(request),
    )
    return json_response(queue_item_json(item))


@routes.delete("/api/public/annotation-queues/{queue_id}/items/{item_id}")
async def delete_annotation_queue_item(request: web.Request) -> web.Response:
    project = await project_id(request)
    await use(request, DeleteAnnotationQueueItem)(
        project, request.match_info["queue_id"], request.match_info["item_id"]
    )
    return json_response({"success": True, "message": "Annotation queue item deleted successfully"})


@routes.post("/api/public/annotation-queues/{queue_id}/assignments")
async def create_annotation_queue_assignment(request: web.Request) -> web.Response:
    project = await project_id(request)
    queue_id = request.match_info["queue_id"]
    user_id = await use(request, AssignAnnotationQueue)(project, queue_id, await _body(request))
    return json_response({"userId": user_id, "projectId": project, "queueId": queue_id})


@routes.delete("/api/public/annotation-queues/{queue_id}/assignments")
async def delete_annotation_queue_assignment(request: web.Request) -> web.Response:
    project = await project_id(request)
    await use(request, UnassignAnnotationQueue)(
        project, request.match_info["queue_id"], await _body(request)
    )
    return json_response({"success": True})
