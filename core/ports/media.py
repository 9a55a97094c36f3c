"""Ports of multi-modal media: the records, and what a blob store may offer for uploads."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from fathom.core.domain.media import Media


class MediaRepository(Protocol):
    """Media records, unique per project by id and by content hash."""

    async def get(self, project_id: str, media_id: str) -> Media | None: ...

    async def get_by_hash(self, project_id: str, sha256_hash: str) -> Media | None: ...

    async def upsert(self, media: Media) -> None:
        """Insert, or when the project already has this hash, replace its content type,
        length and blob key (keeping id, creation time and upload status, as upstream does).
        Safe against a concurrent upsert of the same hash."""
        ...

    async def record_upload(
        self,
        project_id: str,
        media_id: str,
        *,
        uploaded_at: datetime,
        upload_http_status: int,
        upload_http_error: str | None,
        upload_time_ms: int | None,
        updated_at: datetime,
    ) -> bool:
        """Store the client's upload outcome; False when there is no such media."""
        ...


@runtime_checkable
class PresignsUploads(Protocol):
    """A blob store that can hand clients a URL to PUT one object to directly.

    The cloud stores (S3, Azure, GCS) do; the local store does not, and Fathom then serves
    the upload itself. `sha256` is the base64 digest the client declared: stores that can
    (S3) bind it into the URL so a different body is refused."""

    async def signed_upload_url(
        self, key: str, *, content_type: str, sha256: str, expires_in: int = 3600
    ) -> str: ...
