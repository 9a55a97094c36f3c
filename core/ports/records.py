"""Record storage: relational data (tenancy, keys, models, prompts, datasets, configs).

Use cases open a unit of work, use its repositories and commit. Adapters live in
`fathom.adapters.storage.sql`.
"""

from __future__ import annotations

from typing import Protocol, Self

from fathom.core.domain.access import ApiKey, Membership, Organization, Project, User
from fathom.core.domain.pricing import Model
from fathom.core.ports.datasets import DatasetRepository
from fathom.core.ports.evaluation import (
    AnnotationQueueRepository,
    CommentRepository,
    ScoreConfigRepository,
)
from fathom.core.ports.media import MediaRepository
from fathom.core.ports.prompts import PromptRepository


class OrganizationRepository(Protocol):
    async def get(self, organization_id: str) -> Organization | None: ...
    async def add(self, organization: Organization) -> None: ...


class ProjectRepository(Protocol):
    async def get(self, project_id: str) -> Project | None: ...
    async def add(self, project: Project) -> None: ...
    async def list_for_organization(self, organization_id: str) -> list[Project]: ...


class UserRepository(Protocol):
    async def get_by_email(self, email: str) -> User | None: ...
    async def add(self, user: User) -> None: ...


class MembershipRepository(Protocol):
    async def get(self, organization_id: str, user_id: str) -> Membership | None: ...
    async def add(self, membership: Membership) -> None: ...


class ApiKeyRepository(Protocol):
    async def get_by_fast_hash(self, fast_hashed_secret_key: str) -> ApiKey | None: ...
    async def get_by_public_key(self, public_key: str) -> ApiKey | None: ...
    async def add(self, api_key: ApiKey) -> None: ...
    async def list_for_project(self, project_id: str) -> list[ApiKey]: ...
    async def delete(self, api_key_id: str) -> bool: ...


class ModelRepository(Protocol):
    """A project's own model definitions; the built-in ones are never stored here."""

    async def get(self, project_id: str, model_id: str) -> Model | None: ...
    async def get_by_name(self, project_id: str, model_name: str) -> Model | None: ...
    async def add(self, model: Model) -> None:
        """`model.project_id` must be set."""
        ...

    async def list_for_project(self, project_id: str) -> list[Model]: ...
    async def list_all(self) -> list[Model]:
        """Every project's models: what the pricing catalog matches against."""
        ...

    async def delete(self, project_id: str, model_id: str) -> bool: ...


class UnitOfWork(Protocol):
    organizations: OrganizationRepository
    projects: ProjectRepository
    users: UserRepository
    memberships: MembershipRepository
    api_keys: ApiKeyRepository
    models: ModelRepository
    prompts: PromptRepository
    score_configs: ScoreConfigRepository
    comments: CommentRepository
    annotation_queues: AnnotationQueueRepository
    datasets: DatasetRepository
    media: MediaRepository

    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc: object) -> None:
        """Rolls back whatever was not committed."""
        ...

    async def commit(self) -> None: ...


class RecordStore(Protocol):
    def unit_of_work(self) -> UnitOfWork: ...

    async def migrate(self) -> None:
        """Bring the schema to the newest version."""
        ...

    async def ping(self) -> None:
        """Raise when the database cannot be reached."""
        ...

    async def close(self) -> None: ...
