"""Contract of `BlobStore`, run against every adapter.

To add an adapter, add an async context manager to `ADAPTERS` that yields a ready, empty store
(a fresh bucket/container or prefix per test, from the fixtures in tests/services/) and closes
it afterwards; the service fixtures skip the test locally (and fail it on CI) when their
emulator cannot run. Tests below the "object stores" line exercise what only the cloud
adapters have (real signed URLs, misconfiguration errors); the "local adapter" ones what only
the filesystem store has.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx
import pytest

from fathom.adapters.blob.local import LocalBlobStore
from fathom.core.domain.errors import ConfigurationError, Conflict, InvalidInput, NotFound
from fathom.core.ports.blob import BlobStore
from tests.services import object_stores as services

Factory = Callable[..., AbstractAsyncContextManager[Any]]


@contextlib.asynccontextmanager
async def _local(request: pytest.FixtureRequest, **options: Any) -> AsyncIterator[BlobStore]:
    tmp_path: Path = request.getfixturevalue("tmp_path")
    # fsync stays on: the contract is about the real durable code path.
    yield LocalBlobStore(tmp_path / "blobs", **options)


@contextlib.asynccontextmanager
async def _s3(request: pytest.FixtureRequest, **options: Any) -> AsyncIterator[Any]:
    endpoint = request.getfixturevalue("s3_endpoint")
    from fathom.adapters.blob.s3 import S3BlobStore

    settings: dict[str, Any] = {
        "endpoint_url": endpoint,
        "region": services.S3_REGION,
        "access_key_id": services.S3_ACCESS_KEY_ID,
        "secret_access_key": services.S3_SECRET_ACCESS_KEY,
        "force_path_style": True,
    }
    settings.update(options)
    bucket = settings.pop("bucket", None) or request.getfixturevalue("s3_bucket")
    store = S3BlobStore(bucket, **settings)
    try:
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def _azure(request: pytest.FixtureRequest, **options: Any) -> AsyncIterator[Any]:
    connection_string = request.getfixturevalue("azurite_connection_string")
    from fathom.adapters.blob.azure import AzureBlobStore

    settings: dict[str, Any] = {"connection_string": connection_string}
    settings.update(options)
    container = settings.pop("container", None) or request.getfixturevalue("azure_container")
    store = AzureBlobStore(container, **settings)
    try:
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def _gcs(request: pytest.FixtureRequest, **options: Any) -> AsyncIterator[Any]:
    endpoint = request.getfixturevalue("gcs_endpoint")
    from fathom.adapters.blob.gcs import GcsBlobStore

    settings: dict[str, Any] = {"endpoint_url": endpoint, "project": "fathom-test"}
    settings.update(options)
    bucket = settings.pop("bucket", None) or request.getfixturevalue("gcs_bucket")
    store = GcsBlobStore(bucket, **settings)
    try:
        yield store
    finally:
        await store.close()


ADAPTERS: dict[str, Factory] = {
    "local": _local,
    "s3": _s3,
    "azure": _azure,
    "gcs": _gcs,
}
CLOUD = ["s3", "azure", "gcs"]


@pytest.fixture(params=sorted(ADAPTERS))
async def store(request: pytest.FixtureRequest) -> AsyncIterator[BlobStore]:
    async with ADAPTERS[request.param](request) as blob_store:
        await blob_store.ping()
        yield blob_store


@dataclass
class Cloud:
    """Opens one cloud adapter on this test's bucket/container, with option overrides."""

    kind: str
    request: pytest.FixtureRequest

    def open(self, **options: Any) -> AbstractAsyncContextManager[Any]:
        return ADAPTERS[self.kind](self.request, **options)


@pytest.fixture(params=CLOUD)
def cloud(request: pytest.FixtureRequest) -> Cloud:
    return Cloud(request.param, request)


INVALID_KEYS = [
    "",
    "/absolute/key",
    "../escape",
    "a/../../escape",
    "a/./b",
    "a//b",
    "trailing/",
    "nul\x00byte",
    "back\\slash",
]


async def test_put_then_get_round_trips(store: BlobStore) -> None:
    await store.put("events/p1/2026/03/04/05/batch.json", b'{"a": 1}', "application/json")
    assert await store.get("events/p1/2026/03/04/05/batch.json") == b'{"a": 1}'


