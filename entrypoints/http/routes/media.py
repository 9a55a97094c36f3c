"""Multi-modal media (`/api/public/media`): upload URLs, media records and upload status, plus
the upload/download links Fathom serves itself when the blob store cannot presign URLs."""

from __future__ import annotations

from aiohttp import web

from fathom.core.domain.errors import PayloadTooLarge
from fathom.core.domain.media import DOWNLOAD_URL_TTL_SECONDS
from fathom.core.usecases.media import (
    DownloadMediaContent,
    GetMedia,
    GetMediaUploadUrl,
    PatchMedia,
    UploadMediaContent,
)
from fathom.entrypoints.http.context import project_id, settings, use
from fathom.entrypoints.http.json import json_response, read_json
from fathom.entrypoints.http.presenters import iso

routes = web.RouteTableDef()

_CHUNK = 1 << 20


def base_url(request: web.Request) -> str:
    """The address the client reached Fathom at: links Fathom serves must work from there.

    Forwarded headers are trusted because the link goes back only to the client that sent
    them; behind a proxy they are what makes the link point at the proxy.
    """
    proto = request.headers.get("X-Forwarded-Proto") or request.scheme
    host = request.headers.get("X-Forwarded-Host") or request.host
    return f"{proto.split(',')[0].strip()}://{host.split(',')[0].strip()}"


@routes.post("/api/public/media")
async def get_upload_url(request: web.Request) -> web.Response:
    project = await project_id(request)
    body = await read_json(request, settings(request).max_body_bytes)
    found = await use(request, GetMediaUploadUrl)(project, body, base_url=base_url(request))
    # Upstream answers 201 although the spec says 200; the SDKs accept any 2xx.
    return json_response({"mediaId": found.media_id, "uploadUrl": found.upload_url}, status=201)


@routes.get("/api/public/media/{media_id}")
async def get_media(request: web.Request) -> web.Response:
    project = await project_id(request)
    found = await use(request, GetMedia)(
        project, request.match_info["media_id"], base_url=base_url(request)
    )
    return json_response(
        {
            "mediaId": found.media.id,
            "contentType": found.media.content_type,
            "contentLength": found.media.content_length,
            "uploadedAt": iso(found.media.uploaded_at),
            "url": found.url,
            "urlExpiry": iso(found.url_expiry),
        }
    )


@routes.patch("/api/public/media/{media_id}")
async def patch_media(request: web.Request) -> web.Response:
    project = await project_id(request)
    body = await read_json(request, settings(request).max_body_bytes)
    await use(request, PatchMedia)(project, request.match_info["media_id"], body)
    return web.Response(status=204)


@routes.put("/api/public/media/{media_id}/upload")
async def upload_content(request: web.Request) -> web.Response:
    """The presigned-URL stand-in: authorised by its token, not by an API key."""

    async def read(limit: int) -> bytes:
        # Streamed with its own cap: the grant fixes the length, which may exceed the app's
        # body limit for JSON routes.
        if request.content_length is not None and request.content_length > limit:
            raise PayloadTooLarge(f"The upload has more than the declared {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"The upload has more than the declared {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    await use(request, UploadMediaContent)(
        request.match_info["media_id"],
        request.query.get("token"),
        read,
        content_type=request.headers.get("Content-Type"),
    )
    # An empty 200, as S3 answers a PUT: the SDK reports the body as the upload error text.
    return web.Response(status=200)


@routes.get("/api/public/media/{media_id}/download")
async def download_content(request: web.Request) -> web.Response:
    content = await use(request, DownloadMediaContent)(
        request.match_info["media_id"], request.query.get("token")
    )
    return web.Response(
        body=content.data,
        content_type=content.content_type,
        headers={
            "Cache-Control": f"private, max-age={DOWNLOAD_URL_TTL_SECONDS}",
            # Uploaded HTML or SVG comes from this origin: never let a browser sniff it into
            # something else or run its scripts.
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
        },
    )
