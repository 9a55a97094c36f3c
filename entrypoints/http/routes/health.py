"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from aiohttp import web

from fathom import __version__
from fathom.core.ports.blob import BlobStore
from fathom.core.ports.queue import JobQueue
from fathom.core.ports.records import RecordStore
from fathom.core.ports.telemetry import TelemetryStore
from fathom.entrypoints.http.context import use
from fathom.entrypoints.http.json import json_response

routes = web.RouteTableDef()

DEPENDENCIES: dict[str, type] = {
    "records": RecordStore,
    "telemetry": TelemetryStore,
    "blob": BlobStore,
    "queue": JobQueue,
}


@routes.get("/api/public/health")
async def health(request: web.Request) -> web.Response:
    """Langfuse answers OK while the process serves and its database answers."""
    try:
        await asyncio.wait_for(use(request, RecordStore).ping(), timeout=5)
    except Exception as exc:
        return json_response(
            {"status": "Database not available", "version": __version__, "message": str(exc)},
            status=503,
        )
    return json_response({"status": "OK", "version": __version__})


@routes.get("/api/public/ready")
async def ready(request: web.Request) -> web.Response:
    """Checks every dependency and names the ones that are down."""
    results: dict[str, str] = {}

    async def check(name: str, service: type) -> None:
        try:
            await asyncio.wait_for(use(request, service).ping(), timeout=5)
            results[name] = "ok"
        except Exception as exc:
            results[name] = f"down: {exc}"

    await asyncio.gather(*(check(name, service) for name, service in DEPENDENCIES.items()))
    down = sorted(name for name, state in results.items() if state != "ok")
    if down:
        return json_response(
            {"status": "NOT READY", "down": down, "dependencies": results}, status=503
        )
    return json_response({"status": "OK", "dependencies": results})