async def test_put_overwrites(store: BlobStore) -> None:
    await store.put("k", b"first version, longer")
    await store.put("k", b"second")
    assert await store.get("k") == b"second"
    assert await store.list("") == ["k"]


async def test_get_missing_key_raises_not_found(store: BlobStore) -> None:
    with pytest.raises(NotFound):
        await store.get("never/written")


async def test_delete_removes_and_is_idempotent(store: BlobStore) -> None:
    await store.put("a/b", b"x")
    await store.delete("a/b")
    with pytest.raises(NotFound):
        await store.get("a/b")
    await store.delete("a/b")
    await store.delete("never/written")
    assert await store.list("a/") == []


async def test_list_by_prefix_is_sorted(store: BlobStore) -> None:
    keys = ["b/2", "a/2", "a/10", "a/1", "ab/x", "a/sub/deep", "a-side"]
    await asyncio.gather(*(store.put(key, key.encode()) for key in keys))
    assert await store.list("a/") == ["a/1", "a/10", "a/2", "a/sub/deep"]
    # A prefix is a string prefix, not a folder: it may end in the middle of a segment.
    assert await store.list("a") == ["a-side", "a/1", "a/10", "a/2", "a/sub/deep", "ab/x"]
    assert await store.list("a/1") == ["a/1", "a/10"]
    assert await store.list("a/sub/") == ["a/sub/deep"]
    assert await store.list("") == sorted(keys)
    assert await store.list("zzz/") == []
    assert await store.list("a/nope/") == []


@pytest.mark.parametrize("key", INVALID_KEYS)
async def test_invalid_keys_are_rejected(store: BlobStore, key: str) -> None:
    with pytest.raises(InvalidInput):
        await store.put(key, b"x")
    with pytest.raises(InvalidInput):
        await store.get(key)
    with pytest.raises(InvalidInput):
        await store.delete(key)
    with pytest.raises(InvalidInput):
        await store.signed_url(key)


@pytest.mark.parametrize("prefix", ["/abs", "../", "a/../", "a//"])
async def test_invalid_prefixes_are_rejected(store: BlobStore, prefix: str) -> None:
    with pytest.raises(InvalidInput):
        await store.list(prefix)


async def test_binary_and_empty_data_round_trip(store: BlobStore) -> None:
    data = bytes(range(256)) * 16 + b"\x00\r\n\xff"
    await store.put("bin", data, "application/octet-stream")
    await store.put("empty", b"")
    assert await store.get("bin") == data
    assert await store.get("empty") == b""


async def test_large_object_round_trips(store: BlobStore) -> None:
    data = os.urandom(24 * 1024 * 1024)
    await store.put("large/object.bin", data)
    assert await store.get("large/object.bin") == data


async def test_concurrent_puts_to_one_key_leave_one_whole_version(store: BlobStore) -> None:
    versions = [bytes([i]) * (64 * 1024 + i) for i in range(20)]
    await asyncio.gather(*(store.put("contended", version) for version in versions))
    assert await store.get("contended") in versions
    assert await store.list("") == ["contended"]


async def test_concurrent_puts_to_many_keys(store: BlobStore) -> None:
    keys = [f"events/p{i % 3}/2026/03/04/{i % 24:02d}/{i:04d}.json" for i in range(200)]
    await asyncio.gather(*(store.put(key, key.encode()) for key in keys))
    assert await store.list("events/") == sorted(keys)
    assert all([await store.get(key) == key.encode() for key in keys[:20]])


async def test_signed_url_is_a_url(store: BlobStore) -> None:
    await store.put("media/x.png", b"png")
    url = await store.signed_url("media/x.png")
    assert urlparse(url).scheme
    assert await store.signed_url("media/x.png", method="PUT", expires_in=60)


async def test_ping_succeeds_on_a_usable_store(store: BlobStore) -> None:
    await store.ping()


# -- object stores (S3, Azure, GCS) ------------------------------------------------------------


