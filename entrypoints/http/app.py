"""The aiohttp application: every public route is registered here, in one read."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from fathom.core.ports.foreground import RequestGauge
from fathom.entrypoints.bootstrap import Runtime
from fathom.entrypoints.http import context
from fathom.entrypoints.http.errors import error_middleware
from fathom.entrypoints.http.routes import (
    datasets,
    evaluation,
    health,
    ingestion,
    media,
    metrics,
    models,
    observations,
    projects,
    prompts,
    scores,
    traces,
)
from fathom.entrypoints.worker import Worker

log = logging.getLogger("fathom.http")

ROUTE_MODULES = (
    health,
    projects,
    ingestion,
    traces,
    observations,
    scores,
    metrics,
    models,
    evaluation,
    prompts,
    datasets,
    media,
)


def create_app(
    runtime: Runtime, *, start_runtime: bool = True, with_worker: bool = False
) -> web.Application:
    """Build the web app. With `start_runtime` the app migrates and provisions on start-up
    and closes the adapters on shutdown; pass False when the caller manages the runtime.
    `with_worker` runs the queue consumer inside this process (`fathom serve`)."""
    settings = runtime.settings
    # The app-wide cap is the largest route limit; each route then applies its own.
    limit = max(
        settings.max_body_bytes, settings.max_ingestion_body_bytes, settings.max_otlp_body_bytes
    )
    app = web.Application(
        middlewares=[counting_middleware(runtime.resolve(RequestGauge)), error_middleware],
        client_max_size=limit,
    )
    context.install(app, runtime)
    for module in ROUTE_MODULES:
        app.add_routes(module.routes)
    if start_runtime:
        app.on_startup.append(_start(runtime))
        app.on_cleanup.append(_stop(runtime))
    if with_worker:
        worker = Worker(runtime)

        async def start_worker(_app: web.Application) -> None:
            worker.start()

        async def stop_worker(_app: web.Application) -> None:
            await worker.stop()

        app.on_startup.append(start_worker)
        app.on_shutdown.append(stop_worker)
    return app


Signal = Callable[[web.Application], Awaitable[None]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def counting_middleware(gauge: RequestGauge) -> Any:
    """Keeps `gauge` at the number of requests in flight (the in-process worker gives way
    to them; see `fathom.core.ports.foreground`)."""

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        gauge.enter()
        try:
            return await handler(request)
        finally:
            gauge.leave()

    return count


def _start(runtime: Runtime) -> Signal:
    async def on_startup(_app: web.Application) -> None:
        await runtime.start()

    return on_startup


def _stop(runtime: Runtime) -> Signal:
    async def on_cleanup(_app: web.Application) -> None:
        await runtime.stop()

    return on_cleanup
