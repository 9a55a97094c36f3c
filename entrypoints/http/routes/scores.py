"""Score reads (v1 and v2 page-based, v3 cursor) and deletes. Writes live in `ingestion`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from fathom.core.domain.errors import InvalidInput, NotFound
from fathom.core.domain.scores import Score, ScoreDataType, ScoreSource
from fathom.core.ports.telemetry import Condition, ScoreQuery, TelemetryStore
from fathom.entrypoints.http import params
from fathom.entrypoints.http.context import project_id, use
from fathom.entrypoints.http.json import json_response
from fathom.entrypoints.http.presenters import (
    page_meta,
    score_json,
    score_trace_json,
    score_v3_json,
)

routes = web.RouteTableDef()

SOURCES = [s.value for s in ScoreSource]
DATA_TYPES = [d.value for d in ScoreDataType]
# The v1 API serves trace scores of the types its schema has (no CORRECTION).
V1_DATA_TYPES = [d for d in DATA_TYPES if d != ScoreDataType.CORRECTION]
V2_FIELD_GROUPS = {"score", "trace"}
V3_FIELD_GROUPS = {"core", "details", "subject", "annotation"}
VALUE_OPERATORS = ["<", ">", "<=", ">=", "!=", "="]
# Page-based score lists answer at most 100 items, as upstream's pagination schema.
MAX_PAGE_LIMIT = 100
# v3 `value` filters: the data types it can apply to and how each is compared.
V3_VALUE_TYPES = ("NUMERIC", "BOOLEAN", "CATEGORICAL")
HAS_TRACE = Condition(column="traceId", type="null", operator="is not null")
# A `filter` condition on one of these columns replaces the query parameters that filter the
# same column (upstream: the advanced filter takes precedence over the simple parameter).
FILTERED_BY_PARAMETER: dict[str, tuple[str, ...]] = {
    "id": ("score_ids",),
    "name": ("name",),
    "source": ("source",),
    "dataType": ("data_type",),
    "traceId": ("trace_id",),
    "observationId": ("observation_id",),
    "sessionId": ("session_id",),
    "datasetRunId": ("dataset_run_id",),
    "configId": ("config_id",),
    "queueId": ("queue_id",),
    "environment": ("environments",),
    "timestamp": ("from_timestamp", "to_timestamp"),
    "value": ("value",),
}


def _page_filters(q: MultiMapping[str]) -> ScoreQuery:
    """The v1/v2 list parameters (single values, as upstream's GetScoresQuery)."""
    value = params.number(q, "value")
    operator = params.choice(q, "operator", VALUE_OPERATORS)
    # Upstream compares the value only when both are given: either alone filters nothing.
    # (Upstream also skips a zero value, a truthiness slip; here `value=0` filters.)
    if operator is None:
        value = None
    conditions = params.filter_state(q)
    query = ScoreQuery(
        page=params.integer(q, "page", 1),
        limit=params.integer(q, "limit", 50, maximum=MAX_PAGE_LIMIT),
        name=params.string(q, "name"),
        user_id=params.string(q, "userId"),
        trace_id=params.string(q, "traceId"),
        observation_id=params.strings(q, "observationId") or None,
        session_id=params.string(q, "sessionId"),
        dataset_run_id=params.string(q, "datasetRunId"),
        config_id=params.string(q, "configId"),
        queue_id=params.string(q, "queueId"),
        source=params.choice(q, "source", SOURCES),
        data_type=params.choice(q, "dataType", DATA_TYPES),
        score_ids=params.strings(q, "scoreIds"),
        environments=params.strings(q, "environment"),
        trace_tags=params.array_filter(q, "traceTags"),
        from_timestamp=params.timestamp(q, "fromTimestamp"),
        to_timestamp=params.timestamp(q, "toTimestamp"),
        value=value,
        value_operator=operator or "=",
        filters=conditions,
    )
    params.drop_overridden(query, conditions, FILTERED_BY_PARAMETER)
    return query


async def _with_traces(
    request: web.Request,
    project: str,
    scores: list[Score],
    present: Callable[[Score], dict[str, Any]] = score_json,
) -> list[dict[str, Any]]:
    """Score items with their trace's `userId`, `tags`, `environment` and `sessionId`.

    A score whose trace is not stored gets `"trace": null`; upstream's join leaves such a score
    out of the page, which would make the list depend on ingestion order."""
    store = use(request, TelemetryStore)
    trace_ids = sorted({s.trace_id for s in scores if s.trace_id})
    traces = {t.id: t for t in await store.get_traces(project, trace_ids)} if trace_ids else {}
    return [{**present(s), "trace": score_trace_json(traces.get(s.trace_id or ""))} for s in scores]


@routes.get("/api/public/scores")
async def list_scores_v1(request: web.Request) -> web.Response:
    """The hidden v1 list (older SDKs): trace scores only, each with its trace."""
    project = await project_id(request)
    query = _page_filters(request.query)
    # v1 knows neither session nor dataset-run scores.
    query.session_id = query.dataset_run_id = None
    if query.data_type is None:
        query.data_type = V1_DATA_TYPES
    elif query.data_type not in V1_DATA_TYPES:
        return json_response({"data": [], "meta": page_meta(query.page, query.limit, 0)})
    query.filters.append(HAS_TRACE)
    page = await use(request, TelemetryStore).list_scores(project, query)
    data = await _with_traces(request, project, page.items)
    return json_response({"data": data, "meta": page_meta(query.page, query.limit, page.total)})


@routes.get("/api/public/scores/{score_id}")
async def get_score_v1(request: web.Request) -> web.Response:
    """The hidden v1 read of one trace score."""
    project = await project_id(request)
    found = await use(request, TelemetryStore).get_scores(project, [request.match_info["score_id"]])
    if not found or not found[0].trace_id or found[0].data_type is ScoreDataType.CORRECTION:
        raise NotFound("Score not found")
    return json_response(score_json(found[0]))


@routes.get("/api/public/v2/scores")
async def list_scores_v2(request: web.Request) -> web.Response:
    project = await project_id(request)
    q = request.query
    # Unknown groups are dropped, as upstream's parser does; an empty `fields` is the default.
    groups = params.field_groups(q, V2_FIELD_GROUPS, V2_FIELD_GROUPS, strict=False)
    if "score" not in groups:
        raise InvalidInput("Scores needs to be selected always.")
    query = _page_filters(q)
    if (query.user_id is not None or query.trace_tags) and "trace" not in groups:
        raise InvalidInput(
            "Cannot filter by trace properties (userId, traceTags) when 'trace' field is not "
            "included. Please add 'trace' to the fields parameter or remove trace filters."
        )
    page = await use(request, TelemetryStore).list_scores(project, query)
    if "trace" in groups:
        data = await _with_traces(request, project, page.items, _score_v2_json)
    else:
        data = [{**_score_v2_json(s), "trace": None} for s in page.items]
    return json_response({"data": data, "meta": page_meta(query.page, query.limit, page.total)})


def _score_v2_json(score: Score) -> dict[str, Any]:
    """The v2 `Score`: upstream's domain score, which also carries `executionTraceId` (the
    trace of the evaluator run that produced it; null for other scores)."""
    return {**score_json(score), "executionTraceId": score.execution_trace_id}


@routes.get("/api/public/v2/scores/{score_id}")
async def get_score(request: web.Request) -> web.Response:
    project = await project_id(request)
    found = await use(request, TelemetryStore).get_scores(project, [request.match_info["score_id"]])
    if not found:
        raise NotFound("Score not found")
    return json_response(_score_v2_json(found[0]))


def _v3_value_filter(q: MultiMapping[str], query: ScoreQuery, data_types: list[str]) -> None:
    """v3 `value` (a list), `valueMin` and `valueMax`, each needing one data type."""
    values = params.strings(q, "value")
    if values:
        if len(data_types) != 1:
            raise InvalidInput(
                "Invalid request data: value filter requires a single dataType from: "
                "NUMERIC, BOOLEAN, CATEGORICAL"
            )
        data_type = data_types[0]
        if data_type not in V3_VALUE_TYPES:
            raise InvalidInput(
                "Invalid request data: value filter requires dataType to be NUMERIC, BOOLEAN, "
                f'or CATEGORICAL (got "{data_type}")'
            )
        if data_type == "CATEGORICAL":
            query.string_values = values
        elif data_type == "BOOLEAN":
            for value in values:
                if value not in ("true", "false"):
                    raise InvalidInput(
                        "Invalid request data: value filter with dataType=BOOLEAN requires "
                        f'each value to be "true" or "false" (got "{value}")'
                    )
            query.values = [1.0 if v == "true" else 0.0 for v in values]
        else:
            numbers = []
            for value in values:
                try:
                    number = float(value)
                except ValueError:
                    number = float("nan")
                if number != number or number in (float("inf"), float("-inf")):
                    raise InvalidInput(
                        "Invalid request data: value filter with dataType=NUMERIC requires "
                        f'each value to be a finite number (got "{value}")'
                    )
                numbers.append(number)
            query.values = numbers
    query.value_min = params.number(q, "valueMin")
    query.value_max = params.number(q, "valueMax")
    if (query.value_min is not None or query.value_max is not None) and data_types != [
        ScoreDataType.NUMERIC.value
    ]:
        raise InvalidInput(
            "Invalid request data: valueMin and valueMax require dataType=NUMERIC as a single value"
        )


@routes.get("/api/public/v3/scores")
async def list_scores_v3(request: web.Request) -> web.Response:
    project = await project_id(request)
    q = request.query
    for deferred in ("userId", "traceTags"):
        if q.get(deferred):
            raise InvalidInput(
                f"Invalid request data: {deferred} filter requires a trace JOIN and is not "
                "supported in v3 — use v2 or omit this filter"
            )
    groups = params.field_groups(q, V3_FIELD_GROUPS, {"core"})
    wanted = params.integer(q, "limit", 50, maximum=100)
    trace_ids = params.strings(q, "traceId")
    session_ids = params.strings(q, "sessionId")
    observation_ids = params.strings(q, "observationId")
    experiment_ids = params.strings(q, "experimentId")
    if observation_ids and not trace_ids:
        raise InvalidInput(
            "Invalid request data: observationId requires traceId, because observation IDs "
            "are scoped to a trace"
        )
    if sum(bool(ids) for ids in (trace_ids, session_ids, experiment_ids)) > 1:
        raise InvalidInput(
            "Invalid request data: traceId (with observationId), sessionId and experimentId "
            "are mutually exclusive"
        )
    data_types = params.choices(q, "dataType", DATA_TYPES, upper=True)
    query = ScoreQuery(
        limit=wanted + 1,
        score_ids=params.strings(q, "id"),
        name=params.strings(q, "name") or None,
        source=params.choices(q, "source", SOURCES, upper=True) or None,
        data_type=data_types or None,
        environments=params.strings(q, "environment"),
        config_id=params.strings(q, "configId") or None,
        queue_id=params.strings(q, "queueId") or None,
        author_user_id=params.strings(q, "authorUserId") or None,
        trace_id=trace_ids or None,
        session_id=session_ids or None,
        observation_id=observation_ids or None,
        dataset_run_id=experiment_ids or None,
        from_timestamp=params.timestamp(q, "fromTimestamp"),
        to_timestamp=params.timestamp(q, "toTimestamp"),
    )
    _v3_value_filter(q, query, data_types)
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
    """Upstream queues the deletion and answers 202 with a message, whether or not the score
    exists (the contract's 204 is not what its server sends)."""
    project = await project_id(request)
    await use(request, TelemetryStore).delete_scores(project, [request.match_info["score_id"]])
    return json_response({"message": "Score deletion queued successfully"}, status=202)
