"""Configuration from the environment: `FATHOM_` prefix, nested with `__`.

Each port has an `AdapterSettings` block whose `kind` picks the adapter; every other key
in that block is an option of the chosen adapter, validated by the adapter's own options
model when the container is built (see `fathom.entrypoints.bootstrap`). Langfuse's own
variable names are accepted where an operator of Langfuse would expect them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class AdapterSettings(BaseModel):
    """`kind` selects the adapter; the remaining keys are that adapter's options."""

    model_config = ConfigDict(extra="allow")

    kind: str

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class HeadlessInit(BaseModel):
    """Langfuse's headless initialisation (`LANGFUSE_INIT_*`): a project with known keys."""

    org_id: str | None = None
    org_name: str | None = None
    project_id: str | None = None
    project_name: str | None = None
    project_public_key: str | None = None
    project_secret_key: str | None = None
    user_email: str | None = None
    user_name: str | None = None
    user_password: str | None = None


DEFAULT_KINDS = {
    "records": "sqlite",
    "telemetry": "chdb",
    "blob": "local",
    "queue": "local",
    "cache": "memory",
}


def _default_adapter(kind: str) -> Any:
    return Field(default_factory=lambda: AdapterSettings(kind=kind))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FATHOM_",
        env_nested_delimiter="__",
        extra="ignore",
        populate_by_name=True,
    )

    host: str = "127.0.0.1"
    port: int = Field(default=3000, ge=0, le=65535)
    data_dir: Path = Path("fathom-data")

    records: AdapterSettings = _default_adapter("sqlite")
    telemetry: AdapterSettings = _default_adapter("chdb")
    blob: AdapterSettings = _default_adapter("local")
    queue: AdapterSettings = _default_adapter("local")
    # memory: this process's caches only; redis: a change reaches every process's caches.
    cache: AdapterSettings = _default_adapter("memory")

    salt: str | None = Field(
        default=None,
        validation_alias=AliasChoices("FATHOM_SALT", "SALT"),
        description="Salt of the API-key hash; generated into the data dir when unset.",
    )
    api_key_cache_ttl_seconds: int = Field(
        default=300,
        ge=0,
        validation_alias=AliasChoices(
            "FATHOM_API_KEY_CACHE_TTL_SECONDS", "LANGFUSE_CACHE_API_KEY_TTL_SECONDS"
        ),
    )
    prompt_cache_ttl_seconds: int = Field(
        default=300,
        ge=0,
        validation_alias=AliasChoices(
            "FATHOM_PROMPT_CACHE_TTL_SECONDS", "LANGFUSE_CACHE_PROMPT_TTL_SECONDS"
        ),
        description="Server-side prompt cache; 0 turns it off.",
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_ingestion_body_bytes: int = Field(default=4_718_592, ge=1024)
    max_otlp_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    worker_gather_ms: int = Field(
        default=100,
        ge=0,
        le=10_000,
        description=(
            "After a batch smaller than one chunk, the worker waits this long before taking "
            "the next, so what arrives meanwhile is written in one larger insert (at 10k "
            "spans/s this halves the CPU per span). 0 takes the next batch at once."
        ),
    )
    log_level: str = "INFO"
    blocked_plugins: list[str] = Field(default_factory=list)

    init: HeadlessInit = Field(default_factory=HeadlessInit)

    @field_validator(*DEFAULT_KINDS, mode="before")
    @classmethod
    def _default_kind(cls, value: Any, info: ValidationInfo) -> Any:
        # FATHOM_BLOB__PATH=… alone must keep the default kind rather than lose it.
        if isinstance(value, dict) and "kind" not in value:
            return {"kind": DEFAULT_KINDS[info.field_name], **value}
        return value

    def model_post_init(self, _context: Any) -> None:
        # pydantic-settings reads one prefix; the LANGFUSE_INIT_* family is read here so a
        # Langfuse operator's environment works unchanged.
        import os

        for name in HeadlessInit.model_fields:
            value = os.environ.get(f"LANGFUSE_INIT_{name.upper()}")
            if value and getattr(self.init, name) is None:
                setattr(self.init, name, value)
