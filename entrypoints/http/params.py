"""Query-string parsing with Langfuse's 400s for bad values."""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from multidict import MultiMapping

from fathom.core.domain.errors import InvalidInput
from fathom.core.ports.telemetry import Condition


def _invalid(name: str, problem: str) -> InvalidInput:
    return InvalidInput(f"Invalid request data: query parameter '{name}' {problem}")


def integer(
    query: MultiMapping[str],
    name: str,
    default: int,
    *,
    minimum: int = 1,
    maximum: int | None = None,
) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _invalid(name, f"must be an integer, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise _invalid(name, f"must be {bound}, got {value}")
    return value


def timestamp(query: MultiMapping[str], name: str) -> datetime | None:
    raw = query.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00") if raw.endswith("Z") else raw)
    except ValueError:
        raise _invalid(name, f"must be an ISO 8601 datetime, got {raw!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def string(query: MultiMapping[str], name: str) -> str | None:
    raw = query.get(name)
    return raw if raw else None


def strings(query: MultiMapping[str], name: str) -> list[str]:
    """Repeated parameters (`environment=a&environment=b`, the SDK's form) or one
    comma-separated value (for values that cannot contain a comma)."""
    values: list[str] = []
    for raw in query.getall(name, []):
        values.extend(part.strip() for part in raw.split(",") if part.strip())
    return values


def array_filter(query: MultiMapping[str], name: str) -> list[str]:
    """An array filter such as `tags`, read as upstream reads it: repeated parameters are taken
    whole (a tag may contain a comma), a lone value is a comma-separated list."""
    values = [raw for raw in query.getall(name, []) if raw]
    if len(values) == 1:
        return [value for value in values[0].split(",") if value]
    return values


def choices(
    query: MultiMapping[str], name: str, allowed: Iterable[str], *, upper: bool = False
) -> list[str]:
    """A comma-separated list of enum values (`upper`: compared case-insensitively)."""
    allowed = list(allowed)
    values = [v.upper() for v in strings(query, name)] if upper else strings(query, name)
    for value in values:
        if value not in allowed:
            raise _invalid(name, f"has an invalid value {value!r}; allowed: {', '.join(allowed)}")
    return values


def choice(query: MultiMapping[str], name: str, allowed: Iterable[str]) -> str | None:
    """One enum value, compared exactly (upstream's z.enum)."""
    value = string(query, name)
    allowed = list(allowed)
    if value is not None and value not in allowed:
        raise _invalid(name, f"must be one of {', '.join(allowed)}, got {value!r}")
    return value


def number(query: MultiMapping[str], name: str) -> float | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise _invalid(name, f"must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise _invalid(name, f"must be a finite number, got {raw!r}")
    return value


def boolean(query: MultiMapping[str], name: str) -> bool | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise _invalid(name, f"must be true or false, got {raw!r}")


def field_groups(
    query: MultiMapping[str],
    allowed: set[str],
    default: set[str],
    name: str = "fields",
    *,
    strict: bool = True,
) -> set[str]:
    """The requested field groups; unknown ones are a 400, or dropped when not `strict` (as
    upstream's traces and v2 observations do)."""
    raw = query.get(name)
    if not raw:
        return set(default)
    groups = {part.strip() for part in raw.split(",") if part.strip()}
    unknown = groups - allowed
    if unknown and strict:
        raise _invalid(
            name, f"has unknown field groups {sorted(unknown)}; allowed: {sorted(allowed)}"
        )
    return groups - unknown


def encode_cursor(value: dict[str, Any], *, urlsafe: bool = False) -> str:
    data = orjson.dumps(value)
    return (base64.urlsafe_b64encode(data) if urlsafe else base64.b64encode(data)).decode()


def decode_cursor(query: MultiMapping[str], name: str = "cursor") -> dict[str, Any] | None:
    raw = query.get(name)
    if not raw:
        return None
    try:
        padded = raw + "=" * (-len(raw) % 4)
        data = base64.b64decode(padded.replace("-", "+").replace("_", "/"))
        value = orjson.loads(data)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise _invalid(name, "is not a valid cursor") from None
    if not isinstance(value, dict):
        raise _invalid(name, "is not a valid cursor")
    return value


def json_query(request: web.Request, name: str = "query") -> dict[str, Any]:
    raw = request.query.get(name)
    if not raw:
        raise _invalid(name, "is required (a JSON object)")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidInput(f"Invalid JSON in {name} parameter") from None  # upstream's words
    if not isinstance(value, dict):
        raise _invalid(name, "must be a JSON object")
    return value


# Operators by filter type, as in the contract's `filter` parameter.
FILTER_OPERATORS: dict[str, frozenset[str]] = {
    "datetime": frozenset({">", "<", ">=", "<="}),
    "string": frozenset(
        {"=", "contains", "does not contain", "starts with", "ends with", "matches"}
    ),
    "stringOptions": frozenset({"any of", "none of"}),
    "categoryOptions": frozenset({"any of", "none of"}),
    "arrayOptions": frozenset({"any of", "none of", "all of"}),
    "number": frozenset({"=", ">", "<", ">=", "<="}),
    "stringObject": frozenset(
        {"=", "contains", "does not contain", "starts with", "ends with", "matches"}
    ),
    "numberObject": frozenset({"=", ">", "<", ">=", "<="}),
    "booleanObject": frozenset({"=", "<>"}),
    "boolean": frozenset({"=", "<>"}),
    "null": frozenset({"is null", "is not null"}),
}
_LIST_TYPES = frozenset({"stringOptions", "categoryOptions", "arrayOptions"})
_KEYED_TYPES = frozenset({"stringObject", "numberObject", "booleanObject"})


def filter_state(query: MultiMapping[str], name: str = "filter") -> list[Condition]:
    """The `filter` parameter: a JSON array of `{type, column, operator, value, key?}`."""
    raw = query.get(name)
    if not raw:
        return []
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidInput("Invalid JSON in filter parameter") from None
    if not isinstance(parsed, list):
        raise _invalid(name, "must be a JSON array of filter conditions")
    conditions = []
    for index, item in enumerate(parsed):
        where = f"{name}[{index}]"
        if not isinstance(item, dict):
            raise _invalid(where, "must be an object")
        type_, column, operator = item.get("type"), item.get("column"), item.get("operator")
        if type_ not in FILTER_OPERATORS:
            raise _invalid(
                where, f"has an invalid type {type_!r}; allowed: {list(FILTER_OPERATORS)}"
            )
        if not isinstance(column, str) or not column:
            raise _invalid(where, "needs a 'column'")
        if operator not in FILTER_OPERATORS[type_]:
            raise _invalid(
                where,
                f"has an invalid operator {operator!r} for type {type_!r}; "
                f"allowed: {sorted(FILTER_OPERATORS[type_])}",
            )
        value = item.get("value")
        if type_ != "null" and "value" not in item:
            raise _invalid(where, "needs a 'value'")
        if type_ in _LIST_TYPES and not isinstance(value, list):
            raise _invalid(where, f"needs an array 'value' for type {type_!r}")
        if type_ in ("boolean", "booleanObject") and not isinstance(value, bool):
            raise _invalid(where, f"needs a boolean 'value' for type {type_!r}")
        key = item.get("key")
        if type_ in _KEYED_TYPES and (not isinstance(key, str) or not key):
            raise _invalid(where, f"needs a 'key' for type {type_!r}")
        conditions.append(
            Condition(
                column=column,
                type=type_,
                operator=operator,
                value=value,
                key=key if isinstance(key, str) else None,
            )
        )
    return conditions


def drop_overridden(
    query: Any, conditions: Iterable[Condition], parameters: Mapping[str, tuple[str, ...]]
) -> None:
    """`filter` takes precedence over the query parameters that filter the same column: the
    `query` attributes those parameters set (`parameters`: filter column -> attributes) go
    back to their empty value (None, or an empty list)."""
    for condition in conditions:
        for attribute in parameters.get(condition.column, ()):
            setattr(query, attribute, [] if isinstance(getattr(query, attribute), list) else None)
