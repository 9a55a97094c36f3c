"""Contract of the record store, run against every SQL adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fathom.adapters.storage.sql.store import SqlRecordStore
from fathom.core.domain.access import (
    ApiKey,
    ApiKeyScope,
    Membership,
    Organization,
    Project,
    Role,
    User,
)

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.fixture(params=["sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlRecordStore]:
    if request.param == "sqlite":
        record_store = SqlRecordStore(f"sqlite+aiosqlite:///{tmp_path / 'records.db'}")
    await record_store.migrate()
    yield record_store
    await record_store.close()


async def seed(store: SqlRecordStore) -> None:
    async with store.unit_of_work() as uow:
        await uow.organizations.add(Organization("o1", "Org", NOW, {"a": 1}))
        await uow.projects.add(Project("p1", "Proj", "o1", NOW))
        await uow.projects.add(Project("p2", "Proj 2", "o1", NOW, retention_days=7))
        await uow.commit()


async def test_migrate_twice_is_harmless(store: SqlRecordStore) -> None:
    await store.migrate()
    await store.ping()


async def test_organizations_and_projects_round_trip(store: SqlRecordStore) -> None:
    await seed(store)
    async with store.unit_of_work() as uow:
        org = await uow.organizations.get("o1")
        projects = await uow.projects.list_for_organization("o1")
        assert await uow.projects.get("missing") is None
    assert org == Organization("o1", "Org", NOW, {"a": 1})
    assert [p.id for p in projects] == ["p1", "p2"]
    assert projects[1].retention_days == 7
    assert projects[0].created_at == NOW


async def test_uncommitted_work_is_rolled_back(store: SqlRecordStore) -> None:
    async with store.unit_of_work() as uow:
        await uow.organizations.add(Organization("o2", "Gone", NOW))
    async with store.unit_of_work() as uow:
        assert await uow.organizations.get("o2") is None


async def test_api_keys_by_hash_public_key_and_project(store: SqlRecordStore) -> None:
    await seed(store)
    key = ApiKey("k1", "pk-lf-1", "hash-1", "sk-lf-...0001", ApiKeyScope.PROJECT, "o1", "p1", NOW)
    org_key = ApiKey(
        "k2",
        "pk-lf-2",
        "hash-2",
        "sk-lf-...0002",
        ApiKeyScope.ORGANIZATION,
        "o1",
        None,
        NOW,
        note="org",
    )
    async with store.unit_of_work() as uow:
        await uow.api_keys.add(key)
        await uow.api_keys.add(org_key)
        await uow.commit()
    async with store.unit_of_work() as uow:
        assert await uow.api_keys.get_by_fast_hash("hash-1") == key
        assert await uow.api_keys.get_by_public_key("pk-lf-2") == org_key
        assert await uow.api_keys.get_by_fast_hash("nope") is None
        assert [k.id for k in await uow.api_keys.list_for_project("p1")] == ["k1"]
        assert await uow.api_keys.delete("k1") is True
        assert await uow.api_keys.delete("k1") is False
        await uow.commit()
    async with store.unit_of_work() as uow:
        assert await uow.api_keys.get_by_public_key("pk-lf-1") is None


async def test_duplicate_public_key_is_rejected(store: SqlRecordStore) -> None:
    await seed(store)
    key = ApiKey("k1", "pk-lf-1", "hash-1", "x", ApiKeyScope.PROJECT, "o1", "p1", NOW)
    async with store.unit_of_work() as uow:
        await uow.api_keys.add(key)
        await uow.commit()
    with pytest.raises(Exception):  # noqa: B017 - each driver raises its own IntegrityError
        async with store.unit_of_work() as uow:
            await uow.api_keys.add(
                ApiKey("k9", "pk-lf-1", "hash-9", "x", ApiKeyScope.PROJECT, "o1", "p1", NOW)
            )
            await uow.commit()


async def test_users_and_memberships(store: SqlRecordStore) -> None:
    await seed(store)
    user = User("u1", "a@example.com", "A", NOW, password_hash="h", admin=True)
    async with store.unit_of_work() as uow:
        await uow.users.add(user)
        await uow.memberships.add(Membership("o1", "u1", Role.ADMIN, NOW))
        await uow.commit()
    async with store.unit_of_work() as uow:
        assert await uow.users.get_by_email("a@example.com") == user
        assert await uow.memberships.get("o1", "u1") == Membership("o1", "u1", Role.ADMIN, NOW)
        assert await uow.memberships.get("o1", "nobody") is None
