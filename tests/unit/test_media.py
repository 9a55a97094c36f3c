"""Media in the core: ids, references, request validation, signed grants and the use cases."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Self
from urllib.parse import parse_qs, urlparse

import pytest
from langfuse.media import LangfuseMedia

from fathom.core.domain.errors import Forbidden, InvalidInput, NotFound, PayloadTooLarge
from fathom.core.domain.media import (
    DOWNLOAD,
    UPLOAD,
    DatasetItemMediaLink,
    Media,
    MediaGrant,
    MediaLink,
    MediaLinkOrigin,
    MediaReference,
    ObservationMediaLink,
    TraceMediaLink,
    blob_key_for,
    find_media_references,
    media_id_for,
    media_signing_key,
    parse_media_reference,
    parse_upload_request,
    parse_upload_result,
    sha256_base64,
    sign_grant,
    verify_grant,
)
from fathom.core.usecases.media import (
    DownloadMediaContent,
    GetMedia,
    GetMediaUploadUrl,
    MediaLinks,
    MediaLinkSigner,
    PatchMedia,
    UploadMediaContent,
)
from fathom.core.usecases.traces import DeleteTraces
from tests.unit.fakes import FakeClock

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
PNG_SHA = sha256_base64(PNG)
PROJECT = "p1"
BASE = "http://fathom.test:3000"
KEY = media_signing_key("test-salt")


# -- fakes -------------------------------------------------------------------------------------


def link_key(link: MediaLink) -> tuple[str, ...]:
    """What a link is unique by: the primary key of its table in the SQL store."""
    if isinstance(link, ObservationMediaLink):
        ids: tuple[str, ...] = ("observation", link.trace_id, link.observation_id)
    elif isinstance(link, TraceMediaLink):
        ids = ("trace", link.trace_id)
    else:
        ids = ("item", link.dataset_item_id)
    return (link.project_id, *ids, link.media_id, link.field)


class FakeMediaRepository:
    def __init__(
        self, rows: dict[tuple[str, str], Media], links: dict[tuple[str, ...], MediaLink]
    ) -> None:
        self.rows = rows
        self.links = links

    async def get(self, project_id: str, media_id: str) -> Media | None:
        return self.rows.get((project_id, media_id))

    async def get_by_hash(self, project_id: str, sha256_hash: str) -> Media | None:
        return next(
            (
                m
                for m in self.rows.values()
                if (m.project_id, m.sha256_hash) == (project_id, sha256_hash)
            ),
            None,
        )

    async def upsert(self, media: Media) -> None:
        existing = await self.get_by_hash(media.project_id, media.sha256_hash)
        if existing is not None:
            media = replace(
                existing,
                content_type=media.content_type,
                content_length=media.content_length,
                blob_key=media.blob_key,
                updated_at=media.updated_at,
            )
        self.rows[(media.project_id, media.id)] = media

    async def record_upload(
        self, project_id: str, media_id: str, *, updated_at: datetime, **result: Any
    ) -> bool:
        found = self.rows.get((project_id, media_id))
        if found is None:
            return False
        self.rows[(project_id, media_id)] = replace(found, updated_at=updated_at, **result)
        return True

    async def add_links(self, links: Sequence[MediaLink]) -> None:
        for link in links:
            assert (link.project_id, link.media_id) in self.rows, "links need their media"
            self.links.setdefault(link_key(link), link)

    async def links_of_traces(
        self, project_id: str, trace_ids: Sequence[str]
    ) -> list[TraceMediaLink | ObservationMediaLink]:
        return [
            link
            for link in self.links.values()
            if isinstance(link, TraceMediaLink | ObservationMediaLink)
            and link.project_id == project_id
            and link.trace_id in trace_ids
        ]

    async def links_of_dataset_items(
        self, project_id: str, dataset_item_ids: Sequence[str]
    ) -> list[DatasetItemMediaLink]:
        return [
            link
            for link in self.links.values()
            if isinstance(link, DatasetItemMediaLink)
            and link.project_id == project_id
            and link.dataset_item_id in dataset_item_ids
        ]

    async def delete_links_of_traces(self, project_id: str, trace_ids: Sequence[str]) -> set[str]:
        return self._delete_links(await self.links_of_traces(project_id, trace_ids))

    async def delete_links_of_dataset_items(
        self, project_id: str, dataset_item_ids: Sequence[str]
    ) -> set[str]:
        return self._delete_links(await self.links_of_dataset_items(project_id, dataset_item_ids))

    async def delete_unlinked(self, project_id: str, media_ids: Sequence[str]) -> list[Media]:
        linked = {(link.project_id, link.media_id) for link in self.links.values()}
        doomed = sorted(
            (project_id, media_id)
            for media_id in set(media_ids)
            if (project_id, media_id) in self.rows and (project_id, media_id) not in linked
        )
        return [self.rows.pop(key) for key in doomed]

    def _delete_links(self, links: Sequence[MediaLink]) -> set[str]:
        for link in links:
            del self.links[link_key(link)]
        return {link.media_id for link in links}


class FakeUnitOfWork:
    def __init__(self, store: FakeRecords) -> None:
        self._store = store
        self._pending = dict(store.media_rows)
        self._pending_links = dict(store.links)
        self.media = FakeMediaRepository(self._pending, self._pending_links)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass

    async def commit(self) -> None:
        self._store.media_rows = dict(self._pending)
        self._store.links = dict(self._pending_links)


class FakeRecords:
    def __init__(self) -> None:
        self.media_rows: dict[tuple[str, str], Media] = {}
        self.links: dict[tuple[str, ...], MediaLink] = {}

    def unit_of_work(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)


class FakeBlobStore:
    """The local store's shape: no presigned uploads."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str | None]] = {}

    async def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        self.objects[key] = (data, content_type)

    async def get(self, key: str) -> bytes:
        if key not in self.objects:
            raise NotFound(key)
        return self.objects[key][0]

    async def list(self, prefix: str) -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    async def signed_url(self, key: str, method: str = "GET", expires_in: int = 3600) -> str:
        return f"file:///blobs/{key}"

    async def ping(self) -> None:
        pass


