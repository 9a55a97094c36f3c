"""The one place that turns settings into wired objects.

`build_container(settings)` validates the configuration, builds the plugin manager and a
punq container holding the chosen adapters (as lazily created singletons) and the use
cases. `Runtime` adds the async lifecycle: migrate, provision, close. An embedding
service can call either, or construct the use cases with adapters of its own.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pluggy
import punq

from fathom.adapters.auth.hashing import Sha256SecretHasher
from fathom.adapters.blob.codec import OrjsonCodec
from fathom.adapters.llm.tokenizer import TiktokenCounter
from fathom.adapters.storage.sql.locks import record_store_locks
from fathom.core.domain.errors import ConfigurationError
from fathom.core.domain.media import media_signing_key
from fathom.core.ports.blob import BlobStore
from fathom.core.ports.cache import MODELS, SCORE_CONFIGS, Caching, InvalidationBus
from fathom.core.ports.foreground import RequestGauge
from fathom.core.ports.prompts import PromptCache
from fathom.core.ports.queue import JobQueue
from fathom.core.ports.records import RecordStore
from fathom.core.ports.security import SecretHasher
from fathom.core.ports.system import Clock, IdGenerator, JsonCodec, SystemClock, UuidGenerator
from fathom.core.ports.telemetry import TelemetryStore
from fathom.core.usecases.access import (
    AuthenticateApiKey,
    CreateApiKey,
    CreateOrganization,
    CreateProject,
    HeadlessInitRequest,
    InitializeHeadless,
    ListProjectsOfKey,
)
from fathom.core.usecases.datasets import (
    CreateDataset,
    CreateDatasetRunItem,
    DeleteDatasetItem,
    DeleteDatasetRun,
    GetDataset,
    GetDatasetItem,
    GetDatasetRun,
    ListDatasetItems,
    ListDatasetRunItems,
    ListDatasetRuns,
    ListDatasets,
    ListExperimentItems,
    ListExperiments,
    RecordExperimentLinks,
    UpsertDatasetItem,
)
from fathom.core.usecases.evaluation import (
    AssignAnnotationQueue,
    CreateAnnotationQueue,
    CreateAnnotationQueueItem,
    CreateComment,
    CreateScoreConfig,
    DeleteAnnotationQueueItem,
    GetAnnotationQueue,
    GetAnnotationQueueItem,
    GetComment,
    GetScoreConfig,
    ListAnnotationQueueItems,
    ListAnnotationQueues,
    ListComments,
    ListScoreConfigs,
    ScoreConfigCache,
    UnassignAnnotationQueue,
    UpdateAnnotationQueueItem,
    UpdateScoreConfig,
)
from fathom.core.usecases.ingestion import (
    AcceptIngestionBatch,
    AcceptOtlpSpans,
    AcceptScores,
    DurableBatchWriter,
    ObservationPricer,
    ProcessIngestionJobs,
    ScoreConfigCheck,
)
from fathom.core.usecases.media import (
    DownloadMediaContent,
    GetMedia,
    GetMediaUploadUrl,
    MediaLinks,
    MediaLinkSigner,
    PatchMedia,
    UploadMediaContent,
)
from fathom.core.usecases.models import (
    CreateModel,
    DeleteModel,
    GetModel,
    ListModels,
    ModelCatalog,
)
from fathom.core.usecases.pricing import PriceObservations
from fathom.core.usecases.prompts import (
    BroadcastingPromptCache,
    CreatePromptVersion,
    DeletePrompt,
    GetPrompt,
    InMemoryPromptCache,
    LinkObservationsToPrompts,
    ListPrompts,
    ListProtectedLabels,
    ProtectPromptLabel,
    UnprotectPromptLabel,
    UpdatePromptLabels,
)
from fathom.core.usecases.traces import DeleteTraces
from fathom.entrypoints.http.otlp_decode import decode_otlp, otlp_as_json
from fathom.entrypoints.settings import Settings
from fathom.plugins.adapters import AdapterRegistry
from fathom.plugins.manager import build_plugin_manager

log = logging.getLogger(__name__)
T = TypeVar("T")

# Port name in settings -> the Protocol it is registered under.
PORT_TYPES: dict[str, Any] = {
    "records": RecordStore,
    "telemetry": TelemetryStore,
    "blob": BlobStore,
    "queue": JobQueue,
    "cache": Caching,
}
EMBEDDED_KINDS = {"sqlite", "chdb", "local", "memory"}


def ensure_data_dir(path: Path) -> Path:
    """Create the data directory, or fail with one line naming the setting."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"FATHOM_DATA_DIR={path}: cannot create the data directory ({exc.strerror})"
        ) from None
    if not path.is_dir() or not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise ConfigurationError(f"FATHOM_DATA_DIR={path}: not a readable and writable directory")
    return path


