"""Ports of multi-modal media: the records, and what a blob store may offer for uploads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from fathom.core.domain.media import (
    DatasetItemMediaLink,
    Media,
    MediaLink,
    ObservationMediaLink,
    TraceMediaLink,
)


class MediaRepository(Protocol):
    """Media records, unique per project by id and by content hash, and their links to the
    traces, observations and dataset items they were requested for."""

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

    async def add_links(self, links: Sequence[MediaLink]) -> None:
        """Store links to existing media; a link already stored (same project, media, entity
        and field) is kept as it is, also when a concurrent writer stores it first."""
        ...

    async def links_of_traces(
        self, project_id: str, trace_ids: Sequence[str]
    ) -> list[TraceMediaLink | ObservationMediaLink]:
        """The links of these traces and of their observations."""
        ...

    async def links_of_dataset_items(
        self, project_id: str, dataset_item_ids: Sequence[str]
    ) -> list[DatasetItemMediaLink]: ...

    async def delete_links_of_traces(self, project_id: str, trace_ids: Sequence[str]) -> set[str]:
        """Delete the links of these traces and of their observations; returns the ids of the
        media they linked to."""
        ...

    async def delete_links_of_dataset_items(
        self, project_id: str, dataset_item_ids: Sequence[str]
    ) -> set[str]:
        """Delete the links of these dataset items; returns the ids of the media they linked
        to."""
        ...

    async def delete_unlinked(self, project_id: str, media_ids: Sequence[str]) -> list[Media]:
        """Delete those of these media records that no trace, observation or dataset item
        links to any more, and return them (their bytes are the caller's to delete)."""
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
