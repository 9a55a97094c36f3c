"""Column types that behave the same on SQLite and PostgreSQL.

- `UtcDateTime`: SQLite keeps a datetime as wall-clock text and drops its offset, so an aware
  value in another zone would come back shifted; PostgreSQL's timestamptz keeps the instant.
  Converting to UTC on the way in (naive means UTC) and tagging UTC on the way out gives both
  engines the instant, and makes SQLite's text comparisons order by time.
- `Json` / `NullableJson`: JSONB on PostgreSQL (what Langfuse stores; it has equality, so
  DISTINCT, GROUP BY and `=` work as on SQLite's JSON text, and it can be indexed), JSON text
  on SQLite. JSONB normalises what it stores: object keys come back in its own order,
  duplicate keys collapse to the last one, numbers keep their value but not their spelling.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, overload

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


class UtcDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


@overload
def aware(value: datetime) -> datetime: ...
@overload
def aware(value: None) -> None: ...
def aware(value: datetime | None) -> datetime | None:
    """`value` tagged UTC if it came back naive: everything is stored in UTC, and SQLite
    hands back naive datetimes wherever a value did not pass through `UtcDateTime`."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def required_time(value: datetime | None) -> datetime:
    """`aware` for a NOT NULL column, typed so."""
    moment = aware(value)
    assert moment is not None
    return moment


def _json(*, none_as_null: bool) -> TypeEngine[Any]:
    return JSON(none_as_null=none_as_null).with_variant(
        JSONB(none_as_null=none_as_null), "postgresql"
    )


# A Python None is stored as JSON `null` (the column is NOT NULL or the value is never None).
Json = _json(none_as_null=False)
# A Python None is stored as SQL NULL: one representation of "absent" on every engine.
NullableJson = _json(none_as_null=True)
