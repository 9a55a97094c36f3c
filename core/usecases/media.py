"""Multi-modal media (`/api/public/media`): upload URLs with dedup, downloads, upload status.

The flow of Langfuse's SDKs: `POST /media` with the file's hash, type and length answers the
media id and an upload URL (null when the project already holds these bytes) and links the
media to the trace, observation or dataset item field it names; the client PUTs
the bytes to the URL and reports the outcome with `PATCH /media/{id}`; readers find media
references in trace payloads and `GET /media/{id}` for a download URL.

Upload and download URLs are the blob store's own presigned URLs when it can make them (the
cloud stores), so bytes never pass through Fathom. The local store cannot: then the URLs point
at Fathom's `/api/public/media/{id}/upload|download` routes with a signed, expiring grant, and
`UploadMediaContent` / `DownloadMediaContent` serve them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from fathom.core.domain.errors import InvalidInput, NotFound
from fathom.core.domain.media import (
    DOWNLOAD,
    DOWNLOAD_URL_TTL_SECONDS,
    MAX_CONTENT_LENGTH,
    UPLOAD,
    UPLOAD_SUCCESS_STATUSES,
    UPLOAD_URL_TTL_SECONDS,
    Media,
    MediaGrant,
    MediaLinkOrigin,
    blob_key_for,
    media_id_for,
    parse_upload_request,
    parse_upload_result,
    sha256_base64,
    sign_grant,
    verify_grant,
)
from fathom.core.ports.blob import BlobStore
from fathom.core.ports.media import PresignsUploads
from fathom.core.ports.records import RecordStore
from fathom.core.ports.system import Clock

MEDIA_NOT_FOUND = "Media asset not found"


class MediaLinkSigner:
    """Signs and checks the grants of links that Fathom serves itself."""

    def __init__(self, key: bytes, clock: Clock) -> None:
        self._key = key
        self._clock = clock

    def url(self, base_url: str, action: str, media: Media, expires_in: int) -> str:
        grant = MediaGrant(
            action=action,
            project_id=media.project_id,
            media_id=media.id,
            blob_key=media.blob_key,
            content_type=media.content_type,
            content_length=media.content_length,
            sha256_hash=media.sha256_hash,
            expires_at=int(self._clock.now().timestamp()) + expires_in,
        )
        token = sign_grant(self._key, grant)
        return (
            f"{base_url.rstrip('/')}/api/public/media/{quote(media.id, safe='')}/{action}"
            f"?token={quote(token, safe='')}"
        )

    def verify(self, token: str | None, *, action: str, media_id: str) -> MediaGrant:
        return verify_grant(
            self._key, token, action=action, media_id=media_id, now=self._clock.now()
        )


class MediaLinks:
    """Where clients send and fetch a media file's bytes (see the module docstring)."""

    def __init__(self, blob: BlobStore, signer: MediaLinkSigner) -> None:
        self._blob = blob
        self._signer = signer

    async def upload_url(self, media: Media, *, base_url: str, expires_in: int) -> str:
        if isinstance(self._blob, PresignsUploads):
            return await self._blob.signed_upload_url(
                media.blob_key,
                content_type=media.content_type,
                sha256=media.sha256_hash,
                expires_in=expires_in,
            )
        return self._signer.url(base_url, UPLOAD, media, expires_in)

    async def download_url(self, media: Media, *, base_url: str, expires_in: int) -> str:
        if isinstance(self._blob, PresignsUploads):
            return await self._blob.signed_url(media.blob_key, "GET", expires_in)
        return self._signer.url(base_url, DOWNLOAD, media, expires_in)


@dataclass(frozen=True, slots=True)
class MediaUploadUrl:
    media_id: str
    upload_url: str | None  # None: the project already holds these bytes


@dataclass(frozen=True, slots=True)
class MediaDownload:
    media: Media
    url: str
    url_expiry: datetime


class GetMediaUploadUrl:
    """`POST /api/public/media`: dedup by content hash per project, else an upload URL; either
    way the media is linked to what the request names (another trace may reuse known bytes)."""

    def __init__(
        self,
        records: RecordStore,
        links: MediaLinks,
        clock: Clock,
        max_content_length: int = MAX_CONTENT_LENGTH,
        upload_ttl_seconds: int = UPLOAD_URL_TTL_SECONDS,
    ) -> None:
        self._records = records
        self._links = links
        self._clock = clock
        self._max_content_length = max_content_length
        self._ttl = upload_ttl_seconds

    async def __call__(self, project_id: str, body: Any, *, base_url: str) -> MediaUploadUrl:
        """`base_url`: the address the client reached Fathom at, for links Fathom serves."""
        request = parse_upload_request(body, max_content_length=self._max_content_length)
        now = self._clock.now()
        async with self._records.unit_of_work() as uow:
            existing = await uow.media.get_by_hash(project_id, request.sha256_hash)
            if (
                existing is not None
                and existing.is_uploaded
                and existing.content_type == request.content_type
            ):
                link = request.link(project_id, existing.id, MediaLinkOrigin.CLIENT_UPLOAD, now)
                await uow.media.add_links([link])
                await uow.commit()
                return MediaUploadUrl(existing.id, None)
            media_id = existing.id if existing is not None else media_id_for(request.sha256_hash)
            fields = {
                "content_type": request.content_type,
                "content_length": request.content_length,
                "blob_key": blob_key_for(project_id, media_id, request.content_type),
                "updated_at": now,
            }
            media = (
                replace(existing, **fields)
                if existing is not None
                else Media(
                    id=media_id,
                    project_id=project_id,
                    sha256_hash=request.sha256_hash,
                    created_at=now,
                    **fields,
                )
            )
            await uow.media.upsert(media)
            link = request.link(project_id, media.id, MediaLinkOrigin.CLIENT_UPLOAD, now)
            await uow.media.add_links([link])
            await uow.commit()
        url = await self._links.upload_url(media, base_url=base_url, expires_in=self._ttl)
        return MediaUploadUrl(media.id, url)


