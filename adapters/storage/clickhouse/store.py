"""`TelemetryStore` on ClickHouse through clickhouse-connect: embedded chDB or a server.

DSN:
- `chdb:///abs/path` — the embedded chDB engine with its data in that directory;
  `chdb://` (or `chdb://memory`) — an in-memory engine.
- `http://user:pass@host:8123` (or `https://…`) — a ClickHouse server or cluster.

Both go through clickhouse-connect's *sync* client (chDB has no async client) and every call
runs on one worker thread, so the event loop never blocks and calls never interleave on a
handle. chDB allows one engine per process: stores on the same chDB path share one client and
worker thread (a module-level registry, reference counted); opening a second, different chDB
path while one is open raises `ConfigurationError`.

Storage rules (see `schema.py`):
- Writes are batched inserts, one per call, with `event_ts` = now (strictly increasing within
  the process) as the ReplacingMergeTree version. On chDB a batch is one JSONCompactColumns
  document built by orjson, its rows sharing one version after a later duplicate of an id
  replaced the earlier one (see "Insert payloads"). Over HTTP, and for values that document
  cannot carry exactly, the batch goes through clickhouse-connect's Native writer with
  per-row versions, built column by column; LowCardinality columns travel as String and
  Decimal ones as Float64, converted by the engine.
- Reads see only the newest version of a row. Lookups by columns that never change for an id
  (id, an observation's or score's trace_id) take the newest row per id (`ORDER BY event_ts
  DESC LIMIT 1 BY id`) in one flat query; lookups started together (a trace, its observations
  and its scores) share one UNION ALL query, which names its columns with one `COLUMNS()`
  matcher and leaves picking the newest version to Python. They find rows by id or trace id
  wherever the rows' times lie (a bloom-filter pass per table; bounding the observations by
  the trace's day measured slower at 1M observations, as it needs the trace first).
  Lists ordered by the time column (the default of every list) pick candidate ids in
  primary-key order without `FINAL` and keep those whose newest version still matches (see
  `_candidate_page`); totals, other orders and very deep pages use `FINAL`.
- The engine's planning cost grows with every nested SELECT and JOIN (milliseconds each on
  chDB), so reads prefer flat queries and do small joins and aggregates in Python.
- Deletes insert `is_deleted = 1` tombstones (copies of the sort key with empty payloads); reads
  no longer see the rows, and background merges drop the old payloads.
- An id's sort-key time (trace/score `timestamp`, observation `start_time`) must not change
  between upserts — the ingestion merge keeps them immutable, as upstream does. (Point reads
  still return the newest version if it does; `FINAL` lists would show both.)
- Datetimes are stored in UTC with microseconds; naive datetimes are taken as UTC (never as the
  process time zone) and reads return aware UTC datetimes. Datetime parameters are bound as
  epoch microseconds, so neither the server nor the process time zone matters.
- `metadata` values and `input`/`output` are JSON text (orjson); anything JSON-compatible
  round-trips.

Orders:
- `list_traces`: by `TraceQuery.order_by` (timestamp, name, userId, sessionId, release, version,
  environment, latency, totalCost; camelCase or snake_case), ties broken by `id` in the same
  direction.
- `list_observations`: `start_time DESC, trace_id DESC, id DESC`; the keyset cursor `after =
  (start_time, trace_id, id)` of the last row returns the rows strictly after it in that order.
- `list_scores`: `timestamp DESC, id DESC`; cursor `after = (timestamp, id)`.
- `list_sessions`: `created_at DESC, id DESC`.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import math
import os
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, TypeVar

import clickhouse_connect
import orjson
from clickhouse_connect.datatypes.base import ClickHouseType
from clickhouse_connect.datatypes.registry import get_from_name
from clickhouse_connect.driver import options as _client_options
from clickhouse_connect.driver.client import Client

from fathom.adapters.storage.clickhouse import schema
from fathom.core.domain.errors import ConfigurationError, InvalidInput
from fathom.core.domain.scores import Score, ScoreDataType, ScoreSource
from fathom.core.domain.tracing import Level, Observation, ObservationType, Trace
from fathom.core.ports.telemetry import (
    Condition,
    ObservationQuery,
    Page,
    ScoreQuery,
    SessionSummary,
    TraceQuery,
    TraceSummary,
)

R = TypeVar("R")

# chDB installs pandas, and clickhouse-connect imports it on the first insert to check
# whether the data is a DataFrame: ~47 MiB of a process that never uses it (idle RSS is a
# target). The client's own "pandas is not installed" state skips those checks.
_client_options.pd = None
_client_options.pd_time_test = None

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_SECOND = timedelta(seconds=1)
# Decimal64(12) holds about ±9.2e6; upstream clamps likewise rather than failing the batch.
_MAX_DECIMAL = 9_000_000.0
_MAX_UINT64 = 2**64 - 1


# --------------------------------------------------------------------------------------------
# Engines: one worker thread per client; one chDB engine per process.
# --------------------------------------------------------------------------------------------


class _Engine:
    """A client and the one worker thread every call on it runs on."""

    def __init__(self, key: str, factory: Callable[[], Client]) -> None:
        self.key = key
        self.refs = 0
        self._factory = factory
        self._client: Client | None = None
        # Keyed by id() of the module's settings dicts, which live as long as the process.
        self._settings: dict[int, dict[str, Any]] = {}
        self.executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"clickhouse-{key[-24:]}"
        )

    def client(self) -> Client:
        # Worker thread only. Created on first use, so constructing a store never blocks,
        # and retried after a failure (a server that was down at start-up).
        if self._client is None:
            self._client = self._factory()
        return self._client

    def close_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self._settings.clear()

    def settings(self, client: Client, wanted: dict[str, Any]) -> dict[str, Any]:
        """`wanted` without the settings this engine does not know (an older server), which it
        would reject; the query settings are tuning only. Worker thread only."""
        known = self._settings.get(id(wanted))
        if known is None:
            known = {k: v for k, v in wanted.items() if k in client.server_settings}
            self._settings[id(wanted)] = known
        return known


_CHDB_LOCK = threading.Lock()
_CHDB_ENGINES: dict[str, _Engine] = {}  # at most one entry: chDB allows one engine per process


def _chdb_key(dsn: str) -> str:
    rest = dsn[len("chdb://") :].split("?", 1)[0]
    if rest in ("", "memory", ":memory:"):
        return ":memory:"
    if not rest.startswith("/"):
        raise ConfigurationError(
            f"chDB DSN {dsn!r}: use chdb:///absolute/path (three slashes) or chdb:// for memory"
        )
    return os.path.realpath(rest)


def _acquire_chdb(dsn: str) -> _Engine:
    key = _chdb_key(dsn)
    with _CHDB_LOCK:
        engine = _CHDB_ENGINES.get(key)
        if engine is None:
            if _CHDB_ENGINES:
                (other,) = _CHDB_ENGINES
                raise ConfigurationError(
                    f"chDB allows one engine per process: {other!r} is open, cannot open {key!r}"
                )
            path = None if key == ":memory:" else key

            def factory() -> Client:
                # Any engine start failure (path locked by another process, an engine opened
                # outside this registry) is a setup error.
                try:
                    if path is None:
                        return clickhouse_connect.get_client(interface="chdb", tz_mode="aware")
                    return clickhouse_connect.get_client(dsn=f"chdb://{path}", tz_mode="aware")
                except Exception as exc:
                    raise ConfigurationError(f"cannot open chDB engine at {key!r}: {exc}") from exc

            engine = _Engine(key, factory)
            _CHDB_ENGINES[key] = engine
        engine.refs += 1
        return engine


def _release_chdb(engine: _Engine) -> bool:
    """Drop one reference; True when the caller must close the engine."""
    with _CHDB_LOCK:
        engine.refs -= 1
        if engine.refs > 0:
            return False
        _CHDB_ENGINES.pop(engine.key, None)
        return True


# --------------------------------------------------------------------------------------------
# Value conversion
# --------------------------------------------------------------------------------------------

_ts_lock = threading.Lock()
_last_ts = _EPOCH


def _next_event_ts(count: int = 1) -> datetime:
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


def _utc(value: datetime) -> datetime:
    # Naive means UTC here: the process time zone must never leak into stored data.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _micros(value: datetime) -> int:
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
        return [_micros(v) for v in values]


def _micros_opt_column(values: list[datetime | None]) -> list[int | None]:
    try:
        return [None if v is None else (v - _EPOCH) // _MICRO for v in values]
    except TypeError:
        return [None if v is None else _micros(v) for v in values]


def _stamp_column(values: list[datetime | None], now: int) -> list[int]:
    """created_at/updated_at: the batch's time when unset."""
    try:
        return [now if v is None else (v - _EPOCH) // _MICRO for v in values]
    except TypeError:
        return [now if v is None else _micros(v) for v in values]


_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS


def _json(value: Any) -> str:
    # Decoded to str on purpose: keeping orjson's own bytes objects alive is several times
    # slower (each holds an over-allocated buffer), while the str is sized exactly.
    try:
        return orjson.dumps(value, option=_JSON_OPTIONS).decode()
    except TypeError:
        # orjson refuses e.g. integers beyond 64 bits; the stdlib encoder does not.
        return json.dumps(value, default=str, ensure_ascii=False)


def _json_column(values: list[Any]) -> list[str | None]:
    dumps = orjson.dumps
    try:
        return [None if v is None else dumps(v, option=_JSON_OPTIONS).decode() for v in values]
    except TypeError:
        return [None if v is None else _json(v) for v in values]


def _metadata_column(values: list[dict[str, Any] | None]) -> list[dict[str, str]]:
    # Each Map value is the JSON text of one metadata value; keys are strings already in the
    # usual case, and str() of a str is nearly free.
    dumps = orjson.dumps
    try:
        return [
            {str(k): dumps(v, option=_JSON_OPTIONS).decode() for k, v in m.items()} if m else {}
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


def _usage(details: dict[str, Any] | None) -> dict[str, int]:
    if not details:
        return {}
    # Fast path for the usual case (ingestion already produced clean counts); a plain loop is
    # cheaper than all() over a generator.
    for v in details.values():
        if type(v) is not int or v < 0 or v > _MAX_UINT64:
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
        out[str(k)] = min(max(n, 0), _MAX_UINT64)
    return out


def _cost_value(value: Any) -> float | None:
    if value is None:
        return None
    if type(value) is float and -_MAX_DECIMAL <= value <= _MAX_DECIMAL:
        return value
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(f) or math.isinf(f):
        return None
    return max(-_MAX_DECIMAL, min(_MAX_DECIMAL, f))


def _costs(details: dict[str, Any] | None) -> dict[str, float]:
    if not details:
        return {}
    # Fast path for the usual case; NaN fails the range check and takes the slow path.
    for v in details.values():
        if type(v) is not float or not -_MAX_DECIMAL <= v <= _MAX_DECIMAL:
            break
    else:
        return details
    out: dict[str, float] = {}
    for k, v in details.items():
        f = _cost_value(v)
        if f is not None:
            out[str(k)] = f
    return out


def _float_map(raw: dict[str, Any] | None) -> dict[str, float]:
    return {k: float(v) for k, v in raw.items()} if raw else {}


def _float_opt(value: Any) -> float | None:
    return None if value is None else float(value)


_LOW_CARDINALITY_RE = re.compile(r"LowCardinality\((\w+)\)")
_DECIMAL_RE = re.compile(r"Decimal(?:32|64|128|256)?\([\d, ]+\)")


def _wire_type_name(column_type: str) -> str:
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
_VERSION_COLUMNS = ("event_ts", "is_deleted")


def _select(columns: Sequence[str], alias: str | None = None) -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{c}" for c in columns)


def _trace_from_row(r: Sequence[Any]) -> Trace:
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


def _observation_from_row(r: Sequence[Any]) -> Observation:
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


def _score_from_row(r: Sequence[Any]) -> Score:
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


def _trace_columns(items: list[Trace], now: int) -> list[list[Any]]:
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


def _observation_columns(items: list[Observation], now: int) -> list[list[Any]]:
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
        [_usage(o.provided_usage_details) for o in items],
        [_usage(o.usage_details) for o in items],
        [_costs(o.provided_cost_details) for o in items],
        [_costs(o.cost_details) for o in items],
        [_cost_value(o.total_cost) for o in items],
        [o.usage_pricing_tier_name for o in items],
        [o.prompt_id for o in items],
        [o.prompt_name for o in items],
        [o.prompt_version for o in items],
        _stamp_column([o.created_at for o in items], now),
        _stamp_column([o.updated_at for o in items], now),
        *_version_columns(now, len(items)),
    ]


def _score_columns(items: list[Score], now: int) -> list[list[Any]]:
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


# --------------------------------------------------------------------------------------------
# Insert payloads: JSONCompactColumns built by orjson
# --------------------------------------------------------------------------------------------
#
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

_INSERT_FORMAT = "JSONCompactColumns"
# chDB's async_insert defaults to on, which adds a buffering step, and optimize_on_insert
# would collapse each block through a replacing merge that reads never rely on.
_INSERT_SETTINGS: dict[str, Any] = {
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


class _NeedsNative(Exception):
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
    columns at once); otherwise each map cleaned by `_usage`."""
    try:
        flat = list(_chain(map(dict.values, _chain(columns))))
    except TypeError:  # a None or a non-dict
        flat = [None]
    if flat and not (set(map(type, flat)) == {int} and min(flat) >= 0 and max(flat) <= _MAX_UINT64):
        return tuple([_usage(v) for v in values] for values in columns)
    return columns


def _cost_values(*columns: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], ...]:
    """Cost maps, like `_usage_values`: as they are when every value is a finite number within
    the Decimal column's range, otherwise cleaned by `_costs`."""
    try:
        flat = list(_chain(map(dict.values, _chain(columns))))
    except TypeError:
        flat = [None]
    if flat and not _clean_floats(flat):
        return tuple([_costs(v) for v in values] for values in columns)
    return columns


def _clean_floats(values: list[Any]) -> bool:
    # A NaN or an infinity makes the sum non-finite.
    return (
        set(map(type, values)) <= {float, int}
        and _isfinite(sum(values))
        and -_MAX_DECIMAL <= min(values)
        and max(values) <= _MAX_DECIMAL
    )


def _total_cost_values(values: list[Any]) -> list[Any]:
    present = [v for v in values if v is not None]
    if present and not _clean_floats(present):
        return [_cost_value(v) for v in values]
    return values


def _score_values(values: list[Any]) -> list[Any]:
    present = [v for v in values if v is not None]
    if present and not (set(map(type, present)) <= {float, int} and _isfinite(sum(present))):
        raise _NeedsNative  # NaN/inf and odd types keep their exact Native handling
    return values


def _latest_per_id(items: list[Any]) -> list[Any]:
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
        pieces.append(orjson.dumps(values, option=_JSON_OPTIONS))
        return
    pieces.append(b"[")
    for start in range(0, len(values), _JSON_CHUNK):
        if start:
            pieces.append(b",")
        chunk = orjson.dumps(values[start : start + _JSON_CHUNK], option=_JSON_OPTIONS)
        pieces.append(memoryview(chunk)[1:-1])
    pieces.append(b"]")


_KEEP = object()


def _trace_payload(items: list[Trace], version: datetime) -> tuple[list[str], bytes]:
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


def _observation_payload(items: list[Observation], version: datetime) -> tuple[list[str], bytes]:
    n = len(items)
    provided_usage, usage = _usage_values(
        [o.provided_usage_details for o in items], [o.usage_details for o in items]
    )
    provided_costs, costs = _cost_values(
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
            ("usage_details", usage, {}),
            ("provided_cost_details", provided_costs, {}),
            ("cost_details", costs, {}),
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


def _score_payload(items: list[Score], version: datetime) -> tuple[list[str], bytes]:
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


# --------------------------------------------------------------------------------------------
# SQL helpers
# --------------------------------------------------------------------------------------------


class _Params:
    """Collects server-side bound parameters (`{name:Type}`); values never enter the SQL text."""

    def __init__(self, project_id: str) -> None:
        self.values: dict[str, Any] = {"pid": project_id}
        self._n = 0

    def add(self, value: Any, ch_type: str) -> str:
        name = f"p{self._n}"
        self._n += 1
        self.values[name] = value
        return f"{{{name}:{ch_type}}}"

    def text(self, value: str) -> str:
        return self.add(value, "String")

    def texts(self, values: Iterable[str]) -> str:
        return self.add(list(values), "Array(String)")

    def dt(self, value: datetime) -> str:
        return f"fromUnixTimestamp64Micro({self.add(_micros(value), 'Int64')}, 'UTC')"


_PID = "{pid:String}"

# Rows of one id share a day (in the sort key) and so a month (the partition): FINAL can skip
# merging across partitions, and single-part partitions need no merge at all.
_READ_SETTINGS: dict[str, Any] = {"do_not_merge_across_partitions_select_final": 1}
# LEFT JOINs give NULL, not 0/'' defaults, for missing right-hand rows.
_JOIN_SETTINGS: dict[str, Any] = {**_READ_SETTINGS, "join_use_nulls": 1}
# Reads of a few granules (lookups by id or trace id) with flat SQL: one thread saves handing
# tiny reads between threads, checking skip indexes while planning rather than while reading
# measured faster for such selective filters, and the plan optimisations (read in order,
# filter push-down, lazy materialisation...) have nothing to gain here but cost milliseconds of
# planning per query (index analysis still runs).
_POINT_SETTINGS: dict[str, Any] = {
    **_READ_SETTINGS,
    "max_threads": 1,
    "use_skip_indexes_on_data_read": 0,
    "query_plan_enable_optimizations": 0,
}
# Candidate scans read in primary key order and stop early; without read-ahead buffering and
# with granule-sized blocks they stop after the newest day instead of several blocks per part.
_IN_ORDER_SETTINGS: dict[str, Any] = {
    **_READ_SETTINGS,
    "read_in_order_use_buffering": 0,
    "max_block_size": 8192,
}
# Candidate lists (see `_candidate_page`): pages reaching deeper than this use FINAL; up to
# _FULL_ROW_CANDIDATES rows the candidates' full rows are read at once (one query fewer).
_MAX_CANDIDATES = 10_000
_FULL_ROW_CANDIDATES = 200
_OVERFETCH_MIN = 20
# Longer id lists are not bound as one parameter (see `_candidate_page`).
_MAX_LISTED_IDS = 100


@dataclass(frozen=True, slots=True)
class _ListSpec:
    """A table listed by its time column: `order` is the full sort (time first, then ties)."""

    table: str
    columns: tuple[str, ...]
    time: str
    order: tuple[str, ...]


def _by_id(row: Sequence[Any]) -> Any:
    return row[0]


def _by_start_time(row: Sequence[Any]) -> Any:
    return row[5], row[0]  # observations: start_time, id


def _by_timestamp(row: Sequence[Any]) -> Any:
    return row[2], row[0]  # traces and scores: timestamp, id


_TRACE_ORDER = {
    "timestamp": "timestamp",
    "name": "name",
    "userid": "user_id",
    "user_id": "user_id",
    "sessionid": "session_id",
    "session_id": "session_id",
    "release": "release",
    "version": "version",
    "environment": "environment",
    "id": "id",
    "public": "public",
    "bookmarked": "bookmarked",
    "latency": "_latency",
    "totalcost": "_total_cost",
    "total_cost": "_total_cost",
}


def _offset(page: int, limit: int) -> int:
    if page < 1:
        raise InvalidInput("page must be >= 1")
    if limit < 0:
        raise InvalidInput("limit must be >= 0")
    return (page - 1) * limit


# -- `filter` (Langfuse's FilterState) on the list endpoints ------------------------------------
#
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


_ROOT_SQL = "(parent_observation_id IS NULL OR parent_observation_id = '')"
# What the per-trace aggregates read (table order, as `_select` keeps it).
_AGGREGATED_OBSERVATION_COLUMNS = (
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
_TRACE_FILTER_COLUMNS: dict[str, _FilterColumn] = {
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
_OBSERVATION_FILTER_COLUMNS: dict[str, _FilterColumn] = {
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
    "isRootObservation": _FilterColumn(_ROOT_SQL, "boolean"),
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
_SCORE_FILTER_COLUMNS: dict[str, _FilterColumn] = {
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
_VALUE_OPS = frozenset({"=", "!=", "<", ">", "<=", ">="})


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


def _condition_sql(c: Condition, col: _FilterColumn, p: _Params) -> str:
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
        when = _parse_time(value, f"filter value for {c.column}")
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
    """A FilterState split by where it can be evaluated (see `_filter_sql`)."""

    stable: list[str] = field(default_factory=list)  # on columns that never change
    recheck: list[str] = field(default_factory=list)  # on columns that can change
    trace: list[str] = field(default_factory=list)  # on the rows' traces
    agg: list[tuple[str, bool]] = field(default_factory=list)  # per-trace aggregates


def _filter_sql(
    conditions: Sequence[Condition], columns: dict[str, _FilterColumn], p: _Params
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


def _values(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


@dataclass(frozen=True, slots=True)
class _PointRead:
    """The newest undeleted rows of `table` whose `column` (never changing for an id) is one of
    `values`."""

    table: str
    columns: tuple[str, ...]
    project_id: str
    column: str
    values: list[str]

    def where(self, p: _Params, pid: str) -> str:
        if len(self.values) == 1:
            return f"project_id = {pid} AND {self.column} = {p.text(self.values[0])}"
        return f"project_id = {pid} AND {self.column} IN {p.texts(self.values)}"


# JSON rows as the Native ones would decode: numbers unquoted, NaN/inf as strings, UTF-8 kept
# valid for the Python decoder.
_JSON_POINT_SETTINGS: dict[str, Any] = {
    **_POINT_SETTINGS,
    "output_format_json_quote_64bit_integers": 0,
    "output_format_json_quote_decimals": 0,
    "output_format_json_quote_denormals": 1,
    "output_format_json_validate_utf8": 1,
}
_DATETIME_COLUMNS = frozenset(
    {"timestamp", "start_time", "end_time", "completion_start_time", "created_at", "updated_at"}
)
_FLOAT_COLUMNS = frozenset({"value"})  # Float64: NaN and infinities arrive as strings
_JSON_ROW_CONVERSIONS: dict[tuple[str, ...], list[tuple[int, Callable[[Any], Any]]]] = {}


@functools.cache
def _row_matcher(columns: tuple[str, ...]) -> str:
    """A `COLUMNS()` matcher for `columns`, then event_ts and is_deleted.

    A matcher yields the table's columns in table order, so `columns` must list them in that
    order (a contract test compares them with the tables); the engine resolves one matcher
    faster than as many column names.
    """
    names = "|".join((*columns, *_VERSION_COLUMNS))
    return f"COLUMNS('^({names})$')"


def _json_datetime(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _from_json_row(columns: tuple[str, ...], row: list[Any]) -> tuple[Any, ...]:
    """A JSONCompactEachRow row of `columns` (and is_deleted) as the Native row would be."""
    conversions = _JSON_ROW_CONVERSIONS.get(columns)
    if conversions is None:
        conversions = _JSON_ROW_CONVERSIONS[columns] = [
            (i, _json_datetime if name in _DATETIME_COLUMNS else float)
            for i, name in enumerate(columns)
            if name in _DATETIME_COLUMNS or name in _FLOAT_COLUMNS
        ]
    for i, convert in conversions:
        value = row[i]
        if value is not None and (convert is not float or value.__class__ is str):
            row[i] = convert(value)
    return tuple(row[: len(columns)])


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------


class ClickHouseTelemetryStore:
    """TelemetryStore on chDB (`chdb:///path`, `chdb://`) or a ClickHouse server (`http://…`)."""

    def __init__(self, dsn: str, *, database: str = "fathom", cluster: str | None = None) -> None:
        self._db = schema.check_identifier(database, "database")
        self._cluster = None if cluster is None else schema.check_identifier(cluster, "cluster")
        self._closed = False
        if dsn.startswith("chdb:"):
            if not dsn.startswith("chdb://"):
                raise ConfigurationError(f"chDB DSN {dsn!r} must start with chdb://")
            self._shared = True
            self._engine = _acquire_chdb(dsn)
        elif dsn.startswith(("http://", "https://")):
            self._shared = False

            def factory() -> Client:
                return clickhouse_connect.get_client(dsn=dsn, tz_mode="aware")

            self._engine = _Engine(dsn.rsplit("@", 1)[-1], factory)
        else:
            raise ConfigurationError(
                "ClickHouse DSN must be chdb:///abs/path, chdb:// (memory) or http(s)://host:port"
            )
        self._column_types: dict[str, Sequence[ClickHouseType]] = {}
        self._pending_reads: dict[
            asyncio.AbstractEventLoop,
            list[tuple[_PointRead, asyncio.Future[list[tuple[Any, ...]]]]],
        ] = {}
        self._traces = f"{self._db}.traces"
        self._observations = f"{self._db}.observations"
        self._scores = f"{self._db}.scores"
        self._trace_list = _ListSpec(self._traces, TRACE_COLUMNS, "timestamp", ("timestamp", "id"))
        self._observation_list = _ListSpec(
            self._observations,
            OBSERVATION_COLUMNS,
            "start_time",
            ("start_time", "trace_id", "id"),
        )
        self._score_list = _ListSpec(self._scores, SCORE_COLUMNS, "timestamp", ("timestamp", "id"))

    # -- plumbing --------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., R], *args: Any) -> R:
        if self._closed:
            raise RuntimeError("ClickHouseTelemetryStore is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._engine.executor, self._call, fn, args)

    def _call(self, fn: Callable[..., R], args: tuple[Any, ...]) -> R:
        return fn(self._engine.client(), *args)

    def _rows(
        self,
        client: Client,
        sql: str,
        params: _Params,
        settings: dict[str, Any] = _READ_SETTINGS,
    ) -> list[tuple[Any, ...]]:
        return client.query(
            sql, parameters=params.values, settings=self._engine.settings(client, settings)
        ).result_rows

    # -- lifecycle -------------------------------------------------------------------------

    async def migrate(self) -> None:
        await self._run(self._migrate)

    def _migrate(self, client: Client) -> None:
        self._column_types.clear()
        db, cluster = self._db, self._cluster
        client.command(schema.create_database_sql(db, cluster))
        client.command(schema.migrations_table_sql(db, cluster))
        applied = {
            int(r[0])
            for r in client.query(f"SELECT version FROM {db}.schema_migrations").result_rows
        }
        for migration in schema.pending(applied):
            for statement in migration.statements:
                client.command(schema.render(statement, db, cluster))
            client.insert(
                f"{db}.schema_migrations",
                [(migration.version, migration.name, datetime.now(UTC))],
                column_names=("version", "name", "applied_at"),
            )

    async def ping(self) -> None:
        await self._run(lambda client: client.command("SELECT 1"))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        engine = self._engine
        if self._shared and not _release_chdb(engine):
            return

        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(engine.executor, engine.close_client)
        finally:
            engine.executor.shutdown(wait=False)

    # -- writes ----------------------------------------------------------------------------

    async def upsert_traces(self, traces: list[Trace]) -> None:
        if traces:
            await self._run(
                self._insert, self._traces, _trace_payload, TRACE_COLUMNS, _trace_columns, traces
            )

    async def upsert_observations(self, observations: list[Observation]) -> None:
        if observations:
            await self._run(
                self._insert,
                self._observations,
                _observation_payload,
                OBSERVATION_COLUMNS,
                _observation_columns,
                observations,
            )

    async def upsert_scores(self, scores: list[Score]) -> None:
        if scores:
            await self._run(
                self._insert, self._scores, _score_payload, SCORE_COLUMNS, _score_columns, scores
            )

    def _insert(
        self,
        client: Client,
        table: str,
        payload: Callable[[list[Any], datetime], tuple[list[str], bytes]],
        columns: tuple[str, ...],
        build: Callable[[list[Any], int], list[list[Any]]],
        items: list[Any],
    ) -> None:
        # The version is taken on the worker thread, so inserts are versioned in the
        # order they reach the engine, not the order their coroutines started.
        latest = _latest_per_id(items)
        try:
            names, data = payload(latest, _next_event_ts())
        except (TypeError, _NeedsNative):
            pass
        else:
            settings = self._engine.settings(client, _INSERT_SETTINGS)
            client.raw_insert(table, names, data, settings=settings, fmt=_INSERT_FORMAT)
            return
        self._insert_native(client, table, columns, build, items)

    def _insert_native(
        self,
        client: Client,
        table: str,
        columns: tuple[str, ...],
        build: Callable[[list[Any], int], list[list[Any]]],
        items: list[Any],
    ) -> None:
        data = build(items, _micros(_next_event_ts(len(items))))
        names = columns + _VERSION_COLUMNS
        types = self._column_types.get(table)
        if types is None:
            # Described once per table: otherwise every insert costs a DESCRIBE round trip.
            context = client.create_insert_context(table, names, column_oriented=True)
            types = self._column_types[table] = [
                get_from_name(_wire_type_name(t.name)) for t in context.column_types
            ]
        client.insert(table, data, column_names=names, column_types=types, column_oriented=True)

    # -- point reads -----------------------------------------------------------------------

    @staticmethod
    def _latest(table: str, columns: Sequence[str], where: str) -> str:
        """SQL for the newest, undeleted version of each row matching `where`, without `FINAL`.

        Only for filters on columns that never change for an id (project_id, id, and the
        trace_id of observations and scores): then filtering before de-duplicating cannot pick
        up a stale version. Cheaper than `FINAL`, which reads whole granules of every column and
        cannot use PREWHERE.
        """
        cols = _select(columns)
        return (
            f"SELECT {cols} FROM (SELECT {cols}, is_deleted FROM {table} WHERE {where} "
            "ORDER BY event_ts DESC LIMIT 1 BY id) WHERE is_deleted = 0"
        )

    def _newest(
        self,
        client: Client,
        table: str,
        columns: Sequence[str],
        where: str,
        params: _Params,
        settings: dict[str, Any] = _POINT_SETTINGS,
        extra: str = "",
    ) -> list[tuple[Any, ...]]:
        """Rows of `_latest`, as one flat query: the engine's planning time grows with every
        nested SELECT, so tombstones are dropped here rather than by an outer query.

        Each row is `columns`, then `extra` (an expression list) if given; the trailing
        is_deleted flag is removed.
        """
        extra_sql = f", {extra}" if extra else ""
        # An explicit PREWHERE, as plan optimisations (which would move the filter there) are
        # off for these reads.
        sql = (
            f"SELECT {_select(columns)}{extra_sql}, is_deleted FROM {table} PREWHERE {where} "
            "ORDER BY event_ts DESC LIMIT 1 BY id"
        )
        return [r[:-1] for r in self._rows(client, sql, params, settings) if not r[-1]]

    async def _get(
        self,
        table: str,
        columns: Sequence[str],
        from_row: Callable[[Sequence[Any]], R],
        project_id: str,
        column: str,
        values: list[str],
        order: Callable[[Sequence[Any]], Any],
    ) -> list[R]:
        if not values:
            return []
        read = _PointRead(table, tuple(columns), project_id, column, values)
        if len(values) > _MAX_LISTED_IDS:
            # Bulk lookups (the ingestion merge) gain nothing from sharing a query and decode
            # faster from Native rows.
            rows = (await self._run(self._read_points, [read]))[0]
        else:
            if self._closed:
                raise RuntimeError("ClickHouseTelemetryStore is closed")
            rows = await self._point_read(read)
        rows.sort(key=order)
        return [from_row(r) for r in rows]

    # Point reads started in the same turn of the event loop (the trace route asks for a trace,
    # its observations and its scores at once) run as one query: every query pays milliseconds
    # of fixed engine cost, whatever it reads.

    def _point_read(self, read: _PointRead) -> asyncio.Future[list[tuple[Any, ...]]]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[tuple[Any, ...]]] = loop.create_future()
        batch = self._pending_reads.get(loop)
        if batch is None:
            batch = self._pending_reads[loop] = []
            loop.call_soon(self._flush_point_reads, loop)
        batch.append((read, future))
        return future

    def _flush_point_reads(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._pending_reads.pop(loop)
        reads = [read for read, _ in batch]
        try:
            done = loop.run_in_executor(
                self._engine.executor, self._call, self._read_points, (reads,)
            )
        except RuntimeError as exc:  # closed meanwhile: the executor is shut down
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return

        def deliver(result: asyncio.Future[list[list[tuple[Any, ...]]]]) -> None:
            error = None if result.cancelled() else result.exception()
            for i, (_, future) in enumerate(batch):
                if future.done():  # the caller went away
                    continue
                if result.cancelled():
                    future.cancel()
                elif error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(result.result()[i])

        done.add_done_callback(deliver)

    def _read_points(self, client: Client, reads: list[_PointRead]) -> list[list[tuple[Any, ...]]]:
        if len(reads) == 1:
            read = reads[0]
            p = _Params(read.project_id)
            return [self._newest(client, read.table, read.columns, read.where(p, _PID), p)]
        # One UNION ALL; each branch gives its rows as JSON text, as the branches' columns
        # differ. The engine's planning cost grows with every column named and every sort, so
        # the columns come from one matcher (in table order, see `_row_matcher`) and the
        # newest version per id is picked here: these reads return a handful of rows.
        p = _Params(reads[0].project_id)
        branches = []
        for i, read in enumerate(reads):
            pid = p.text(read.project_id)
            branches.append(
                f"SELECT {i}, formatRowNoNewline('JSONCompactEachRow', "
                f"{_row_matcher(read.columns)}) FROM {read.table} "
                f"PREWHERE {read.where(p, pid)}"
            )
        newest: list[dict[str, list[Any]]] = [{} for _ in reads]
        loads = orjson.loads
        for i, text in self._rows(client, " UNION ALL ".join(branches), p, _JSON_POINT_SETTINGS):
            # [*columns, event_ts, is_deleted]; event_ts is fixed-width text, so it compares
            # as it sorts.
            row = loads(text)
            seen = newest[i]
            current = seen.get(row[0])
            if current is None or row[-2] > current[-2]:
                seen[row[0]] = row
        return [
            [_from_json_row(read.columns, row) for row in seen.values() if not row[-1]]
            for read, seen in zip(reads, newest, strict=True)
        ]

    async def get_traces(self, project_id: str, trace_ids: list[str]) -> list[Trace]:
        return await self._get(
            self._traces, TRACE_COLUMNS, _trace_from_row, project_id, "id", trace_ids, _by_id
        )

    async def get_observations(
        self, project_id: str, observation_ids: list[str]
    ) -> list[Observation]:
        return await self._get(
            self._observations,
            OBSERVATION_COLUMNS,
            _observation_from_row,
            project_id,
            "id",
            observation_ids,
            _by_id,
        )

    async def get_scores(self, project_id: str, score_ids: list[str]) -> list[Score]:
        return await self._get(
            self._scores, SCORE_COLUMNS, _score_from_row, project_id, "id", score_ids, _by_id
        )

    async def observations_of_trace(self, project_id: str, trace_id: str) -> list[Observation]:
        return await self._get(
            self._observations,
            OBSERVATION_COLUMNS,
            _observation_from_row,
            project_id,
            "trace_id",
            [trace_id],
            _by_start_time,
        )

    async def scores_of_traces(self, project_id: str, trace_ids: list[str]) -> list[Score]:
        return await self._get(
            self._scores,
            SCORE_COLUMNS,
            _score_from_row,
            project_id,
            "trace_id",
            trace_ids,
            _by_timestamp,
        )

    # -- lists -----------------------------------------------------------------------------
    #
    # A list sorted by a table's time column (then ties) is read without FINAL:
    # 1. candidates: ids of the first rows of any version that match the filters, read in the
    #    primary key's order (project_id, day of the time column) so the engine stops after the
    #    newest days, with some extra rows for stale versions;
    # 2. the newest version of each candidate, which must still match the filters on columns
    #    that can change (`recheck`) and not be deleted.
    # Every listed id has a matching row, and an id's time and tie-break columns never change,
    # so the ids that pass step 2 are exactly the head of the list; if too few pass (filters on
    # updated rows, deletes) and more rows exist, step 1 fetches more. FINAL stays for totals
    # and for orders not led by the time column.

    def _candidate_page(
        self,
        client: Client,
        spec: _ListSpec,
        p: _Params,
        where: str,
        recheck: str,
        desc: bool,
        offset: int,
        limit: int,
        count_sql: str | None = None,
    ) -> tuple[list[tuple[Any, ...]], int] | None:
        """Rows (spec.columns) of the page and the total from `count_sql` (-1 without it);
        None when the page is too deep for candidates and the caller must use FINAL."""
        need = offset + limit
        if need > _MAX_CANDIDATES:
            return None
        direction = "DESC" if desc else "ASC"
        order = ", ".join(f"{c} {direction}" for c in (f"toDate({spec.time})", *spec.order))
        total = -1
        fetch = need + max(_OVERFETCH_MIN, need // 2)
        while fetch <= _MAX_CANDIDATES * 4:
            counted = f", ({count_sql})" if count_sql is not None and total < 0 else ""
            limit_sql = f"LIMIT {p.add(fetch, 'UInt64')}"
            if not recheck and need <= _FULL_ROW_CANDIDATES:
                # Nothing to recheck: the candidates' own rows are the answer once each id's
                # newest version is picked, so one query does. All versions of an id share its
                # sort values and so come together; the engine reads the wide columns for the
                # rows within the LIMIT only (lazy materialisation).
                sql = (
                    f"SELECT {_select(spec.columns)}, event_ts, is_deleted{counted} "
                    f"FROM {spec.table} WHERE {where} ORDER BY {order} {limit_sql}"
                )
                rows = self._rows(client, sql, p, _IN_ORDER_SETTINGS)
                if counted:
                    total = int(rows[0][-1]) if rows else 0
                exhausted = len(rows) < fetch
                width = len(spec.columns)
                newest: dict[str, tuple[Any, ...]] = {}
                for r in rows:
                    current = newest.get(r[0])
                    if current is None or r[width] > current[width]:
                        newest[r[0]] = r
                if not exhausted and newest:
                    newest.popitem()  # the last id may have versions beyond the LIMIT
                live = [r[:width] for r in newest.values() if not r[width + 1]]
                if len(live) >= need or exhausted:
                    return live[offset:need], total
                fetch *= 4
                continue
            sql = f"SELECT id{counted} FROM {spec.table} WHERE {where} ORDER BY {order} {limit_sql}"
            candidates = self._rows(client, sql, p, _IN_ORDER_SETTINGS)
            if counted:
                total = int(candidates[0][1]) if candidates else 0
            ids = list(dict.fromkeys(r[0] for r in candidates))
            if not ids or limit == 0:
                return [], total
            exhausted = len(candidates) < fetch
            # Full rows straight away for the usual shallow page; deeper pages verify light
            # rows first and read full rows for the page alone.
            columns = spec.columns if need <= _FULL_ROW_CANDIDATES else ("id",)
            if len(ids) <= _MAX_LISTED_IDS:
                in_ids, settings = p.texts(ids), _POINT_SETTINGS
            else:
                # A long list would bloat the query (over HTTP: multipart form data); name the
                # candidates by their query instead, which reads them a second time.
                in_ids = f"(SELECT id FROM {spec.table} WHERE {where} ORDER BY {order} {limit_sql})"
                settings = _IN_ORDER_SETTINGS
            newest_rows = self._newest(
                client,
                spec.table,
                columns,
                f"project_id = {_PID} AND id IN {in_ids}",
                p,
                settings,
                f"({recheck})" if recheck else "1",
            )
            matching = {r[0]: r[:-1] for r in newest_rows if r[-1]}
            page_ids = [i for i in ids if i in matching]
            if len(page_ids) >= need or exhausted:
                page_ids = page_ids[offset:need]
                if columns is spec.columns:
                    return [matching[i] for i in page_ids], total
                if not page_ids:
                    return [], total
                found = {
                    r[0]: r
                    for r in self._newest(
                        client,
                        spec.table,
                        spec.columns,
                        f"project_id = {_PID} AND id IN {p.texts(page_ids)}",
                        p,
                    )
                }
                return [found[i] for i in page_ids if i in found], total
            fetch *= 4
        return None

    def _traces_where(self, q: TraceQuery, p: _Params) -> tuple[str, str]:
        """The WHERE clause of a trace query and the part of it on columns that can change."""
        where = [f"project_id = {_PID}"]
        recheck = []
        for column, value in (
            ("user_id", q.user_id),
            ("name", q.name),
            ("session_id", q.session_id),
            ("version", q.version),
            ("release", q.release),
        ):
            if value is not None:
                recheck.append(f"{column} = {p.text(value)}")
        if q.tags:
            recheck.append(f"hasAll(tags, {p.texts(q.tags)})")
        if q.environments:
            recheck.append(f"environment IN {p.texts(q.environments)}")
        if q.from_timestamp is not None:
            where.append(f"timestamp >= {p.dt(q.from_timestamp)}")
        if q.to_timestamp is not None:
            where.append(f"timestamp < {p.dt(q.to_timestamp)}")
        if q.filters:
            found = _filter_sql(q.filters, _TRACE_FILTER_COLUMNS, p)
            where.extend(found.stable)
            recheck.extend(found.recheck)
            for condition, zero_matches in found.agg:
                # On the trace id, which never changes: no recheck needed. A trace without
                # observations has every aggregate at 0 (upstream's COALESCE).
                latest = self._latest(
                    self._observations,
                    _AGGREGATED_OBSERVATION_COLUMNS,
                    f"project_id = {_PID}",
                )
                having = (
                    f"id IN (SELECT trace_id FROM ({latest}) GROUP BY trace_id HAVING {condition})"
                )
                if zero_matches:
                    having = f"({having} OR id NOT IN (SELECT trace_id FROM ({latest})))"
                where.append(having)
        return " AND ".join(where + recheck), " AND ".join(recheck)

    def _trace_aggregates_sql(self, trace_ids_sql: str) -> str:
        """Per-trace observation aggregates: ids, latency (span of observations) and cost."""
        latest = self._latest(
            self._observations,
            ("id", "trace_id", "start_time", "end_time", "total_cost"),
            f"project_id = {_PID} AND trace_id IN {trace_ids_sql}",
        )
        # Aliases must not reuse column names: ClickHouse would substitute them into the
        # aggregate arguments.
        return (
            "SELECT trace_id AS agg_trace_id, groupArray(id) AS agg_observation_ids, "
            "date_diff('microsecond', min(start_time), "
            "max(greatest(start_time, ifNull(end_time, start_time)))) / 1e6 AS agg_latency, "
            "toFloat64(ifNull(sum(total_cost), 0)) AS agg_total_cost "
            f"FROM ({latest}) GROUP BY trace_id"
        )

    def _trace_summaries(
        self, client: Client, project_id: str, rows: list[tuple[Any, ...]]
    ) -> list[TraceSummary]:
        """Summaries of trace rows: observation and score aggregates in one flat query, summed
        up here (cheaper than JOINs of aggregating subqueries, which the engine plans slowly)."""
        if not rows:
            return []
        p = _Params(project_id)
        ids = p.texts(r[0] for r in rows)
        sql = (
            "(SELECT 0, id, trace_id, start_time, end_time, total_cost, is_deleted "
            f"FROM {self._observations} PREWHERE project_id = {_PID} AND trace_id IN {ids} "
            "ORDER BY event_ts DESC LIMIT 1 BY id) UNION ALL "
            f"(SELECT 1, id, trace_id, NULL, NULL, NULL, "
            # Upstream lists the ids of aggregatable scores only (no TEXT, no CORRECTION).
            "is_deleted OR data_type NOT IN ('NUMERIC', 'BOOLEAN', 'CATEGORICAL') "
            f"FROM {self._scores} PREWHERE project_id = {_PID} AND trace_id IN {ids} "
            "ORDER BY event_ts DESC LIMIT 1 BY id)"
        )
        observations: dict[str, list[tuple[Any, ...]]] = {}
        scores: dict[str, list[str]] = {}
        for kind, id_, trace_id, start, end, cost, deleted in self._rows(
            client, sql, p, _POINT_SETTINGS
        ):
            if deleted:
                continue
            if kind == 0:
                observations.setdefault(trace_id, []).append((start, id_, end, cost))
            else:
                scores.setdefault(trace_id, []).append(id_)
        summaries = []
        for r in rows:
            trace_observations = observations.get(r[0])
            latency = cost = None
            observation_ids: list[str] = []
            if trace_observations:
                trace_observations.sort()
                observation_ids = [o[1] for o in trace_observations]
                first = trace_observations[0][0]
                last = max(
                    o[0] if o[2] is None or o[2] < o[0] else o[2] for o in trace_observations
                )
                latency = (last - first) / _SECOND
                cost = float(sum(o[3] for o in trace_observations if o[3] is not None))
            summaries.append(
                TraceSummary(
                    trace=_trace_from_row(r),
                    observation_ids=observation_ids,
                    score_ids=sorted(scores.get(r[0], ())),
                    latency_seconds=latency,
                    total_cost=cost,
                )
            )
        return summaries

    async def list_traces(self, project_id: str, query: TraceQuery) -> Page[TraceSummary]:
        offset = _offset(query.page, query.limit)
        order_key = _TRACE_ORDER.get(query.order_by) or _TRACE_ORDER.get(
            query.order_by.replace("_", "").lower()
        )
        if order_key is None:
            raise InvalidInput(f"cannot order traces by {query.order_by!r}")
        direction = "DESC" if query.order_desc else "ASC"
        p = _Params(project_id)
        where, recheck = self._traces_where(query, p)
        count_sql = f"SELECT count() FROM {self._traces} FINAL WHERE {where}"

        def final_page(client: Client) -> tuple[list[tuple[Any, ...]], int]:
            # Phase 1 picks the page's ids (and the total) with FINAL, reading only the filter
            # and sort columns; phase 2 reads full rows for those ids alone.
            limit = p.add(query.limit, "UInt64")
            skip = p.add(offset, "UInt64")
            if order_key in ("_latency", "_total_cost"):
                # Ordering by an aggregate needs the aggregates of the whole filtered set.
                filtered_ids = f"(SELECT id FROM {self._traces} FINAL WHERE {where})"
                page_sql = (
                    f"SELECT t.id, ({count_sql}) FROM (SELECT id, timestamp FROM {self._traces} "
                    f"FINAL WHERE {where}) AS t "
                    f"LEFT JOIN ({self._trace_aggregates_sql(filtered_ids)}) AS a "
                    "ON a.agg_trace_id = t.id "
                    f"ORDER BY a.agg{order_key} {direction}, t.timestamp {direction}, "
                    f"t.id {direction} LIMIT {limit} OFFSET {skip}"
                )
            else:
                page_sql = (
                    f"SELECT id, ({count_sql}) FROM {self._traces} FINAL WHERE {where} "
                    f"ORDER BY {order_key} {direction}, id {direction} "
                    f"LIMIT {limit} OFFSET {skip}"
                )
            page = self._rows(client, page_sql, p, _JOIN_SETTINGS)
            if not page:
                return [], int(self._rows(client, count_sql, p)[0][0])
            ids = [r[0] for r in page]
            found = {
                r[0]: r
                for r in self._newest(
                    client,
                    self._traces,
                    TRACE_COLUMNS,
                    f"project_id = {_PID} AND id IN {p.texts(ids)}",
                    p,
                )
            }
            return [found[i] for i in ids if i in found], int(page[0][1])

        def run(client: Client) -> tuple[list[TraceSummary], int]:
            result = None
            if order_key == "timestamp":
                result = self._candidate_page(
                    client,
                    self._trace_list,
                    p,
                    where,
                    recheck,
                    query.order_desc,
                    offset,
                    query.limit,
                    count_sql,
                )
            rows, total = result if result is not None else final_page(client)
            return self._trace_summaries(client, project_id, rows), total

        items, total = await self._run(run)
        return Page(items=items, total=total)

    async def list_observations(
        self, project_id: str, query: ObservationQuery, *, with_total: bool = True
    ) -> Page[Observation]:
        p = _Params(project_id)
        where = [f"project_id = {_PID}"]
        recheck = []
        if query.trace_id is not None:
            where.append(f"trace_id = {p.text(query.trace_id)}")
        for column, value in (
            ("name", query.name),
            ("type", None if query.type is None else str(query.type)),
            ("level", None if query.level is None else str(query.level)),
            ("parent_observation_id", query.parent_observation_id),
            ("version", query.version),
        ):
            if value is not None:
                recheck.append(f"{column} = {p.text(value)}")
        if query.is_root is True:
            recheck.append(_ROOT_SQL)
        elif query.is_root is False:
            recheck.append(f"NOT {_ROOT_SQL}")
        if query.environments:
            recheck.append(f"environment IN {p.texts(query.environments)}")
        if query.from_start_time is not None:
            where.append(f"start_time >= {p.dt(query.from_start_time)}")
        if query.to_start_time is not None:
            where.append(f"start_time < {p.dt(query.to_start_time)}")
        trace_filters = []
        if query.user_id is not None:
            trace_filters.append(f"user_id = {p.text(query.user_id)}")
        if query.session_id is not None:
            trace_filters.append(f"session_id = {p.text(query.session_id)}")
        if query.filters:
            found = _filter_sql(query.filters, _OBSERVATION_FILTER_COLUMNS, p)
            where.extend(found.stable)
            recheck.extend(found.recheck)
            trace_filters.extend(found.trace)
        if trace_filters:
            # On the observation's trace_id, which never changes: no recheck needed.
            where.append(
                f"trace_id IN (SELECT id FROM {self._traces} FINAL "
                f"WHERE project_id = {_PID} AND {' AND '.join(trace_filters)})"
            )
        filters = " AND ".join(where + recheck)
        page_where = filters
        offset = _offset(query.page, query.limit)
        if query.after is not None:
            ts, trace_id, obs_id = query.after
            bound = p.dt(ts)
            # The plain bound lets the engine prune by the sort key; the tuple is exact.
            page_where += (
                f" AND start_time <= {bound} AND (start_time, trace_id, id) < "
                f"({bound}, {p.text(trace_id)}, {p.text(obs_id)})"
            )
            offset = 0
        return await self._list_page(
            self._observation_list,
            _observation_from_row,
            p,
            filters,
            page_where,
            " AND ".join(recheck),
            query.limit,
            offset,
            with_total,
        )

    async def list_scores(
        self, project_id: str, query: ScoreQuery, *, with_total: bool = True
    ) -> Page[Score]:
        p = _Params(project_id)
        where = [f"project_id = {_PID}"]
        recheck = []
        trace_ids = _values(query.trace_id)
        if len(trace_ids) == 1:
            where.append(f"trace_id = {p.text(trace_ids[0])}")
        elif trace_ids:
            where.append(f"trace_id IN {p.texts(trace_ids)}")
        for column, value in (
            ("name", query.name),
            ("observation_id", query.observation_id),
            ("session_id", query.session_id),
            ("dataset_run_id", query.dataset_run_id),
            ("config_id", query.config_id),
            ("queue_id", query.queue_id),
            ("author_user_id", query.author_user_id),
            ("source", query.source),
            ("data_type", query.data_type),
        ):
            values = _values(value)
            if len(values) == 1:
                recheck.append(f"{column} = {p.text(str(values[0]))}")
            elif values:
                recheck.append(f"{column} IN {p.texts(str(v) for v in values)}")
        if query.score_ids:
            where.append(f"id IN {p.texts(query.score_ids)}")
        if query.environments:
            recheck.append(f"environment IN {p.texts(query.environments)}")
        if query.from_timestamp is not None:
            where.append(f"timestamp >= {p.dt(query.from_timestamp)}")
        if query.to_timestamp is not None:
            where.append(f"timestamp < {p.dt(query.to_timestamp)}")
        if query.value is not None:
            op = query.value_operator
            if op not in _VALUE_OPS:
                raise InvalidInput(f"invalid value operator {op!r}")
            recheck.append(f"value {op} {p.add(float(query.value), 'Float64')}")
        if query.values:
            recheck.append(f"value IN {p.add([float(v) for v in query.values], 'Array(Float64)')}")
        if query.string_values:
            recheck.append(f"string_value IN {p.texts(query.string_values)}")
        if query.value_min is not None:
            recheck.append(f"value >= {p.add(float(query.value_min), 'Float64')}")
        if query.value_max is not None:
            recheck.append(f"value <= {p.add(float(query.value_max), 'Float64')}")
        trace_filters = []
        if query.user_id is not None:
            trace_filters.append(f"user_id = {p.text(query.user_id)}")
        if query.trace_tags:
            trace_filters.append(f"hasAll(tags, {p.texts(query.trace_tags)})")
        if trace_filters:
            where.append(
                f"trace_id IN (SELECT id FROM {self._traces} FINAL "
                f"WHERE project_id = {_PID} AND {' AND '.join(trace_filters)})"
            )
        if query.filters:
            found = _filter_sql(query.filters, _SCORE_FILTER_COLUMNS, p)
            where.extend(found.stable)
            recheck.extend(found.recheck)
        filters = " AND ".join(where + recheck)
        page_where = filters
        offset = _offset(query.page, query.limit)
        if query.after is not None:
            ts, score_id = query.after
            bound = p.dt(ts)
            page_where += (
                f" AND timestamp <= {bound} AND (timestamp, id) < ({bound}, {p.text(score_id)})"
            )
            offset = 0
        return await self._list_page(
            self._score_list,
            _score_from_row,
            p,
            filters,
            page_where,
            " AND ".join(recheck),
            query.limit,
            offset,
            with_total,
        )

    async def _list_page(
        self,
        spec: _ListSpec,
        from_row: Callable[[Sequence[Any]], R],
        p: _Params,
        filters: str,
        page_where: str,
        recheck: str,
        limit: int,
        offset: int,
        with_total: bool,
    ) -> Page[R]:
        if limit < 0:
            raise InvalidInput("limit must be >= 0")
        table, columns = spec.table, spec.columns
        count_sql = f"SELECT count() FROM {table} FINAL WHERE {filters}"
        order = ", ".join(f"{c} DESC" for c in spec.order)

        def final_page(client: Client) -> tuple[list[tuple[Any, ...]], int]:
            lim = p.add(limit, "UInt64")
            off = p.add(offset, "UInt64")
            # Pick the page's ids with FINAL reading only filter and sort columns, then read
            # full rows (inputs of a megabyte) for those ids alone.
            page_ids = (
                f"SELECT id FROM {table} FINAL WHERE {page_where} "
                f"ORDER BY {order} LIMIT {lim} OFFSET {off}"
            )
            latest = self._latest(table, columns, f"project_id = {_PID} AND id IN ({page_ids})")
            total_sql = f", ({count_sql})" if with_total else ""
            rows = self._rows(client, f"SELECT *{total_sql} FROM ({latest}) ORDER BY {order}", p)
            if not with_total:
                return rows, -1
            if rows:
                return rows, int(rows[0][-1])
            return rows, int(self._rows(client, count_sql, p)[0][0])

        def run(client: Client) -> tuple[list[tuple[Any, ...]], int]:
            result = self._candidate_page(
                client,
                spec,
                p,
                page_where,
                recheck,
                True,
                offset,
                limit,
                count_sql if with_total else None,
            )
            return result if result is not None else final_page(client)

        rows, total = await self._run(run)
        items = [from_row(r) for r in rows]
        if not with_total:
            total = len(items)
        return Page(items=items, total=total)

    # -- sessions --------------------------------------------------------------------------

    async def list_sessions(
        self,
        project_id: str,
        page: int,
        limit: int,
        from_timestamp: datetime | None,
        to_timestamp: datetime | None,
        environments: list[str],
    ) -> Page[SessionSummary]:
        offset = _offset(page, limit)
        p = _Params(project_id)
        having = []
        if from_timestamp is not None:
            having.append(f"s_created_at >= {p.dt(from_timestamp)}")
        if to_timestamp is not None:
            having.append(f"s_created_at < {p.dt(to_timestamp)}")
        if environments:
            having.append(f"s_environment IN {p.texts(environments)}")
        having_sql = f"HAVING {' AND '.join(having)}" if having else ""
        grouped = (
            "SELECT session_id AS s_id, min(timestamp) AS s_created_at, "
            "argMin(environment, timestamp) AS s_environment, "
            "arrayMap(x -> x.2, arraySort(groupArray((timestamp, id)))) AS s_trace_ids "
            f"FROM {self._traces} FINAL "
            f"WHERE project_id = {_PID} AND session_id IS NOT NULL AND session_id != '' "
            f"GROUP BY session_id {having_sql}"
        )
        sql = (
            "SELECT s_id, s_created_at, s_environment, s_trace_ids, count() OVER () "
            f"FROM ({grouped}) ORDER BY s_created_at DESC, s_id DESC "
            f"LIMIT {p.add(limit, 'UInt64')} OFFSET {p.add(offset, 'UInt64')}"
        )

        def run(client: Client) -> tuple[list[tuple[Any, ...]], int]:
            rows = self._rows(client, sql, p)
            if rows:
                return rows, int(rows[0][-1])
            return rows, int(self._rows(client, f"SELECT count() FROM ({grouped})", p)[0][0])

        rows, total = await self._run(run)
        items = [
            SessionSummary(
                id=r[0],
                project_id=project_id,
                created_at=r[1],
                environment=r[2],
                trace_ids=list(r[3]),
            )
            for r in rows
        ]
        return Page(items=items, total=total)

    async def get_session(self, project_id: str, session_id: str) -> list[Trace]:
        p = _Params(project_id)
        sql = (
            f"SELECT {_select(TRACE_COLUMNS)} FROM {self._traces} FINAL "
            f"WHERE project_id = {_PID} AND session_id = {p.text(session_id)} "
            "ORDER BY timestamp, id"
        )
        rows = await self._run(self._rows, sql, p)
        return [_trace_from_row(r) for r in rows]

    # -- deletes ---------------------------------------------------------------------------

    async def delete_traces(self, project_id: str, trace_ids: list[str]) -> None:
        if not trace_ids:
            return
        await self._run(self._delete_traces, project_id, list(trace_ids))

    def _delete_traces(self, client: Client, project_id: str, trace_ids: list[str]) -> None:
        # Children first: a crash half-way leaves a visible trace to delete again.
        self._tombstone(client, self._scores, _SCORE_KEY, project_id, "trace_id", trace_ids)
        self._tombstone(
            client, self._observations, _OBSERVATION_KEY, project_id, "trace_id", trace_ids
        )
        self._tombstone(client, self._traces, _TRACE_KEY, project_id, "id", trace_ids)

    async def delete_scores(self, project_id: str, score_ids: list[str]) -> None:
        if not score_ids:
            return
        await self._run(
            self._tombstone, self._scores, _SCORE_KEY, project_id, "id", list(score_ids)
        )

    def _tombstone(
        self,
        client: Client,
        table: str,
        key: tuple[str, tuple[str, ...]],
        project_id: str,
        match_column: str,
        ids: list[str],
    ) -> None:
        """Insert `is_deleted = 1` copies of each row's sort key; other columns take defaults.

        One tombstone per distinct sort key of an id (not just its newest version), so even a
        row whose timestamp changed between upserts is hidden everywhere.
        """
        time_column, columns = key
        p = _Params(project_id)
        event_ts = p.dt(_next_event_ts())
        cols = ", ".join(columns)
        sql = (
            f"INSERT INTO {table} ({cols}, event_ts, is_deleted) "
            f"SELECT {cols}, {event_ts}, 1 FROM {table} "
            f"WHERE project_id = {_PID} AND {match_column} IN {p.texts(ids)} "
            f"ORDER BY event_ts DESC LIMIT 1 BY id, toDate({time_column})"
        )
        client.command(sql, parameters=p.values)

    # -- analytics -------------------------------------------------------------------------

    async def run_metrics_query(
        self,
        project_id: str,
        view: Literal["traces", "observations", "scores-numeric", "scores-categorical"],
        query: dict,
    ) -> list[dict]:
        built = _MetricsQuery(self._db, project_id, view, query).build()
        rows, names = await self._run(self._query_with_names, built.sql, built.params)
        return [built.shape(dict(zip(names, r, strict=True))) for r in rows]

    def _query_with_names(
        self, client: Client, sql: str, params: _Params
    ) -> tuple[list[tuple[Any, ...]], tuple[str, ...]]:
        result = client.query(
            sql, parameters=params.values, settings=self._engine.settings(client, _JOIN_SETTINGS)
        )
        return result.result_rows, tuple(result.column_names)


# What a tombstone copies: the sort key (the time column gives its day) plus what readers
# match deleted rows by (an observation's or score's trace_id).
_TRACE_KEY = ("timestamp", ("id", "project_id", "timestamp", "environment", "created_at"))
_OBSERVATION_KEY = (
    "start_time",
    ("id", "trace_id", "project_id", "type", "start_time", "environment", "created_at"),
)
_SCORE_KEY = (
    "timestamp",
    (
        "id",
        "project_id",
        "timestamp",
        "name",
        "data_type",
        "source",
        "trace_id",
        "environment",
        "created_at",
    ),
)


# --------------------------------------------------------------------------------------------
# Metrics query (Langfuse's `/api/public/metrics` v1 query language, a subset)
# --------------------------------------------------------------------------------------------
#
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


def _parse_time(value: Any, what: str) -> datetime:
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, str):
        try:
            return _utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            pass
    raise InvalidInput(f"{what} must be an ISO 8601 datetime, got {value!r}")


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
    params: _Params
    integer_keys: set[str] = field(default_factory=set)

    def shape(self, row: dict[str, Any]) -> dict[str, Any]:
        out = {k: _clean(v) for k, v in row.items()}
        for key in self.integer_keys:
            value = out.get(key)
            if isinstance(value, float):
                out[key] = int(value)
        return out


class _MetricsQuery:
    def __init__(self, database: str, project_id: str, view: str, query: dict[str, Any]) -> None:
        if view not in _VIEWS:
            raise InvalidInput(f"invalid view {view!r}; must be one of {sorted(_VIEWS)}")
        if not isinstance(query, dict):
            raise InvalidInput("metrics query must be a JSON object")
        self.db = database
        self.view = _VIEWS[view]
        self.q = query
        self.p = _Params(project_id)
        self.joins: set[str] = set()

    # -- pieces --

    def _dim(self, name: Any) -> _Dim:
        if not isinstance(name, str) or name not in self.view.dims:
            raise InvalidInput(
                f"invalid dimension {name!r}; must be one of {sorted(self.view.dims)}"
            )
        dim = self.view.dims[name]
        self.joins.update(dim.joins)
        return dim

    def _time_range(self) -> tuple[datetime, datetime]:
        raw_from, raw_to = self.q.get("fromTimestamp"), self.q.get("toTimestamp")
        if raw_from is None or raw_to is None:
            raise InvalidInput("fromTimestamp and toTimestamp are required")
        start, end = _parse_time(raw_from, "fromTimestamp"), _parse_time(raw_to, "toTimestamp")
        if end < start:
            raise InvalidInput("toTimestamp must not be before fromTimestamp")
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
            when = _parse_time(value, f"filter value for {column}")
            return f"{view.alias}.{view.time_column} {op} {p.dt(when)}"
        dim = self._dim(column)
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
                f"SELECT {column} FROM {db}.{view.table} WHERE project_id = {_PID} "
                f"AND {view.time_column} >= {start} AND {view.time_column} <= {end}"
            )

        parts = []
        if "tr" in self.joins and alias != "tr":
            parts.append(
                "LEFT JOIN (SELECT id, name, user_id, session_id, release, version, tags "
                f"FROM {db}.traces FINAL WHERE project_id = {_PID} "
                f"AND id IN ({base_in_window('trace_id')})) AS tr ON tr.id = {alias}.trace_id"
            )
        if "ob" in self.joins:
            parts.append(
                "LEFT JOIN (SELECT id, name, provided_model_name, prompt_name, prompt_version "
                f"FROM {db}.observations FINAL WHERE project_id = {_PID} "
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
                f"FROM {db}.observations FINAL WHERE project_id = {_PID} "
                f"AND trace_id IN ({base_in_window('id')}) GROUP BY trace_id) AS oa "
                "ON oa.oa_trace_id = tr.id"
            )
        if "sa" in self.joins:
            key = "trace_id" if alias == "tr" else "observation_id"
            parts.append(
                f"LEFT JOIN (SELECT {key} AS sa_key, count() AS scores_count "
                f"FROM {db}.scores FINAL WHERE project_id = {_PID} "
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
                    f"invalid measure {measure_name!r}; must be one of {sorted(view.measures)}"
                )
            if aggregation not in _AGGREGATIONS:
                raise InvalidInput(
                    f"invalid aggregation {aggregation!r}; must be one of {sorted(_AGGREGATIONS)}"
                )
            measure = view.measures[measure_name]
            if not measure.numeric and aggregation not in ("count", "uniq"):
                raise InvalidInput(f"measure {measure_name!r} supports only count and uniq")
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
            f"{view.alias}.project_id = {_PID}",
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
                raise InvalidInput(f"invalid orderBy field {fname!r}")
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
        return _BuiltQuery(sql=sql, params=p, integer_keys=integer_keys)
