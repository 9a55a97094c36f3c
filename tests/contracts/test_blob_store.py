"""Contract of `BlobStore`, run against every adapter.

To add an adapter (S3, Azure, GCS emulators), add an async context manager to `ADAPTERS` that
yields a ready, empty store (a fresh bucket/container or prefix per test) and skips the test
with `pytest.skip` when its emulator is not reachable. Tests below the "local adapter" line
exercise behaviour only the filesystem store has.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from fathom.adapters.blob.local import LocalBlobStore
from fathom.core.domain.errors import ConfigurationError, Conflict, InvalidInput, NotFound
from fathom.core.ports.blob import BlobStore


@contextlib.asynccontextmanager
async def _local(tmp_path: Path) -> AsyncIterator[BlobStore]:
    # fsync stays on: the contract is about the real durable code path.
    yield LocalBlobStore(tmp_path / "blobs")


ADAPTERS: dict[str, Callable[[Path], AbstractAsyncContextManager[BlobStore]]] = {
    "local": _local,
}


@pytest.fixture(params=sorted(ADAPTERS))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    async with ADAPTERS[request.param](tmp_path) as blob_store:
        await blob_store.ping()
        yield blob_store


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
