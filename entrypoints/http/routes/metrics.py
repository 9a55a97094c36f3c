"""Metrics: the query API (v1 and v2) and the legacy daily usage series."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from fathom.core.domain.errors import InvalidInput
from fathom.core.ports.telemetry import TelemetryStore
from fathom.entrypoints.http import params
from fathom.entrypoints.http.context import project_id, use
from fathom.entrypoints.http.json import json_response
from fathom.entrypoints.http.presenters import iso, page_meta

routes = web.RouteTableDef()

VIEWS = {"traces", "observations", "scores-numeric", "scores-categorical", "scores-boolean"}
V2_ROW_LIMIT = 100
# Upstream's public pagination schema caps every page at 100 rows.
MAX_PAGE_LIMIT = 100


def _rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        for key, value in row.items():
            if isinstance(value, datetime):
                row[key] = iso(value)
            elif isinstance(value, date):  # a day, week or month bucket
                row[key] = value.isoformat()
    return rows


def _tags(query: MultiMapping[str]) -> list[str]:
    """One `tags` value is a comma-separated list, repeated ones are whole tags: how upstream
    reads the parameter (Node parses a repeated parameter into an array, a single one into a
    string it splits)."""
    values = query.getall("tags", [])
    if len(values) == 1:
        values = values[0].split(",")
    return [value for value in values if value]


async def _run(request: web.Request, *, v2: bool) -> web.Response:
    project = await project_id(request)
    query = params.json_query(request)
    view = query.get("view")
    if view not in VIEWS:
        raise InvalidInput(f"Invalid request data: view must be one of {sorted(VIEWS)}")
    if v2:
        config = query.setdefault("config", {}) or {}
        config.setdefault("row_limit", config.pop("rowLimit", V2_ROW_LIMIT))
        query["config"] = config
    rows = await use(request, TelemetryStore).run_metrics_query(project, view, query)
    return json_response({"data": _rows(rows)})


@routes.get("/api/public/metrics")
async def metrics_v1(request: web.Request) -> web.Response:
    return await _run(request, v2=False)


@routes.get("/api/public/v2/metrics")
async def metrics_v2(request: web.Request) -> web.Response:
    return await _run(request, v2=True)


@routes.get("/api/public/metrics/daily")
async def daily_metrics(request: web.Request) -> web.Response:
    """Per day: traces, observations and cost, with usage per model (legacy, not in the spec)."""
    project = await project_id(request)
    q = request.query
    page = params.integer(q, "page", 1)
    limit = params.integer(q, "limit", 50, maximum=MAX_PAGE_LIMIT)
    filters: list[dict[str, Any]] = []
    trace_filters = [
        ("traceName", "name", params.string(q, "traceName")),
        ("userId", "userId", params.string(q, "userId")),
    ]
    for observation_column, trace_column, value in trace_filters:
        if value:
            filters.append(
                {
                    "column": trace_column,
                    "operator": "=",
                    "value": value,
                    "type": "string",
                    "_observation_column": observation_column,
                }
            )
    tags = _tags(q)
    if tags:
        filters.append(
            {
                "column": "tags",
                "operator": "all of",
                "value": tags,
                "type": "arrayOptions",
                "_observation_column": "tags",
            }
        )
    environments = params.strings(q, "environment")
    if environments:
        filters.append(
            {
                "column": "environment",
                "operator": "any of",
                "value": environments,
                "type": "stringOptions",
                "_observation_column": "environment",
            }
        )
    start = params.timestamp(q, "fromTimestamp") or datetime(1970, 1, 1, tzinfo=UTC)
    end = params.timestamp(q, "toTimestamp") or datetime.now(UTC)
    window = {
        "fromTimestamp": start.isoformat(),
        "toTimestamp": end.isoformat(),
        "orderBy": [{"field": "time_dimension", "direction": "desc"}],
    }

    def scoped(column_key: str) -> list[dict[str, Any]]:
        return [
            {
                **{k: v for k, v in f.items() if not k.startswith("_")},
                "column": f["_observation_column"] if column_key == "observation" else f["column"],
            }
            for f in filters
        ]

    store = use(request, TelemetryStore)
    traces, observations = await asyncio.gather(
        store.run_metrics_query(
            project,
            "traces",
            {
                "view": "traces",
                "dimensions": [],
                "filters": scoped("trace"),
                "metrics": [{"measure": "count", "aggregation": "count"}],
                "timeDimension": {"granularity": "day"},
                **window,
            },
        ),
        store.run_metrics_query(
            project,
            "observations",
            {
                "view": "observations",
                "dimensions": [{"field": "providedModelName"}],
                "filters": scoped("observation"),
                "metrics": [
                    {"measure": "count", "aggregation": "count"},
                    {"measure": "uniqueTraceIds", "aggregation": "uniq"},
                    {"measure": "inputTokens", "aggregation": "sum"},
                    {"measure": "outputTokens", "aggregation": "sum"},
                    {"measure": "totalTokens", "aggregation": "sum"},
                    {"measure": "totalCost", "aggregation": "sum"},
                ],
                "timeDimension": {"granularity": "day"},
                **window,
            },
        ),
    )
    days: dict[str, dict[str, Any]] = {}
    for row in traces:
        if row.get("count_count"):
            day = row["time_dimension"].isoformat()
            days[day] = {
                "date": day,
                "countTraces": row["count_count"],
                "countObservations": 0,
                "totalCost": 0.0,
                "usage": [],
            }
    per_day_usage: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in observations:
        if not row.get("count_count"):
            continue
        day = row["time_dimension"].isoformat()
        entry = days.setdefault(
            day,
            {"date": day, "countTraces": 0, "countObservations": 0, "totalCost": 0.0, "usage": []},
        )
        entry["countObservations"] += row["count_count"]
        entry["totalCost"] += row.get("sum_totalCost") or 0.0
        # Observations without a model are one usage entry with a null model, as upstream's
        # GROUP BY on the nullable model column gives.
        per_day_usage[day].append(
            {
                "model": row.get("providedModelName"),
                "inputUsage": row.get("sum_inputTokens") or 0,
                "outputUsage": row.get("sum_outputTokens") or 0,
                "totalUsage": row.get("sum_totalTokens") or 0,
                "countTraces": row.get("uniq_uniqueTraceIds") or 0,
                "countObservations": row["count_count"],
                "totalCost": row.get("sum_totalCost") or 0.0,
            }
        )
    for day, usage in per_day_usage.items():
        days[day]["usage"] = sorted(usage, key=lambda u: (u["model"] is None, u["model"] or ""))
    ordered = sorted(days.values(), key=lambda d: d["date"], reverse=True)
    window_rows = ordered[(page - 1) * limit : page * limit]
    return json_response({"data": window_rows, "meta": page_meta(page, limit, len(ordered))})
