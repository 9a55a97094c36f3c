"""Media links over HTTP with the whole app: `POST /api/public/media` links the media to the
trace or observation it names, and deleting traces deletes their links, and the media that
nothing links to any more."""

from __future__ import annotations

import uuid

from aiohttp.test_utils import TestClient

from fathom.core.domain.media import (
    MediaLinkOrigin,
    ObservationMediaLink,
    TraceMediaLink,
    media_id_for,
)
from fathom.core.ports.records import RecordStore
from fathom.entrypoints.http.context import RUNTIME
from tests.api.conftest import wait_for
from tests.api.test_ingestion_api import event, post_batch
from tests.api.test_media_api import PATCH_OK, put_bytes, request_upload, sha256
from tests.conftest import PROJECT_ID, basic_auth


async def upload(client: TestClient, data: bytes, **context: str | None) -> str:
    """Request an upload for `data` in the given context and upload it, unless known."""
    created = await request_upload(client, data, content_type="text/plain", **context)
    if created["uploadUrl"] is not None:
        assert (await put_bytes(client, created["uploadUrl"], data, "text/plain")).status == 200
        patched = await client.patch(
            f"/api/public/media/{created['mediaId']}", json=PATCH_OK, headers=basic_auth()
        )
        assert patched.status == 204
    return created["mediaId"]


async def test_deleting_traces_deletes_their_media_links(client: TestClient) -> None:
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    await post_batch(
        client,
        [
            event("trace-create", {"id": first, "name": "with media"}),
            event("span-create", {"id": f"{first}-span", "traceId": first, "name": "step"}),
            event("trace-create", {"id": second, "name": "same picture"}),
        ],
    )
    for trace_id in (first, second):
        await wait_for(client, f"/api/public/traces/{trace_id}", lambda t: True)

    shared, own = b"in both traces", b"in the first trace's span"
    shared_id = await upload(client, shared, traceId=first)
    own_id = await upload(client, own, traceId=first, observationId=f"{first}-span", field="output")
    assert await upload(client, shared, traceId=second) == shared_id  # known bytes: no upload
    assert (shared_id, own_id) == (media_id_for(sha256(shared)), media_id_for(sha256(own)))

    runtime = client.app[RUNTIME]
    records = runtime.resolve(RecordStore)
    async with records.unit_of_work() as uow:
        links = await uow.media.links_of_traces(PROJECT_ID, [first, second])
    assert {(type(link), link.trace_id, link.media_id, link.field) for link in links} == {
        (TraceMediaLink, first, shared_id, "input"),
        (ObservationMediaLink, first, own_id, "output"),
        (TraceMediaLink, second, shared_id, "input"),
    }
    assert len(links) == 3
    assert {link.origin for link in links} == {MediaLinkOrigin.CLIENT_UPLOAD}
    assert [link.observation_id for link in links if isinstance(link, ObservationMediaLink)] == [
        f"{first}-span"
    ]

    response = await client.delete(f"/api/public/traces/{first}", headers=basic_auth())
    assert response.status == 200
    assert (await client.get(f"/api/public/traces/{first}", headers=basic_auth())).status == 404
    async with records.unit_of_work() as uow:
        assert await uow.media.links_of_traces(PROJECT_ID, [first]) == []
        assert [
            link.media_id for link in await uow.media.links_of_traces(PROJECT_ID, [second])
        ] == [shared_id]
    # Only the second trace links to the shared media: it stays, the span's own goes.
    assert (await client.get(f"/api/public/media/{shared_id}", headers=basic_auth())).status == 200
    gone = await client.get(f"/api/public/media/{own_id}", headers=basic_auth())
    assert gone.status == 404
    blobs = runtime.settings.data_dir / "blobs"
    assert [path.stem for path in blobs.rglob("*.txt")] == [shared_id]

    response = await client.request(
        "DELETE", "/api/public/traces", json={"traceIds": [second]}, headers=basic_auth()
    )
    assert response.status == 200
    async with records.unit_of_work() as uow:
        assert await uow.media.links_of_traces(PROJECT_ID, [first, second]) == []
    assert (await client.get(f"/api/public/media/{shared_id}", headers=basic_auth())).status == 404
    assert not list(blobs.rglob("*.txt"))


async def test_media_a_dataset_item_references_outlive_the_trace(client: TestClient) -> None:
    """An item copied from a trace carries its media tokens: the item links to that media, so
    deleting the trace leaves it."""
    trace_id = uuid.uuid4().hex
    await post_batch(client, [event("trace-create", {"id": trace_id, "name": "with media"})])
    await wait_for(client, f"/api/public/traces/{trace_id}", lambda t: True)
    media_id = await upload(client, b"a chart the item keeps", traceId=trace_id)
    token = f"@@@langfuseMedia:type=text/plain|id={media_id}|source=bytes@@@"
    unknown = "@@@langfuseMedia:type=text/plain|id=not-in-this-project|source=bytes@@@"

    created = await client.post(
        "/api/public/v2/datasets", json={"name": f"kept-{trace_id}"}, headers=basic_auth()
    )
    assert created.status == 200, await created.text()
    item = await client.post(
        "/api/public/dataset-items",
        json={
            "datasetName": f"kept-{trace_id}",
            "input": {"question": "what is shown?", "chart": token},
            "metadata": {"also": [unknown]},
            "sourceTraceId": trace_id,
        },
        headers=basic_auth(),
    )
    assert item.status == 200, await item.text()
    item_id = (await item.json())["id"]

    records = client.app[RUNTIME].resolve(RecordStore)
    async with records.unit_of_work() as uow:
        links = await uow.media.links_of_dataset_items(PROJECT_ID, [item_id])
    assert [(link.media_id, link.field, link.origin) for link in links] == [
        (media_id, "input", MediaLinkOrigin.INGESTION_MEDIA_EXTRACTION)
    ]

    assert (
        await client.delete(f"/api/public/traces/{trace_id}", headers=basic_auth())
    ).status == 200
    assert (await client.get(f"/api/public/media/{media_id}", headers=basic_auth())).status == 200
