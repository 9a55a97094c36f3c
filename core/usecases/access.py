"""Authentication with API keys, and creation of organizations, projects and keys."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from fathom.core.domain.access import (
    AccessLevel,
    ApiKey,
    ApiKeyScope,
    Membership,
    Organization,
    Principal,
    Project,
    Role,
    User,
    display_secret,
)
from fathom.core.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from fathom.core.ports.cache import API_KEYS, InvalidationBus
from fathom.core.ports.records import RecordStore
from fathom.core.ports.security import SecretHasher
from fathom.core.ports.system import Clock, IdGenerator

INVALID_CREDENTIALS = "Invalid credentials. Confirm that you've configured the correct host."
ORGANIZATION_KEY_ON_PROJECT_ROUTE = (
    "Project ID not found for API token. Are you using an organization key?"
)


@dataclass(slots=True)
class _CacheEntry:
    principal: Principal | None  # None remembers a miss, so bad keys don't hit the database
    expires_at: datetime


class AuthenticateApiKey:
    """Turns an Authorization header into a Principal, as Langfuse's public API does.

    `Basic base64(pk:sk)` gives project (or organization) access; `Bearer pk-lf-…` gives
    the browser-feedback `scores` access. Verified keys are cached by their fast hash for
    `ttl_seconds`, including misses; with a `bus`, a key change published by any process
    empties the cache at once (key changes are rare, so all of it). Concurrent requests
    with a key that is not cached share one lookup: a burst of requests after start-up or
    after the TTL ran out would otherwise each query the database.
    """

    def __init__(
        self,
        records: RecordStore,
        hasher: SecretHasher,
        clock: Clock,
        ttl_seconds: int = 300,
        bus: InvalidationBus | None = None,
    ) -> None:
        self._records = records
        self._hasher = hasher
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_seconds)
        self._cache: dict[str, _CacheEntry] = {}
        self._lookups: dict[str, asyncio.Future[_CacheEntry]] = {}
        self._generation = 0
        if bus is not None:
            bus.subscribe(API_KEYS, lambda _key: self.invalidate())

    def invalidate(self) -> None:
        self._cache.clear()
        self._lookups.clear()  # lookups in flight may have read the old key: not shared again
        self._generation += 1

    async def _entry(
        self, cache_key: str, now: datetime, lookup: Callable[[], Awaitable[Principal | None]]
    ) -> _CacheEntry:
        entry = self._cache.get(cache_key)
        if entry is not None and entry.expires_at > now:
            return entry
        pending = self._lookups.get(cache_key)
        if pending is None:
            pending = asyncio.ensure_future(self._look_up(cache_key, now, lookup))
            self._lookups[cache_key] = pending
        # Shielded: a caller that goes away must not cancel the others' lookup.
        return await asyncio.shield(pending)

    async def _look_up(
        self, cache_key: str, now: datetime, lookup: Callable[[], Awaitable[Principal | None]]
    ) -> _CacheEntry:
        generation = self._generation
        try:
            entry = _CacheEntry(await lookup(), now + self._ttl)
        finally:
            if generation == self._generation:  # else `invalidate` already dropped it
                self._lookups.pop(cache_key, None)
        if generation == self._generation:  # what was read may predate an invalidation
            self._cache[cache_key] = entry
        return entry

    async def __call__(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthorized("No authorization header")
        scheme, _, credentials = authorization.strip().partition(" ")
        scheme = scheme.lower()
        credentials = credentials.strip()
        if scheme == "basic":
            public_key, secret_key = _decode_basic(credentials)
            return await self._by_secret(public_key, secret_key)
        if scheme == "bearer" and credentials.startswith("pk-lf-"):
            return await self._by_public_key(credentials)
        raise Unauthorized(
            "Invalid authorization header: expected 'Basic base64(public_key:secret_key)'"
        )

    async def _by_secret(self, public_key: str, secret_key: str) -> Principal:
        cache_key = self._hasher.fast_hash(secret_key)
        now = self._clock.now()

        async def lookup() -> Principal | None:
            async with self._records.unit_of_work() as uow:
                key = await uow.api_keys.get_by_fast_hash(cache_key)
            return _principal(key, AccessLevel.PROJECT, now) if key else None

        entry = await self._entry(cache_key, now, lookup)
        if entry.principal is None or entry.principal.public_key != public_key:
            raise Unauthorized(INVALID_CREDENTIALS)
        return entry.principal

    async def _by_public_key(self, public_key: str) -> Principal:
        cache_key = "pk:" + public_key
        now = self._clock.now()

        async def lookup() -> Principal | None:
            async with self._records.unit_of_work() as uow:
                key = await uow.api_keys.get_by_public_key(public_key)
            if key is not None and key.scope is ApiKeyScope.PROJECT:
                return _principal(key, AccessLevel.SCORES, now)
            return None

        entry = await self._entry(cache_key, now, lookup)
        if entry.principal is None:
            raise Unauthorized(INVALID_CREDENTIALS)
        return entry.principal


def _decode_basic(credentials: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Unauthorized(
            "Invalid authorization header: credentials are not valid base64"
        ) from None
    public_key, sep, secret_key = decoded.partition(":")
    if not sep or not public_key or not secret_key:
        raise Unauthorized(
            "Invalid authorization header: expected 'Basic base64(public_key:secret_key)'"
        )
    return public_key, secret_key


def _principal(key: ApiKey, level: AccessLevel, now: datetime) -> Principal | None:
    if key.expires_at is not None and key.expires_at <= now:
        return None
    if key.scope is ApiKeyScope.ORGANIZATION:
        level = AccessLevel.ORGANIZATION
    return Principal(
        access_level=level,
        organization_id=key.organization_id,
        project_id=key.project_id,
        api_key_id=key.id,
        public_key=key.public_key,
        scope=key.scope,
    )


def require_project(principal: Principal) -> str:
    """The project a project-scoped route acts on; organization keys are refused."""
    if principal.access_level is not AccessLevel.PROJECT or principal.project_id is None:
        if principal.access_level is AccessLevel.SCORES:
            raise Unauthorized("Access denied: this route needs a secret key (Basic auth)")
        raise Forbidden(ORGANIZATION_KEY_ON_PROJECT_ROUTE)
    return principal.project_id


@dataclass(frozen=True, slots=True)
class IssuedApiKey:
    """The only moment the secret key exists in clear text."""

    api_key: ApiKey
    secret_key: str


class CreateOrganization:
    def __init__(self, records: RecordStore, clock: Clock, ids: IdGenerator) -> None:
        self._records, self._clock, self._ids = records, clock, ids

    async def __call__(self, name: str, organization_id: str | None = None) -> Organization:
        if not name.strip():
            raise InvalidInput("Organization name must not be empty")
        organization = Organization(
            id=organization_id or self._ids.new_id(), name=name, created_at=self._clock.now()
        )
        async with self._records.unit_of_work() as uow:
            if await uow.organizations.get(organization.id):
                raise Conflict(f"Organization {organization.id} already exists")
            await uow.organizations.add(organization)
            await uow.commit()
        return organization


class CreateProject:
    def __init__(self, records: RecordStore, clock: Clock, ids: IdGenerator) -> None:
        self._records, self._clock, self._ids = records, clock, ids

    async def __call__(
        self, organization_id: str, name: str, project_id: str | None = None
    ) -> Project:
        if not name.strip():
            raise InvalidInput("Project name must not be empty")
        project = Project(
            id=project_id or self._ids.new_id(),
            name=name,
            organization_id=organization_id,
            created_at=self._clock.now(),
        )
        async with self._records.unit_of_work() as uow:
            if await uow.organizations.get(organization_id) is None:
                raise NotFound(f"Organization {organization_id} not found")
            if await uow.projects.get(project.id):
                raise Conflict(f"Project {project.id} already exists")
            await uow.projects.add(project)
            await uow.commit()
        return project


class CreateApiKey:
    """Issues `pk-lf-…`/`sk-lf-…` keys, or stores known ones (headless initialisation).

    With a `bus`, every process forgets what it cached about the key (a remembered miss
    would refuse the new key until its TTL ran out)."""

    def __init__(
        self,
        records: RecordStore,
        hasher: SecretHasher,
        clock: Clock,
        ids: IdGenerator,
        bus: InvalidationBus | None = None,
    ) -> None:
        self._records, self._hasher, self._clock, self._ids = records, hasher, clock, ids
        self._bus = bus

    async def __call__(
        self,
        organization_id: str,
        project_id: str | None,
        *,
        public_key: str | None = None,
        secret_key: str | None = None,
        note: str | None = None,
    ) -> IssuedApiKey:
        public_key = public_key or f"pk-lf-{self._ids.new_id()}"
        secret_key = secret_key or f"sk-lf-{self._ids.new_id()}"
        if not public_key.startswith("pk-lf-") or not secret_key.startswith("sk-lf-"):
            raise InvalidInput("API keys must start with 'pk-lf-' (public) and 'sk-lf-' (secret)")
        api_key = ApiKey(
            id=self._ids.new_id(),
            public_key=public_key,
            fast_hashed_secret_key=self._hasher.fast_hash(secret_key),
            display_secret_key=display_secret(secret_key),
            scope=ApiKeyScope.PROJECT if project_id else ApiKeyScope.ORGANIZATION,
            organization_id=organization_id,
            project_id=project_id,
            created_at=self._clock.now(),
            note=note,
        )
        async with self._records.unit_of_work() as uow:
            if await uow.api_keys.get_by_public_key(public_key):
                raise Conflict(f"API key {public_key} already exists")
            await uow.api_keys.add(api_key)
            await uow.commit()
        if self._bus is not None:
            await self._bus.publish(API_KEYS, api_key.public_key)
        return IssuedApiKey(api_key, secret_key)


@dataclass(slots=True)
class HeadlessInitRequest:
    """Langfuse's `LANGFUSE_INIT_*` variables."""

    org_id: str | None = None
    org_name: str | None = None
    project_id: str | None = None
    project_name: str | None = None
    project_public_key: str | None = None
    project_secret_key: str | None = None
    user_email: str | None = None
    user_name: str | None = None
    user_password: str | None = None


