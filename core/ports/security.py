"""Hashing of secrets."""

from __future__ import annotations

from typing import Protocol


class SecretHasher(Protocol):
    def fast_hash(self, secret: str) -> str:
        """A deterministic salted hash used to look a secret up (Langfuse's fast hash)."""
        ...

    def hash_password(self, password: str) -> str: ...

    def verify_password(self, password: str, password_hash: str) -> bool: ...