class FakePresigningStore(FakeBlobStore):
    """A cloud store's shape: it signs uploads itself."""

    async def signed_url(self, key: str, method: str = "GET", expires_in: int = 3600) -> str:
        return f"https://bucket.example/{key}?method={method}&expires={expires_in}"

    async def signed_upload_url(
        self, key: str, *, content_type: str, sha256: str, expires_in: int = 3600
    ) -> str:
        return f"https://bucket.example/{key}?type={content_type}&sha={sha256}"


class FailingDeletesStore(FakeBlobStore):
    async def delete(self, key: str) -> None:
        raise OSError("the store is down")


class FakeTelemetry:
    """The one telemetry call trace deletion makes."""

    def __init__(self) -> None:
        self.deleted: list[tuple[str, list[str]]] = []

    async def delete_traces(self, project_id: str, trace_ids: list[str]) -> None:
        self.deleted.append((project_id, trace_ids))


class Setup:
    def __init__(self, blob: FakeBlobStore | None = None) -> None:
        self.clock = FakeClock(datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC))
        self.records = FakeRecords()
        self.blob = blob or FakeBlobStore()
        self.signer = MediaLinkSigner(KEY, self.clock)
        links = MediaLinks(self.blob, self.signer)
        self.upload_url = GetMediaUploadUrl(self.records, links, self.clock)
        self.get = GetMedia(self.records, links, self.clock)
        self.patch = PatchMedia(self.records, self.clock)
        self.upload = UploadMediaContent(self.blob, self.signer)
        self.download = DownloadMediaContent(self.blob, self.signer)
        self.telemetry = FakeTelemetry()
        self.delete_traces = DeleteTraces(self.telemetry, self.records, self.blob)  # type: ignore[arg-type]


