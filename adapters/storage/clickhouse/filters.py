"""The `filter` parameter (Langfuse's FilterState) on the trace, observation and score lists.

The API columns each list accepts (`TRACE_FILTER_COLUMNS`, `OBSERVATION_FILTER_COLUMNS`,
`SCORE_FILTER_COLUMNS`) and `filter_sql`, which turns the conditions into SQL with bound
parameters, split by where the store evaluates them: in the list's candidate scan, on the
newest version of each candidate, on the rows' traces, or on per-trace aggregates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from fathom.adapters.storage.clickhouse.sql import Params, parse_time
from fathom.core.domain.errors import InvalidInput
from fathom.core.ports.telemetry import Condition

# Each API column maps to an expression over the listed table's own columns (`self`), over the
# columns of the listed rows' traces (`trace`: observations, read through `trace_id IN (...)`),
# or over the per-trace aggregates of observations (`agg`: traces, read through `id IN (...)`).
# `stable` columns never change for an id, so their conditions need no recheck on the newest
# version (see `_candidate_page`).


@dataclass(frozen=True, slots=True)
class _FilterColumn:
    sql: str
    kind: Literal["string", "number", "datetime", "array", "boolean", "metadata"]
    source: Literal["self", "trace", "agg"] = "self"
    stable: bool = False


def _starting_with(kind: str, column: str) -> str:
    # The API's input/output usage and cost: every key that starts with `input` (`output`).
    return f"arraySum(mapValues(mapFilter((k, v) -> startsWith(k, '{kind}'), {column})))"


ROOT_SQL = "(parent_observation_id IS NULL OR parent_observation_id = '')"
# What the per-trace aggregates read (table order, as `select` keeps it).
AGGREGATED_OBSERVATION_COLUMNS = (
    "id",
    "trace_id",
    "start_time",
    "end_time",
    "level",
    "usage_details",
    "cost_details",
    "total_cost",
)
_TRACE_SIDE = {
    "name": _FilterColumn("name", "string"),
    "userId": _FilterColumn("user_id", "string"),
    "sessionId": _FilterColumn("session_id", "string"),
    "environment": _FilterColumn("environment", "string"),
    "tags": _FilterColumn("tags", "array"),
    "release": _FilterColumn("release", "string"),
    "version": _FilterColumn("version", "string"),
}
TRACE_FILTER_COLUMNS: dict[str, _FilterColumn] = {
    "id": _FilterColumn("id", "string", stable=True),
    "timestamp": _FilterColumn("timestamp", "datetime", stable=True),
    **_TRACE_SIDE,
    "bookmarked": _FilterColumn("bookmarked", "boolean"),
    "public": _FilterColumn("public", "boolean"),
    "metadata": _FilterColumn("metadata", "metadata"),
    # Aggregates of the trace's observations (upstream's `observation_stats`).
    "latency": _FilterColumn(
        "date_diff('millisecond', least(min(start_time), min(end_time)), "
        "greatest(max(start_time), max(end_time))) / 1000",
        "number",
        "agg",
    ),
    "inputTokens": _FilterColumn(
        f"sum({_starting_with('input', 'usage_details')})", "number", "agg"
    ),
    "outputTokens": _FilterColumn(
        f"sum({_starting_with('output', 'usage_details')})", "number", "agg"
    ),
    "totalTokens": _FilterColumn("sum(usage_details['total'])", "number", "agg"),
    "tokens": _FilterColumn("sum(usage_details['total'])", "number", "agg"),
    "inputCost": _FilterColumn(
        f"toFloat64(sum({_starting_with('input', 'cost_details')}))", "number", "agg"
    ),
    "outputCost": _FilterColumn(
        f"toFloat64(sum({_starting_with('output', 'cost_details')}))", "number", "agg"
    ),
    "totalCost": _FilterColumn("toFloat64(sum(ifNull(total_cost, 0)))", "number", "agg"),
    "level": _FilterColumn(
        "multiIf(countIf(level = 'ERROR') > 0, 'ERROR', countIf(level = 'WARNING') > 0, "
        "'WARNING', countIf(level = 'DEFAULT') > 0, 'DEFAULT', 'DEBUG')",
        "string",
        "agg",
    ),
    "warningCount": _FilterColumn("countIf(level = 'WARNING')", "number", "agg"),
    "errorCount": _FilterColumn("countIf(level = 'ERROR')", "number", "agg"),
    "defaultCount": _FilterColumn("countIf(level = 'DEFAULT')", "number", "agg"),
    "debugCount": _FilterColumn("countIf(level = 'DEBUG')", "number", "agg"),
}
_LATENCY_SQL = "date_diff('millisecond', start_time, end_time) / 1000"
OBSERVATION_FILTER_COLUMNS: dict[str, _FilterColumn] = {
    "id": _FilterColumn("id", "string", stable=True),
    "traceId": _FilterColumn("trace_id", "string", stable=True),
    "startTime": _FilterColumn("start_time", "datetime", stable=True),
    "endTime": _FilterColumn("end_time", "datetime"),
    "type": _FilterColumn("type", "string"),
    "name": _FilterColumn("name", "string"),
    "environment": _FilterColumn("environment", "string"),
    "level": _FilterColumn("level", "string"),
    "statusMessage": _FilterColumn("status_message", "string"),
    "version": _FilterColumn("version", "string"),
    "parentObservationId": _FilterColumn("parent_observation_id", "string"),
    "isRootObservation": _FilterColumn(ROOT_SQL, "boolean"),
    "model": _FilterColumn("provided_model_name", "string"),
    "providedModelName": _FilterColumn("provided_model_name", "string"),
    "modelId": _FilterColumn("internal_model_id", "string"),
    "promptName": _FilterColumn("prompt_name", "string"),
    "promptVersion": _FilterColumn("prompt_version", "number"),
    "input": _FilterColumn("input", "string"),
    "output": _FilterColumn("output", "string"),
    "metadata": _FilterColumn("metadata", "metadata"),
    "latency": _FilterColumn(_LATENCY_SQL, "number"),
    "timeToFirstToken": _FilterColumn(
        "date_diff('millisecond', start_time, completion_start_time) / 1000", "number"
    ),
    "tokensPerSecond": _FilterColumn(
        f"{_starting_with('output', 'usage_details')} / nullIf({_LATENCY_SQL}, 0)", "number"
    ),
    "inputTokens": _FilterColumn(_starting_with("input", "usage_details"), "number"),
    "outputTokens": _FilterColumn(_starting_with("output", "usage_details"), "number"),
    "totalTokens": _FilterColumn("usage_details['total']", "number"),
    "tokens": _FilterColumn("usage_details['total']", "number"),
    "inputCost": _FilterColumn(f"toFloat64({_starting_with('input', 'cost_details')})", "number"),
    "outputCost": _FilterColumn(f"toFloat64({_starting_with('output', 'cost_details')})", "number"),
    "totalCost": _FilterColumn("toFloat64(total_cost)", "number"),
    # The observation's trace.
    "userId": _FilterColumn("user_id", "string", "trace"),
    "sessionId": _FilterColumn("session_id", "string", "trace"),
    "traceName": _FilterColumn("name", "string", "trace"),
    "traceEnvironment": _FilterColumn("environment", "string", "trace"),
    "traceTags": _FilterColumn("tags", "array", "trace"),
    "tags": _FilterColumn("tags", "array", "trace"),
}
SCORE_FILTER_COLUMNS: dict[str, _FilterColumn] = {
    "id": _FilterColumn("id", "string", stable=True),
    "timestamp": _FilterColumn("timestamp", "datetime", stable=True),
    "traceId": _FilterColumn("trace_id", "string", stable=True),
    "name": _FilterColumn("name", "string"),
    "source": _FilterColumn("source", "string"),
    "dataType": _FilterColumn("data_type", "string"),
    "value": _FilterColumn("value", "number"),
    "stringValue": _FilterColumn("string_value", "string"),
    "observationId": _FilterColumn("observation_id", "string"),
    "sessionId": _FilterColumn("session_id", "string"),
    "datasetRunId": _FilterColumn("dataset_run_id", "string"),
    "configId": _FilterColumn("config_id", "string"),
    "queueId": _FilterColumn("queue_id", "string"),
    "authorUserId": _FilterColumn("author_user_id", "string"),
    "comment": _FilterColumn("comment", "string"),
    "environment": _FilterColumn("environment", "string"),
    "metadata": _FilterColumn("metadata", "metadata"),
}

_FILTER_STRING_OPS = {
    "=": "{x} = {v}",
    "contains": "position(ifNull({x}, ''), {v}) > 0",
    "does not contain": "position(ifNull({x}, ''), {v}) = 0",
    "starts with": "startsWith(ifNull({x}, ''), {v})",
    "ends with": "endsWith(ifNull({x}, ''), {v})",
    # Upstream's indexed literal search; without its text indexes, a substring match
    # (case-insensitive for input and output, as upstream's is).
    "matches": "position(ifNull({x}, ''), {v}) > 0",
}
_FILTER_COMPARE_OPS = {"=": "=", ">": ">", "<": "<", ">=": ">=", "<=": "<="}


def _number(value: Any, column: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidInput(
            f"Invalid request data: filter: value for column '{column}' must be a number"
        )
    try:
        return float(value)
    except ValueError:
        raise InvalidInput(
            f"Invalid request data: filter: value for column '{column}' must be a number"
        ) from None


def _condition_sql(c: Condition, col: _FilterColumn, p: Params) -> str:
    """One condition as SQL over `col` (types and operators were checked at the edge)."""
    x, op, value = col.sql, c.operator, c.value
    if c.type == "null":
        null = f"({x} IS NULL)" if col.kind != "array" else f"empty({x})"
        return null if op == "is null" else f"NOT {null}"
    if col.kind == "metadata":
        if not c.key:
            raise InvalidInput(
                f"Invalid request data: filter: a filter on '{c.column}' needs a 'key'"
            )
        raw = f"{x}[{p.text(c.key)}]"
        if c.type == "numberObject":
            bound = p.add(_number(value, c.column), "Float64")
            return f"toFloat64OrNull({raw}) {_FILTER_COMPARE_OPS[op]} {bound}"
        # Values are stored as JSON text: compare a string by its decoded content.
        text = f"if(startsWith({raw}, '\"'), JSONExtractString({raw}), {raw})"
        present = f"mapContains({x}, {p.text(c.key)})"
        if c.type == "categoryOptions" or op in ("any of", "none of"):
            inside = f"({present} AND {text} IN {p.texts(str(v) for v in value)})"
            return inside if op == "any of" else f"NOT {inside}"
        if c.type == "booleanObject":
            raise InvalidInput(
                "Invalid request data: filter: booleanObject filters on "
                f"'{c.column}' are not supported"
            )
        return f"({present} AND {_FILTER_STRING_OPS[op].format(x=text, v=p.text(str(value)))})"
    if c.type in ("stringObject", "numberObject", "booleanObject"):
        raise InvalidInput(
            f"Invalid request data: filter: column '{c.column}' does not take a '{c.type}' filter"
        )
    if col.kind == "array":
        if c.type != "arrayOptions":
            raise InvalidInput(
                f"Invalid request data: filter: column '{c.column}' takes 'arrayOptions' filters"
            )
        values = p.texts(str(v) for v in value)
        if op == "any of":
            return f"hasAny({x}, {values})"
        if op == "all of":
            return f"hasAll({x}, {values})"
        return f"NOT hasAny({x}, {values})"
    if col.kind == "datetime":
        if c.type != "datetime":
            raise InvalidInput(
                f"Invalid request data: filter: column '{c.column}' takes 'datetime' filters"
            )
        when = parse_time(value, f"filter value for {c.column}")
        return f"{x} {_FILTER_COMPARE_OPS[op]} {p.dt(when)}"
    if col.kind == "boolean":
        if c.type != "boolean":
            raise InvalidInput(
                f"Invalid request data: filter: column '{c.column}' takes 'boolean' filters"
            )
        return f"{x} {'=' if op == '=' else '!='} {p.add(bool(value), 'Bool')}"
    if col.kind == "number":
        if c.type != "number":
            raise InvalidInput(
                f"Invalid request data: filter: column '{c.column}' takes 'number' filters"
            )
        return f"{x} {_FILTER_COMPARE_OPS[op]} {p.add(_number(value, c.column), 'Float64')}"
    # string columns
    if c.type in ("stringOptions", "categoryOptions"):
        inside = f"ifNull({x} IN {p.texts(str(v) for v in value)}, false)"
        return inside if op == "any of" else f"NOT {inside}"
    if c.type != "string":
        raise InvalidInput(
            f"Invalid request data: filter: column '{c.column}' takes 'string' filters"
        )
    template = _FILTER_STRING_OPS[op]
    if op == "matches" and c.column in ("input", "output"):
        template = template.replace("position(", "positionCaseInsensitive(")
    return template.format(x=x, v=p.text(str(value)))


def _agg_zero_matches(c: Condition, col: _FilterColumn) -> bool:
    """Whether a trace without observations (every aggregate 0) meets a number condition."""
    if col.kind != "number" or c.type != "number":
        return False
    value = _number(c.value, c.column)
    return {
        "=": 0 == value,
        ">": 0 > value,
        "<": 0 < value,
        ">=": 0 >= value,
        "<=": 0 <= value,
    }[c.operator]


@dataclass(slots=True)
class _FilterSql:
    """A FilterState split by where it can be evaluated (see `filter_sql`)."""

    stable: list[str] = field(default_factory=list)  # on columns that never change
    recheck: list[str] = field(default_factory=list)  # on columns that can change
    trace: list[str] = field(default_factory=list)  # on the rows' traces
    agg: list[tuple[str, bool]] = field(default_factory=list)  # per-trace aggregates


def filter_sql(
    conditions: Sequence[Condition], columns: dict[str, _FilterColumn], p: Params
) -> _FilterSql:
    out = _FilterSql()
    for c in conditions:
        col = columns.get(c.column)
        if col is None:
            raise InvalidInput(
                f"Invalid request data: filter: unknown column '{c.column}'; "
                f"available: {sorted(columns)}"
            )
        sql = _condition_sql(c, col, p)
        if col.source == "trace":
            out.trace.append(sql)
        elif col.source == "agg":
            out.agg.append((sql, _agg_zero_matches(c, col)))
        elif col.stable:
            out.stable.append(sql)
        else:
            out.recheck.append(sql)
    return out
