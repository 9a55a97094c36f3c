"""The telemetry tables' columns, and values and rows between the domain and the engine.

- Value conversion: datetimes as epoch microseconds in UTC, JSON text, usage and cost maps
  kept within their column types, the types Native insert data travels as, and the insert
  versions (`next_event_ts`, strictly increasing within the process).
- Columns and row mapping: the columns of `traces`, `observations` and `scores` in table
  order, a read row as a `Trace`, `Observation` or `Score`, and the Native insert's data built
  column by column.

The insert payloads (`inserts.py`), the SQL helpers (`sql.py`) and the store build on these.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from fathom.core.domain.scores import Score, ScoreDataType, ScoreSource
from fathom.core.domain.tracing import Level, Observation, ObservationType, Trace

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
# Decimal64(12) holds about ±9.2e6; upstream clamps likewise rather than failing the batch.
MAX_DECIMAL = 9_000_000.0
MAX_UINT64 = 2**64 - 1


# --------------------------------------------------------------------------------------------
# Value conversion
# --------------------------------------------------------------------------------------------

_ts_lock = threading.Lock()
_last_ts = _EPOCH


def next_event_ts(count: int = 1) -> datetime:
    """Reserve `count` versions: now, strictly increasing across calls.

    Two upserts within one microsecond still order correctly, and rows of one batch get
    consecutive versions, so a later duplicate of an id in the same batch wins.
    """
    global _last_ts
    with _ts_lock:
        now = datetime.now(UTC)
        if now <= _last_ts:
            now = _last_ts + _MICRO
        _last_ts = now + _MICRO * (count - 1)
        return now


def utc(value: datetime) -> datetime:
    # Naive means UTC here: the process time zone must never leak into stored data.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def micros(value: datetime) -> int:
    """Microseconds since the epoch: what DateTime64(6) stores, cheaper to insert than datetimes."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _MICRO  # aware subtraction is zone-correct without astimezone


