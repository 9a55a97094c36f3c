"""One mapping from errors to Langfuse's status codes and JSON bodies."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from fathom.core.domain import errors
from fathom.entrypoints.http.json import json_response

log = logging.getLogger("fathom.http")

STATUS: dict[type[errors.FathomError], int] = {
    errors.InvalidInput: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.MethodNotAllowed: 405,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 422,
    errors.Unavailable: 503,
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(exc: errors.FathomError) -> web.Response:
    # Subclasses (e.g. an invalid score event) answer like the class they refine.
    status = next((STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS), 500)
    return json_response({"message": exc.message, "error": exc.langfuse_name}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.FathomError as exc:
        return error_response(exc)
    except web.HTTPRequestEntityTooLarge as exc:
        return json_response(
            {"message": f"Request body too large ({exc.text})", "error": "PayloadTooLargeError"},
            status=413,
        )
    except web.HTTPNotFound:
        return json_response(
            {
                "message": f"Route not found: {request.method} {request.path}",
                "error": "LangfuseNotFoundError",
            },
            status=404,
        )
    except web.HTTPMethodNotAllowed:
        return json_response(
            {"message": f"Method {request.method} not allowed", "error": "MethodNotAllowedError"},
            status=405,
        )
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_response(
            {"message": "Internal Server Error", "error": "InternalServerError"}, status=500
        )