def request_body(data: bytes = PNG, **overrides: Any) -> dict[str, Any]:
    body = {
        "traceId": "trace-1",
        "observationId": None,
        "contentType": "image/png",
        "contentLength": len(data),
        "sha256Hash": sha256_base64(data),
        "field": "input",
    }
    body.update(overrides)
    return body


def token_of(url: str) -> str:
    return parse_qs(urlparse(url).query)["token"][0]


def reader(data: bytes) -> Any:
    async def read(limit: int) -> bytes:
        if len(data) > limit:
            raise PayloadTooLarge("too large")
        return data

    return read


PATCH_OK = {
    "uploadedAt": "2026-03-04T05:06:08.000Z",
    "uploadHttpStatus": 200,
    "uploadHttpError": "",
}


# -- ids and references ------------------------------------------------------------------------


def test_media_id_and_reference_match_the_sdk() -> None:
    sdk = LangfuseMedia(content_bytes=PNG, content_type="image/png")
    assert sdk._content_sha256_hash == PNG_SHA
    assert media_id_for(PNG_SHA) == sdk._media_id
    reference = MediaReference("image/png", media_id_for(PNG_SHA), "bytes")
    assert str(reference) == sdk._reference_string
    assert parse_media_reference(sdk._reference_string) == reference


def test_media_ids_are_url_safe() -> None:
    digest = base64.b64encode(bytes([0xFB, 0xFF] * 16)).decode()
    assert "+" in digest and "/" in digest
    assert media_id_for(digest) == digest.replace("+", "-").replace("/", "_")[:22]


def test_blob_keys_use_the_content_types_extension() -> None:
    assert blob_key_for("p1", "abc", "image/png") == "media/p1/abc.png"
    assert blob_key_for("p1", "abc", "audio/mp3") == "media/p1/abc.mp3"
    assert blob_key_for("p1", "abc", "application/octet-stream") == "media/p1/abc.bin"


def test_references_are_found_anywhere_in_a_payload() -> None:
    one = "@@@langfuseMedia:type=image/png|id=AAAA|source=base64_data_uri@@@"
    two = "@@@langfuseMedia:type=audio/wav|id=BBBB|source=file@@@"
    payload = {
        "messages": [{"content": [{"type": "image", "url": one}]}],
        "text": f"before {two} after",
        "broken": "@@@langfuseMedia:type=x@@@",
        "n": 3,
    }
    assert find_media_references(payload) == [
        MediaReference("image/png", "AAAA", "base64_data_uri"),
        MediaReference("audio/wav", "BBBB", "file"),
    ]
    assert find_media_references("plain") == []


@pytest.mark.parametrize(
    "text",
    ["", "@@@langfuseMedia:type=image/png|id=x@@@", "langfuseMedia:type=a|id=b|source=c", 3],
)
def test_malformed_references_are_refused(text: Any) -> None:
    with pytest.raises(InvalidInput):
        parse_media_reference(text)


# -- request validation ------------------------------------------------------------------------


def test_a_trace_upload_request_parses() -> None:
    parsed = parse_upload_request(request_body(observationId="obs-1", field="output"))
    assert (parsed.trace_id, parsed.observation_id, parsed.field) == ("trace-1", "obs-1", "output")
    assert parsed.content_length == len(PNG)


