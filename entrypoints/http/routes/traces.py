"""Traces and sessions: read and delete (`/api/public/traces`, `/api/public/sessions`)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from fathom.core.domain.errors import InvalidInput, NotFound
from fathom.core.domain.scores import ScoreDataType
from fathom.core.ports.telemetry import TelemetryStore, TraceQuery
from fathom.core.usecases.traces import DeleteTraces
from fathom.entrypoints.http import params
from fathom.entrypoints.http.context import project_id, use
from fathom.entrypoints.http.json import json_response, read_json
from fathom.entrypoints.http.presenters import (
    excluded_trace_io,
    iso,
    observation_json,
    page_meta,
    score_json,
    total_cost,
    trace_core,
    trace_html_path,
    trace_io,
    trace_json,
    trace_latency,
)
from fathom.entrypoints.http.routes.observations import matched_models

routes = web.RouteTableDef()

TRACE_FIELD_GROUPS = {"core", "io", "scores", "observations", "metrics"}
ORDER_FIELDS = {
    "id",
    "timestamp",
    "name",
    "userId",
    "release",
    "version",
    "public",
    "bookmarked",
    "sessionId",
}
# Excluded `metrics` read -1, so SDK clients that expect the numbers still parse the item.
EXCLUDED_METRIC = -1
# A `filter` condition on one of these columns replaces the query parameter that filters it.
FILTERED_BY_PARAMETER: dict[str, tuple[str, ...]] = {
    "userId": ("user_id",),
    "name": ("name",),
    "sessionId": ("session_id",),
    "tags": ("tags",),
    "version": ("version",),
    "release": ("release",),
    "environment": ("environments",),
    "timestamp": ("from_timestamp", "to_timestamp"),
}


def trace_not_found(trace_id: str) -> NotFound:
    return NotFound(f"Trace {trace_id} not found within authorized project")


def _groups(request: web.Request) -> set[str]:
    # Unknown groups are dropped, as upstream's parser does; `core` is always returned.
    return params.field_groups(request.query, TRACE_FIELD_GROUPS, TRACE_FIELD_GROUPS, strict=False)


@routes.get("/api/public/traces/{trace_id}")
async def get_trace(request: web.Request) -> web.Response:
    project = await project_id(request)
    trace_id = request.match_info["trace_id"]
    groups = _groups(request)
    store = use(request, TelemetryStore)
    with_observations = bool(groups & {"observations", "metrics"})
    with_scores = "scores" in groups

    async def nothing() -> list[Any]:
        return []

    # Started together, the reads go to the engine as one query (see the store).
    traces, observations, scores = await asyncio.gather(
        store.get_traces(project, [trace_id]),
        store.observations_of_trace(project, trace_id) if with_observations else nothing(),
        store.scores_of_traces(project, [trace_id]) if with_scores else nothing(),
    )
    if not traces:
        raise trace_not_found(trace_id)
    trace = traces[0]
    out: dict[str, Any] = {
        **trace_core(trace),
        **(trace_io(trace) if "io" in groups else excluded_trace_io()),
        "htmlPath": trace_html_path(trace),
        "latency": EXCLUDED_METRIC,
        "totalCost": EXCLUDED_METRIC,
        "observations": [],
        "scores": [],
    }
    if "metrics" in groups:
        out["latency"] = trace_latency(observations)
        out["totalCost"] = total_cost(observations)
    if "observations" in groups:
        observations.sort(key=lambda o: o.start_time)
        models = await matched_models(request, observations)
        out["observations"] = [
            _with_zero_prices(observation_json(o, models.get(o.internal_model_id or "")))
            for o in observations
        ]
    if with_scores:
        # The contract's trace scores (`ScoreV1`) have no CORRECTION variant; upstream drops
        # the scores its v1 schema rejects.
        out["scores"] = [
            score_json(s) for s in scores if s.data_type is not ScoreDataType.CORRECTION
        ]
    return json_response(out)


PRICE_FIELDS = ("inputPrice", "outputPrice", "totalPrice")


def _with_zero_prices(item: dict[str, Any]) -> dict[str, Any]:
    """Upstream's single-trace read defaults a missing model price to 0, where the
    observation endpoints give null (their model lookup differs)."""
    for key in PRICE_FIELDS:
        if item[key] is None:
            item[key] = 0
    return item


def _order(raw: str | None) -> tuple[str, bool]:
    if not raw:
        return "timestamp", True
    field, _, direction = raw.partition(".")
    # Upstream upper-cases the direction, so `timestamp.DESC` is accepted too.
    direction = direction.lower()
    if field not in ORDER_FIELDS or direction not in ("asc", "desc"):
        raise InvalidInput(
            f"Invalid request data: orderBy must be [field].[asc|desc] with field one of "
            f"{sorted(ORDER_FIELDS)}, got {raw!r}"
        )
    return field, direction == "desc"


@routes.get("/api/public/traces")
async def list_traces(request: web.Request) -> web.Response:
    project = await project_id(request)
    q = request.query
    order_by, desc = _order(params.string(q, "orderBy"))
    conditions = params.filter_state(q)
    query = TraceQuery(
        page=params.integer(q, "page", 1),
        # Deliberately stricter than upstream, which runs limit=0 and answers totalPages null.
        limit=params.integer(q, "limit", 50, maximum=100),
        user_id=params.string(q, "userId"),
        name=params.string(q, "name"),
        session_id=params.string(q, "sessionId"),
        tags=params.array_filter(q, "tags"),
        version=params.string(q, "version"),
        release=params.string(q, "release"),
        environments=params.strings(q, "environment"),
        from_timestamp=params.timestamp(q, "fromTimestamp"),
        to_timestamp=params.timestamp(q, "toTimestamp"),
        order_by=order_by,
        order_desc=desc,
        filters=conditions,
    )
    params.drop_overridden(query, conditions, FILTERED_BY_PARAMETER)
    groups = _groups(request)
    page = await use(request, TelemetryStore).list_traces(project, query)
    data = []
    for summary in page.items:
        item = trace_core(summary.trace)
        item["htmlPath"] = trace_html_path(summary.trace)
        item.update(trace_io(summary.trace) if "io" in groups else excluded_trace_io())
        item["observations"] = summary.observation_ids if "observations" in groups else []
        item["scores"] = summary.score_ids if "scores" in groups else []
        if "metrics" in groups:
            item["latency"] = summary.latency_seconds or 0.0
            item["totalCost"] = summary.total_cost or 0.0
        else:
            item["latency"] = item["totalCost"] = EXCLUDED_METRIC
        data.append(item)
    return json_response({"data": data, "meta": page_meta(query.page, query.limit, page.total)})


@routes.delete("/api/public/traces/{trace_id}")
async def delete_trace(request: web.Request) -> web.Response:
    project = await project_id(request)
    await use(request, DeleteTraces)(project, [request.match_info["trace_id"]])
    return json_response({"message": "Trace deleted successfully"})


def _trace_ids(body: Any) -> list[str]:
    """Upstream's strict `{traceIds: string[]}` body with at least one id; unknown keys are
    refused, as its schema is `.strict()`."""
    if not isinstance(body, dict):
        raise InvalidInput("Invalid request data: the body must be an object {traceIds: [...]}")
    unknown = sorted(set(body) - {"traceIds"})
    if unknown:
        raise InvalidInput(f"Invalid request data: unrecognized keys {unknown}")
    trace_ids = body.get("traceIds")
    if not isinstance(trace_ids, list) or not all(isinstance(t, str) for t in trace_ids):
        raise InvalidInput("Invalid request data: 'traceIds' must be an array of strings")
    if not trace_ids:
        raise InvalidInput("Invalid request data: At least 1 traceId is required.")
    return trace_ids


@routes.delete("/api/public/traces")
async def delete_traces(request: web.Request) -> web.Response:
    project = await project_id(request)
    body = await read_json(request, 1024 * 1024)
    await use(request, DeleteTraces)(project, _trace_ids(body))
    return json_response({"message": "Traces deleted successfully"})


@routes.get("/api/public/sessions")
async def list_sessions(request: web.Request) -> web.Response:
    project = await project_id(request)
    q = request.query
    page_number = params.integer(q, "page", 1)
    # Upstream's public pagination schema caps a sessions page at 100.
    limit = params.integer(q, "limit", 50, maximum=100)
    page = await use(request, TelemetryStore).list_sessions(
        project,
        page_number,
        limit,
        params.timestamp(q, "fromTimestamp"),
        params.timestamp(q, "toTimestamp"),
        params.strings(q, "environment"),
    )
    data = [
        {
            "id": s.id,
            "createdAt": iso(s.created_at),
            "projectId": s.project_id,
            "environment": s.environment,
        }
        for s in page.items
    ]
    return json_response({"data": data, "meta": page_meta(page_number, limit, page.total)})


@routes.get("/api/public/sessions/{session_id}")
async def get_session(request: web.Request) -> web.Response:
    project = await project_id(request)
    session_id = request.match_info["session_id"]
    traces = await use(request, TelemetryStore).get_session(project, session_id)
    if not traces:
        raise NotFound("Session not found within authorized project")
    traces.sort(key=lambda t: t.timestamp)
    return json_response(
        {
            "id": session_id,
            "createdAt": iso(traces[0].timestamp),
            "projectId": project,
            "environment": traces[0].environment,
            "traces": [trace_json(t) for t in traces],
        }
    )
