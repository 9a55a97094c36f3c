"""A `BlobStore` on the local filesystem: the default for single-node installs.

Keys are `/`-separated relative paths below `root`. A put is crash-safe: the bytes go to a
temporary file in the destination folder, are fsynced, renamed over the key with
`os.replace` (atomic on POSIX), and the folder is fsynced so the rename itself survives a
power loss. Readers therefore see either the old or the new object, never a torn one.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from pathlib import Path

from fathom.core.domain.errors import ConfigurationError, Conflict, InvalidInput, NotFound

# Suffix of in-flight temporary files. Keys may not end with it, so a temporary file can never
# shadow an object, and `list` can hide leftovers of a crash mid-put.
_TMP_SUFFIX = ".fathom-tmp"

_SIGNABLE_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})


def validate_key(key: str) -> str:
    """Return `key` if it is a safe relative `/`-separated path, else raise `InvalidInput`.

    Object stores would accept almost anything, but the local store maps keys onto paths, so
    the contract rejects what could escape the root or alias another key on any backend.
    """
    if not isinstance(key, str) or not key:
        raise InvalidInput("blob key must be a non-empty string")
    if "\x00" in key or "\\" in key:
        raise InvalidInput(f"blob key {key!r} contains a NUL byte or a backslash")
    if key.startswith("/"):
        raise InvalidInput(f"blob key {key!r} must be relative, not absolute")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise InvalidInput(f"blob key {key!r} has an empty, '.' or '..' segment")
    if key.endswith(_TMP_SUFFIX):
        raise InvalidInput(f"blob key {key!r} may not end with {_TMP_SUFFIX!r}")
    return key


def _validate_prefix(prefix: str) -> str:
    # A prefix may end mid-segment or with "/" and may be empty; it only has to stay inside
    # the root, which means no traversal in any complete segment.
    if not isinstance(prefix, str):
        raise InvalidInput("blob prefix must be a string")
    if "\x00" in prefix or "\\" in prefix or prefix.startswith("/"):
        raise InvalidInput(f"blob prefix {prefix!r} must be a relative '/'-separated path")
    complete_segments = prefix.split("/")[:-1]
    if any(part in ("", ".", "..") for part in complete_segments):
        raise InvalidInput(f"blob prefix {prefix!r} has an empty, '.' or '..' segment")
    return prefix


class _DirSyncer:
    """Coalesces directory fsyncs of concurrent puts into the same folder (group commit).

    Each put needs *a* directory fsync that starts after its own rename. When many puts land
    in one folder at once, the first fsync to start after a rename covers every rename before
    it, so later threads that find their ticket already covered return without a syscall.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._dirs: dict[str, tuple[threading.Lock, list[int]]] = {}

    def sync(self, directory: str) -> None:
        with self._guard:
            entry = self._dirs.get(directory)
            if entry is None:
                # state = [renames requested, renames known durable]
                entry = self._dirs[directory] = (threading.Lock(), [0, 0])
            lock, state = entry
            state[0] += 1
            ticket = state[0]
        with lock:
            with self._guard:
                if state[1] >= ticket:
                    return
                covered = state[0]
            _fsync_dir(directory)
            with self._guard:
                state[1] = max(state[1], covered)


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBlobStore:
    """Objects as files under `root`.

    `fsync=False` skips every fsync (the data still reaches the OS page cache, so it survives
    a process crash but not a power loss); meant for tests and benchmarks.
    `content_type` is accepted for interface parity and not stored: the local store has no
    metadata and readers get bytes only. Unlike object stores, a key cannot also be a folder
    ("a" and "a/b" cannot coexist); such a put raises `Conflict`.
    """

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self._root = Path(root)
        self._fsync = fsync
        self._dir_syncer = _DirSyncer()

    @property
    def root(self) -> Path:
        return self._root

    def _path(self, key: str) -> Path:
        return self._root.joinpath(*validate_key(key).split("/"))

    # The public methods each hop to a worker thread exactly once, doing every syscall of the
    # operation there: thread hand-offs cost more than the small writes themselves.

    async def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        path = self._path(key)
        try:
            await asyncio.to_thread(self._put_sync, path, bytes(data))
        except (NotADirectoryError, IsADirectoryError) as exc:
            # A filesystem cannot hold both "a" and "a/b"; object stores can. Surface it as a
            # conflict rather than an opaque OSError.
            raise Conflict(f"blob key {key!r} collides with an existing key: {exc}") from None

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"blob {key!r} not found") from None

    async def list(self, prefix: str) -> list[str]:
        return await asyncio.to_thread(self._list_sync, _validate_prefix(prefix))

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete_sync, self._path(key))

    async def signed_url(self, key: str, method: str = "GET", expires_in: int = 3600) -> str:
        """A `file://` URL of the object.

        Local files have no real signing: the URL grants nothing by itself and `expires_in`
        is not enforced; it is only usable by a process that can read the file directly.
        """
        if method.upper() not in _SIGNABLE_METHODS:
            raise InvalidInput(f"cannot sign method {method!r}")
        if expires_in <= 0:
            raise InvalidInput("expires_in must be positive")
        return self._path(key).absolute().as_uri()

    async def ping(self) -> None:
        """Make sure `root` is a writable directory, creating it on first use."""
        await asyncio.to_thread(self._ping_sync)

    # -- blocking helpers, run in worker threads -------------------------------------------

    def _put_sync(self, path: Path, data: bytes) -> None:
        directory = path.parent
        self._ensure_dir(directory)
        tmp = directory / f".{path.name}.{uuid.uuid4().hex}{_TMP_SUFFIX}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                if self._fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if self._fsync:
            self._dir_syncer.sync(str(directory))

    def _ensure_dir(self, directory: Path) -> None:
        if directory.is_dir():
            return
        # Create one level at a time so each new entry's parent can be fsynced: otherwise a
        # power loss could drop a freshly created folder together with the object in it.
        missing: list[Path] = []
        current = directory
        while not current.exists():
            missing.append(current)
            current = current.parent
        for folder in reversed(missing):
            try:
                folder.mkdir()
            except FileExistsError:
                pass  # a concurrent put created it
            if self._fsync:
                self._dir_syncer.sync(str(folder.parent))

    def _list_sync(self, prefix: str) -> list[str]:
        # Walk only the deepest folder the prefix pins down, not the whole tree.
        folder, _, _ = prefix.rpartition("/")
        start = self._root.joinpath(*folder.split("/")) if folder else self._root
        if not start.is_dir():
            return []
        keys: list[str] = []
        for dirpath, _dirnames, filenames in os.walk(start):
            rel_dir = os.path.relpath(dirpath, self._root)
            base = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
            for name in filenames:
                if name.endswith(_TMP_SUFFIX):
                    continue
                key = base + name
                if key.startswith(prefix):
                    keys.append(key)
        keys.sort()
        return keys

    def _delete_sync(self, path: Path) -> None:
        try:
            path.unlink()
        except FileNotFoundError:
            return
        # Empty folders are left behind on purpose: removing them would race with a
        # concurrent put into the same folder.
        if self._fsync:
            self._dir_syncer.sync(str(path.parent))

    def _ping_sync(self) -> None:
        root = self._root
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"blob store root {str(root)!r} cannot be created: {exc}"
            ) from exc
        if not root.is_dir():
            raise ConfigurationError(f"blob store root {str(root)!r} is not a directory")
        probe = root / f".ping.{uuid.uuid4().hex}{_TMP_SUFFIX}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ConfigurationError(
                f"blob store root {str(root)!r} is not writable: {exc}"
            ) from exc


def check_prefix(prefix: str) -> str:
    """A listing prefix, checked with the key rules (shared by every blob adapter)."""
    # A listing prefix may stop mid-segment; appending one character turns it into a key whose
    # complete segments are exactly the prefix's, so the key rules apply unchanged.
    if not isinstance(prefix, str):
        raise InvalidInput("blob prefix must be a string")
    if prefix:
        validate_key(prefix + "_")
    return prefix


def normalise_prefix(prefix: str) -> str:
    """A cloud store's folder setting (`FATHOM_BLOB__PREFIX`), always ending with "/" or empty."""
    if not prefix:
        return ""
    if not prefix.endswith("/"):
        prefix += "/"
    try:
        validate_key(prefix + "_")
    except InvalidInput as exc:
        raise ConfigurationError(f"FATHOM_BLOB__PREFIX={prefix}: {exc.message}") from None
    return prefix