def test_a_dataset_item_upload_request_parses() -> None:
    body = request_body(traceId=None, datasetId="d1", datasetItemId="i1", field="expectedOutput")
    parsed = parse_upload_request(body)
    assert (parsed.dataset_id, parsed.dataset_item_id, parsed.trace_id) == ("d1", "i1", None)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"contentType": "image/x-unknown"}, "Invalid content type"),
        ({"contentLength": 0}, "contentLength"),
        ({"contentLength": True}, "contentLength"),
        ({"contentLength": 1.5}, "contentLength"),
        ({"contentLength": 1_000_000_001}, "File size must be less than 1000000000 bytes"),
        ({"sha256Hash": "abc"}, "44 character base64"),
        ({"sha256Hash": "!" * 44}, "44 character base64"),
        ({"sha256Hash": "=" * 44}, "44 character base64"),
        ({"field": "expectedOutput"}, "Invalid field"),
        ({"traceId": None}, "exactly one context"),
        ({"traceId": None, "observationId": "o"}, "observationId requires traceId"),
        ({"datasetId": "d", "datasetItemId": "i"}, "exactly one context"),
        ({"traceId": None, "datasetId": "d"}, "both datasetId and datasetItemId"),
        ({"traceId": ""}, "traceId must be a non-empty string"),
    ],
)
def test_invalid_upload_requests_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as raised:
        parse_upload_request(request_body(**overrides))
    assert raised.value.message.startswith("Invalid request data: ")


def test_upload_results_parse() -> None:
    parsed = parse_upload_result({**PATCH_OK, "uploadTimeMs": 12.7})
    assert parsed.uploaded_at == datetime(2026, 3, 4, 5, 6, 8, tzinfo=UTC)
    assert (parsed.upload_http_status, parsed.upload_time_ms) == (200, 12)
    for bad in (
        {"uploadHttpStatus": 200},
        {**PATCH_OK, "uploadedAt": "yesterday"},
        {**PATCH_OK, "uploadHttpStatus": "200"},
        {**PATCH_OK, "uploadHttpError": 5},
        {**PATCH_OK, "uploadTimeMs": -1},
        [],
    ):
        with pytest.raises(InvalidInput):
            parse_upload_result(bad)


# -- signed grants -----------------------------------------------------------------------------

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
GRANT = MediaGrant(UPLOAD, "p1", "m1", "media/p1/m1.png", "image/png", 3, "h" * 44, 1772600827)


def test_a_grant_round_trips_until_it_expires() -> None:
    token = sign_grant(KEY, GRANT)
    assert verify_grant(KEY, token, action=UPLOAD, media_id="m1", now=NOW) == GRANT
    expired = datetime.fromtimestamp(GRANT.expires_at + 1, UTC)
    with pytest.raises(Forbidden, match="expired"):
        verify_grant(KEY, token, action=UPLOAD, media_id="m1", now=expired)


def test_grants_cannot_be_forged_or_reused_elsewhere() -> None:
    token = sign_grant(KEY, GRANT)
    payload, _, signature = token.partition(".")
    forged = sign_grant(KEY, replace(GRANT, content_length=10**9)).split(".")[0]
    for bad in (None, "", payload, f"{forged}.{signature}", f"{payload}.{signature[:-2]}AA"):
        with pytest.raises(Forbidden):
            verify_grant(KEY, bad, action=UPLOAD, media_id="m1", now=NOW)
    with pytest.raises(Forbidden):
        verify_grant(media_signing_key("other-salt"), token, action=UPLOAD, media_id="m1", now=NOW)
    with pytest.raises(Forbidden, match="does not match"):
        verify_grant(KEY, token, action=DOWNLOAD, media_id="m1", now=NOW)
    with pytest.raises(Forbidden, match="does not match"):
        verify_grant(KEY, token, action=UPLOAD, media_id="m2", now=NOW)


# -- use cases ---------------------------------------------------------------------------------


async def test_first_request_stores_a_record_and_answers_a_fathom_upload_link() -> None:
    s = Setup()
    found = await s.upload_url(PROJECT, request_body(), base_url=BASE + "/")
    assert found.media_id == media_id_for(PNG_SHA)
    assert found.upload_url is not None
    assert found.upload_url.startswith(f"{BASE}/api/public/media/{found.media_id}/upload?token=")
    record = s.records.media_rows[(PROJECT, found.media_id)]
    assert record.blob_key == f"media/{PROJECT}/{found.media_id}.png"
    assert (record.content_length, record.upload_http_status) == (len(PNG), None)
    assert record.created_at == s.clock.now()


