"""`/api/public/media` over HTTP on the default (local) blob store: Fathom serves the upload
and download links itself, and the official SDK's upload code works against them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import queue
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from fathom.core.domain.media import media_id_for, media_signing_key
from fathom.core.ports.system import Clock
from fathom.core.usecases.media import (
    GetMedia,
    GetMediaUploadUrl,
    MediaLinks,
    MediaLinkSigner,
    PatchMedia,
)
from fathom.entrypoints.bootstrap import Runtime
from tests.conftest import PUBLIC_KEY, SECRET_KEY, basic_auth


@pytest.fixture
def client(records_client: TestClient) -> TestClient:
    """The app on the default (local) blob store, which serves media links itself."""
    return records_client


def sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def upload_request(data: bytes, content_type: str = "image/png", **extra: Any) -> dict[str, Any]:
    return {
        "traceId": "trace-1",
        "observationId": None,
        "contentType": content_type,
        "contentLength": len(data),
        "sha256Hash": sha256(data),
        "field": "input",
        **extra,
    }


def relative(url: str) -> str:
    """A link Fathom handed out, as a path for the test client (which adds the host)."""
    return URL(url).raw_path_qs


async def request_upload(client: TestClient, data: bytes, **extra: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/public/media", json=upload_request(data, **extra), headers=basic_auth()
    )
    assert response.status == 201, await response.text()
    return await response.json()


async def put_bytes(client: TestClient, url: str, data: bytes, content_type: str) -> Any:
    # Exactly what the SDK sends (langfuse/_task_manager/media_manager.py).
    headers = {
        "Content-Type": content_type,
        "x-ms-blob-type": "BlockBlob",
        "x-amz-checksum-sha256": sha256(data),
    }
    return await client.put(relative(url), data=data, headers=headers)


PATCH_OK = {"uploadedAt": "2026-03-04T05:06:08.123Z", "uploadHttpStatus": 200}


async def test_upload_report_and_download_round_trip(client: TestClient) -> None:
    data = b"\x89PNG\r\n\x1a\n" + os.urandom(5000)
    created = await request_upload(client, data)
    media_id = created["mediaId"]
    assert media_id == media_id_for(sha256(data))
    upload_url = URL(created["uploadUrl"])
    assert (upload_url.host, upload_url.port) == (client.host, client.port)
    assert upload_url.path == f"/api/public/media/{media_id}/upload"

    uploaded = await put_bytes(client, created["uploadUrl"], data, "image/png")
    assert uploaded.status == 200
    assert await uploaded.read() == b""

    patched = await client.patch(
        f"/api/public/media/{media_id}", json={**PATCH_OK, "uploadTimeMs": 5}, headers=basic_auth()
    )
    assert patched.status == 204

    response = await client.get(f"/api/public/media/{media_id}", headers=basic_auth())
    assert response.status == 200
    body = await response.json()
    assert set(body) == {
        "mediaId",
        "contentType",
        "contentLength",
        "uploadedAt",
        "url",
        "urlExpiry",
    }
    assert body["mediaId"] == media_id
    assert (body["contentType"], body["contentLength"]) == ("image/png", len(data))
    assert body["uploadedAt"] == "2026-03-04T05:06:08.123Z"
    assert body["urlExpiry"].endswith("Z")

    # The download link needs no API key: readers (and browsers) fetch it as is.
    downloaded = await client.get(relative(body["url"]))
    assert downloaded.status == 200
    assert await downloaded.read() == data
    assert downloaded.headers["Content-Type"] == "image/png"
    assert downloaded.headers["X-Content-Type-Options"] == "nosniff"

    again = await request_upload(client, data, traceId="trace-2")
    assert again == {"mediaId": media_id, "uploadUrl": None}


async def test_uploads_larger_than_the_json_body_limit_stream_through(client: TestClient) -> None:
    data = os.urandom(3 * 1024 * 1024)
    created = await request_upload(client, data, content_type="application/octet-stream")
    uploaded = await put_bytes(client, created["uploadUrl"], data, "application/octet-stream")
    assert uploaded.status == 200, await uploaded.text()
    await client.patch(
        f"/api/public/media/{created['mediaId']}", json=PATCH_OK, headers=basic_auth()
    )
    body = await (
        await client.get(f"/api/public/media/{created['mediaId']}", headers=basic_auth())
    ).json()
    assert await (await client.get(relative(body["url"]))).read() == data


async def test_bad_uploads_are_refused_and_store_nothing(
    client: TestClient, records_runtime: Runtime
) -> None:
    data = b"genuine bytes"
    created = await request_upload(client, data, content_type="text/plain")
    url = created["uploadUrl"]

    wrong = await put_bytes(client, url, b"GENUINE BYTES", "text/plain")
    assert wrong.status == 400
    assert "SHA-256" in (await wrong.json())["message"]
    longer = await put_bytes(client, url, data + b"!", "text/plain")
    assert longer.status == 422
    wrong_type = await put_bytes(client, url, data, "image/png")
    assert wrong_type.status == 400

    token = URL(url).query["token"]
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    denied = await client.put(
        f"/api/public/media/{created['mediaId']}/upload", params={"token": forged}, data=data
    )
    assert denied.status == 403
    assert (await denied.json())["error"] == "ForbiddenError"
    missing = await client.put(f"/api/public/media/{created['mediaId']}/upload", data=data)
    assert missing.status == 403
    other_id = await client.put(
        "/api/public/media/another-id/upload", params={"token": token}, data=data
    )
    assert other_id.status == 403

    blobs = records_runtime.settings.data_dir / "blobs"
    assert not list(blobs.rglob("*.txt"))
    # A download link never works for uploads, nor an upload link for downloads.
    as_download = await client.get(
        f"/api/public/media/{created['mediaId']}/download", params={"token": token}
    )
    assert as_download.status == 403


async def test_validation_and_not_found_answers(client: TestClient) -> None:
    bad = await client.post(
        "/api/public/media",
        json=upload_request(b"x", content_type="image/unknown"),
        headers=basic_auth(),
    )
    assert bad.status == 400
    assert (await bad.json())["error"] == "InvalidRequestError"
    no_context = await client.post(
        "/api/public/media", json=upload_request(b"x", traceId=None), headers=basic_auth()
    )
    assert no_context.status == 400

    unknown = await client.get("/api/public/media/nope", headers=basic_auth())
    assert unknown.status == 404
    assert (await unknown.json()) == {
        "message": "Media asset not found",
        "error": "LangfuseNotFoundError",
    }
    patch_unknown = await client.patch(
        "/api/public/media/nope", json=PATCH_OK, headers=basic_auth()
    )
    assert patch_unknown.status == 404
    bad_patch = await client.patch(
        "/api/public/media/nope", json={"uploadHttpStatus": 200}, headers=basic_auth()
    )
    assert bad_patch.status == 400

    created = await request_upload(client, b"not yet")
    pending = await client.get(f"/api/public/media/{created['mediaId']}", headers=basic_auth())
    assert pending.status == 404
    assert (await pending.json())["message"] == "Media not yet uploaded"


async def test_every_media_route_but_the_links_needs_a_key(client: TestClient) -> None:
    assert (await client.post("/api/public/media", json=upload_request(b"x"))).status == 401
    assert (await client.get("/api/public/media/x")).status == 401
    assert (await client.patch("/api/public/media/x", json=PATCH_OK)).status == 401
    wrong = basic_auth(PUBLIC_KEY, "sk-lf-wrong")
    assert (await client.get("/api/public/media/x", headers=wrong)).status == 401


async def test_links_follow_the_address_the_client_used(client: TestClient) -> None:
    response = await client.post(
        "/api/public/media",
        json=upload_request(b"behind a proxy"),
        headers={
            **basic_auth(),
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "fathom.example.com",
        },
    )
    url = (await response.json())["uploadUrl"]
    assert url.startswith("https://fathom.example.com/api/public/media/")


async def test_the_sdks_own_upload_code_works_against_fathom(client: TestClient) -> None:
    """Runs langfuse's MediaManager (sync httpx) in a thread against this server."""
    from langfuse._task_manager.media_manager import MediaManager
    from langfuse.api import LangfuseAPI
    from langfuse.media import LangfuseMedia

    data = b"\x89PNG\r\n\x1a\n" + os.urandom(2048)
    sdk_media = LangfuseMedia(content_bytes=data, content_type="image/png")
    base = str(client.make_url("")).rstrip("/")

    def upload_and_fetch() -> tuple[bytes, str]:
        with httpx.Client(timeout=10) as http:
            api = LangfuseAPI(
                base_url=base, username=PUBLIC_KEY, password=SECRET_KEY, httpx_client=http
            )
            manager = MediaManager(
                api_client=api, httpx_client=http, media_upload_queue=queue.Queue()
            )
            manager._process_upload_media_job(
                data={
                    "media_id": sdk_media._media_id,
                    "content_bytes": data,
                    "content_type": "image/png",
                    "content_length": len(data),
                    "content_sha256_hash": sdk_media._content_sha256_hash,
                    "trace_id": "sdk-trace",
                    "observation_id": "sdk-observation",
                    "dataset_id": None,
                    "dataset_item_id": None,
                    "field": "output",
                }
            )
            record = api.media.get(sdk_media._media_id)
            content = http.get(record.url)
            content.raise_for_status()
            return content.content, record.content_type

    downloaded, content_type = await asyncio.to_thread(upload_and_fetch)
    assert (downloaded, content_type) == (data, "image/png")


