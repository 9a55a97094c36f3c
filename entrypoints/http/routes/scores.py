"""Score reads (v2 page-based, v3 cursor) and deletes. Writes live in `ingestion`."""

from __future__ import annotations

import math
from datetime import datetime

from aiohttp import web
from multidict import MultiMapping

from fathom.core.domain.errors import InvalidInput, NotFound
from fathom.core.domain.scores import ScoreDataType, ScoreSource
from fathom.core.ports.telemetry import ScoreQuery, TelemetryStore
from fathom.entrypoints.http import params
from fathom.entrypoints.http.context import project_id, use
from fathom.entrypoints.http.json import json_response
from fathom.entrypoints.http.presenters import page_meta, score_json, score_v3_json

routes = web.RouteTableDef()

V3_FIELD_GROUPS = {"details", "subject", "annotation"}


def _enum(q: MultiMapping[str], name: str, allowed: type) -> str | None:
    value = params.string(q, name)
    if value is not None and value not in allowed.__members__:
        raise InvalidInput(
            f"Invalid request data: {name} must be one of {list(allowed.__members__)}"
        )
    return value


def _number(q: MultiMapping[str], name: str) -> float | None:
    value = q.get(name)
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except ValueError:
        raise InvalidInput(f"Invalid request data: {name} must be a number") from None
    if math.isnan(number):
        raise InvalidInput(f"Invalid request data: {name} must be a number")
    return number


def _filters(q: MultiMapping[str]) -> ScoreQuery:
    return ScoreQuery(
        name=params.string(q, "name"),
        user_id=params.string(q, "userId"),
        trace_id=params.string(q, "traceId"),
        observation_id=params.string(q, "observationId"),
        session_id=params.string(q, "sessionId"),
        dataset_run_id=params.string(q, "datasetRunId") or params.string(q, "experimentId"),
        config_id=params.string(q, "configId"),
        queue_id=params.string(q, "queueId"),
        source=_enum(q, "source", ScoreSource),
        data_type=_enum(q, "dataType", ScoreDataType),
        score_ids=params.strings(q, "scoreIds") + params.strings(q, "id"),
        environments=params.strings(q, "environment"),
        from_timestamp=params.timestamp(q, "fromTimestamp"),
        to_timestamp=params.timestamp(q, "toTimestamp"),
        value=_number(q, "value"),
    )


@routes.get("/api/public/v2/scores")
async def list_scores_v2(request: web.Request) -> web.Response:
    project = await project_id(request)
    q = request.query
    query = _filters(q)
    query.page = params.integer(q, "page", 1)
    query.limit = params.integer(q, "limit", 50, maximum=1000)
    store = use(request, TelemetryStore)
    page = await store.list_scores(project, query)
    trace_ids = sorted({s.trace_id for s in page.items if s.trace_id})
    traces = {t.id: t for t in await store.get_traces(project, trace_ids)} if trace_ids else {}
    data = []
    for score in page.items:
        item = score_json(score)
        trace = traces.get(score.trace_id or "")
        item["trace"] = (
            {
                "userId": trace.user_id,
                "tags": trace.tags,
                "environment": trace.environment,
                "sessionId": trace.session_id,
            }
            if trace
            else None
        )
        data.append(item)
    return json_response({"data": data, "meta": page_meta(query.page, query.limit, page.total)})


@routes.get("/api/public/v2/scores/{score_id}")
async def get_score(request: web.Request) -> web.Response:
    project = await project_id(request)
    found = await use(request, TelemetryStore).get_scores(project, [request.match_info["score_id"]])
    if not found:
        raise NotFound("Score not found")
    return json_response(score_json(found[0]))


@routes.get("/api/public/v3/scores")
async def list_scores_v3(request: web.Request) -> web.Response:
    project = await project_id(request)
    q = request.query
    groups = params.field_groups(q, V3_FIELD_GROUPS, set())
    query = _filters(q)
    wanted = params.integer(q, "limit", 50, maximum=100)
    query.limit = wanted + 1
    # Inclusive bounds on the numeric value; upstream accepts them for NUMERIC scores only.
    query.value_min = _number(q, "valueMin")
    query.value_max = _number(q, "valueMax")
    if (query.value_min is not None or query.value_max is not None) and (
        query.data_type != ScoreDataType.NUMERIC.value
    ):
        raise InvalidInput("Invalid request data: valueMin and valueMax require dataType=NUMERIC")
    cursor = params.decode_cursor(q)
    if cursor is not None:
        try:
            query.after = (datetime.fromisoformat(cursor["timestamp"]), str(cursor["id"]))
        except (KeyError, ValueError, TypeError):
            raise InvalidInput(
                "Invalid request data: query parameter 'cursor' is not valid"
            ) from None
    page = await use(request, TelemetryStore).list_scores(project, query, with_total=False)
    rows = page.items[:wanted]
    meta: dict[str, object] = {"limit": wanted}
    if len(page.items) > wanted:
        last = rows[-1]
        meta["cursor"] = params.encode_cursor(
            {"timestamp": last.timestamp.isoformat(), "id": last.id}, urlsafe=True
        )
    return json_response({"data": [score_v3_json(s, groups) for s in rows], "meta": meta})


@routes.delete("/api/public/scores/{score_id}")
async def delete_score(request: web.Request) -> web.Response:
    project = await project_id(request)
    score_id = request.match_info["score_id"]
    store = use(request, TelemetryStore)
    if not await store.get_scores(project, [score_id]):
        raise NotFound("Score not found")
    await store.delete_scores(project, [score_id])
    return web.Response(status=204)
