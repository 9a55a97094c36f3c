"""Observations: v1 page-based list/get and the v2 cursor API with field groups.

Deliberate differences from upstream: the v1 list refuses limit=0 (upstream answers an empty
page with totalPages null); v1 items carry no `usagePricingTierId` (only the tier's name is
stored); a v2 cursor that decodes to JSON other than an object reads "Invalid cursor format"
where upstream gives a schema error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from fathom.core.domain.errors import InvalidInput, NotFound
from fathom.core.domain.pricing import Model
from fathom.core.domain.tracing import Level, Observation, ObservationType
from fathom.core.ports.telemetry import ObservationQuery, TelemetryStore
from fathom.core.usecases.models import ModelCatalog
from fathom.entrypoints.http import params
from fathom.entrypoints.http.context import project_id, use
from fathom.entrypoints.http.json import json_response
from fathom.entrypoints.http.presenters import (
    observation_json,
    observation_v2_json,
    page_meta,
)

routes = web.RouteTableDef()

# A `filter` condition on one of these columns replaces the query parameter that filters it.
FILTERED_BY_PARAMETER: dict[str, tuple[str, ...]] = {
    "traceId": ("trace_id",),
    "name": ("name",),
    "userId": ("user_id",),
    "sessionId": ("session_id",),
    "type": ("type",),
    "level": ("level",),
    "parentObservationId": ("parent_observation_id",),
    "isRootObservation": ("is_root",),
    "version": ("version",),
    "environment": ("environments",),
    "startTime": ("from_start_time", "to_start_time"),
}


async def matched_models(
    request: web.Request, observations: Iterable[Observation]
) -> Mapping[str, Model]:
    """The matched models of `observations` by id, for their price fields (an in-memory
    lookup: the catalog is cached; nothing is read when no observation matched a model)."""
    if not any(o.internal_model_id for o in observations):
        return {}
    return await use(request, ModelCatalog).by_id()


V2_FIELD_GROUPS = {
    "core",
    "basic",
    "time",
    "io",
    "metadata",
    "model",
    "usage",
    "prompt",
    "metrics",
    "trace_context",
}
V2_DEFAULT_GROUPS = {"core", "basic"}
TRACE_GROUPS = {"basic", "trace_context"}


def _filters(
    q: MultiMapping[str], start_prefix: str, *, empty_parent_is_root: bool
) -> ObservationQuery:
    # Upstream's z.enum: the exact upper-case names, so `generation` is a 400.
    type_ = params.string(q, "type")
    if type_ is not None and type_ not in ObservationType.__members__:
        raise InvalidInput(
            f"Invalid request data: type must be one of {list(ObservationType.__members__)}"
        )
    level = params.string(q, "level")
    if level is not None and level not in Level.__members__:
        raise InvalidInput(f"Invalid request data: level must be one of {list(Level.__members__)}")
    parent = q.get("parentObservationId")
    conditions = params.filter_state(q)
    query = ObservationQuery(
        trace_id=params.string(q, "traceId"),
        name=params.string(q, "name"),
        user_id=params.string(q, "userId"),
        session_id=params.string(q, "sessionId"),
        type=type_,
        level=level,
        parent_observation_id=parent or None,
        # v2: an empty parentObservationId asks for observations without a parent (the
        # contract says so); v1 ignores it, as upstream's filter builder skips empty values.
        is_root=True
        if parent == "" and empty_parent_is_root
        else params.boolean(q, "isRootObservation"),
        version=params.string(q, "version"),
        environments=params.strings(q, "environment"),
        from_start_time=params.timestamp(q, f"from{start_prefix}"),
        to_start_time=params.timestamp(q, f"to{start_prefix}"),
        filters=conditions,
    )
    params.drop_overridden(query, conditions, FILTERED_BY_PARAMETER)
    return query


def _cursor(q: MultiMapping[str]) -> dict[str, Any] | None:
    """The v2 cursor: text that is not base64 JSON gets upstream's "Invalid cursor format"; a
    JSON value of the wrong shape is refused by the caller."""
    try:
        return params.decode_cursor(q)
    except InvalidInput:
        raise InvalidInput("Invalid cursor format") from None


@routes.get("/api/public/observations/{observation_id}")
async def get_observation(request: web.Request) -> web.Response:
    project = await project_id(request)
    found = await use(request, TelemetryStore).get_observations(
        project, [request.match_info["observation_id"]]
    )
    if not found:
        raise NotFound("Observation not found within authorized project")
    models = await matched_models(request, found)
    return json_response(observation_json(found[0], models.get(found[0].internal_model_id or "")))


@routes.get("/api/public/observations")
async def list_observations(request: web.Request) -> web.Response:
    project = await project_id(request)
    q = request.query
    query = _filters(q, "StartTime", empty_parent_is_root=False)
    query.page = params.integer(q, "page", 1)
    query.limit = params.integer(q, "limit", 50, maximum=100)
    page = await use(request, TelemetryStore).list_observations(project, query)
    models = await matched_models(request, page.items)
    return json_response(
        {
            "data": [
                observation_json(o, models.get(o.internal_model_id or "")) for o in page.items
            ],
            "meta": page_meta(query.page, query.limit, page.total),
        }
    )


@routes.get("/api/public/v2/observations")
async def list_observations_v2(request: web.Request) -> web.Response:
    project = await project_id(request)
    q = request.query
    # Upstream takes the literals "true" and "false" only, and refuses "true".
    parse_io = q.get("parseIoAsJson")
    if parse_io == "true":
        raise InvalidInput(
            "Invalid request data: parseIoAsJson=true is not supported; input and output are "
            "always returned as raw strings (omit the parameter or set it to false)"
        )
    if parse_io is not None and parse_io != "false":
        raise InvalidInput(
            f"Invalid request data: query parameter 'parseIoAsJson' must be 'true' or 'false', "
            f"got {parse_io!r}"
        )
    # Unknown groups are dropped, as upstream's parser does.
    groups = params.field_groups(q, V2_FIELD_GROUPS, V2_DEFAULT_GROUPS, strict=False) | {"core"}
    query = _filters(q, "StartTime", empty_parent_is_root=True)
    # Upstream's v2 limit is nonnegative: 0 is a valid, empty page.
    query.limit = params.integer(q, "limit", 50, minimum=0, maximum=1000)
    cursor = _cursor(q)
    if cursor is not None:
        try:
            query.after = (
                datetime.fromisoformat(cursor["lastStartTimeTo"]),
                str(cursor["lastTraceId"]),
                str(cursor["lastId"]),
            )
        except (KeyError, ValueError, TypeError):
            raise InvalidInput(
                "Invalid request data: query parameter 'cursor' is not valid"
            ) from None
    store = use(request, TelemetryStore)
    # One row more than asked tells whether another page exists without a count query.
    wanted = query.limit
    query.limit = wanted + 1
    page = await store.list_observations(project, query, with_total=False)
    rows = page.items[:wanted]
    traces = {}
    if groups & TRACE_GROUPS and rows:
        trace_ids = sorted({o.trace_id for o in rows})
        traces = {t.id: t for t in await store.get_traces(project, trace_ids)}
    expand = set(params.strings(q, "expandMetadata"))
    meta: dict[str, str] = {}
    if len(page.items) > wanted and rows:
        last = rows[-1]
        meta["cursor"] = params.encode_cursor(
            {
                "lastStartTimeTo": last.start_time.isoformat(),
                "lastTraceId": last.trace_id,
                "lastId": last.id,
            }
        )
    models = await matched_models(request, rows) if "model" in groups else {}
    return json_response(
        {
            "data": [
                observation_v2_json(
                    o, groups, traces.get(o.trace_id), expand, models.get(o.internal_model_id or "")
                )
                for o in rows
            ],
            "meta": meta,
        }
    )