async def test_the_whole_local_flow_uploads_reports_and_downloads() -> None:
    s = Setup()
    found = await s.upload_url(PROJECT, request_body(), base_url=BASE)
    assert found.upload_url is not None
    await s.upload(
        found.media_id, token_of(found.upload_url), reader(PNG), content_type="image/png"
    )
    assert s.blob.objects[f"media/{PROJECT}/{found.media_id}.png"] == (PNG, "image/png")
    with pytest.raises(NotFound, match="Media not yet uploaded"):
        await s.get(PROJECT, found.media_id, base_url=BASE)

    await s.patch(PROJECT, found.media_id, PATCH_OK)
    download = await s.get(PROJECT, found.media_id, base_url=BASE)
    assert download.url.startswith(f"{BASE}/api/public/media/{found.media_id}/download?token=")
    assert download.url_expiry == datetime(2026, 3, 4, 6, 6, 7, tzinfo=UTC)
    assert download.media.upload_http_error is None  # "" of a successful PUT is no error
    content = await s.download(found.media_id, token_of(download.url))
    assert (content.data, content.content_type) == (PNG, "image/png")

    again = await s.upload_url(PROJECT, request_body(traceId="trace-2"), base_url=BASE)
    assert (again.media_id, again.upload_url) == (found.media_id, None)


async def test_a_pending_or_failed_upload_gets_a_new_url() -> None:
    s = Setup()
    first = await s.upload_url(PROJECT, request_body(), base_url=BASE)
    pending = await s.upload_url(PROJECT, request_body(), base_url=BASE)
    assert pending.media_id == first.media_id and pending.upload_url
    await s.patch(
        PROJECT,
        first.media_id,
        {**PATCH_OK, "uploadHttpStatus": 403, "uploadHttpError": "AccessDenied"},
    )
    with pytest.raises(NotFound, match="Media upload failed with status 403: \n AccessDenied"):
        await s.get(PROJECT, first.media_id, base_url=BASE)
    retry = await s.upload_url(PROJECT, request_body(), base_url=BASE)
    assert retry.upload_url is not None


async def test_the_same_bytes_with_another_type_are_stored_again() -> None:
    s = Setup()
    first = await s.upload_url(PROJECT, request_body(), base_url=BASE)
    await s.patch(PROJECT, first.media_id, PATCH_OK)
    other = await s.upload_url(
        PROJECT, request_body(contentType="application/octet-stream"), base_url=BASE
    )
    assert other.media_id == first.media_id and other.upload_url
    record = s.records.media_rows[(PROJECT, first.media_id)]
    assert record.content_type == "application/octet-stream"
    assert record.blob_key.endswith(".bin")


async def test_dedup_is_per_project() -> None:
    s = Setup()
    first = await s.upload_url(PROJECT, request_body(), base_url=BASE)
    await s.patch(PROJECT, first.media_id, PATCH_OK)
    other = await s.upload_url("p2", request_body(), base_url=BASE)
    assert other.media_id == first.media_id and other.upload_url is not None
    assert s.records.media_rows[("p2", first.media_id)].blob_key.startswith("media/p2/")


async def test_azures_201_counts_as_uploaded() -> None:
    s = Setup()
    found = await s.upload_url(PROJECT, request_body(), base_url=BASE)
    await s.patch(PROJECT, found.media_id, {**PATCH_OK, "uploadHttpStatus": 201})
    assert (await s.get(PROJECT, found.media_id, base_url=BASE)).url
    assert (await s.upload_url(PROJECT, request_body(), base_url=BASE)).upload_url is None


async def test_a_presigning_store_signs_uploads_and_downloads_itself() -> None:
    s = Setup(FakePresigningStore())
    found = await s.upload_url(PROJECT, request_body(), base_url=BASE)
    key = f"media/{PROJECT}/{found.media_id}.png"
    assert found.upload_url == f"https://bucket.example/{key}?type=image/png&sha={PNG_SHA}"
    await s.patch(PROJECT, found.media_id, PATCH_OK)
    download = await s.get(PROJECT, found.media_id, base_url=BASE)
    assert download.url == f"https://bucket.example/{key}?method=GET&expires=3600"


