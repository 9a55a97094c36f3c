"""Write paths: legacy batch ingestion, OTLP traces and scores."""

from __future__ import annotations

from aiohttp import web

from fathom.core.domain.errors import InvalidInput
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


@routes.post("/api/public/ingestion")
async def ingestion(request: web.Request) -> web.Response:
    caller = await principal(request)
    body = await read_json(request, settings(request).max_ingestion_body_bytes)
    result = await use(request, AcceptIngestionBatch)(caller, body, request.headers)
    return json_response(result.to_dict(), status=207)


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
