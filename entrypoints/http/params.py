"""Query-string parsing with Langfuse's 400s for bad values."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from multidict import MultiMapping

from fathom.core.domain.errors import InvalidInput


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
    """Repeated parameters (`tags=a&tags=b`, the SDK's form) or one comma-separated value."""
    values: list[str] = []
    for raw in query.getall(name, []):
        values.extend(part for part in raw.split(",") if part)
    return values


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
    query: MultiMapping[str], allowed: set[str], default: set[str], name: str = "fields"
) -> set[str]:
    raw = query.get(name)
    if not raw:
        return set(default)
    groups = {part.strip() for part in raw.split(",") if part.strip()}
    unknown = groups - allowed
    if unknown:
        raise _invalid(
            name, f"has unknown field groups {sorted(unknown)}; allowed: {sorted(allowed)}"
        )
    return groups


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
    except orjson.JSONDecodeError as exc:
        raise _invalid(name, f"is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise _invalid(name, "must be a JSON object")
    return value
