"""Extension points that plugins implement; the ingestion and evaluation paths call them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from fathom.core.domain.scores import Score
from fathom.core.domain.tracing import Observation, Trace


class Masker(Protocol):
    """Redacts ingestion events before anything is stored."""

    async def mask(
        self,
        project_id: str,
        organization_id: str,
        events: list[dict[str, Any]],
        headers: Mapping[str, str],
    ) -> list[dict[str, Any]]:
        """Return the events to keep (masked); an event left out is dropped."""
        ...


class Enricher(Protocol):
    """Adds derived fields to merged records before they are written."""

    def enrich(self, traces: list[Trace], observations: list[Observation]) -> None: ...


class Evaluator(Protocol):
    """Scores traces after they are stored (LLM-as-a-judge and friends)."""

    name: str

    async def evaluate(self, trace: Trace, observations: list[Observation]) -> list[Score]: ...


class Exporter(Protocol):
    """Receives written records, e.g. to mirror them into a warehouse or a webhook."""

    name: str

    async def export(
        self,
        project_id: str,
        traces: list[Trace],
        observations: list[Observation],
        scores: list[Score],
    ) -> None: ...


class IdentityProvider(Protocol):
    """An SSO login method (OIDC)."""

    name: str

    def authorization_url(self, state: str, redirect_uri: str) -> str: ...

    async def user_from_callback(self, code: str, redirect_uri: str) -> dict[str, Any]: ...
