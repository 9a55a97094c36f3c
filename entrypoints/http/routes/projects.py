"""Projects of the calling key (what the SDK's `auth_check()` reads)."""

from __future__ import annotations

from aiohttp import web

from fathom.core.usecases.access import ListProjectsOfKey
from fathom.entrypoints.http.context import principal, use
from fathom.entrypoints.http.json import json_response

routes = web.RouteTableDef()


@routes.get("/api/public/projects")
async def list_projects(request: web.Request) -> web.Response:
    caller = await principal(request)
    projects = await use(request, ListProjectsOfKey)(caller)
    return json_response(
        {
            "data": [
                {
                    "id": project.id,
                    "name": project.name,
                    "organization": {"id": organization.id, "name": organization.name},
                    "metadata": project.metadata,
                    **({"retentionDays": project.retention_days} if project.retention_days else {}),
                }
                for project, organization in projects
            ]
        }
    )
