"""`TelemetryStore` on ClickHouse through clickhouse-connect: embedded chDB or a server.

DSN:
- `chdb:///abs/path` — the embedded chDB engine with its data in that directory;
  `chdb://` (or `chdb://memory`) — an in-memory engine.
- `http://user:pass@host:8123` (or `https://…`) — a ClickHouse server or cluster.

Both go through clickhouse-connect's *sync* client (chDB has no async client) and every call
runs on one worker thread, so the event loop never blocks and calls never interleave on a
handle. chDB allows one engine per process: stores on the same chDB path share one client and
worker thread (a reference-counted registry in `engine.py`); opening a second, different chDB
path while one is open raises `ConfigurationError`.

Storage rules (see `schema.py`):
- Writes are batched inserts, one per call, with `event_ts` = now (strictly increasing within
  the process) as the ReplacingMergeTree version. A batch is one JSONCompactColumns document
  built by orjson (on chDB and over HTTP alike), its rows sharing one version after a later
  duplicate of an id replaced the earlier one (see `inserts.py`). For values that document
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

Modules: this one holds the store and what only it uses (point reads, tombstones); the rest
of the adapter, each importing only those above it:
- `engine.py`: the client and its worker thread, the chDB engine registry;
- `rows.py`: value conversion, the tables' columns, row decoding and the Native insert data;
- `inserts.py`: the JSONCompactColumns insert payloads;
- `sql.py`: bound parameters, query settings, list specs and orders;
- `filters.py`: the `filter` parameter of the lists as SQL;
- `metrics.py`: the metrics query builder;
- `schema.py`: the tables and their migrations.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

import clickhouse_connect
import orjson
from clickhouse_connect.datatypes.base import ClickHouseType
from clickhouse_connect.datatypes.registry import get_from_name
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import OperationalError

from fathom.adapters.storage.clickhouse import schema
from fathom.adapters.storage.clickhouse.engine import Engine, acquire_chdb, release_chdb
from fathom.adapters.storage.clickhouse.filters import (
    AGGREGATED_OBSERVATION_COLUMNS,
    OBSERVATION_FILTER_COLUMNS,
    ROOT_SQL,
    SCORE_FILTER_COLUMNS,
    TRACE_FILTER_COLUMNS,
    filter_sql,
)
from fathom.adapters.storage.clickhouse.inserts import (
    INSERT_FORMAT,
    INSERT_SETTINGS,
    NeedsNative,
    latest_per_id,
    observation_payload,
    score_payload,
    trace_payload,
)
from fathom.adapters.storage.clickhouse.metrics import MetricsQuery
from fathom.adapters.storage.clickhouse.rows import (
    OBSERVATION_COLUMNS,
    SCORE_COLUMNS,
    TRACE_COLUMNS,
    VERSION_COLUMNS,
    micros,
    next_event_ts,
    observation_columns,
    observation_from_row,
    score_columns,
    score_from_row,
    select,
    trace_columns,
    trace_from_row,
    wire_type_name,
)
from fathom.adapters.storage.clickhouse.sql import (
    FULL_ROW_CANDIDATES,
    IN_ORDER_SETTINGS,
    JOIN_SETTINGS,
    MAX_CANDIDATES,
    MAX_LISTED_IDS,
    OVERFETCH_MIN,
    PID,
    POINT_SETTINGS,
    READ_SETTINGS,
    TRACE_ORDER,
    ListSpec,
    Params,
    by_id,
    by_start_time,
    by_timestamp,
    page_offset,
)
from fathom.core.domain.errors import ConfigurationError, InvalidInput, Unavailable
from fathom.core.domain.scores import Score
from fathom.core.domain.tracing import Observation, Trace
from fathom.core.ports.telemetry import (
    ObservationQuery,
    Page,
    ScoreQuery,
    SessionSummary,
    TraceQuery,
    TraceSummary,
)

R = TypeVar("R")

_SECOND = timedelta(seconds=1)
_VALUE_OPS = frozenset({"=", "!=", "<", ">", "<=", ">="})


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

    def where(self, p: Params, pid: str) -> str:
        if len(self.values) == 1:
            return f"project_id = {pid} AND {self.column} = {p.text(self.values[0])}"
        return f"project_id = {pid} AND {self.column} IN {p.texts(self.values)}"


# JSON rows as the Native ones would decode: numbers unquoted, NaN/inf as strings, UTF-8 kept
# valid for the Python decoder.
_JSON_POINT_SETTINGS: dict[str, Any] = {
    **POINT_SETTINGS,
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
    names = "|".join((*columns, *VERSION_COLUMNS))
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
            self._engine = acquire_chdb(dsn)
        elif dsn.startswith(("http://", "https://")):
            self._shared = False

            def factory() -> Client:
                return clickhouse_connect.get_client(dsn=dsn, tz_mode="aware")

            self._engine = Engine(dsn.rsplit("@", 1)[-1], factory)
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
        self._trace_list = ListSpec(self._traces, TRACE_COLUMNS, "timestamp", ("timestamp", "id"))
        self._observation_list = ListSpec(
            self._observations,
            OBSERVATION_COLUMNS,
            "start_time",
            ("start_time", "trace_id", "id"),
        )
        self._score_list = ListSpec(self._scores, SCORE_COLUMNS, "timestamp", ("timestamp", "id"))

    # -- plumbing --------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., R], *args: Any) -> R:
        if self._closed:
            raise RuntimeError("ClickHouseTelemetryStore is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._engine.executor, self._call, fn, args)

    def _call(self, fn: Callable[..., R], args: tuple[Any, ...]) -> R:
        try:
            return fn(self._engine.client(), *args)
        except OperationalError as exc:
            # The server cannot be reached or the connection broke (query errors are
            # DatabaseError): a 503 for requests, and for the worker a reason to retry the
            # whole batch later rather than look for a job at fault.
            raise Unavailable(f"ClickHouse at {self._engine.key} is unavailable: {exc}") from exc

    def _rows(
        self,
        client: Client,
        sql: str,
        params: Params,
        settings: dict[str, Any] = READ_SETTINGS,
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
        if self._shared and not release_chdb(engine):
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
                self._insert, self._traces, trace_payload, TRACE_COLUMNS, trace_columns, traces
            )

    async def upsert_observations(self, observations: list[Observation]) -> None:
        if observations:
            await self._run(
                self._insert,
                self._observations,
                observation_payload,
                OBSERVATION_COLUMNS,
                observation_columns,
                observations,
            )

    async def upsert_scores(self, scores: list[Score]) -> None:
        if scores:
            await self._run(
                self._insert, self._scores, score_payload, SCORE_COLUMNS, score_columns, scores
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
        latest = latest_per_id(items)
        try:
            names, data = payload(latest, next_event_ts())
        except (TypeError, NeedsNative):
            pass
        else:
            settings = self._engine.settings(client, INSERT_SETTINGS)
            client.raw_insert(table, names, data, settings=settings, fmt=INSERT_FORMAT)
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
        data = build(items, micros(next_event_ts(len(items))))
        names = columns + VERSION_COLUMNS
        types = self._column_types.get(table)
        if types is None:
            # Described once per table: otherwise every insert costs a DESCRIBE round trip.
            context = client.create_insert_context(table, names, column_oriented=True)
            types = self._column_types[table] = [
                get_from_name(wire_type_name(t.name)) for t in context.column_types
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
        cols = select(columns)
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
        params: Params,
        settings: dict[str, Any] = POINT_SETTINGS,
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
            f"SELECT {select(columns)}{extra_sql}, is_deleted FROM {table} PREWHERE {where} "
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
        if len(values) > MAX_LISTED_IDS:
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
            p = Params(read.project_id)
            return [self._newest(client, read.table, read.columns, read.where(p, PID), p)]
        # One UNION ALL; each branch gives its rows as JSON text, as the branches' columns
        # differ. The engine's planning cost grows with every column named and every sort, so
        # the columns come from one matcher (in table order, see `_row_matcher`) and the
        # newest version per id is picked here: these reads return a handful of rows.
        p = Params(reads[0].project_id)
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
            self._traces, TRACE_COLUMNS, trace_from_row, project_id, "id", trace_ids, by_id
        )

    async def get_observations(
        self, project_id: str, observation_ids: list[str]
    ) -> list[Observation]:
        return await self._get(
            self._observations,
            OBSERVATION_COLUMNS,
            observation_from_row,
            project_id,
            "id",
            observation_ids,
            by_id,
        )

    async def get_scores(self, project_id: str, score_ids: list[str]) -> list[Score]:
        return await self._get(
            self._scores, SCORE_COLUMNS, score_from_row, project_id, "id", score_ids, by_id
        )

    async def observations_of_trace(self, project_id: str, trace_id: str) -> list[Observation]:
        return await self._get(
            self._observations,
            OBSERVATION_COLUMNS,
            observation_from_row,
            project_id,
            "trace_id",
            [trace_id],
            by_start_time,
        )

    async def scores_of_traces(self, project_id: str, trace_ids: list[str]) -> list[Score]:
        return await self._get(
            self._scores,
            SCORE_COLUMNS,
            score_from_row,
            project_id,
            "trace_id",
            trace_ids,
            by_timestamp,
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
        spec: ListSpec,
        p: Params,
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
        if need > MAX_CANDIDATES:
            return None
        direction = "DESC" if desc else "ASC"
        order = ", ".join(f"{c} {direction}" for c in (f"toDate({spec.time})", *spec.order))
        total = -1
        fetch = need + max(OVERFETCH_MIN, need // 2)
        while fetch <= MAX_CANDIDATES * 4:
            counted = f", ({count_sql})" if count_sql is not None and total < 0 else ""
            limit_sql = f"LIMIT {p.add(fetch, 'UInt64')}"
            if not recheck and need <= FULL_ROW_CANDIDATES:
                # Nothing to recheck: the candidates' own rows are the answer once each id's
                # newest version is picked, so one query does. All versions of an id share its
                # sort values and so come together; the engine reads the wide columns for the
                # rows within the LIMIT only (lazy materialisation).
                sql = (
                    f"SELECT {select(spec.columns)}, event_ts, is_deleted{counted} "
                    f"FROM {spec.table} WHERE {where} ORDER BY {order} {limit_sql}"
                )
                rows = self._rows(client, sql, p, IN_ORDER_SETTINGS)
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
            candidates = self._rows(client, sql, p, IN_ORDER_SETTINGS)
            if counted:
                total = int(candidates[0][1]) if candidates else 0
            ids = list(dict.fromkeys(r[0] for r in candidates))
            if not ids or limit == 0:
                return [], total
            exhausted = len(candidates) < fetch
            # Full rows straight away for the usual shallow page; deeper pages verify light
            # rows first and read full rows for the page alone.
            columns = spec.columns if need <= FULL_ROW_CANDIDATES else ("id",)
            if len(ids) <= MAX_LISTED_IDS:
                in_ids, settings = p.texts(ids), POINT_SETTINGS
            else:
                # A long list would bloat the query (over HTTP: multipart form data); name the
                # candidates by their query instead, which reads them a second time.
                in_ids = f"(SELECT id FROM {spec.table} WHERE {where} ORDER BY {order} {limit_sql})"
                settings = IN_ORDER_SETTINGS
            newest_rows = self._newest(
                client,
                spec.table,
                columns,
                f"project_id = {PID} AND id IN {in_ids}",
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
                        f"project_id = {PID} AND id IN {p.texts(page_ids)}",
                        p,
                    )
                }
                return [found[i] for i in page_ids if i in found], total
            fetch *= 4
        return None

    def _traces_where(self, q: TraceQuery, p: Params) -> tuple[str, str]:
        """The WHERE clause of a trace query and the part of it on columns that can change."""
        where = [f"project_id = {PID}"]
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
            found = filter_sql(q.filters, TRACE_FILTER_COLUMNS, p)
            where.extend(found.stable)
            recheck.extend(found.recheck)
            for condition, zero_matches in found.agg:
                # On the trace id, which never changes: no recheck needed. A trace without
                # observations has every aggregate at 0 (upstream's COALESCE).
                latest = self._latest(
                    self._observations,
                    AGGREGATED_OBSERVATION_COLUMNS,
                    f"project_id = {PID}",
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
            f"project_id = {PID} AND trace_id IN {trace_ids_sql}",
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
        self, client: Client, project_id: str, rows: list[tuple[Any, ...]], query: TraceQuery
    ) -> list[TraceSummary]:
        """Summaries of trace rows: observation and score aggregates in one flat query, summed
        up here (cheaper than JOINs of aggregating subqueries, which the engine plans slowly).

        The query's environment filter (parameter or `filter` condition) also narrows the
        observations and scores aggregated, as upstream's list applies it to both."""
        if not rows:
            return []
        p = Params(project_id)
        ids = p.texts(r[0] for r in rows)
        # An id's environment never changes and tombstones copy it, so it can prune early.
        environment = []
        if query.environments:
            environment.append(f"environment IN {p.texts(query.environments)}")
        on_environment = [c for c in query.filters if c.column == "environment"]
        if on_environment:
            found = filter_sql(on_environment, OBSERVATION_FILTER_COLUMNS, p)
            environment.extend(found.stable + found.recheck)
        narrow = "".join(f" AND {condition}" for condition in environment)
        sql = (
            "(SELECT 0, id, trace_id, start_time, end_time, total_cost, is_deleted "
            f"FROM {self._observations} PREWHERE project_id = {PID} AND trace_id IN {ids}"
            f"{narrow} ORDER BY event_ts DESC LIMIT 1 BY id) UNION ALL "
            f"(SELECT 1, id, trace_id, NULL, NULL, NULL, "
            # Upstream lists the ids of aggregatable scores only (no TEXT, no CORRECTION).
            "is_deleted OR data_type NOT IN ('NUMERIC', 'BOOLEAN', 'CATEGORICAL') "
            f"FROM {self._scores} PREWHERE project_id = {PID} AND trace_id IN {ids}"
            f"{narrow} ORDER BY event_ts DESC LIMIT 1 BY id)"
        )
        observations: dict[str, list[tuple[Any, ...]]] = {}
        scores: dict[str, list[str]] = {}
        for kind, id_, trace_id, start, end, cost, deleted in self._rows(
            client, sql, p, POINT_SETTINGS
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
                    trace=trace_from_row(r),
                    observation_ids=observation_ids,
                    score_ids=sorted(scores.get(r[0], ())),
                    latency_seconds=latency,
                    total_cost=cost,
                )
            )
        return summaries

    async def list_traces(self, project_id: str, query: TraceQuery) -> Page[TraceSummary]:
        offset = page_offset(query.page, query.limit)
        order_key = TRACE_ORDER.get(query.order_by) or TRACE_ORDER.get(
            query.order_by.replace("_", "").lower()
        )
        if order_key is None:
            raise InvalidInput(f"cannot order traces by {query.order_by!r}")
        direction = "DESC" if query.order_desc else "ASC"
        p = Params(project_id)
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
            page = self._rows(client, page_sql, p, JOIN_SETTINGS)
            if not page:
                return [], int(self._rows(client, count_sql, p)[0][0])
            ids = [r[0] for r in page]
            found = {
                r[0]: r
                for r in self._newest(
                    client,
                    self._traces,
                    TRACE_COLUMNS,
                    f"project_id = {PID} AND id IN {p.texts(ids)}",
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
            return self._trace_summaries(client, project_id, rows, query), total

        items, total = await self._run(run)
        return Page(items=items, total=total)

    async def list_observations(
        self, project_id: str, query: ObservationQuery, *, with_total: bool = True
    ) -> Page[Observation]:
        p = Params(project_id)
        where = [f"project_id = {PID}"]
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
            recheck.append(ROOT_SQL)
        elif query.is_root is False:
            recheck.append(f"NOT {ROOT_SQL}")
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
            found = filter_sql(query.filters, OBSERVATION_FILTER_COLUMNS, p)
            where.extend(found.stable)
            recheck.extend(found.recheck)
            trace_filters.extend(found.trace)
        if trace_filters:
            # On the observation's trace_id, which never changes: no recheck needed.
            where.append(
                f"trace_id IN (SELECT id FROM {self._traces} FINAL "
                f"WHERE project_id = {PID} AND {' AND '.join(trace_filters)})"
            )
        filters = " AND ".join(where + recheck)
        page_where = filters
        offset = page_offset(query.page, query.limit)
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
            observation_from_row,
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
        p = Params(project_id)
        where = [f"project_id = {PID}"]
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
        if trace_filters and query.environments:
            # Upstream: with trace filters, the trace's environment must match too; without,
            # only the score's own (so scores without a trace still match).
            trace_filters.append(f"environment IN {p.texts(query.environments)}")
        if trace_filters:
            where.append(
                f"trace_id IN (SELECT id FROM {self._traces} FINAL "
                f"WHERE project_id = {PID} AND {' AND '.join(trace_filters)})"
            )
        if query.filters:
            found = filter_sql(query.filters, SCORE_FILTER_COLUMNS, p)
            where.extend(found.stable)
            recheck.extend(found.recheck)
        filters = " AND ".join(where + recheck)
        page_where = filters
        offset = page_offset(query.page, query.limit)
        if query.after is not None:
            ts, score_id = query.after
            bound = p.dt(ts)
            page_where += (
                f" AND timestamp <= {bound} AND (timestamp, id) < ({bound}, {p.text(score_id)})"
            )
            offset = 0
        return await self._list_page(
            self._score_list,
            score_from_row,
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
        spec: ListSpec,
        from_row: Callable[[Sequence[Any]], R],
        p: Params,
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
            latest = self._latest(table, columns, f"project_id = {PID} AND id IN ({page_ids})")
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
        offset = page_offset(page, limit)
        p = Params(project_id)
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
            f"WHERE project_id = {PID} AND session_id IS NOT NULL AND session_id != '' "
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
        p = Params(project_id)
        sql = (
            f"SELECT {select(TRACE_COLUMNS)} FROM {self._traces} FINAL "
            f"WHERE project_id = {PID} AND session_id = {p.text(session_id)} "
            "ORDER BY timestamp, id"
        )
        rows = await self._run(self._rows, sql, p)
        return [trace_from_row(r) for r in rows]

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
        p = Params(project_id)
        event_ts = p.dt(next_event_ts())
        cols = ", ".join(columns)
        sql = (
            f"INSERT INTO {table} ({cols}, event_ts, is_deleted) "
            f"SELECT {cols}, {event_ts}, 1 FROM {table} "
            f"WHERE project_id = {PID} AND {match_column} IN {p.texts(ids)} "
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
        built = MetricsQuery(self._db, project_id, view, query).build()
        rows, names = await self._run(self._query_with_names, built.sql, built.params)
        return [built.shape(dict(zip(names, r, strict=True))) for r in rows]

    def _query_with_names(
        self, client: Client, sql: str, params: Params
    ) -> tuple[list[tuple[Any, ...]], tuple[str, ...]]:
        result = client.query(
            sql, parameters=params.values, settings=self._engine.settings(client, JOIN_SETTINGS)
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
