"""The metrics query builder: Langfuse's `/api/public/metrics` v1 query language (a subset).

`MetricsQuery` checks a query against the allow-lists of its view (traces, observations,
numeric/boolean/categorical scores) and builds one SQL query with bound parameters; the
store runs it and shapes each row with the built query's `shape`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from fathom.adapters.storage.clickhouse.sql import PID, Params, parse_time
from fathom.core.domain.errors import InvalidInput

# Every view reads one row per entity (trace, observation, score) with `FINAL`; related data is
# joined as per-key subqueries (trace columns by id, observation aggregates by trace id, score
# counts by trace/observation id), so joins never multiply rows and one GROUP BY over the
# requested dimensions applies the requested aggregations. Identifiers come only from the
# allow-lists below; values are bound parameters.


@dataclass(frozen=True, slots=True)
class _Dim:
    sql: str
    joins: tuple[str, ...] = ()
    kind: Literal["string", "number", "array", "datetime"] = "string"


@dataclass(frozen=True, slots=True)
class _Measure:
    sql: str
    joins: tuple[str, ...] = ()
    integer: bool = False
    numeric: bool = True  # False: only count/uniq make sense (e.g. user ids)


@dataclass(frozen=True, slots=True)
class _View:
    table: str
    alias: str
    time_column: str  # column of the base table that fromTimestamp/toTimestamp bound
    time_names: tuple[str, ...]  # names a datetime filter may use for it
    dims: dict[str, _Dim]
    measures: dict[str, _Measure]
    segment: str = ""


def _tokens(kind: str, column: str = "ob.usage_details") -> str:
    # Keys such as input, input_cached_tokens, input_audio all count as input.
    return (
        "arraySum(mapValues(mapFilter((k, v) -> positionCaseInsensitive(k, "
        f"'{kind}') > 0, {column})))"
    )


def _cost(kind: str) -> str:
    return f"toFloat64({_tokens(kind, 'ob.cost_details')})"


_TRACE_DIMS_VIA_JOIN = {
    "traceName": _Dim("tr.name", ("tr",)),
    "userId": _Dim("tr.user_id", ("tr",)),
    "sessionId": _Dim("tr.session_id", ("tr",)),
    "traceRelease": _Dim("tr.release", ("tr",)),
    "traceVersion": _Dim("tr.version", ("tr",)),
    "tags": _Dim("tr.tags", ("tr",), "array"),
}

_TRACES_VIEW = _View(
    table="traces",
    alias="tr",
    time_column="timestamp",
    time_names=("timestamp",),
    dims={
        "id": _Dim("tr.id"),
        "name": _Dim("tr.name"),
        "tags": _Dim("tr.tags", kind="array"),
        "userId": _Dim("tr.user_id"),
        "sessionId": _Dim("tr.session_id"),
        "release": _Dim("tr.release"),
        "version": _Dim("tr.version"),
        "environment": _Dim("tr.environment"),
        "timestampMonth": _Dim("formatDateTime(tr.timestamp, '%Y-%m')"),
        "timestampDay": _Dim("formatDateTime(tr.timestamp, '%Y-%m-%d')"),
    },
    measures={
        "count": _Measure("1", integer=True),
        "observationsCount": _Measure("ifNull(oa.observations_count, 0)", ("oa",), True),
        "scoresCount": _Measure("ifNull(sa.scores_count, 0)", ("sa",), True),
        "uniqueUserIds": _Measure("tr.user_id", integer=True, numeric=False),
        "uniqueSessionIds": _Measure("tr.session_id", integer=True, numeric=False),
        "latency": _Measure("oa.latency_ms", ("oa",)),
        "totalCost": _Measure("oa.oa_total_cost", ("oa",)),
        "totalTokens": _Measure("oa.total_tokens", ("oa",), True),
        "inputTokens": _Measure("oa.input_tokens", ("oa",), True),
        "outputTokens": _Measure("oa.output_tokens", ("oa",), True),
    },
)

_OBSERVATIONS_VIEW = _View(
    table="observations",
    alias="ob",
    time_column="start_time",
    time_names=("startTime", "start_time"),
    dims={
        "id": _Dim("ob.id"),
        "traceId": _Dim("ob.trace_id"),
        "environment": _Dim("ob.environment"),
        "parentObservationId": _Dim("ob.parent_observation_id"),
        "type": _Dim("ob.type"),
        "name": _Dim("ob.name"),
        "level": _Dim("ob.level"),
        "version": _Dim("ob.version"),
        "providedModelName": _Dim("ob.provided_model_name"),
        "model": _Dim("ob.provided_model_name"),
        "promptName": _Dim("ob.prompt_name"),
        "promptVersion": _Dim("ob.prompt_version", kind="number"),
        "startTimeMonth": _Dim("formatDateTime(ob.start_time, '%Y-%m')"),
        **_TRACE_DIMS_VIA_JOIN,
    },
    measures={
        "count": _Measure("1", integer=True),
        "latency": _Measure("date_diff('millisecond', ob.start_time, ob.end_time)"),
        "streamingLatency": _Measure(
            "date_diff('millisecond', ob.completion_start_time, ob.end_time)"
        ),
        "timeToFirstToken": _Measure(
            "date_diff('millisecond', ob.start_time, ob.completion_start_time)"
        ),
        "inputTokens": _Measure(_tokens("input"), integer=True),
        "outputTokens": _Measure(_tokens("output"), integer=True),
        "totalTokens": _Measure("ob.usage_details['total']", integer=True),
        "inputCost": _Measure(_cost("input")),
        "outputCost": _Measure(_cost("output")),
        "totalCost": _Measure("toFloat64(ob.total_cost)"),
        # A zero-second observation has no rate: NULL, which aggregations skip.
        "outputTokensPerSecond": _Measure(
            f"{_tokens('output')} / "
            "nullIf(date_diff('second', ob.completion_start_time, ob.end_time), 0)"
        ),
        "tokensPerSecond": _Measure(
            "ob.usage_details['total'] / nullIf(date_diff('second', ob.start_time, ob.end_time), 0)"
        ),
        "countScores": _Measure("ifNull(sa.scores_count, 0)", ("sa",), True),
        "uniqueTraceIds": _Measure("ob.trace_id", integer=True, numeric=False),
    },
)

_SCORE_DIMS = {
    "id": _Dim("sc.id"),
    "name": _Dim("sc.name"),
    "environment": _Dim("sc.environment"),
    "source": _Dim("sc.source"),
    "dataType": _Dim("sc.data_type"),
    "traceId": _Dim("sc.trace_id"),
    "observationId": _Dim("sc.observation_id"),
    "configId": _Dim("sc.config_id"),
    "timestampMonth": _Dim("formatDateTime(sc.timestamp, '%Y-%m')"),
    "timestampDay": _Dim("formatDateTime(sc.timestamp, '%Y-%m-%d')"),
    "observationName": _Dim("ob.name", ("ob",)),
    "observationModelName": _Dim("ob.provided_model_name", ("ob",)),
    "observationPromptName": _Dim("ob.prompt_name", ("ob",)),
    "observationPromptVersion": _Dim("ob.prompt_version", ("ob",), "number"),
    **_TRACE_DIMS_VIA_JOIN,
    # A session score carries its own session id; a trace score inherits the trace's.
    "sessionId": _Dim("ifNull(sc.session_id, tr.session_id)", ("tr",)),
}


def _scores_view(segment: str, extra_dims: dict[str, _Dim], numeric: bool) -> _View:
    measures = {"count": _Measure("1", integer=True)}
    if numeric:
        measures["value"] = _Measure("sc.value")
    return _View(
        table="scores",
        alias="sc",
        time_column="timestamp",
        time_names=("timestamp",),
        dims={**_SCORE_DIMS, **extra_dims},
        measures=measures,
        segment=segment,
    )


_VIEWS: dict[str, _View] = {
    "traces": _TRACES_VIEW,
    "observations": _OBSERVATIONS_VIEW,
    "scores-numeric": _scores_view(
        "sc.data_type IN ('NUMERIC', 'BOOLEAN')", {"value": _Dim("sc.value", kind="number")}, True
    ),
    "scores-boolean": _scores_view(
        "sc.data_type = 'BOOLEAN'", {"value": _Dim("sc.value", kind="number")}, True
    ),
    "scores-categorical": _scores_view(
        "sc.data_type = 'CATEGORICAL'", {"stringValue": _Dim("sc.string_value")}, False
    ),
}

_AGGREGATIONS: dict[str, str] = {
    "sum": "sum({x})",
    "avg": "avg({x})",
    "count": "count({x})",
    "max": "max({x})",
    "min": "min({x})",
    "p50": "quantile(0.5)({x})",
    "p75": "quantile(0.75)({x})",
    "p90": "quantile(0.9)({x})",
    "p95": "quantile(0.95)({x})",
    "p99": "quantile(0.99)({x})",
    "uniq": "uniq({x})",
    "histogram": "histogram({bins})(toFloat64({x}))",
}

# bucket function, WITH FILL step
_GRANULARITIES: dict[str, tuple[str, str]] = {
    "minute": ("toStartOfMinute({x})", "INTERVAL 1 MINUTE"),
    "hour": ("toStartOfHour({x})", "INTERVAL 1 HOUR"),
    "day": ("toStartOfDay({x})", "INTERVAL 1 DAY"),
    "week": ("toMonday({x})", "INTERVAL 1 WEEK"),
    "month": ("toStartOfMonth({x})", "INTERVAL 1 MONTH"),
}

_DATE_GRANULARITIES = frozenset({"day", "week", "month"})

_STRING_OPS = {
    "=": "{x} = {v}",
    "!=": "ifNull({x} != {v}, true)",
    "<>": "ifNull({x} != {v}, true)",
    "contains": "position(ifNull({x}, ''), {v}) > 0",
    "does not contain": "position(ifNull({x}, ''), {v}) = 0",
    "starts with": "startsWith(ifNull({x}, ''), {v})",
    "ends with": "endsWith(ifNull({x}, ''), {v})",
}
_COMPARE_OPS = {"=": "=", "!=": "!=", "<>": "!=", ">": ">", "<": "<", ">=": ">=", "<=": "<="}


def _clean(value: Any) -> Any:
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, tuple):
        return [_clean(v) for v in value]
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


@dataclass(slots=True)
class _BuiltQuery:
    sql: str
    params: Params
    integer_keys: set[str] = field(default_factory=set)
    # Day, week and month buckets are dates (upstream buckets them with toDate, toMonday and
    # toStartOfMonth); minute and hour buckets stay datetimes.
    date_buckets: bool = False

    def shape(self, row: dict[str, Any]) -> dict[str, Any]:
        out = {k: _clean(v) for k, v in row.items()}
        for key in self.integer_keys:
            value = out.get(key)
            if isinstance(value, float):
                out[key] = int(value)
        if self.date_buckets:
            bucket = out.get("time_dimension")
            if isinstance(bucket, datetime):
                out["time_dimension"] = bucket.date()
        return out


class MetricsQuery:
    def __init__(self, database: str, project_id: str, view: str, query: dict[str, Any]) -> None:
        if view not in _VIEWS:
            raise InvalidInput(f"invalid view {view!r}; must be one of {sorted(_VIEWS)}")
        if not isinstance(query, dict):
            raise InvalidInput("metrics query must be a JSON object")
        self.db = database
        self.view = _VIEWS[view]
        self.q = query
        self.p = Params(project_id)
        self.joins: set[str] = set()

    # -- pieces --

    def _dim(self, name: Any) -> _Dim:
        if not isinstance(name, str) or name not in self.view.dims:
            raise InvalidInput(
                f"Invalid dimension {name}. Must be one of {', '.join(self.view.dims)}"
            )
        return self._joined(self.view.dims[name])

    def _joined(self, dim: _Dim) -> _Dim:
        self.joins.update(dim.joins)
        return dim

    def _filter_dim(self, column: Any) -> _Dim:
        dims = self.view.dims
        if isinstance(column, str) and column in dims:
            return self._joined(dims[column])
        # Upstream's fallback for dashboards that send `traceName`/`scoreName` where the
        # view calls the column `name`.
        if isinstance(column, str) and column.endswith("Name") and "name" in dims:
            return self._joined(dims["name"])
        raise InvalidInput(
            f"Invalid filter column {column}. Must be one of {', '.join(dims)} "
            f"or {self.view.time_names[0]}"
        )

    def _time_range(self) -> tuple[datetime, datetime]:
        raw_from, raw_to = self.q.get("fromTimestamp"), self.q.get("toTimestamp")
        if raw_from is None or raw_to is None:
            raise InvalidInput("fromTimestamp and toTimestamp are required")
        start, end = parse_time(raw_from, "fromTimestamp"), parse_time(raw_to, "toTimestamp")
        if end <= start:
            raise InvalidInput("fromTimestamp must be before toTimestamp")
        return start, end

    def _granularity(self, start: datetime, end: datetime) -> str | None:
        td = self.q.get("timeDimension")
        if not td:
            return None
        granularity = td.get("granularity") if isinstance(td, dict) else None
        if granularity == "auto":
            hours = (end - start).total_seconds() / 3600
            # About 50 buckets, as upstream chooses.
            if hours < 2:
                return "minute"
            if hours < 72:
                return "hour"
            if hours < 1440:
                return "day"
            if hours < 8760:
                return "week"
            return "month"
        if granularity not in _GRANULARITIES:
            raise InvalidInput(
                f"invalid granularity {granularity!r}; must be one of "
                f"{sorted(_GRANULARITIES) + ['auto']}"
            )
        return granularity

    def _filter(self, f: Any) -> str:
        if not isinstance(f, dict):
            raise InvalidInput("each filter must be an object")
        column, op = f.get("column"), str(f.get("operator", "")).lower()
        ftype, value = f.get("type"), f.get("value")
        p, view = self.p, self.view
        if column == "metadata":
            key = f.get("key")
            if not isinstance(key, str) or not key:
                raise InvalidInput("a metadata filter needs a 'key'")
            raw = f"{view.alias}.metadata[{p.text(key)}]"
            if ftype == "numberObject":
                return self._compare(f"toFloat64OrNull({raw})", op, value, "number")
            # Values are JSON text: compare strings by their decoded content.
            text = f"if(startsWith({raw}, '\"'), JSONExtractString({raw}), {raw})"
            if op in ("is null", "is not null"):
                has = f"mapContains({view.alias}.metadata, {p.text(key)})"
                return f"NOT {has}" if op == "is null" else has
            return self._compare(text, op, value, "string")
        if column in view.time_names or ftype == "datetime":
            if column not in view.time_names:
                raise InvalidInput(f"datetime filters apply to {list(view.time_names)}")
            if op not in (">", "<", ">=", "<="):
                raise InvalidInput(f"invalid datetime operator {op!r}")
            when = parse_time(value, f"filter value for {column}")
            return f"{view.alias}.{view.time_column} {op} {p.dt(when)}"
        dim = self._filter_dim(column)
        if op in ("is null", "is not null"):
            return f"{dim.sql} IS {'NOT ' if op == 'is not null' else ''}NULL"
        if dim.kind == "array":
            values = value if isinstance(value, list) else [value]
            arr = p.texts(str(v) for v in values)
            if op == "any of":
                return f"hasAny({dim.sql}, {arr})"
            if op == "all of":
                return f"hasAll({dim.sql}, {arr})"
            if op == "none of":
                return f"NOT hasAny({dim.sql}, {arr})"
            if op in ("=", "contains") and not isinstance(value, list):
                return f"has({dim.sql}, {p.text(str(value))})"
            raise InvalidInput(f"invalid operator {op!r} for array column {column!r}")
        if op in ("any of", "none of"):
            values = value if isinstance(value, list) else [value]
            in_sql = f"{dim.sql} IN {p.texts(str(v) for v in values)}"
            if dim.kind == "number":
                nums = p.add([float(v) for v in values], "Array(Float64)")
                in_sql = f"{dim.sql} IN {nums}"
            return in_sql if op == "any of" else f"NOT ifNull({in_sql}, false)"
        if ftype == "boolean" or isinstance(value, bool):
            if op not in ("=", "<>", "!="):
                raise InvalidInput(f"invalid boolean operator {op!r}")
            return f"{dim.sql} {'=' if op == '=' else '!='} {p.add(bool(value), 'Bool')}"
        kind = "number" if dim.kind == "number" or ftype == "number" else "string"
        return self._compare(dim.sql, op, value, kind)

    def _compare(self, sql: str, op: str, value: Any, kind: str) -> str:
        if kind == "number":
            if op not in _COMPARE_OPS:
                raise InvalidInput(f"invalid number operator {op!r}")
            try:
                number = float(value)
            except (TypeError, ValueError) as exc:
                raise InvalidInput(f"filter value {value!r} is not a number") from exc
            return f"{sql} {_COMPARE_OPS[op]} {self.p.add(number, 'Float64')}"
        if op not in _STRING_OPS:
            raise InvalidInput(f"invalid string operator {op!r}")
        if value is None or isinstance(value, dict | list):
            raise InvalidInput(f"filter value {value!r} must be a string")
        return _STRING_OPS[op].format(x=sql, v=self.p.text(str(value)))

    def _joins_sql(self, start: str, end: str) -> str:
        """LEFT JOINs for the related data the query uses; each side is unique per key."""
        db, view = self.db, self.view
        alias = view.alias

        def base_in_window(column: str) -> str:
            # Bounds the joined side to what the base rows can reference.
            return (
                f"SELECT {column} FROM {db}.{view.table} WHERE project_id = {PID} "
                f"AND {view.time_column} >= {start} AND {view.time_column} <= {end}"
            )

        parts = []
        if "tr" in self.joins and alias != "tr":
            parts.append(
                "LEFT JOIN (SELECT id, name, user_id, session_id, release, version, tags "
                f"FROM {db}.traces FINAL WHERE project_id = {PID} "
                f"AND id IN ({base_in_window('trace_id')})) AS tr ON tr.id = {alias}.trace_id"
            )
        if "ob" in self.joins:
            parts.append(
                "LEFT JOIN (SELECT id, name, provided_model_name, prompt_name, prompt_version "
                f"FROM {db}.observations FINAL WHERE project_id = {PID} "
                f"AND id IN ({base_in_window('observation_id')})) AS ob "
                f"ON ob.id = {alias}.observation_id"
            )
        if "oa" in self.joins:
            # Aliases differ from column names so ClickHouse does not substitute them.
            parts.append(
                "LEFT JOIN (SELECT trace_id AS oa_trace_id, count() AS observations_count, "
                "date_diff('millisecond', min(start_time), "
                "max(greatest(start_time, ifNull(end_time, start_time)))) AS latency_ms, "
                "toFloat64(sum(total_cost)) AS oa_total_cost, "
                "sum(usage_details['total']) AS total_tokens, "
                f"sum({_tokens('input', 'usage_details')}) AS input_tokens, "
                f"sum({_tokens('output', 'usage_details')}) AS output_tokens "
                f"FROM {db}.observations FINAL WHERE project_id = {PID} "
                f"AND trace_id IN ({base_in_window('id')}) GROUP BY trace_id) AS oa "
                "ON oa.oa_trace_id = tr.id"
            )
        if "sa" in self.joins:
            key = "trace_id" if alias == "tr" else "observation_id"
            parts.append(
                f"LEFT JOIN (SELECT {key} AS sa_key, count() AS scores_count "
                f"FROM {db}.scores FINAL WHERE project_id = {PID} "
                f"AND {key} IN ({base_in_window('id')}) GROUP BY {key}) AS sa "
                f"ON sa.sa_key = {alias}.id"
            )
        return " ".join(parts)

    # -- assembly --

    def build(self) -> _BuiltQuery:
        q, p, view = self.q, self.p, self.view
        start, end = self._time_range()
        start_sql, end_sql = p.dt(start), p.dt(end)

        raw_dims = q.get("dimensions") or []
        if not isinstance(raw_dims, list):
            raise InvalidInput("dimensions must be a list")
        dim_names: list[str] = []
        select: list[str] = []
        for d in raw_dims:
            name = d.get("field") if isinstance(d, dict) else d
            dim = self._dim(name)
            if name not in dim_names:
                dim_names.append(name)
                select.append(f"{dim.sql} AS `{name}`")

        raw_metrics = q.get("metrics") or []
        if not isinstance(raw_metrics, list) or not raw_metrics:
            raise InvalidInput("at least one metric is required")
        config = q.get("config") or {}
        bins = config.get("bins", 10) if isinstance(config, dict) else 10
        if not isinstance(bins, int) or not 1 <= bins <= 100:
            raise InvalidInput("config.bins must be an integer between 1 and 100")
        metric_names: list[str] = []
        integer_keys: set[str] = set()
        for m in raw_metrics:
            if not isinstance(m, dict):
                raise InvalidInput("each metric must be an object with measure and aggregation")
            measure_name, aggregation = m.get("measure"), m.get("aggregation")
            if not isinstance(measure_name, str) or measure_name not in view.measures:
                raise InvalidInput(
                    f"Invalid metric {measure_name}. Must be one of {', '.join(view.measures)}"
                )
            if aggregation not in _AGGREGATIONS:
                raise InvalidInput(
                    f"Invalid aggregation {aggregation}. Must be one of {', '.join(_AGGREGATIONS)}"
                )
            measure = view.measures[measure_name]
            if not measure.numeric and aggregation not in ("count", "uniq"):
                raise InvalidInput(
                    f'Aggregation "{aggregation}" is not valid for measure "{measure_name}" '
                    "(type: string). Valid aggregations: count, uniq"
                )
            self.joins.update(measure.joins)
            # Upstream's result key: `<aggregation>_<measure>` (count_count, p95_latency).
            alias = f"{aggregation}_{measure_name}"
            if alias in metric_names:
                continue
            metric_names.append(alias)
            if aggregation in ("count", "uniq") or (
                measure.integer and aggregation in ("sum", "max", "min")
            ):
                integer_keys.add(alias)
            expr = _AGGREGATIONS[aggregation].format(x=measure.sql, bins=bins)
            select.append(f"{expr} AS `{alias}`")

        granularity = self._granularity(start, end)
        group_by = [f"`{n}`" for n in dim_names]
        fill = ""
        if granularity is not None:
            bucket, step = _GRANULARITIES[granularity]
            ts = f"{view.alias}.{view.time_column}"
            select.insert(
                len(dim_names), f"toDateTime({bucket.format(x=ts)}, 'UTC') AS time_dimension"
            )
            group_by.append("time_dimension")

        where = [
            f"{view.alias}.project_id = {PID}",
            f"{view.alias}.{view.time_column} >= {start_sql}",
            f"{view.alias}.{view.time_column} <= {end_sql}",
        ]
        if view.segment:
            where.append(view.segment)
        raw_filters = q.get("filters") or []
        if not isinstance(raw_filters, list):
            raise InvalidInput("filters must be a list")
        where.extend(self._filter(f) for f in raw_filters)

        order_by = q.get("orderBy") or []
        if not isinstance(order_by, list):
            raise InvalidInput("orderBy must be a list")
        order_parts: list[str] = []
        for item in order_by:
            fname = item.get("field") if isinstance(item, dict) else None
            direction = str(item.get("direction", "asc")).upper() if isinstance(item, dict) else ""
            if direction not in ("ASC", "DESC"):
                raise InvalidInput("orderBy direction must be 'asc' or 'desc'")
            if fname == "time_dimension" and granularity is not None:
                order_parts.append(f"time_dimension {direction}")
            elif fname in dim_names or fname in metric_names:
                order_parts.append(f"`{fname}` {direction}")
            else:
                raise InvalidInput(
                    f"Invalid orderBy field: {fname}. Must be one of the dimension or metric "
                    "fields."
                )
        if not order_parts:
            if granularity is not None:
                bucket, step = _GRANULARITIES[granularity]
                lo = f"toDateTime({bucket.format(x=start_sql)}, 'UTC')"
                hi = f"toDateTime({bucket.format(x=end_sql)}, 'UTC') + {step}"
                # Empty buckets come back as rows with zero/NULL metrics, as upstream does.
                fill = f" WITH FILL FROM {lo} TO {hi} STEP {step}"
                order_parts.append("time_dimension ASC")
            elif metric_names:
                order_parts.append(f"`{metric_names[0]}` DESC")
        limit = ""
        row_limit = config.get("row_limit") if isinstance(config, dict) else None
        if row_limit is not None:
            if not isinstance(row_limit, int) or not 1 <= row_limit <= 1000:
                raise InvalidInput("config.row_limit must be an integer between 1 and 1000")
            limit = f" LIMIT {p.add(row_limit, 'UInt64')}"

        sql = (
            f"SELECT {', '.join(select)} "
            f"FROM {self.db}.{view.table} AS {view.alias} FINAL "
            f"{self._joins_sql(start_sql, end_sql)} "
            f"WHERE {' AND '.join(where)}"
            + (f" GROUP BY {', '.join(group_by)}" if group_by else "")
            + (f" ORDER BY {', '.join(order_parts)}{fill}" if order_parts else "")
            + limit
        )
        return _BuiltQuery(
            sql=sql,
            params=p,
            integer_keys=integer_keys,
            date_buckets=granularity in _DATE_GRANULARITIES,
        )
