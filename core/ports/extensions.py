"""Extension points that plugins implement; the ingestion and evaluation paths call them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

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


@runtime_checkable
class OtlpMasker(Masker, Protocol):
    """A masker that also redacts OTLP exports as received, in their OTLP/JSON form.

    On `POST /api/public/otel/v1/traces` it is called with the export instead of the events
    converted from it; the other paths still call `mask`.
    """

    async def mask_otlp(
        self,
        project_id: str,
        organization_id: str,
        resource_spans: list[dict[str, Any]],
        headers: Mapping[str, str],
    ) -> list[dict[str, Any]] | None:
        """Return the export's `resourceSpans` masked (the same structure, only values
        changed), or None to drop the whole export."""
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
