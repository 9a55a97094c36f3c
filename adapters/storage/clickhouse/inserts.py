"""Insert payloads: a batch as one JSONCompactColumns document built by orjson.

How a batch usually reaches the engine: one document per insert, its rows sharing one
version. What goes into it and what the engine is told to do with it is described below. A
batch holding a value the document cannot carry exactly raises `NeedsNative` (or orjson's
TypeError), and the store sends it through the Native writer instead, with the columns built
by `rows.py`.
"""

from __future__ import annotations

import itertools
import math
from datetime import datetime
from typing import Any

import orjson

from fathom.adapters.storage.clickhouse.rows import (
    JSON_OPTIONS,
    MAX_DECIMAL,
    MAX_UINT64,
    cost_value,
    costs,
    usage,
)
from fathom.core.domain.scores import Score
from fathom.core.domain.tracing import Level, Observation, Trace

# The usual batch travels as one JSON document, `[[column values], ...]`, serialised by orjson
# in one call and parsed by the engine (the Native writer costs several times more Python work
# per row). What the engine is told to do with it:
# - JSON values (input, output, model parameters) go as they are; the engine keeps objects,
#   arrays, numbers and booleans as their JSON text (input_format_json_read_*_as_strings, the
#   default since ClickHouse 23), so only a string is encoded first (`"text"` must be stored
#   with its quotes).
# - metadata goes as one object into the EPHEMERAL column `metadata_json`; the column default
#   of `metadata` splits it into key -> JSON text of the value.
# - datetimes go as orjson writes them (ISO 8601 with microseconds and offset; naive ones
#   without, which the UTC columns read as UTC), read with date_time_input_format=best_effort.
# - a column whose values are all empty (NULL, {}, [] or false: the column default) is left out.
# - rows share one version; a later duplicate of an id in the batch replaces the earlier one
#   before sending, so the newest still wins.
# Anything else (integers orjson cannot encode, NaN scores, ...) sends the batch through the
# Native insert.

INSERT_FORMAT = "JSONCompactColumns"
# chDB's async_insert defaults to on, which adds a buffering step, and optimize_on_insert
# would collapse each block through a replacing merge that reads never rely on.
INSERT_SETTINGS: dict[str, Any] = {
    "async_insert": 0,
    "optimize_on_insert": 0,
    "input_format_json_read_objects_as_strings": 1,
    "input_format_json_read_arrays_as_strings": 1,
    "input_format_json_read_numbers_as_strings": 1,
    "input_format_json_read_bools_as_strings": 1,
    "input_format_null_as_default": 1,
    "date_time_input_format": "best_effort",
}
_isfinite = math.isfinite
_chain = itertools.chain.from_iterable


class NeedsNative(Exception):
    """The batch holds a value the JSON payload cannot carry exactly."""


def _stamps(values: list[datetime | None], default: datetime) -> list[datetime | str]:
    """created_at/updated_at: `default` when unset. One datetime for the whole batch (the usual
    case) is formatted once rather than by orjson for every row."""
    first = values[0]
    if values.count(first) == len(values):
        return [(default if first is None else first).isoformat()] * len(values)
    return [default if v is None else v for v in values]


def _raw_json(values: list[Any]) -> list[Any]:
    dumps = orjson.dumps
    return [dumps(v).decode() if isinstance(v, str) else v for v in values]


def _usage_values(*columns: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], ...]:
    """Usage maps as they are when every value is a count in UInt64's range (checked for all
    columns at once); otherwise each map cleaned by `usage`."""
    try:
        flat = list(_chain(map(dict.values, _chain(columns))))
    except TypeError:  # a None or a non-dict
        flat = [None]
    if flat and not (set(map(type, flat)) == {int} and min(flat) >= 0 and max(flat) <= MAX_UINT64):
        return tuple([usage(v) for v in values] for values in columns)
    return columns