def resolve_salt(settings: Settings) -> str:
    """The API-key hash salt: configured, or generated once and kept in the data dir."""
    if settings.salt:
        return settings.salt
    salt_file = ensure_data_dir(settings.data_dir) / "salt"
    if not salt_file.exists():
        salt_file.write_text(secrets.token_hex(32))
        salt_file.chmod(0o600)
    return salt_file.read_text().strip()


@dataclass(frozen=True, slots=True)
class Wiring:
    container: punq.Container
    plugins: pluggy.PluginManager
    adapters: AdapterRegistry

    def resolve(self, service: type[T]) -> T:
        return self.container.resolve(service)


def build_container(settings: Settings) -> Wiring:
    plugins = build_plugin_manager(settings.blocked_plugins)
    registry = AdapterRegistry([spec for specs in plugins.hook.fathom_adapters() for spec in specs])
    uses_data_dir = (
        any(getattr(settings, port).kind in EMBEDDED_KINDS for port in PORT_TYPES)
        or not settings.salt
    )
    if uses_data_dir:
        ensure_data_dir(settings.data_dir)

    container = punq.Container()
    container.register(Settings, instance=settings)
    container.register(pluggy.PluginManager, instance=plugins)
    container.register(Clock, instance=SystemClock())
    container.register(IdGenerator, instance=UuidGenerator())
    container.register(SecretHasher, instance=Sha256SecretHasher(resolve_salt(settings)))

    for port, service in PORT_TYPES.items():
        adapter = getattr(settings, port)
        # Validate now so a misspelt option fails at start-up; construct on first use so a
        # CLI command that needs only the records never starts the telemetry engine.
        registry.validate(port, adapter.kind, adapter.options())
        container.register(
            service,
            factory=_lazy(registry, port, adapter.kind, adapter.options(), settings),
            scope=punq.Scope.singleton,
        )

    container.register(JsonCodec, instance=OrjsonCodec())
    container.register(
        DurableBatchWriter,
        factory=lambda: DurableBatchWriter(
            container.resolve(BlobStore),
            container.resolve(JobQueue),
            container.resolve(JsonCodec),
            container.resolve(Clock),
            container.resolve(IdGenerator),
            maskers=_collect(plugins.hook.fathom_maskers(settings=settings)),
        ),
        scope=punq.Scope.singleton,
    )
    container.register(
        InvalidationBus, factory=lambda: container.resolve(Caching).bus, scope=punq.Scope.singleton
    )
    builtin_models = _collect(plugins.hook.fathom_model_definitions())

    def model_catalog() -> ModelCatalog:
        catalog = ModelCatalog(
            container.resolve(RecordStore), container.resolve(Clock), builtin_models
        )
        container.resolve(InvalidationBus).subscribe(MODELS, lambda _key: catalog.invalidate())
        return catalog

    container.register(ModelCatalog, factory=model_catalog, scope=punq.Scope.singleton)
    container.register(
        ObservationPricer,
        factory=lambda: (
            plugins.hook.fathom_model_price_resolver(settings=settings)
            or PriceObservations(container.resolve(ModelCatalog), TiktokenCounter())
        ),
        scope=punq.Scope.singleton,
    )
    # One per process: the HTTP layer counts its requests, the in-process worker gives way.
    container.register(RequestGauge, scope=punq.Scope.singleton)
    container.register(
        ProcessIngestionJobs,
        factory=lambda: ProcessIngestionJobs(
            container.resolve(BlobStore),
            container.resolve(TelemetryStore),
            container.resolve(JsonCodec),
            container.resolve(Clock),
            decode_otlp,
            pricer=container.resolve(ObservationPricer),
            enrichers=_collect(plugins.hook.fathom_enrichers(settings=settings)),
            exporters=_collect(plugins.hook.fathom_exporters(settings=settings)),
            experiments=container.resolve(RecordExperimentLinks),
            locks=record_store_locks(container.resolve(RecordStore)),
            foreground=container.resolve(RequestGauge),
            prompt_links=LinkObservationsToPrompts(container.resolve(RecordStore)),
        ),
        scope=punq.Scope.singleton,
    )
    container.register(
        AcceptOtlpSpans,
        factory=lambda: AcceptOtlpSpans(
            container.resolve(DurableBatchWriter),
            container.resolve(Clock),
            container.resolve(JsonCodec),
            decode_otlp,
            otlp_as_json,
        ),
        scope=punq.Scope.singleton,
    )

    def score_config_cache() -> ScoreConfigCache:
        cache = ScoreConfigCache(container.resolve(RecordStore), container.resolve(Clock))
        container.resolve(InvalidationBus).subscribe(SCORE_CONFIGS, cache.invalidate)
        return cache

    container.register(ScoreConfigCache, factory=score_config_cache, scope=punq.Scope.singleton)
    # Core takes the bus and some caches as `X | None` so it works without them; punq looks a
    # dependency up by its exact annotation, so the union is registered as the same singleton.
    # That is what hands the bus to the use cases that change cached records: they publish on
    # it, so every process's caches drop those records at once rather than after their TTL.
    container.register(InvalidationBus | None, factory=lambda: container.resolve(InvalidationBus))
    container.register(ScoreConfigCache | None, factory=lambda: container.resolve(ScoreConfigCache))
    container.register(
        MediaLinkSigner,
        factory=lambda: MediaLinkSigner(
            media_signing_key(resolve_salt(settings)), container.resolve(Clock)
        ),
        scope=punq.Scope.singleton,
    )
    container.register(MediaLinks, scope=punq.Scope.singleton)

    def prompt_cache() -> PromptCache:
        caching = container.resolve(Caching)
        if caching.prompts is not None:  # not `or`: an empty cache is falsy (it has a len)
            return caching.prompts
        inner = InMemoryPromptCache(
            container.resolve(Clock), ttl_seconds=settings.prompt_cache_ttl_seconds
        )
        return BroadcastingPromptCache(inner, caching.bus)

    container.register(PromptCache, factory=prompt_cache, scope=punq.Scope.singleton)
    container.register(
        AuthenticateApiKey,
        scope=punq.Scope.singleton,
        ttl_seconds=settings.api_key_cache_ttl_seconds,
    )
    for use_case in (
        CreateApiKey,
        CreateOrganization,
        CreateProject,
        InitializeHeadless,
        ListProjectsOfKey,
        ScoreConfigCheck,
        AcceptIngestionBatch,
        AcceptScores,
        CreateModel,
        DeleteModel,
        ListModels,
        GetModel,
        CreateScoreConfig,
        UpdateScoreConfig,
        ListScoreConfigs,
        GetScoreConfig,
        CreateComment,
        ListComments,
        GetComment,
        CreateAnnotationQueue,
        ListAnnotationQueues,
        GetAnnotationQueue,
        CreateAnnotationQueueItem,
        ListAnnotationQueueItems,
        GetAnnotationQueueItem,
        UpdateAnnotationQueueItem,
        DeleteAnnotationQueueItem,
        AssignAnnotationQueue,
        UnassignAnnotationQueue,
        CreatePromptVersion,
        GetPrompt,
        ListPrompts,
        UpdatePromptLabels,
        DeletePrompt,
        ListProtectedLabels,
        ProtectPromptLabel,
        UnprotectPromptLabel,
        CreateDataset,
        ListDatasets,
        GetDataset,
        UpsertDatasetItem,
        ListDatasetItems,
        GetDatasetItem,
        DeleteDatasetItem,
        CreateDatasetRunItem,
        ListDatasetRunItems,
        ListDatasetRuns,
        GetDatasetRun,
        DeleteDatasetRun,
        RecordExperimentLinks,
        ListExperiments,
        ListExperimentItems,
        GetMediaUploadUrl,
        GetMedia,
        PatchMedia,
        UploadMediaContent,
        DownloadMediaContent,
        DeleteTraces,
    ):
        container.register(use_case, scope=punq.Scope.singleton)
    return Wiring(container, plugins, registry)