# Headers Langfuse's Python SDK sends with a media upload (langfuse/_task_manager/media_manager.py)
# to any host but storage.googleapis.com.
def sdk_upload_headers(content_type: str, data: bytes) -> dict[str, str]:
    return {
        "Content-Type": content_type,
        "x-ms-blob-type": "BlockBlob",
        "x-amz-checksum-sha256": base64.b64encode(hashlib.sha256(data).digest()).decode(),
    }


async def test_signed_get_url_downloads_over_http(cloud: Cloud) -> None:
    async with cloud.open() as store:
        await store.put("media/p1/image one.png", b"\x89PNG bytes", "image/png")
        url = await store.signed_url("media/p1/image one.png", expires_in=60)
        async with httpx.AsyncClient() as http:
            response = await http.get(url)
    assert response.status_code == 200, response.text
    assert response.content == b"\x89PNG bytes"


async def test_signed_put_url_uploads_over_http(cloud: Cloud) -> None:
    async with cloud.open() as store:
        url = await store.signed_url("uploads/a.bin", method="PUT", expires_in=60)
        async with httpx.AsyncClient() as http:
            # Azure needs the blob type on a raw PUT; the other stores ignore the header.
            response = await http.put(
                url, content=b"uploaded", headers={"x-ms-blob-type": "BlockBlob"}
            )
        assert response.is_success, response.text
        assert await store.get("uploads/a.bin") == b"uploaded"


async def test_signed_upload_url_accepts_the_sdk_upload(cloud: Cloud) -> None:
    data = os.urandom(3000)
    sha256 = base64.b64encode(hashlib.sha256(data).digest()).decode()
    async with cloud.open() as store:
        url = await store.signed_upload_url(
            "media/p1/x.png", content_type="image/png", sha256=sha256, expires_in=60
        )
        async with httpx.AsyncClient() as http:
            response = await http.put(
                url, content=data, headers=sdk_upload_headers("image/png", data)
            )
        assert response.is_success, response.text
        assert await store.get("media/p1/x.png") == data


async def test_s3_upload_url_signs_the_content_type_and_checksum(
    request: pytest.FixtureRequest,
) -> None:
    # moto does not verify signatures, so check what real S3 will verify: both headers signed.
    async with _s3(request) as store:
        url = await store.signed_upload_url(
            "m/x.png", content_type="image/png", sha256="A" * 43 + "=", expires_in=60
        )
    signed = dict(part.split("=", 1) for part in urlparse(url).query.split("&"))
    assert unquote(signed["X-Amz-SignedHeaders"]).split(";") == [
        "content-type",
        "host",
        "x-amz-checksum-sha256",
    ]


async def test_azure_sas_is_verified(request: pytest.FixtureRequest) -> None:
    async with _azure(request) as store:
        await store.put("secret.txt", b"s3cr3t")
        url = await store.signed_url("secret.txt", expires_in=60)
        async with httpx.AsyncClient() as http:
            assert (await http.get(url)).status_code == 200
            tampered = url.replace("sp=r", "sp=rw")
            assert tampered != url
            assert (await http.get(tampered)).status_code == 403


