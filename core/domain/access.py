"""Organizations, projects, users, memberships, roles and API keys."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class Role(enum.StrEnum):
    OWNER = "OWNER"
    ADMIN = "ADMIN"
    MEMBER = "MEMBER"
    VIEWER = "VIEWER"
    NONE = "NONE"


class ApiKeyScope(enum.StrEnum):
    PROJECT = "PROJECT"
    ORGANIZATION = "ORGANIZATION"


class AccessLevel(enum.StrEnum):
    """What an authenticated request may touch (Langfuse's `accessLevel`)."""

    PROJECT = "project"
    ORGANIZATION = "organization"
    SCORES = "scores"


@dataclass(slots=True)
class Organization:
    id: str
    name: str
    created_at: datetime
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Project:
    id: str
    name: str
    organization_id: str
    created_at: datetime
    metadata: dict[str, Any] = field(default_factory=dict)
    retention_days: int | None = None


@dataclass(slots=True)
class User:
    id: str
    email: str
    name: str | None
    created_at: datetime
    password_hash: str | None = None
    admin: bool = False


@dataclass(slots=True)
class Membership:
    organization_id: str
    user_id: str
    role: Role
    created_at: datetime


@dataclass(slots=True)
class ApiKey:
    """An API key as stored: the secret itself is never kept, only its hashes."""

    id: str
    public_key: str
    fast_hashed_secret_key: str
    display_secret_key: str
    scope: ApiKeyScope
    organization_id: str
    project_id: str | None
    created_at: datetime
    note: str | None = None
    expires_at: datetime | None = None
    last_used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, once a key has been verified."""

    access_level: AccessLevel
    organization_id: str
    project_id: str | None
    api_key_id: str
    public_key: str
    scope: ApiKeyScope


def display_secret(secret_key: str) -> str:
    """Langfuse shows the first 6 and last 4 characters of a secret key."""
    return f"{secret_key[:6]}...{secret_key[-4:]}"
