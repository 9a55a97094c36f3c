"""What handlers reach through the request: the runtime, use cases and the caller."""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web

from fathom.core.domain.access import Principal
from fathom.core.usecases.access import AuthenticateApiKey, require_project
from fathom.entrypoints.bootstrap import Runtime
from fathom.entrypoints.settings import Settings

T = TypeVar("T")

RUNTIME = web.AppKey("runtime", Runtime)
_SERVICES = web.AppKey("services", dict)


def runtime(request: web.Request) -> Runtime:
    return request.app[RUNTIME]


def settings(request: web.Request) -> Settings:
    return request.app[RUNTIME].settings


def use(request: web.Request, service: type[T]) -> T:
    """A use case or port from the container, memoised per app (resolution is not free)."""
    cache = request.app[_SERVICES]
    found = cache.get(service)
    if found is None:
        found = cache[service] = request.app[RUNTIME].resolve(service)
    return found


async def principal(request: web.Request) -> Principal:
    return await use(request, AuthenticateApiKey)(request.headers.get("Authorization"))


async def project_id(request: web.Request) -> str:
    """Authenticate with a project key and return its project id."""
    return require_project(await principal(request))


def install(app: web.Application, rt: Runtime) -> None:
    app[RUNTIME] = rt
    app[_SERVICES] = {}
