"""JSON in and out of handlers (orjson: it is on the hot path)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from fathom.core.domain.errors import InvalidInput

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z


def dumps(data: Any) -> bytes:
    return orjson.dumps(data, option=_OPTIONS, default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=dumps(data), status=status, content_type="application/json")


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, refused with 413 beyond `limit` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    body = await request.read()
    if len(body) > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    return body


async def read_json(request: web.Request, limit: int) -> Any:
    body = await read_body(request, limit)
    if not body:
        raise InvalidInput("Invalid request data: the body is empty; expected JSON")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"Invalid request data: body is not valid JSON ({exc})") from None
