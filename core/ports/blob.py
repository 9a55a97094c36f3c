"""Object storage for raw ingestion batches, media and exports."""

from __future__ import annotations

from typing import Protocol


class BlobStore(Protocol):
    async def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Store `data` durably under `key`; returns only once it is safe from a crash."""
        ...

    async def get(self, key: str) -> bytes:
        """Raise `NotFound` when nothing is stored under `key`."""
        ...

    async def list(self, prefix: str) -> list[str]:
        """Keys starting with `prefix`, sorted."""
        ...

    async def delete(self, key: str) -> None: ...

    async def signed_url(self, key: str, method: str = "GET", expires_in: int = 3600) -> str: ...

    async def ping(self) -> None: ...