async def test_unknown_media_are_not_found() -> None:
    s = Setup()
    with pytest.raises(NotFound, match="Media asset not found"):
        await s.get(PROJECT, "missing", base_url=BASE)
    with pytest.raises(NotFound, match="Media asset missing not found in project p1"):
        await s.patch(PROJECT, "missing", PATCH_OK)
    found = await s.upload_url(PROJECT, request_body(), base_url=BASE)
    with pytest.raises(NotFound):
        await s.get("p2", found.media_id, base_url=BASE)


async def test_uploads_must_be_the_declared_bytes() -> None:
    s = Setup()
    found = await s.upload_url(PROJECT, request_body(), base_url=BASE)
    assert found.upload_url is not None
    token = token_of(found.upload_url)
    tampered = bytes([PNG[0] ^ 1]) + PNG[1:]
    with pytest.raises(InvalidInput, match="SHA-256"):
        await s.upload(found.media_id, token, reader(tampered))
    with pytest.raises(InvalidInput, match="has 10 bytes"):
        await s.upload(found.media_id, token, reader(PNG[:10]))
    with pytest.raises(PayloadTooLarge):
        await s.upload(found.media_id, token, reader(PNG + b"x"))
    with pytest.raises(InvalidInput, match="Content-Type 'image/jpeg'"):
        await s.upload(found.media_id, token, reader(PNG), content_type="image/jpeg")
    with pytest.raises(Forbidden):
        await s.upload("other-id", token, reader(PNG))
    assert s.blob.objects == {}
    await s.upload(found.media_id, token, reader(PNG), content_type="Image/PNG; x=1")
    assert len(s.blob.objects) == 1


async def test_links_expire() -> None:
    s = Setup()
    found = await s.upload_url(PROJECT, request_body(), base_url=BASE)
    assert found.upload_url is not None
    s.clock.advance(3601)
    with pytest.raises(Forbidden, match="expired"):
        await s.upload(found.media_id, token_of(found.upload_url), reader(PNG))


async def test_download_links_do_not_upload_and_need_the_object() -> None:
    s = Setup()
    found = await s.upload_url(PROJECT, request_body(), base_url=BASE)
    await s.patch(PROJECT, found.media_id, PATCH_OK)  # the client lied: nothing was stored
    download = await s.get(PROJECT, found.media_id, base_url=BASE)
    with pytest.raises(Forbidden):
        await s.upload(found.media_id, token_of(download.url), reader(PNG))
    with pytest.raises(NotFound, match="Media content not found"):
        await s.download(found.media_id, token_of(download.url))


# -- links and trace deletion ----------------------------------------------------------------


async def test_upload_requests_link_their_trace_observation_or_item_once() -> None:
    s = Setup()
    now = s.clock.now()
    found = await s.upload_url(PROJECT, request_body(), base_url=BASE)
    await s.upload_url(PROJECT, request_body(), base_url=BASE)  # a retry: the link is kept
    await s.upload_url(PROJECT, request_body(observationId="obs-1", field="output"), base_url=BASE)
    item_body = request_body(traceId=None, datasetId="d1", datasetItemId="i1")
    await s.upload_url(PROJECT, item_body, base_url=BASE)
    origin = MediaLinkOrigin.CLIENT_UPLOAD
    assert sorted(s.records.links.values(), key=repr) == sorted(
        [
            TraceMediaLink(PROJECT, found.media_id, "trace-1", "input", origin, now),
            ObservationMediaLink(
                PROJECT, found.media_id, "trace-1", "obs-1", "output", origin, now
            ),
            DatasetItemMediaLink(PROJECT, found.media_id, "d1", "i1", "input", origin, now),
        ],
        key=repr,
    )


