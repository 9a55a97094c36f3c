"""Time and identity: the core never calls datetime.now() or uuid4() itself."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class IdGenerator(Protocol):
    def new_id(self) -> str:
        """A fresh unique id (uuid4 text unless an adapter decides otherwise)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class UuidGenerator:
    def new_id(self) -> str:
        return str(uuid.uuid4())


class JsonCodec(Protocol):
    """JSON to and from bytes; adapters pick a fast implementation."""

    def dumps(self, value: object) -> bytes: ...

    def loads(self, data: bytes) -> object: ...
