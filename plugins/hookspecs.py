"""The hooks a Fathom plugin can implement.

Plugins are found through the `fathom` entry-point group (and the built-ins in
`fathom.plugins.builtin`). Registration hooks run once, when a container is built; the hot
paths call the objects they returned, never `pm.hook` per event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from fathom.core.domain.pricing import Model
    from fathom.core.ports.extensions import (
        Enricher,
        Evaluator,
        Exporter,
        IdentityProvider,
        Masker,
    )
    from fathom.entrypoints.settings import Settings
    from fathom.plugins.adapters import AdapterSpec

PROJECT_NAME = "fathom"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def fathom_adapters() -> list[AdapterSpec]:
    """Declare adapters this plugin provides.

    Called once per container. Returns `AdapterSpec`s naming the port (`records`,
    `telemetry`, `blob`, `queue`, `llm`), the `kind` users select in settings
    (`FATHOM_BLOB__KIND=s3`), the pydantic model of its options and a factory. A kind
    declared twice is a configuration error.
    """


@hookspec
def fathom_maskers(settings: Settings) -> list[Masker]:
    """Return maskers to run on every ingestion path before anything is stored.

    Called once per container; maskers run in plugin registration order. Return an empty
    list when the plugin's own settings leave masking off. A masker with a `mask_otlp`
    method (`OtlpMasker`) gets OTLP exports in their OTLP/JSON form, as Langfuse's masking
    callback does; the others get the events converted from them.
    """


@hookspec
def fathom_enrichers(settings: Settings) -> list[Enricher]:
    """Return enrichers that add derived fields to merged traces and observations.

    Called once per container; the worker calls every enricher on each written batch.
    """


@hookspec
def fathom_evaluators(settings: Settings) -> list[Evaluator]:
    """Return evaluators that score traces after they are stored.

    Called once per container.
    """


@hookspec
def fathom_exporters(settings: Settings) -> list[Exporter]:
    """Return exporters that receive every written batch of records.

    Called once per container.
    """


@hookspec
def fathom_identity_providers(settings: Settings) -> list[IdentityProvider]:
    """Return SSO identity providers users can log in with.

    Called once per container.
    """


@hookspec
def fathom_model_definitions() -> list[Model]:
    """Return model definitions (match patterns and prices) to seed as built-in models.

    Called once per container; definitions of every plugin are combined. Project-specific
    models created through the API always take precedence over these.
    """


@hookspec(firstresult=True)
def fathom_model_price_resolver(settings: Settings) -> Any:
    """Return an object replacing the built-in pricing of generations, or None.

    Called once per container; the first non-None answer wins. The object is the worker's
    `ObservationPricer`: awaited as `pricer(project_id, observations)`, it fills model id,
    usage, cost and total cost of the observations in place; `await pricer.prepare()` runs
    once when a worker starts (build lookup tables there, or do nothing).
    """
