"""Write paths: legacy batch ingestion, OTLP traces and scores."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from fathom.core.domain.access import AccessLevel
from fathom.core.domain.errors import Forbidden, InvalidInput
from fathom.core.domain.ingestion import INVALID_REQUEST_MESSAGE, js_type_name
from fathom.core.usecases.access import ORGANIZATION_KEY_ON_PROJECT_ROUTE
from fathom.core.usecases.ingestion import (
    OTLP_JSON,
    OTLP_PROTOBUF,
    AcceptIngestionBatch,
    AcceptOtlpSpans,
    AcceptScores,
)
from fathom.entrypoints.http.context import principal, settings, use
from fathom.entrypoints.http.json import json_response, read_body, read_json
from fathom.entrypoints.http.otlp_decode import decode_json, validate_protobuf

routes = web.RouteTableDef()

PROTOBUF = "application/x-protobuf"
MAX_INGESTION_VERSION = 4


# Keys that may write to the batch endpoint: project keys, and public keys (score events only).
_INGESTION_ACCESS_LEVELS = frozenset({AccessLevel.PROJECT, AccessLevel.SCORES})


@routes.post("/api/public/ingestion")
async def ingestion(request: web.Request) -> web.Response:
    caller = await principal(request)
    if caller.access_level not in _INGESTION_ACCESS_LEVELS or caller.project_id is None:
        # Refused as a whole like upstream, not as a 207 listing every event as denied.
        raise Forbidden(ORGANIZATION_KEY_ON_PROJECT_ROUTE)
    body = await read_json(request, settings(request).max_ingestion_body_bytes)
    envelope_issues = _envelope_issues(body)
    if envelope_issues:
        return json_response(
            {"message": INVALID_REQUEST_MESSAGE, "errors": envelope_issues}, status=400
        )
    result = await use(request, AcceptIngestionBatch)(caller, body, request.headers)
    return json_response(result.to_dict(), status=207)


def _envelope_issues(body: Any) -> list[str]:
    """Upstream's `{batch: unknown[], metadata?: json}` check: the messages of its issues."""
    if type(body) is not dict:
        return [f"Expected object, received {js_type_name(body)}"]
    if "batch" not in body:
        return ["Required"]
    batch = body["batch"]
    if type(batch) is not list:
        return [f"Expected array, received {js_type_name(batch)}"]
    return []


@routes.post("/api/public/otel/v1/traces")
async def otel_traces(request: web.Request) -> web.Response:
    caller = await principal(request)
    content_type = request.headers.get("Content-Type", "")
    version = request.headers.get("x-langfuse-ingestion-version") or request.headers.get(
        "x_langfuse_ingestion_version"
    )
    if version and version.isdigit() and int(version) > MAX_INGESTION_VERSION:
        raise InvalidInput(f"Unsupported x-langfuse-ingestion-version: {version}")
    # aiohttp has already inflated a gzip Content-Encoding.
    body = await read_body(request, settings(request).max_otlp_body_bytes)
    if PROTOBUF in content_type:
        otlp_format, has_spans = OTLP_PROTOBUF, validate_protobuf(body) > 0
    elif "application/json" in content_type:
        otlp_format, has_spans = OTLP_JSON, bool(decode_json(body))
    else:
        return json_response(
            {
                "error": "Invalid content type",
                "message": f"Invalid content type {content_type!r}: send OTLP traces as "
                f"{PROTOBUF} or application/json",
            },
            status=400,
        )
    if has_spans:
        sdk_version = request.headers.get("x-langfuse-sdk-version")
        await use(request, AcceptOtlpSpans)(caller, body, otlp_format, sdk_version, request.headers)
    if PROTOBUF in content_type:
        # An empty ExportTraceServiceResponse encodes to zero bytes.
        return web.Response(body=b"", content_type=PROTOBUF)
    return json_response({})


@routes.post("/api/public/scores")
async def create_scores(request: web.Request) -> web.Response:
    caller = await principal(request)
    body = await read_json(request, settings(request).max_ingestion_body_bytes)
    single = not isinstance(body, list)
    items = [body] if single else body
    result = await use(request, AcceptScores)(caller, items, request.headers, single=single)
    if single:
        return json_response({"id": result.accepted[0]})
    if not result.errors:
        return json_response({"message": "Accepted"}, status=202)
    return json_response(
        {
            "accepted": len(result.accepted),
            "rejected": len(result.errors),
            "errors": [{"message": message} for message in result.errors],
        },
        status=207,
    )
