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
  the process, and per row within a batch) as the ReplacingMergeTree version.
- Reads see only the newest version of a row: filters on columns that can change go through
  `FINAL`; lookups by columns that never change for an id (id, an observation's or score's
  trace_id) take the newest row per id (`ORDER BY event_ts DESC LIMIT 1 BY id`), which is
  cheaper. Lists pick the page's ids first, then read the full rows (big inputs) for those ids.
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
import json
import math
import os
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
from clickhouse_connect.driver.client import Client

from fathom.adapters.storage.clickhouse import schema
from fathom.core.domain.errors import ConfigurationError, InvalidInput
from fathom.core.domain.scores import Score, ScoreDataType, ScoreSource
from fathom.core.domain.tracing import Level, Observation, ObservationType, Trace
from fathom.core.ports.telemetry import (
    ObservationQuery,
    Page,
    ScoreQuery,
    SessionSummary,
    TraceQuery,
    TraceSummary,
)

R = TypeVar("R")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
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


def _micros_opt(value: datetime | None) -> int | None:
    return None if value is None else _micros(value)


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        # orjson refuses e.g. integers beyond 64 bits; the stdlib encoder does not.
        return json.dumps(value, default=str, ensure_ascii=False)


def _dumps_opt(value: Any) -> str | None:
    return None if value is None else _dumps(value)


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        # Rows written by other tools may hold plain text.
        return text


def _encode_metadata(metadata: dict[str, Any] | None) -> dict[str, str]:
    if not metadata:
        return {}
    return {str(k): _dumps(v) for k, v in metadata.items()}


def _decode_metadata(raw: dict[str, str] | None) -> dict[str, Any]:
    if not raw:
        return {}
    return {k: _loads(v) for k, v in raw.items()}


def _usage(details: dict[str, Any] | None) -> dict[str, int]:
    if not details:
        return {}
    # Fast path for the usual case (ingestion already produced clean counts).
    if all(type(v) is int and 0 <= v <= _MAX_UINT64 for v in details.values()):
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
    # Fast path for the usual case; NaN fails both comparisons and takes the slow path.
    if all(type(v) is float and -_MAX_DECIMAL <= v <= _MAX_DECIMAL for v in details.values()):
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


def _trace_row(t: Trace, now: int, event_ts: int) -> tuple[Any, ...]:
    return (
        t.id,
        t.project_id,
        _micros(t.timestamp),
        t.name,
        t.user_id,
        t.session_id,
        t.release,
        t.version,
        _dumps_opt(t.input),
        _dumps_opt(t.output),
        _encode_metadata(t.metadata),
        list(t.tags or ()),
        bool(t.public),
        bool(t.bookmarked),
        t.environment or "default",
        now if t.created_at is None else _micros(t.created_at),
        now if t.updated_at is None else _micros(t.updated_at),
        event_ts,
        0,
    )


def _observation_row(o: Observation, now: int, event_ts: int) -> tuple[Any, ...]:
    return (
        o.id,
        o.trace_id,
        o.project_id,
        str(o.type),
        o.parent_observation_id,
        _micros(o.start_time),
        _micros_opt(o.end_time),
        _micros_opt(o.completion_start_time),
        o.name,
        _encode_metadata(o.metadata),
        str(o.level or Level.DEFAULT),
        o.status_message,
        o.version,
        _dumps_opt(o.input),
        _dumps_opt(o.output),
        o.environment or "default",
        o.model,
        o.internal_model_id,
        _dumps_opt(o.model_parameters),
        _usage(o.provided_usage_details),
        _usage(o.usage_details),
        _costs(o.provided_cost_details),
        _costs(o.cost_details),
        _cost_value(o.total_cost),
        o.usage_pricing_tier_name,
        o.prompt_id,
        o.prompt_name,
        o.prompt_version,
        now if o.created_at is None else _micros(o.created_at),
        now if o.updated_at is None else _micros(o.updated_at),
        event_ts,
        0,
    )