async def test_gcs_signs_v4_urls_with_a_service_account_key(
    request: pytest.FixtureRequest,
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    account = {
        "type": "service_account",
        "project_id": "fathom-test",
        "private_key_id": "test-key",
        "private_key": pem,
        "client_email": "fathom@fathom-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "http://127.0.0.1:9/token",
    }
    async with (
        _gcs(request) as anonymous,
        _gcs(request, credentials_file=json.dumps(account)) as signer,
    ):
        await anonymous.put("signed/x.txt", b"signed bytes")
        # Signing is local: the service account never needs a token for it.
        url = await signer.signed_url("signed/x.txt", expires_in=60)
        upload = await signer.signed_upload_url(
            "signed/up.txt", content_type="text/plain", sha256="unused", expires_in=60
        )
        async with httpx.AsyncClient() as http:
            downloaded = await http.get(url)
            uploaded = await http.put(upload, content=b"up", headers={"Content-Type": "text/plain"})
        assert "X-Goog-Signature=" in url and "X-Goog-SignedHeaders=" in url
        assert downloaded.content == b"signed bytes"
        assert uploaded.is_success, uploaded.text
        assert await anonymous.get("signed/up.txt") == b"up"


async def test_signing_rejects_unknown_methods_and_bad_expiry(cloud: Cloud) -> None:
    async with cloud.open() as store:
        with pytest.raises(InvalidInput):
            await store.signed_url("k", method="POST")
        with pytest.raises(InvalidInput):
            await store.signed_url("k", expires_in=0)


async def test_prefix_keeps_keys_inside_a_folder(cloud: Cloud) -> None:
    async with cloud.open(prefix="tenant-a") as scoped, cloud.open() as whole:
        await scoped.put("k/1", b"one")
        await whole.put("outside", b"x")
        assert await scoped.list("") == ["k/1"]
        assert await scoped.list("k/") == ["k/1"]
        assert await whole.list("") == ["outside", "tenant-a/k/1"]
        assert await whole.get("tenant-a/k/1") == b"one"
        with pytest.raises(NotFound):
            await scoped.get("outside")
        async with httpx.AsyncClient() as http:
            response = await http.get(await scoped.signed_url("k/1", expires_in=60))
        assert response.content == b"one"
        await scoped.delete("k/1")
        assert await whole.list("tenant-a/") == []


MISSING_SETTING = {
    "s3": "FATHOM_BLOB__BUCKET=fathom-missing-bucket: bucket not found",
    "azure": "FATHOM_BLOB__CONTAINER=fathom-missing-bucket: container not found",
    "gcs": "FATHOM_BLOB__BUCKET=fathom-missing-bucket: bucket not found",
}


async def test_ping_names_a_missing_bucket(cloud: Cloud) -> None:
    name = "bucket" if cloud.kind != "azure" else "container"
    async with cloud.open(**{name: "fathom-missing-bucket"}) as store:
        with pytest.raises(ConfigurationError) as raised:
            await store.ping()
        with pytest.raises(ConfigurationError) as on_put:
            await store.put("k", b"x")
    assert str(raised.value) == MISSING_SETTING[cloud.kind]
    assert "\n" not in str(raised.value)
    assert str(on_put.value) == MISSING_SETTING[cloud.kind]


async def test_azure_ping_rejects_a_wrong_account_key(
    request: pytest.FixtureRequest,
) -> None:
    connection_string = request.getfixturevalue("azurite_connection_string")
    wrong = connection_string.replace(services.AZURITE_KEY, base64.b64encode(b"k" * 64).decode())
    async with _azure(request, connection_string=wrong) as store:
        with pytest.raises(ConfigurationError, match=r"^FATHOM_BLOB__CONNECTION_STRING: invalid"):
            await store.ping()
    parts = dict(part.split("=", 1) for part in connection_string.split(";") if part)
    account_url = parts["BlobEndpoint"]
    by_key = {
        "connection_string": None,
        "account_url": account_url,
        "account_name": services.AZURITE_ACCOUNT,
    }
    async with _azure(request, **by_key, account_key=base64.b64encode(b"k" * 64).decode()) as bad:
        with pytest.raises(ConfigurationError, match=r"^FATHOM_BLOB__ACCOUNT_KEY: invalid"):
            await bad.ping()
    async with _azure(request, **by_key, account_key=services.AZURITE_KEY) as good:
        await good.ping()
        await good.put("k", b"v")
        async with httpx.AsyncClient() as http:
            assert (await http.get(await good.signed_url("k"))).content == b"v"


UNREACHABLE = "http://127.0.0.1:9"


async def test_ping_names_an_unreachable_endpoint(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fathom.adapters.blob import gcs

    monkeypatch.setattr(gcs, "_PING_SECONDS", 1.0)
    async with _s3(request, endpoint_url=UNREACHABLE, bucket="b") as s3:
        with pytest.raises(ConfigurationError, match=r"^FATHOM_BLOB__ENDPOINT_URL=http://127"):
            await s3.ping()
    async with _gcs(request, endpoint_url=UNREACHABLE, bucket="b") as gcs:
        with pytest.raises(ConfigurationError, match=r"^FATHOM_BLOB__ENDPOINT_URL=http://127"):
            await gcs.ping()
    unreachable = {
        "connection_string": None,
        "account_url": f"{UNREACHABLE}/{services.AZURITE_ACCOUNT}",
        "account_name": services.AZURITE_ACCOUNT,
        "account_key": services.AZURITE_KEY,
        "container": "c",
    }
    async with _azure(request, **unreachable) as azure:
        with pytest.raises(ConfigurationError, match=r"^FATHOM_BLOB__ACCOUNT_URL=http://127"):
            await azure.ping()


def test_misconfiguration_is_refused_at_construction(tmp_path: Path) -> None:
    from fathom.adapters.blob.azure import AzureBlobStore
    from fathom.adapters.blob.gcs import GcsBlobStore
    from fathom.adapters.blob.s3 import S3BlobStore

    with pytest.raises(ConfigurationError, match="FATHOM_BLOB__BUCKET"):
        S3BlobStore("")
    with pytest.raises(ConfigurationError, match="SECRET_ACCESS_KEY must be set together"):
        S3BlobStore("b", access_key_id="only-the-id")
    with pytest.raises(ConfigurationError, match="FATHOM_BLOB__SSE=aws:kms"):
        S3BlobStore("b", region="us-east-1", sse_kms_key_id="key")
    with pytest.raises(ConfigurationError, match="FATHOM_BLOB__PREFIX"):
        S3BlobStore("b", region="us-east-1", prefix="../up")
    with pytest.raises(ConfigurationError, match="CONNECTION_STRING and FATHOM_BLOB__ACCOUNT_URL"):
        AzureBlobStore("c")
    with pytest.raises(ConfigurationError, match="FATHOM_BLOB__CONNECTION_STRING: invalid"):
        AzureBlobStore("c", connection_string="not a connection string")
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigurationError, match=f"CREDENTIALS_FILE={missing}: file not found"):
        GcsBlobStore("b", credentials_file=str(missing))
    with pytest.raises(ConfigurationError, match="CREDENTIALS_FILE: not a service-account key"):
        GcsBlobStore("b", credentials_file='{"type": "authorized_user"}')


# -- local adapter ------------------------------------------------------------------------------


async def test_local_signed_url_points_at_the_file(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs", fsync=False)
    await store.put("dir/file name.txt", b"hello")
    url = await store.signed_url("dir/file name.txt")
    assert url.startswith("file://")
    assert Path(unquote(urlparse(url).path)).read_bytes() == b"hello"


async def test_local_ping_rejects_a_root_that_is_a_file(tmp_path: Path) -> None:
    root = tmp_path / "not-a-dir"
    root.write_bytes(b"")
    with pytest.raises(ConfigurationError, match="not-a-dir"):
        await LocalBlobStore(root).ping()


async def test_local_ping_rejects_an_unwritable_root(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can write to read-only folders")
    root = tmp_path / "readonly"
    root.mkdir()
    root.chmod(0o500)
    try:
        with pytest.raises(ConfigurationError, match="readonly"):
            await LocalBlobStore(root).ping()
    finally:
        root.chmod(0o700)


async def test_local_ping_creates_a_missing_root(tmp_path: Path) -> None:
    await LocalBlobStore(tmp_path / "a" / "b").ping()
    assert (tmp_path / "a" / "b").is_dir()


async def test_local_put_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    await asyncio.gather(*(store.put(f"d/{i}", b"x" * i) for i in range(50)))
    assert sorted(os.listdir(tmp_path / "d")) == sorted(str(i) for i in range(50))


async def test_local_list_hides_temporary_files_left_by_a_crash(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path, fsync=False)
    await store.put("d/real", b"x")
    (tmp_path / "d" / ".real.0123.fathom-tmp").write_bytes(b"half a wri")
    assert await store.list("") == ["d/real"]
    with pytest.raises(InvalidInput):
        await store.get("d/.real.0123.fathom-tmp")


async def test_local_key_cannot_also_be_a_folder(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path, fsync=False)
    await store.put("a", b"file")
    with pytest.raises(Conflict):
        await store.put("a/b", b"nested")
    await store.put("c/d", b"nested")
    with pytest.raises(Conflict):
        await store.put("c", b"file")
    with pytest.raises(NotFound):
        await store.get("c")


async def test_local_store_without_fsync_round_trips(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path, fsync=False)
    await store.put("x/y/z", b"data")
    assert await store.get("x/y/z") == b"data"