def _cost_values(*columns: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], ...]:
    """Cost maps, like `_usage_values`: as they are when every value is a finite number within
    the Decimal column's range, otherwise cleaned by `costs`."""
    try:
        flat = list(_chain(map(dict.values, _chain(columns))))
    except TypeError:
        flat = [None]
    if flat and not _clean_floats(flat):
        return tuple([costs(v) for v in values] for values in columns)
    return columns


def _clean_floats(values: list[Any]) -> bool:
    # A NaN or an infinity makes the sum non-finite.
    return (
        set(map(type, values)) <= {float, int}
        and _isfinite(sum(values))
        and -MAX_DECIMAL <= min(values)
        and max(values) <= MAX_DECIMAL
    )


def _total_cost_values(values: list[Any]) -> list[Any]:
    present = [v for v in values if v is not None]
    if present and not _clean_floats(present):
        return [cost_value(v) for v in values]
    return values


def _score_values(values: list[Any]) -> list[Any]:
    present = [v for v in values if v is not None]
    if present and not (set(map(type, present)) <= {float, int} and _isfinite(sum(present))):
        raise NeedsNative  # NaN/inf and odd types keep their exact Native handling
    return values


def latest_per_id(items: list[Any]) -> list[Any]:
    """The batch with only the last row of each id (rows of a batch share one version)."""
    if len({x.id for x in items}) == len(items):
        return items
    return list({x.id: x for x in items}.values())


def _payload(columns: list[tuple[str, list[Any], Any]]) -> tuple[list[str], bytes]:
    """Column names and the JSONCompactColumns document; `(name, values, empty)` columns whose
    values all equal `empty` (the column's default) are left out."""
    names: list[str] = []
    pieces: list[bytes | memoryview] = []
    for name, values, empty in columns:
        # The first value decides in the usual case; comparing every value is the slow part.
        if empty is _KEEP or values[0] != empty or values.count(empty) != len(values):
            names.append(name)
            pieces.append(b"," if pieces else b"[")
            _json_array(values, pieces)
    pieces.append(b"]")
    return names, b"".join(pieces)


# orjson holds the GIL for a whole call: one call over a large batch (tens of MB of inputs and
# outputs) stalled the event loop of `fathom serve` for ~70 ms. Chunks of this many values
# take a few milliseconds each, and the interpreter can switch threads between them. The
# pieces are joined once, without copies in between (large joins cost page faults too).
_JSON_CHUNK = 2_000


def _json_array(values: list[Any], pieces: list[bytes | memoryview]) -> None:
    """Appends the JSON array of `values` to `pieces`."""
    if len(values) <= _JSON_CHUNK:
        pieces.append(orjson.dumps(values, option=JSON_OPTIONS))
        return
    pieces.append(b"[")
    for start in range(0, len(values), _JSON_CHUNK):
        if start:
            pieces.append(b",")
        chunk = orjson.dumps(values[start : start + _JSON_CHUNK], option=JSON_OPTIONS)
        pieces.append(memoryview(chunk)[1:-1])
    pieces.append(b"]")


_KEEP = object()


def trace_payload(items: list[Trace], version: datetime) -> tuple[list[str], bytes]:
    n = len(items)
    return _payload(
        [
            ("id", [t.id for t in items], _KEEP),
            ("project_id", [t.project_id for t in items], _KEEP),
            ("timestamp", [t.timestamp for t in items], _KEEP),
            ("name", [t.name for t in items], None),
            ("user_id", [t.user_id for t in items], None),
            ("session_id", [t.session_id for t in items], None),
            ("release", [t.release for t in items], None),
            ("version", [t.version for t in items], None),
            ("input", _raw_json([t.input for t in items]), None),
            ("output", _raw_json([t.output for t in items]), None),
            ("metadata_json", [t.metadata for t in items], {}),
            ("tags", [t.tags for t in items], []),
            ("public", [bool(t.public) for t in items], False),
            ("bookmarked", [bool(t.bookmarked) for t in items], False),
            ("environment", [t.environment or "default" for t in items], _KEEP),
            ("created_at", _stamps([t.created_at for t in items], version), _KEEP),
            ("updated_at", _stamps([t.updated_at for t in items], version), _KEEP),
            ("event_ts", [version.isoformat()] * n, _KEEP),
        ]
    )