def _score_row(s: Score, now: int, event_ts: int) -> tuple[Any, ...]:
    return (
        s.id,
        s.project_id,
        _micros(s.timestamp),
        s.name,
        str(s.data_type),
        None if s.value is None else float(s.value),
        s.string_value,
        str(s.source),
        s.trace_id,
        s.observation_id,
        s.session_id,
        s.dataset_run_id,
        s.comment,
        _encode_metadata(s.metadata),
        s.config_id,
        s.queue_id,
        s.author_user_id,
        s.execution_trace_id,
        s.environment or "default",
        now if s.created_at is None else _micros(s.created_at),
        now if s.updated_at is None else _micros(s.updated_at),
        event_ts,
        0,
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
        self._traces = f"{self._db}.traces"
        self._observations = f"{self._db}.observations"
        self._scores = f"{self._db}.scores"

    # -- plumbing --------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., R], *args: Any) -> R:
        if self._closed:
            raise RuntimeError("ClickHouseTelemetryStore is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._engine.executor, self._call, fn, args)

    def _call(self, fn: Callable[..., R], args: tuple[Any, ...]) -> R:
        return fn(self._engine.client(), *args)

    @staticmethod
    def _rows(
        client: Client, sql: str, params: _Params, settings: dict[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        return client.query(
            sql, parameters=params.values, settings=settings or _READ_SETTINGS
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
            await self._run(self._insert, self._traces, TRACE_COLUMNS, _trace_row, traces)

    async def upsert_observations(self, observations: list[Observation]) -> None:
        if observations:
            await self._run(
                self._insert,
                self._observations,
                OBSERVATION_COLUMNS,
                _observation_row,
                observations,
            )

    async def upsert_scores(self, scores: list[Score]) -> None:
        if scores:
            await self._run(self._insert, self._scores, SCORE_COLUMNS, _score_row, scores)

    def _insert(
        self,
        client: Client,
        table: str,
        columns: tuple[str, ...],
        to_row: Callable[[Any, int, int], tuple[Any, ...]],
        items: list[Any],
    ) -> None:
        # The version is taken on the worker thread, so inserts are versioned in the
        # order they reach the engine, not the order their coroutines started.
        now = _micros(_next_event_ts(len(items)))
        rows = [to_row(item, now, now + i) for i, item in enumerate(items)]
        # Column-oriented insert skips clickhouse-connect's own transposition.
        data = [list(col) for col in zip(*rows, strict=True)]
        names = columns + _VERSION_COLUMNS
        types = self._column_types.get(table)
        if types is None:
            # Described once per table: otherwise every insert costs a DESCRIBE round trip.
            context = client.create_insert_context(table, names, column_oriented=True)
            types = self._column_types[table] = context.column_types
        client.insert(table, data, column_names=names, column_types=types, column_oriented=True)

    # -- point reads -----------------------------------------------------------------------

    @staticmethod
    def _latest(table: str, columns: Sequence[str], where: str) -> str:
        """The newest, undeleted version of each row matching `where`, without `FINAL`.

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

    async def _get(
        self,
        table: str,
        columns: Sequence[str],
        from_row: Callable[[Sequence[Any]], R],
        project_id: str,
        column: str,
        values: list[str],
        order: str,
    ) -> list[R]:
        if not values:
            return []
        p = _Params(project_id)
        where = f"project_id = {_PID} AND {column} IN {p.texts(values)}"
        sql = f"{self._latest(table, columns, where)} ORDER BY {order}"
        rows = await self._run(self._rows, sql, p)
        return [from_row(r) for r in rows]

    async def get_traces(self, project_id: str, trace_ids: list[str]) -> list[Trace]:
        return await self._get(
            self._traces, TRACE_COLUMNS, _trace_from_row, project_id, "id", trace_ids, "id"
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
            "id",
        )

    async def get_scores(self, project_id: str, score_ids: list[str]) -> list[Score]:
        return await self._get(
            self._scores, SCORE_COLUMNS, _score_from_row, project_id, "id", score_ids, "id"
        )

    async def observations_of_trace(self, project_id: str, trace_id: str) -> list[Observation]:
        return await self._get(
            self._observations,
            OBSERVATION_COLUMNS,
            _observation_from_row,
            project_id,
            "trace_id",
            [trace_id],
            "start_time, id",
        )

    async def scores_of_traces(self, project_id: str, trace_ids: list[str]) -> list[Score]:
        return await self._get(
            self._scores,
            SCORE_COLUMNS,
            _score_from_row,
            project_id,
            "trace_id",
            trace_ids,
            "timestamp, id",
        )

    # -- lists -----------------------------------------------------------------------------

    def _traces_where(self, q: TraceQuery, p: _Params) -> str:
        where = [f"project_id = {_PID}"]
        for column, value in (
            ("user_id", q.user_id),
            ("name", q.name),
            ("session_id", q.session_id),
            ("version", q.version),
            ("release", q.release),
        ):
            if value is not None:
                where.append(f"{column} = {p.text(value)}")
        if q.tags:
            where.append(f"hasAll(tags, {p.texts(q.tags)})")
        if q.environments:
            where.append(f"environment IN {p.texts(q.environments)}")
        if q.from_timestamp is not None:
            where.append(f"timestamp >= {p.dt(q.from_timestamp)}")
        if q.to_timestamp is not None:
            where.append(f"timestamp < {p.dt(q.to_timestamp)}")
        return " AND ".join(where)

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

    async def list_traces(self, project_id: str, query: TraceQuery) -> Page[TraceSummary]:
        offset = _offset(query.page, query.limit)
        order_key = _TRACE_ORDER.get(query.order_by) or _TRACE_ORDER.get(
            query.order_by.replace("_", "").lower()
        )
        if order_key is None:
            raise InvalidInput(f"cannot order traces by {query.order_by!r}")
        direction = "DESC" if query.order_desc else "ASC"
        p = _Params(project_id)
        where = self._traces_where(query, p)
        count_sql = f"SELECT count() FROM {self._traces} FINAL WHERE {where}"
        limit = p.add(query.limit, "UInt64")
        skip = p.add(offset, "UInt64")
        # Phase 1 picks the page's ids (and the total) reading only the filter and sort
        # columns; phase 2 reads full rows and aggregates for those ids alone.
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

        def run(client: Client) -> tuple[int, list[tuple[Any, ...]], list[str]]:
            page = self._rows(client, page_sql, p, _JOIN_SETTINGS)
            if not page:
                return int(self._rows(client, count_sql, p)[0][0]), [], []
            ids = [r[0] for r in page]
            q = _Params(project_id)
            ids_param = q.texts(ids)
            in_page = f"project_id = {_PID} AND id IN {ids_param}"
            scores = self._latest(
                self._scores, ("id", "trace_id"), f"project_id = {_PID} AND trace_id IN {ids_param}"
            )
            sql = (
                f"SELECT {_select(TRACE_COLUMNS, 't')}, a.agg_observation_ids, a.agg_latency, "
                "a.agg_total_cost, s.agg_score_ids "
                f"FROM ({self._latest(self._traces, TRACE_COLUMNS, in_page)}) AS t "
                f"LEFT JOIN ({self._trace_aggregates_sql(ids_param)}) AS a "
                "ON a.agg_trace_id = t.id "
                "LEFT JOIN (SELECT trace_id AS agg_trace_id, groupArray(id) AS agg_score_ids "
                f"FROM ({scores}) GROUP BY trace_id) AS s ON s.agg_trace_id = t.id"
            )
            return int(page[0][1]), self._rows(client, sql, q, _JOIN_SETTINGS), ids

        total, rows, ids = await self._run(run)
        by_id: dict[str, TraceSummary] = {}
        n = len(TRACE_COLUMNS)
        for r in rows:
            obs_ids = r[n]
            has_observations = bool(obs_ids)
            by_id[r[0]] = TraceSummary(
                trace=_trace_from_row(r),
                observation_ids=list(obs_ids) if obs_ids else [],
                score_ids=list(r[n + 3]) if r[n + 3] else [],
                latency_seconds=float(r[n + 1]) if has_observations else None,
                total_cost=float(r[n + 2]) if has_observations else None,
            )
        return Page(items=[by_id[i] for i in ids if i in by_id], total=total)

    async def list_observations(
        self, project_id: str, query: ObservationQuery, *, with_total: bool = True
    ) -> Page[Observation]:
        p = _Params(project_id)
        where = [f"project_id = {_PID}"]
        for column, value in (
            ("trace_id", query.trace_id),
            ("name", query.name),
            ("type", None if query.type is None else str(query.type)),
            ("level", None if query.level is None else str(query.level)),
            ("parent_observation_id", query.parent_observation_id),
            ("version", query.version),
        ):
            if value is not None:
                where.append(f"{column} = {p.text(value)}")
        if query.is_root is True:
            where.append("(parent_observation_id IS NULL OR parent_observation_id = '')")
        elif query.is_root is False:
            where.append("(parent_observation_id IS NOT NULL AND parent_observation_id != '')")
        if query.environments:
            where.append(f"environment IN {p.texts(query.environments)}")
        if query.from_start_time is not None:
            where.append(f"start_time >= {p.dt(query.from_start_time)}")
        if query.to_start_time is not None:
            where.append(f"start_time < {p.dt(query.to_start_time)}")
        trace_filters = []
        if query.user_id is not None:
            trace_filters.append(f"user_id = {p.text(query.user_id)}")
        if query.session_id is not None:
            trace_filters.append(f"session_id = {p.text(query.session_id)}")
        if trace_filters:
            where.append(
                f"trace_id IN (SELECT id FROM {self._traces} FINAL "
                f"WHERE project_id = {_PID} AND {' AND '.join(trace_filters)})"
            )
        filters = " AND ".join(where)
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
        order = "start_time DESC, trace_id DESC, id DESC"
        return await self._list_page(
            self._observations,
            OBSERVATION_COLUMNS,
            _observation_from_row,
            p,
            filters,
            page_where,
            order,
            query.limit,
            offset,
            with_total,
        )

    async def list_scores(
        self, project_id: str, query: ScoreQuery, *, with_total: bool = True
    ) -> Page[Score]:
        p = _Params(project_id)
        where = [f"project_id = {_PID}"]
        for column, value in (
            ("name", query.name),
            ("trace_id", query.trace_id),
            ("observation_id", query.observation_id),
            ("session_id", query.session_id),
            ("dataset_run_id", query.dataset_run_id),
            ("config_id", query.config_id),
            ("queue_id", query.queue_id),
            ("source", None if query.source is None else str(query.source)),
            ("data_type", None if query.data_type is None else str(query.data_type)),
        ):
            if value is not None:
                where.append(f"{column} = {p.text(value)}")
        if query.score_ids:
            where.append(f"id IN {p.texts(query.score_ids)}")
        if query.environments:
            where.append(f"environment IN {p.texts(query.environments)}")
        if query.from_timestamp is not None:
            where.append(f"timestamp >= {p.dt(query.from_timestamp)}")
        if query.to_timestamp is not None:
            where.append(f"timestamp < {p.dt(query.to_timestamp)}")
        if query.value is not None:
            where.append(f"value = {p.add(float(query.value), 'Float64')}")
        if query.user_id is not None:
            where.append(
                f"trace_id IN (SELECT id FROM {self._traces} FINAL "
                f"WHERE project_id = {_PID} AND user_id = {p.text(query.user_id)})"
            )
        filters = " AND ".join(where)
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
            self._scores,
            SCORE_COLUMNS,
            _score_from_row,
            p,
            filters,
            page_where,
            "timestamp DESC, id DESC",
            query.limit,
            offset,
            with_total,
        )

    async def _list_page(
        self,
        table: str,
        columns: tuple[str, ...],
        from_row: Callable[[Sequence[Any]], R],
        p: _Params,
        filters: str,
        page_where: str,
        order: str,
        limit: int,
        offset: int,
        with_total: bool,
    ) -> Page[R]:
        if limit < 0:
            raise InvalidInput("limit must be >= 0")
        lim = p.add(limit, "UInt64")
        off = p.add(offset, "UInt64")
        count_sql = f"SELECT count() FROM {table} FINAL WHERE {filters}"
        # Pick the page's ids with FINAL reading only filter and sort columns, then read full
        # rows (inputs of a megabyte) for those ids alone.
        page_ids = (
            f"SELECT id FROM {table} FINAL WHERE {page_where} "
            f"ORDER BY {order} LIMIT {lim} OFFSET {off}"
        )
        latest = self._latest(table, columns, f"project_id = {_PID} AND id IN ({page_ids})")
        total_sql = f", ({count_sql})" if with_total else ""
        sql = f"SELECT *{total_sql} FROM ({latest}) ORDER BY {order}"

        def run(client: Client) -> tuple[list[tuple[Any, ...]], int]:
            rows = self._rows(client, sql, p)
            if not with_total:
                return rows, -1
            if rows:
                return rows, int(rows[0][-1])
            count = self._rows(client, count_sql, p)
            return rows, int(count[0][0])

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

    @staticmethod
    def _query_with_names(
        client: Client, sql: str, params: _Params
    ) -> tuple[list[tuple[Any, ...]], tuple[str, ...]]:
        result = client.query(sql, parameters=params.values, settings=_JOIN_SETTINGS)
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