@pytest.mark.parametrize("kind", ["s3", "azure", "gcs"])
async def test_on_an_object_store_clients_upload_and_download_directly(
    kind: str, records_runtime: Runtime, request: pytest.FixtureRequest
) -> None:
    """With a cloud store the links are its presigned URLs: bytes never pass through Fathom."""
    from fathom.core.ports.records import RecordStore
    from tests.contracts.test_blob_store import ADAPTERS

    data = b"\x89PNG\r\n\x1a\n" + os.urandom(4096)
    clock = records_runtime.resolve(Clock)
    records = records_runtime.resolve(RecordStore)
    async with ADAPTERS[kind](request) as store:
        links = MediaLinks(store, MediaLinkSigner(media_signing_key("salt"), clock))
        get_upload_url = GetMediaUploadUrl(records, links, clock)
        created = await get_upload_url("project-test", upload_request(data), base_url="http://x")
        assert created.upload_url is not None
        assert not created.upload_url.startswith("http://x/")

        async with httpx.AsyncClient() as http:
            headers = {
                "Content-Type": "image/png",
                "x-ms-blob-type": "BlockBlob",
                "x-amz-checksum-sha256": sha256(data),
            }
            uploaded = await http.put(created.upload_url, content=data, headers=headers)
            assert uploaded.is_success, uploaded.text
            await PatchMedia(records, clock)(
                "project-test",
                created.media_id,
                {**PATCH_OK, "uploadHttpStatus": uploaded.status_code},
            )
            found = await GetMedia(records, links, clock)(
                "project-test", created.media_id, base_url="http://x"
            )
            downloaded = await http.get(found.url)
        assert downloaded.content == data
        assert await store.get(f"media/project-test/{created.media_id}.png") == data
