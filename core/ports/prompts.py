"""Storage and cache ports of prompt management."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from fathom.core.domain.prompts import (
    Dependent,
    PromptListQuery,
    PromptMeta,
    PromptReference,
    PromptVersion,
)
from fathom.core.ports.telemetry import Page


class PromptRepository(Protocol):
    """Prompt versions and their labels, per project.

    Labels are stored so that one label can point at one version of a name only; writers
    give every touched version its complete new label list (`save_labels`) and the store
    keeps that invariant even against concurrent writers (a conflicting write raises
    `Conflict`)."""

    async def get(
        self,
        project_id: str,
        name: str,
        *,
        version: int | None = None,
        label: str | None = None,
    ) -> PromptVersion | None:
        """The version with this number, or the one carrying this label (give one)."""
        ...

    async def latest(self, project_id: str, name: str) -> PromptVersion | None:
        """The highest version of a name."""
        ...

    async def list_versions(self, project_id: str, name: str) -> list[PromptVersion]:
        """Every version of a name, oldest first."""
        ...

    async def add(self, prompt: PromptVersion, references: Sequence[PromptReference]) -> None:
        """Store a new version with its labels and the prompts it references.

        Raises `Conflict` when the version number is already taken."""
        ...

    async def save_labels(
        self, project_id: str, name: str, prompt_id: str, labels: Sequence[str], at: datetime
    ) -> None:
        """Replace one version's labels (and bump its `updated_at`)."""
        ...

    async def set_tags(self, project_id: str, name: str, tags: Sequence[str], at: datetime) -> None:
        """Tags belong to the name: every version gets them (and a new `updated_at`)."""
        ...

    async def delete_versions(
        self, project_id: str, name: str, prompt_ids: Collection[str]
    ) -> None:
        """Delete these versions; the name's tags go too once no version is left."""
        ...

    async def dependents(self, project_id: str, name: str) -> list[Dependent]:
        """Versions of other prompts whose text references `name`."""
        ...

    async def list_meta(self, project_id: str, query: PromptListQuery) -> Page[PromptMeta]:
        """Prompt names with their versions, labels and tags, ordered by name."""
        ...

    async def protected_labels(self, project_id: str) -> list[str]: ...

    async def protect_label(self, project_id: str, label: str, at: datetime) -> None:
        """Idempotent."""
        ...

    async def unprotect_label(self, project_id: str, label: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class PromptCacheKey:
    project_id: str
    name: str
    version: int | None
    label: str | None


class PromptCache(Protocol):
    """Resolved prompts by (project, name, version or label), in front of the store.

    A read that misses takes a `token()` *before* reading the store and hands it to `put`;
    an implementation drops the put when the project changed since the token was taken, so
    a slow read can never park pre-change data in the cache. `invalidate` must also drop
    cached prompts that embed the changed name through a reference."""

    async def get(self, key: PromptCacheKey) -> PromptVersion | None: ...

    async def token(self, project_id: str) -> object: ...

    async def put(
        self,
        key: PromptCacheKey,
        prompt: PromptVersion,
        names: Collection[str],
        token: object,
    ) -> None:
        """Cache `prompt`; `names` are every prompt name it was built from."""
        ...

    async def invalidate(self, project_id: str, name: str) -> None: ...
