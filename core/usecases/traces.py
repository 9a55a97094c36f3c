"""Deleting traces (`DELETE /api/public/traces[/{traceId}]`)."""

from __future__ import annotations

from collections.abc import Sequence

from fathom.core.ports.blob import BlobStore
from fathom.core.ports.records import RecordStore
from fathom.core.ports.telemetry import TelemetryStore


class DeleteTraces:
    """The traces with their observations and scores, and their media links. Media that
    nothing links to any more go too, record and bytes, as upstream's trace deletion does;
    media still linked from another trace, observation or dataset item stay."""

    def __init__(self, telemetry: TelemetryStore, records: RecordStore, blob: BlobStore) -> None:
        self._telemetry = telemetry
        self._records = records
        self._blob = blob

    async def __call__(self, project_id: str, trace_ids: Sequence[str]) -> None:
        async with self._records.unit_of_work() as uow:
            linked = await uow.media.delete_links_of_traces(project_id, trace_ids)
            unlinked = await uow.media.delete_unlinked(project_id, sorted(linked))
            # Bytes before the commit, as upstream deletes objects first: when the blob store
            # fails, links and records stay for a retry instead of bytes no record points to.
            for media in unlinked:
                await self._blob.delete(media.blob_key)
            await uow.commit()
        # Media before telemetry, as upstream: a failure above leaves the traces to retry with.
        await self._telemetry.delete_traces(project_id, list(trace_ids))