class InitializeHeadless:
    """Creates what `LANGFUSE_INIT_*` names if it does not exist yet; safe on every start."""

    def __init__(
        self, records: RecordStore, hasher: SecretHasher, clock: Clock, ids: IdGenerator
    ) -> None:
        self._records, self._hasher, self._clock, self._ids = records, hasher, clock, ids

    async def __call__(self, request: HeadlessInitRequest) -> None:
        if not request.org_id:
            if any((request.project_id, request.project_public_key, request.user_email)):
                raise InvalidInput("LANGFUSE_INIT_ORG_ID is required by the other LANGFUSE_INIT_*")
            return
        now = self._clock.now()
        async with self._records.unit_of_work() as uow:
            if await uow.organizations.get(request.org_id) is None:
                await uow.organizations.add(
                    Organization(request.org_id, request.org_name or "Provisioned Org", now)
                )
            if request.project_id and await uow.projects.get(request.project_id) is None:
                await uow.projects.add(
                    Project(
                        request.project_id,
                        request.project_name or "Provisioned Project",
                        request.org_id,
                        now,
                    )
                )
            if request.project_public_key or request.project_secret_key:
                if not (
                    request.project_id and request.project_public_key and request.project_secret_key
                ):
                    raise InvalidInput(
                        "LANGFUSE_INIT_PROJECT_PUBLIC_KEY and LANGFUSE_INIT_PROJECT_SECRET_KEY "
                        "need each other and LANGFUSE_INIT_PROJECT_ID"
                    )
                existing = await uow.api_keys.get_by_public_key(request.project_public_key)
                if existing is None:
                    await uow.api_keys.add(
                        ApiKey(
                            id=self._ids.new_id(),
                            public_key=request.project_public_key,
                            fast_hashed_secret_key=self._hasher.fast_hash(
                                request.project_secret_key
                            ),
                            display_secret_key=display_secret(request.project_secret_key),
                            scope=ApiKeyScope.PROJECT,
                            organization_id=request.org_id,
                            project_id=request.project_id,
                            created_at=now,
                            note="Provisioned by LANGFUSE_INIT_*",
                        )
                    )
            if request.user_email and await uow.users.get_by_email(request.user_email) is None:
                user = User(
                    id=self._ids.new_id(),
                    email=request.user_email,
                    name=request.user_name,
                    created_at=now,
                    password_hash=(
                        self._hasher.hash_password(request.user_password)
                        if request.user_password
                        else None
                    ),
                )
                await uow.users.add(user)
                await uow.memberships.add(Membership(request.org_id, user.id, Role.OWNER, now))
            await uow.commit()


class ListProjectsOfKey:
    """`GET /api/public/projects`: the project a key belongs to, with its organization."""

    def __init__(self, records: RecordStore) -> None:
        self._records = records

    async def __call__(self, principal: Principal) -> list[tuple[Project, Organization]]:
        async with self._records.unit_of_work() as uow:
            organization = await uow.organizations.get(principal.organization_id)
            if organization is None:
                raise NotFound("Organization not found")
            if principal.project_id is None:
                projects = await uow.projects.list_for_organization(organization.id)
            else:
                project = await uow.projects.get(principal.project_id)
                projects = [project] if project else []
        return [(project, organization) for project in projects]