class GetMedia:
    """`GET /api/public/media/{mediaId}`: the record and a download URL, once uploaded."""

    def __init__(
        self,
        records: RecordStore,
        links: MediaLinks,
        clock: Clock,
        download_ttl_seconds: int = DOWNLOAD_URL_TTL_SECONDS,
    ) -> None:
        self._records = records
        self._links = links
        self._clock = clock
        self._ttl = download_ttl_seconds

    async def __call__(self, project_id: str, media_id: str, *, base_url: str) -> MediaDownload:
        async with self._records.unit_of_work() as uow:
            media = await uow.media.get(project_id, media_id)
        if media is None:
            raise NotFound(MEDIA_NOT_FOUND)
        if media.upload_http_status is None:
            raise NotFound("Media not yet uploaded")
        if not media.is_uploaded:
            raise NotFound(
                f"Media upload failed with status {media.upload_http_status}: \n "
                f"{media.upload_http_error}"
            )
        expiry = self._clock.now() + timedelta(seconds=self._ttl)
        url = await self._links.download_url(media, base_url=base_url, expires_in=self._ttl)
        return MediaDownload(media, url, expiry)


class PatchMedia:
    """`PATCH /api/public/media/{mediaId}`: the client reports how its upload went."""

    def __init__(self, records: RecordStore, clock: Clock) -> None:
        self._records = records
        self._clock = clock

    async def __call__(self, project_id: str, media_id: str, body: Any) -> None:
        result = parse_upload_result(body)
        succeeded = result.upload_http_status in UPLOAD_SUCCESS_STATUSES
        async with self._records.unit_of_work() as uow:
            found = await uow.media.record_upload(
                project_id,
                media_id,
                uploaded_at=result.uploaded_at,
                upload_http_status=result.upload_http_status,
                # A successful PUT's body (S3's is empty, Azure's XML) is not an error.
                upload_http_error=None if succeeded else result.upload_http_error,
                upload_time_ms=result.upload_time_ms,
                updated_at=self._clock.now(),
            )
            if not found:
                raise NotFound(f"Media asset {media_id} not found in project {project_id}")
            await uow.commit()


# Reads the request body: at most `limit` bytes, else raises `PayloadTooLarge`.
BodyReader = Callable[[int], Awaitable[bytes]]


class UploadMediaContent:
    """`PUT /api/public/media/{mediaId}/upload?token=…`: the presigned upload Fathom serves
    when the blob store cannot. Like S3 with a signed checksum, it stores only the declared
    bytes: the content type, length and SHA-256 of the grant must match."""

    def __init__(self, blob: BlobStore, signer: MediaLinkSigner) -> None:
        self._blob = blob
        self._signer = signer

    async def __call__(
        self,
        media_id: str,
        token: str | None,
        read: BodyReader,
        *,
        content_type: str | None = None,
    ) -> None:
        grant = self._signer.verify(token, action=UPLOAD, media_id=media_id)
        if content_type:
            sent = content_type.split(";", 1)[0].strip().lower()
            if sent != grant.content_type:
                raise InvalidInput(
                    f"Content-Type {sent!r} does not match the declared {grant.content_type!r}"
                )
        data = await read(grant.content_length)
        if len(data) != grant.content_length:
            raise InvalidInput(
                f"The upload has {len(data)} bytes; {grant.content_length} were declared"
            )
        if sha256_base64(data) != grant.sha256_hash:
            raise InvalidInput("The SHA-256 of the upload does not match the declared sha256Hash")
        await self._blob.put(grant.blob_key, data, grant.content_type)


@dataclass(frozen=True, slots=True)
class MediaContent:
    data: bytes
    content_type: str


class DownloadMediaContent:
    """`GET /api/public/media/{mediaId}/download?token=…`: the bytes of a granted download."""

    def __init__(self, blob: BlobStore, signer: MediaLinkSigner) -> None:
        self._blob = blob
        self._signer = signer

    async def __call__(self, media_id: str, token: str | None) -> MediaContent:
        grant = self._signer.verify(token, action=DOWNLOAD, media_id=media_id)
        try:
            data = await self._blob.get(grant.blob_key)
        except NotFound:
            raise NotFound("Media content not found") from None
        return MediaContent(data, grant.content_type)
