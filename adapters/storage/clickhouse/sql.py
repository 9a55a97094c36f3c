"""SQL helpers of the store's reads; `Params` and `parse_time` serve `filters.py` and `metrics.py`.

- `Params`: server-side bound parameters; values never enter the SQL text.
- The query settings of each kind of read (FINAL reads, joins, point reads, candidate scans).
- Lists ordered by a table's time column: `ListSpec`, how many candidates a page may read
  (see `ClickHouseTelemetryStore._candidate_page`), the sort keys of point reads, the orders a
  trace list accepts, and page offsets.
- `parse_time`: a datetime value of a query (a filter value, a time range).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clickhouse_connect.driver.binding import must_escape

from fathom.adapters.storage.clickhouse.rows import micros, utc
from fathom.core.domain.errors import InvalidInput


class Params:
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
        return self.add(StringArray.of(list(values)), "Array(String)")

    def dt(self, value: datetime) -> str:
        return f"fromUnixTimestamp64Micro({self.add(micros(value), 'Int64')}, 'UTC')"


PID = "{pid:String}"


class StringArray:
    """A bound Array(String) whose literal is written in one join when no element needs
    escaping (ids, names): the driver escapes every element character by character, ~3 µs
    per id, which a merge's lookup of thousands of trace ids paid on every chunk. The driver
    formats a value of a type it does not know by `str()`."""

    __slots__ = ("literal",)
    _NEEDS_ESCAPE = re.compile("|".join(map(re.escape, must_escape)))

    def __init__(self, literal: str) -> None:
        self.literal = literal

    @classmethod
    def of(cls, values: list[str]) -> StringArray | list[str]:
        if not all(type(v) is str for v in values) or cls._NEEDS_ESCAPE.search("".join(values)):
            return values  # the driver's own escaping
        return cls("['" + "', '".join(values) + "']" if values else "[]")

    def __str__(self) -> str:
        return self.literal


# Rows of one id share a day (in the sort key) and so a month (the partition): FINAL can skip
# merging across partitions, and single-part partitions need no merge at all.
READ_SETTINGS: dict[str, Any] = {"do_not_merge_across_partitions_select_final": 1}
# LEFT JOINs give NULL, not 0/'' defaults, for missing right-hand rows.
JOIN_SETTINGS: dict[str, Any] = {**READ_SETTINGS, "join_use_nulls": 1}
# Reads of a few granules (lookups by id or trace id) with flat SQL: one thread saves handing
# tiny reads between threads, checking skip indexes while planning rather than while reading
# measured faster for such selective filters, and the plan optimisations (read in order,
# filter push-down, lazy materialisation...) have nothing to gain here but cost milliseconds of
# planning per query (index analysis still runs).
POINT_SETTINGS: dict[str, Any] = {
    **READ_SETTINGS,
    "max_threads": 1,
    "use_skip_indexes_on_data_read": 0,
    "query_plan_enable_optimizations": 0,
}
# Candidate scans read in primary key order and stop early; without read-ahead buffering and
# with granule-sized blocks they stop after the newest day instead of several blocks per part.
IN_ORDER_SETTINGS: dict[str, Any] = {
    **READ_SETTINGS,
    "read_in_order_use_buffering": 0,
    "max_block_size": 8192,
}
# Candidate lists (see `_candidate_page`): pages reaching deeper than this use FINAL; up to
# FULL_ROW_CANDIDATES rows the candidates' full rows are read at once (one query fewer).
MAX_CANDIDATES = 10_000
FULL_ROW_CANDIDATES = 200
OVERFETCH_MIN = 20
# Longer id lists are not bound as one parameter (see `_candidate_page`).
MAX_LISTED_IDS = 100


@dataclass(frozen=True, slots=True)
class ListSpec:
    """A table listed by its time column: `order` is the full sort (time first, then ties)."""

    table: str
    columns: tuple[str, ...]
    time: str
    order: tuple[str, ...]


def by_id(row: Sequence[Any]) -> Any:
    return row[0]


def by_start_time(row: Sequence[Any]) -> Any:
    return row[5], row[0]  # observations: start_time, id


def by_timestamp(row: Sequence[Any]) -> Any:
    return row[2], row[0]  # traces and scores: timestamp, id


TRACE_ORDER = {
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


def page_offset(page: int, limit: int) -> int:
    if page < 1:
        raise InvalidInput("page must be >= 1")
    if limit < 0:
        raise InvalidInput("limit must be >= 0")
    return (page - 1) * limit


def parse_time(value: Any, what: str) -> datetime:
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, str):
        try:
            return utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            pass
    raise InvalidInput(f"{what} must be an ISO 8601 datetime, got {value!r}")
