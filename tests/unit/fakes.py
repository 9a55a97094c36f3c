"""In-memory fakes of the ports, for unit tests of the core only."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from fathom.core.domain.access import ApiKey, Membership, Organization, Project, User
from fathom.core.domain.pricing import Model


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


class SequentialIds:
    def __init__(self) -> None:
        self.count = 0

    def new_id(self) -> str:
        self.count += 1
        return f"id-{self.count}"


class _Table:
    def __init__(self, store: dict[Any, Any]) -> None:
        self.store = store


class FakeOrganizations(_Table):
    async def get(self, organization_id: str) -> Organization | None:
        return self.store.get(organization_id)

    async def add(self, organization: Organization) -> None:
        self.store[organization.id] = organization


class FakeProjects(_Table):
    async def get(self, project_id: str) -> Project | None:
        return self.store.get(project_id)

    async def add(self, project: Project) -> None:
        self.store[project.id] = project

    async def list_for_organization(self, organization_id: str) -> list[Project]:
        return [p for p in self.store.values() if p.organization_id == organization_id]


class FakeUsers(_Table):
    async def get_by_email(self, email: str) -> User | None:
        return next((u for u in self.store.values() if u.email == email), None)

    async def add(self, user: User) -> None:
        self.store[user.id] = user


class FakeMemberships(_Table):
    async def get(self, organization_id: str, user_id: str) -> Membership | None:
        return self.store.get((organization_id, user_id))

    async def add(self, membership: Membership) -> None:
        self.store[(membership.organization_id, membership.user_id)] = membership


class FakeApiKeys(_Table):
    lookups = 0

    async def get_by_fast_hash(self, fast_hashed_secret_key: str) -> ApiKey | None:
        FakeApiKeys.lookups += 1
        return next(
            (k for k in self.store.values() if k.fast_hashed_secret_key == fast_hashed_secret_key),
            None,
        )

    async def get_by_public_key(self, public_key: str) -> ApiKey | None:
        return next((k for k in self.store.values() if k.public_key == public_key), None)

    async def add(self, api_key: ApiKey) -> None:
        self.store[api_key.id] = api_key

    async def list_for_project(self, project_id: str) -> list[ApiKey]:
        return [k for k in self.store.values() if k.project_id == project_id]

    async def delete(self, api_key_id: str) -> bool:
        return self.store.pop(api_key_id, None) is not None


class FakeModels(_Table):
    list_calls = 0  # how often the catalog actually went to the store

    async def get(self, project_id: str, model_id: str) -> Model | None:
        model = self.store.get(model_id)
        return model if model is not None and model.project_id == project_id else None

    async def get_by_name(self, project_id: str, model_name: str) -> Model | None:
        return next(
            (
                m
                for m in self.store.values()
                if m.project_id == project_id and m.model_name == model_name
            ),
            None,
        )

    async def add(self, model: Model) -> None:
        assert model.project_id is not None, "built-in models are not stored"
        self.store[model.id] = model

    async def list_for_project(self, project_id: str) -> list[Model]:
        return [m for m in self.store.values() if m.project_id == project_id]

    async def list_all(self) -> list[Model]:
        FakeModels.list_calls += 1
        return list(self.store.values())

    async def delete(self, project_id: str, model_id: str) -> bool:
        if await self.get(project_id, model_id) is None:
            return False
        del self.store[model_id]
        return True


class FakeUnitOfWork:
    """Copies the tables on enter and publishes them on commit, like a transaction."""

    def __init__(self, db: dict[str, dict[Any, Any]]) -> None:
        self._db = db

    async def __aenter__(self) -> Self:
        self._work = {name: {k: replace(v) for k, v in t.items()} for name, t in self._db.items()}
        self.organizations = FakeOrganizations(self._work["organizations"])
        self.projects = FakeProjects(self._work["projects"])
        self.users = FakeUsers(self._work["users"])
        self.memberships = FakeMemberships(self._work["memberships"])
        self.api_keys = FakeApiKeys(self._work["api_keys"])
        self.models = FakeModels(self._work["models"])
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass

    async def commit(self) -> None:
        for name, table in self._work.items():
            self._db[name].clear()
            self._db[name].update(table)


class InMemoryRecordStore:
    def __init__(self) -> None:
        self.db: dict[str, dict[Any, Any]] = {
            name: {}
            for name in (
                "organizations",
                "projects",
                "users",
                "memberships",
                "api_keys",
                "models",
            )
        }

    def unit_of_work(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self.db)

    async def migrate(self) -> None:
        pass

    async def ping(self) -> None:
        pass

    async def close(self) -> None:
        pass