def observation_payload(items: list[Observation], version: datetime) -> tuple[list[str], bytes]:
    n = len(items)
    provided_usage, final_usage = _usage_values(
        [o.provided_usage_details for o in items], [o.usage_details for o in items]
    )
    provided_costs, final_costs = _cost_values(
        [o.provided_cost_details for o in items], [o.cost_details for o in items]
    )
    return _payload(
        [
            ("id", [o.id for o in items], _KEEP),
            ("trace_id", [o.trace_id for o in items], _KEEP),
            ("project_id", [o.project_id for o in items], _KEEP),
            ("type", [o.type for o in items], _KEEP),
            ("parent_observation_id", [o.parent_observation_id for o in items], None),
            ("start_time", [o.start_time for o in items], _KEEP),
            ("end_time", [o.end_time for o in items], None),
            ("completion_start_time", [o.completion_start_time for o in items], None),
            ("name", [o.name for o in items], None),
            ("metadata_json", [o.metadata for o in items], {}),
            ("level", [o.level or Level.DEFAULT for o in items], _KEEP),
            ("status_message", [o.status_message for o in items], None),
            ("version", [o.version for o in items], None),
            ("input", _raw_json([o.input for o in items]), None),
            ("output", _raw_json([o.output for o in items]), None),
            ("environment", [o.environment or "default" for o in items], _KEEP),
            ("provided_model_name", [o.model for o in items], None),
            ("internal_model_id", [o.internal_model_id for o in items], None),
            ("model_parameters", _raw_json([o.model_parameters for o in items]), None),
            ("provided_usage_details", provided_usage, {}),
            ("usage_details", final_usage, {}),
            ("provided_cost_details", provided_costs, {}),
            ("cost_details", final_costs, {}),
            ("total_cost", _total_cost_values([o.total_cost for o in items]), None),
            ("usage_pricing_tier_name", [o.usage_pricing_tier_name for o in items], None),
            ("prompt_id", [o.prompt_id for o in items], None),
            ("prompt_name", [o.prompt_name for o in items], None),
            ("prompt_version", [o.prompt_version for o in items], None),
            ("created_at", _stamps([o.created_at for o in items], version), _KEEP),
            ("updated_at", _stamps([o.updated_at for o in items], version), _KEEP),
            ("event_ts", [version.isoformat()] * n, _KEEP),
        ]
    )


def score_payload(items: list[Score], version: datetime) -> tuple[list[str], bytes]:
    n = len(items)
    return _payload(
        [
            ("id", [s.id for s in items], _KEEP),
            ("project_id", [s.project_id for s in items], _KEEP),
            ("timestamp", [s.timestamp for s in items], _KEEP),
            ("name", [s.name for s in items], _KEEP),
            ("data_type", [s.data_type for s in items], _KEEP),
            ("value", _score_values([s.value for s in items]), None),
            ("string_value", [s.string_value for s in items], None),
            ("source", [s.source for s in items], _KEEP),
            ("trace_id", [s.trace_id for s in items], None),
            ("observation_id", [s.observation_id for s in items], None),
            ("session_id", [s.session_id for s in items], None),
            ("dataset_run_id", [s.dataset_run_id for s in items], None),
            ("comment", [s.comment for s in items], None),
            ("metadata_json", [s.metadata for s in items], {}),
            ("config_id", [s.config_id for s in items], None),
            ("queue_id", [s.queue_id for s in items], None),
            ("author_user_id", [s.author_user_id for s in items], None),
            ("execution_trace_id", [s.execution_trace_id for s in items], None),
            ("environment", [s.environment or "default" for s in items], _KEEP),
            ("created_at", _stamps([s.created_at for s in items], version), _KEEP),
            ("updated_at", _stamps([s.updated_at for s in items], version), _KEEP),
            ("event_ts", [version.isoformat()] * n, _KEEP),
        ]
    )