def _micros_column(values: list[datetime]) -> list[int]:
    try:
        # One comprehension without a call per value; a naive datetime cannot be subtracted
        # from the aware epoch and sends the column the slow way.
        return [(v - _EPOCH) // _MICRO for v in values]
    except TypeError:
        return [micros(v) for v in values]


def _micros_opt_column(values: list[datetime | None]) -> list[int | None]:
    try:
        return [None if v is None else (v - _EPOCH) // _MICRO for v in values]
    except TypeError:
        return [None if v is None else micros(v) for v in values]


def _stamp_column(values: list[datetime | None], now: int) -> list[int]:
    """created_at/updated_at: the batch's time when unset."""
    try:
        return [now if v is None else (v - _EPOCH) // _MICRO for v in values]
    except TypeError:
        return [now if v is None else micros(v) for v in values]


JSON_OPTIONS = orjson.OPT_NON_STR_KEYS


def _json(value: Any) -> str:
    # Decoded to str on purpose: keeping orjson's own bytes objects alive is several times
    # slower (each holds an over-allocated buffer), while the str is sized exactly.
    try:
        return orjson.dumps(value, option=JSON_OPTIONS).decode()
    except TypeError:
        # orjson refuses e.g. integers beyond 64 bits; the stdlib encoder does not.
        return json.dumps(value, default=str, ensure_ascii=False)


def _json_column(values: list[Any]) -> list[str | None]:
    dumps = orjson.dumps
    try:
        return [None if v is None else dumps(v, option=JSON_OPTIONS).decode() for v in values]
    except TypeError:
        return [None if v is None else _json(v) for v in values]


def _metadata_column(values: list[dict[str, Any] | None]) -> list[dict[str, str]]:
    # Each Map value is the JSON text of one metadata value; keys are strings already in the
    # usual case, and str() of a str is nearly free.
    dumps = orjson.dumps
    try:
        return [
            {str(k): dumps(v, option=JSON_OPTIONS).decode() for k, v in m.items()} if m else {}
            for m in values
        ]
    except TypeError:
        return [{str(k): _json(v) for k, v in m.items()} if m else {} for m in values]


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        # Rows written by other tools may hold plain text.
        return text


def _decode_metadata(raw: dict[str, str] | None) -> dict[str, Any]:
    if not raw:
        return {}
    return {k: _loads(v) for k, v in raw.items()}


def usage(details: dict[str, Any] | None) -> dict[str, int]:
    if not details:
        return {}
    # Fast path for the usual case (ingestion already produced clean counts); a plain loop is
    # cheaper than all() over a generator.
    for v in details.values():
        if type(v) is not int or v < 0 or v > MAX_UINT64:
            break
    else:
        return details
    out: dict[str, int] = {}
    for k, v in details.items():
        if v is None:
            continue
        try:
            n = int(v)
        except (TypeError, ValueError, OverflowError):
            continue
        out[str(k)] = min(max(n, 0), MAX_UINT64)
    return out


def cost_value(value: Any) -> float | None:
    if value is None:
        return None
    if type(value) is float and -MAX_DECIMAL <= value <= MAX_DECIMAL:
        return value
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(f) or math.isinf(f):
        return None
    return max(-MAX_DECIMAL, min(MAX_DECIMAL, f))


def costs(details: dict[str, Any] | None) -> dict[str, float]:
    if not details:
        return {}
    # Fast path for the usual case; NaN fails the range check and takes the slow path.
    for v in details.values():
        if type(v) is not float or not -MAX_DECIMAL <= v <= MAX_DECIMAL:
            break
    else:
        return details
    out: dict[str, float] = {}
    for k, v in details.items():
        f = cost_value(v)
        if f is not None:
            out[str(k)] = f
    return out


def _float_map(raw: dict[str, Any] | None) -> dict[str, float]:
    return {k: float(v) for k, v in raw.items()} if raw else {}


def _float_opt(value: Any) -> float | None:
    return None if value is None else float(value)


_LOW_CARDINALITY_RE = re.compile(r"LowCardinality\((\w+)\)")
_DECIMAL_RE = re.compile(r"Decimal(?:32|64|128|256)?\([\d, ]+\)")


def wire_type_name(column_type: str) -> str:
    """The type a column's insert data is sent as; the engine converts it to the column type.

    LowCardinality dictionaries are then built by the engine rather than by a Python loop, and
    costs travel as Float64 instead of through Python's Decimal (the engine rounds them to the
    column's 12 decimals, as exact as the floats the domain holds).
    """
    return _DECIMAL_RE.sub("Float64", _LOW_CARDINALITY_RE.sub(r"\1", column_type))


# --------------------------------------------------------------------------------------------
# Columns and row mapping
# --------------------------------------------------------------------------------------------

TRACE_COLUMNS = (
    "id",
    "project_id",
    "timestamp",
    "name",
    "user_id",
    "session_id",
    "release",
    "version",
    "input",
    "output",
    "metadata",
    "tags",
    "public",
    "bookmarked",
    "environment",
    "created_at",
    "updated_at",
)
OBSERVATION_COLUMNS = (
    "id",
    "trace_id",
    "project_id",
    "type",
    "parent_observation_id",
    "start_time",
    "end_time",
    "completion_start_time",
    "name",
    "metadata",
    "level",
    "status_message",
    "version",
    "input",
    "output",
    "environment",
    "provided_model_name",
    "internal_model_id",
    "model_parameters",
    "provided_usage_details",
    "usage_details",
    "provided_cost_details",
    "cost_details",
    "total_cost",
    "usage_pricing_tier_name",
    "prompt_id",
    "prompt_name",
    "prompt_version",
    "created_at",
    "updated_at",
)
SCORE_COLUMNS = (
    "id",
    "project_id",
    "timestamp",
    "name",
    "data_type",
    "value",
    "string_value",
    "source",
    "trace_id",
    "observation_id",
    "session_id",
    "dataset_run_id",
    "comment",
    "metadata",
    "config_id",
    "queue_id",
    "author_user_id",
    "execution_trace_id",
    "environment",
    "created_at",
    "updated_at",
)
VERSION_COLUMNS = ("event_ts", "is_deleted")


def select(columns: Sequence[str], alias: str | None = None) -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{c}" for c in columns)


def trace_from_row(r: Sequence[Any]) -> Trace:
    return Trace(
        id=r[0],
        project_id=r[1],
        timestamp=r[2],
        name=r[3],
        user_id=r[4],
        session_id=r[5],
        release=r[6],
        version=r[7],
        input=_loads(r[8]),
        output=_loads(r[9]),
        metadata=_decode_metadata(r[10]),
        tags=list(r[11]),
        public=bool(r[12]),
        bookmarked=bool(r[13]),
        environment=r[14],
        created_at=r[15],
        updated_at=r[16],
    )


def observation_from_row(r: Sequence[Any]) -> Observation:
    return Observation(
        id=r[0],
        trace_id=r[1],
        project_id=r[2],
        type=ObservationType(r[3]),
        parent_observation_id=r[4],
        start_time=r[5],
        end_time=r[6],
        completion_start_time=r[7],
        name=r[8],
        metadata=_decode_metadata(r[9]),
        level=Level(r[10]),
        status_message=r[11],
        version=r[12],
        input=_loads(r[13]),
        output=_loads(r[14]),
        environment=r[15],
        model=r[16],
        internal_model_id=r[17],
        model_parameters=_loads(r[18]),
        provided_usage_details=dict(r[19]) if r[19] else {},
        usage_details=dict(r[20]) if r[20] else {},
        provided_cost_details=_float_map(r[21]),
        cost_details=_float_map(r[22]),
        total_cost=_float_opt(r[23]),
        usage_pricing_tier_name=r[24],
        prompt_id=r[25],
        prompt_name=r[26],
        prompt_version=r[27],
        created_at=r[28],
        updated_at=r[29],
    )


def score_from_row(r: Sequence[Any]) -> Score:
    return Score(
        id=r[0],
        project_id=r[1],
        timestamp=r[2],
        name=r[3],
        data_type=ScoreDataType(r[4]),
        value=r[5],
        string_value=r[6],
        source=ScoreSource(r[7]),
        trace_id=r[8],
        observation_id=r[9],
        session_id=r[10],
        dataset_run_id=r[11],
        comment=r[12],
        metadata=_decode_metadata(r[13]),
        config_id=r[14],
        queue_id=r[15],
        author_user_id=r[16],
        execution_trace_id=r[17],
        environment=r[18],
        created_at=r[19],
        updated_at=r[20],
    )


# Insert data is built column by column (one comprehension per column, no per-row tuples to
# transpose), in the order of the *_COLUMNS tuples followed by event_ts and is_deleted.


def trace_columns(items: list[Trace], now: int) -> list[list[Any]]:
    return [
        [t.id for t in items],
        [t.project_id for t in items],
        _micros_column([t.timestamp for t in items]),
        [t.name for t in items],
        [t.user_id for t in items],
        [t.session_id for t in items],
        [t.release for t in items],
        [t.version for t in items],
        _json_column([t.input for t in items]),
        _json_column([t.output for t in items]),
        _metadata_column([t.metadata for t in items]),
        [t.tags or [] for t in items],
        [bool(t.public) for t in items],
        [bool(t.bookmarked) for t in items],
        [t.environment or "default" for t in items],
        _stamp_column([t.created_at for t in items], now),
        _stamp_column([t.updated_at for t in items], now),
        *_version_columns(now, len(items)),
    ]


def observation_columns(items: list[Observation], now: int) -> list[list[Any]]:
    return [
        [o.id for o in items],
        [o.trace_id for o in items],
        [o.project_id for o in items],
        [str(o.type) for o in items],
        [o.parent_observation_id for o in items],
        _micros_column([o.start_time for o in items]),
        _micros_opt_column([o.end_time for o in items]),
        _micros_opt_column([o.completion_start_time for o in items]),
        [o.name for o in items],
        _metadata_column([o.metadata for o in items]),
        [str(o.level or Level.DEFAULT) for o in items],
        [o.status_message for o in items],
        [o.version for o in items],
        _json_column([o.input for o in items]),
        _json_column([o.output for o in items]),
        [o.environment or "default" for o in items],
        [o.model for o in items],
        [o.internal_model_id for o in items],
        _json_column([o.model_parameters for o in items]),
        [usage(o.provided_usage_details) for o in items],
        [usage(o.usage_details) for o in items],
        [costs(o.provided_cost_details) for o in items],
        [costs(o.cost_details) for o in items],
        [cost_value(o.total_cost) for o in items],
        [o.usage_pricing_tier_name for o in items],
        [o.prompt_id for o in items],
        [o.prompt_name for o in items],
        [o.prompt_version for o in items],
        _stamp_column([o.created_at for o in items], now),
        _stamp_column([o.updated_at for o in items], now),
        *_version_columns(now, len(items)),
    ]


def score_columns(items: list[Score], now: int) -> list[list[Any]]:
    return [
        [s.id for s in items],
        [s.project_id for s in items],
        _micros_column([s.timestamp for s in items]),
        [s.name for s in items],
        [str(s.data_type) for s in items],
        [None if s.value is None else float(s.value) for s in items],
        [s.string_value for s in items],
        [str(s.source) for s in items],
        [s.trace_id for s in items],
        [s.observation_id for s in items],
        [s.session_id for s in items],
        [s.dataset_run_id for s in items],
        [s.comment for s in items],
        _metadata_column([s.metadata for s in items]),
        [s.config_id for s in items],
        [s.queue_id for s in items],
        [s.author_user_id for s in items],
        [s.execution_trace_id for s in items],
        [s.environment or "default" for s in items],
        _stamp_column([s.created_at for s in items], now),
        _stamp_column([s.updated_at for s in items], now),
        *_version_columns(now, len(items)),
    ]


def _version_columns(now: int, count: int) -> tuple[list[int], list[int]]:
    # Consecutive versions from `now`: a later duplicate of an id in the same batch wins.
    return list(range(now, now + count)), [0] * count
