"""Settings from the environment and the errors a misconfiguration gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from fathom.core.domain.errors import ConfigurationError
from fathom.entrypoints.bootstrap import build_container
from fathom.entrypoints.settings import Settings


def test_defaults_are_the_embedded_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FATHOM_PORT", "FATHOM_HOST", "FATHOM_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert (settings.host, settings.port, settings.data_dir) == (
        "127.0.0.1",
        3000,
        Path("fathom-data"),
    )
    assert [getattr(settings, p).kind for p in ("records", "telemetry", "blob", "queue")] == [
        "sqlite",
        "chdb",
        "local",
        "local",
    ]


def test_nested_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FATHOM_PORT", "4000")
    monkeypatch.setenv("FATHOM_BLOB__PATH", "/srv/blobs")
    monkeypatch.setenv("FATHOM_RECORDS__KIND", "postgres")
    monkeypatch.setenv("FATHOM_RECORDS__URL", "postgresql://db/fathom")
    monkeypatch.setenv("LANGFUSE_CACHE_API_KEY_TTL_SECONDS", "42")
    settings = Settings()
    assert settings.port == 4000
    assert settings.blob.kind == "local" and settings.blob.options() == {"path": "/srv/blobs"}
    assert settings.records.kind == "postgres"
    assert settings.records.options() == {"url": "postgresql://db/fathom"}
    assert settings.api_key_cache_ttl_seconds == 42


def test_langfuse_headless_init_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "ORG_ID": "o",
        "ORG_NAME": "On",
        "PROJECT_ID": "p",
        "PROJECT_NAME": "Pn",
        "PROJECT_PUBLIC_KEY": "pk-lf-x",
        "PROJECT_SECRET_KEY": "sk-lf-x",
        "USER_EMAIL": "u@x.io",
        "USER_NAME": "U",
        "USER_PASSWORD": "pw",
    }
    for key, value in values.items():
        monkeypatch.setenv(f"LANGFUSE_INIT_{key}", value)
    init = Settings().init
    assert {k.upper(): v for k, v in init.model_dump().items()} == values


def test_unknown_kind_names_the_setting_and_the_choices(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, blob={"kind": "s4"})
    with pytest.raises(ConfigurationError) as caught:
        build_container(settings)
    assert caught.value.message == (
        "FATHOM_BLOB__KIND='s4' is not a known blob adapter; choose one of: azure, gcs, local, s3"
    )


def test_misspelt_option_names_the_variable(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, queue={"kind": "local", "max_atempts": 3})
    with pytest.raises(ConfigurationError) as caught:
        build_container(settings)
    assert "unknown option 'max_atempts' (FATHOM_QUEUE__MAX_ATEMPTS)" in caught.value.message
    assert "max_attempts" in caught.value.message


def test_missing_option_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build_container(Settings(data_dir=tmp_path, records={"kind": "postgres"}))
    assert "missing option 'url' (FATHOM_RECORDS__URL)" in caught.value.message


def test_unusable_data_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigurationError) as caught:
        build_container(Settings(data_dir=blocker / "sub"))
    assert caught.value.message.startswith(f"FATHOM_DATA_DIR={blocker / 'sub'}:")


def test_salt_is_generated_once_per_data_dir(tmp_path: Path) -> None:
    from fathom.entrypoints.bootstrap import resolve_salt

    settings = Settings(data_dir=tmp_path)
    first = resolve_salt(settings)
    assert first == resolve_salt(settings) and len(first) == 64
    assert resolve_salt(Settings(data_dir=tmp_path, salt="given")) == "given"