def _collect(results: list[list[Any]]) -> list[Any]:
    """Flatten the lists a registration hook returned, one per plugin."""
    return [item for result in results for item in (result or [])]


def _lazy(
    registry: AdapterRegistry, port: str, kind: str, options: dict[str, Any], settings: Settings
) -> Any:
    def build() -> Any:
        return registry.build(port, kind, options, settings)

    return build


class Runtime:
    """A wired Fathom with its lifecycle: `await start()` before use, `await stop()` after."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.wiring = build_container(settings)
        self._started: list[Any] = []

    def resolve(self, service: type[T]) -> T:
        return self.wiring.resolve(service)

    async def migrate(self) -> None:
        await self.resolve(RecordStore).migrate()

    async def start(self, *, telemetry: bool = True) -> None:
        records = self.resolve(RecordStore)
        self._started.append(records)
        await records.migrate()
        caching = self.resolve(Caching)
        self._started.append(caching)
        await caching.start()  # before the caches serve anything, so nothing is missed
        init = self.settings.init
        await self.resolve(InitializeHeadless)(HeadlessInitRequest(**init.model_dump()))
        if telemetry:
            store = self.resolve(TelemetryStore)
            self._started.append(store)
            await store.migrate()
            for service in (BlobStore, JobQueue, DurableBatchWriter):
                adapter = self.resolve(service)
                self._started.append(adapter)
                if hasattr(adapter, "ping"):
                    await adapter.ping()

    async def stop(self) -> None:
        while self._started:
            adapter = self._started.pop()
            close = getattr(adapter, "close", None)
            if close is None:
                continue
            try:
                await close()
            except Exception:  # closing must go on for the others
                log.exception("closing %s failed", type(adapter).__name__)