async def test_known_bytes_are_linked_to_the_next_trace_too() -> None:
    s = Setup()
    found = await s.upload_url(PROJECT, request_body(), base_url=BASE)
    await s.patch(PROJECT, found.media_id, PATCH_OK)
    s.clock.advance(5)
    again = await s.upload_url(PROJECT, request_body(traceId="trace-2"), base_url=BASE)
    assert again.upload_url is None
    async with s.records.unit_of_work() as uow:
        links = await uow.media.links_of_traces(PROJECT, ["trace-2"])
    assert links == [
        TraceMediaLink(
            PROJECT,
            found.media_id,
            "trace-2",
            "input",
            MediaLinkOrigin.CLIENT_UPLOAD,
            s.clock.now(),
        )
    ]


async def test_refused_requests_link_nothing() -> None:
    s = Setup()
    with pytest.raises(InvalidInput, match="Invalid field"):
        await s.upload_url(PROJECT, request_body(field="expectedOutput"), base_url=BASE)
    assert (s.records.media_rows, s.records.links) == ({}, {})


async def test_deleting_traces_deletes_their_links_and_media_nothing_else_links() -> None:
    s = Setup()
    shared = b"shared bytes"
    only_here = b"only in trace-1"
    for data, body in [
        (shared, request_body(shared)),
        (only_here, request_body(only_here, observationId="obs-1", field="output")),
        (shared, request_body(shared, traceId="trace-2")),
    ]:
        found = await s.upload_url(PROJECT, {**body, "contentType": "text/plain"}, base_url=BASE)
        if found.upload_url is not None:
            await s.upload(found.media_id, token_of(found.upload_url), reader(data))
            await s.patch(PROJECT, found.media_id, PATCH_OK)
    shared_id, gone_id = media_id_for(sha256_base64(shared)), media_id_for(sha256_base64(only_here))

    await s.delete_traces(PROJECT, ["trace-1", "never-seen"])

    assert s.telemetry.deleted == [(PROJECT, ["trace-1", "never-seen"])]
    async with s.records.unit_of_work() as uow:
        assert await uow.media.links_of_traces(PROJECT, ["trace-1"]) == []
        assert [
            link.media_id for link in await uow.media.links_of_traces(PROJECT, ["trace-2"])
        ] == [shared_id]
        assert await uow.media.get(PROJECT, gone_id) is None
        assert await uow.media.get(PROJECT, shared_id) is not None
    assert list(s.blob.objects) == [f"media/{PROJECT}/{shared_id}.txt"]

    await s.delete_traces(PROJECT, ["trace-2"])
    assert (s.records.media_rows, s.records.links, s.blob.objects) == ({}, {}, {})


async def test_media_a_dataset_item_links_to_outlive_the_trace() -> None:
    s = Setup()
    await s.upload_url(PROJECT, request_body(), base_url=BASE)
    item_body = request_body(traceId=None, datasetId="d1", datasetItemId="i1")
    found = await s.upload_url(PROJECT, item_body, base_url=BASE)
    await s.delete_traces(PROJECT, ["trace-1"])
    assert list(s.records.media_rows) == [(PROJECT, found.media_id)]
    assert [type(link) for link in s.records.links.values()] == [DatasetItemMediaLink]


async def test_a_failing_blob_store_leaves_links_media_and_traces_for_a_retry() -> None:
    s = Setup(FailingDeletesStore())
    await s.upload_url(PROJECT, request_body(), base_url=BASE)
    with pytest.raises(OSError, match="the store is down"):
        await s.delete_traces(PROJECT, ["trace-1"])
    assert len(s.records.media_rows) == len(s.records.links) == 1
    assert s.telemetry.deleted == []


def test_signing_keys_differ_per_salt() -> None:
    assert media_signing_key("a") != media_signing_key("b")
    assert media_signing_key("a") != hashlib.sha256(b"a").digest()
