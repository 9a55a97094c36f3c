"""Hookspecs, the plugin manager, entry-point discovery and blocking."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fathom.plugins import hookspecs
from fathom.plugins.manager import build_plugin_manager, describe_plugins

HOOKS = [
    name
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
    if name.startswith("fathom_")
]


def test_every_hook_says_when_it_is_called_and_what_it_returns() -> None:
    assert len(HOOKS) >= 8
    for name in HOOKS:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert "Called" in doc, name
        assert "Return" in doc or "return" in doc, name


def test_builtins_register_through_the_hooks() -> None:
    manager = build_plugin_manager()
    kinds = {(s.port, s.kind) for specs in manager.hook.fathom_adapters() for s in specs}
    assert {
        ("records", "sqlite"),
        ("telemetry", "chdb"),
        ("blob", "local"),
        ("queue", "local"),
    } <= kinds
    names = [row["name"] for row in describe_plugins(manager)]
    assert "fathom.core_adapters" in names


def test_blocking_a_builtin_removes_its_adapters() -> None:
    manager = build_plugin_manager(blocked=["fathom.core_adapters"])
    assert manager.hook.fathom_adapters() == []


def test_managers_are_independent() -> None:
    first, second = build_plugin_manager(), build_plugin_manager(["fathom.core_adapters"])
    assert first.hook.fathom_adapters() and not second.hook.fathom_adapters()


PLUGIN_MODULE = textwrap.dedent(
    """
    from fathom.plugins.hookspecs import hookimpl

    class UpperMasker:
        async def mask(self, project_id, organization_id, events, headers):
            return events

    @hookimpl
    def fathom_maskers(settings):
        return [UpperMasker()]
    """
)


def install_fake_distribution(site: Path) -> None:
    """What `pip install fathom-upper-masker` would leave behind: a module and a dist-info."""
    (site / "fathom_upper_masker.py").write_text(PLUGIN_MODULE)
    info = site / "fathom_upper_masker-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fathom-upper-masker\nVersion: 1.2.3\n"
    )
    (info / "entry_points.txt").write_text("[fathom]\nupper-masker = fathom_upper_masker\n")
    (info / "RECORD").write_text("")


SCRIPT = textwrap.dedent(
    """
    import sys, json
    from fathom.plugins.manager import build_plugin_manager, describe_plugins
    blocked = sys.argv[1:]
    manager = build_plugin_manager(blocked)
    maskers = [type(m).__name__ for ms in manager.hook.fathom_maskers(settings=None) for m in ms]
    print(json.dumps({"maskers": maskers, "plugins": describe_plugins(manager)}))
    """
)


@pytest.mark.parametrize("blocked", [[], ["upper-masker"]])
def test_separately_installed_plugin_is_discovered_and_can_be_blocked(
    tmp_path: Path, blocked: list[str]
) -> None:
    install_fake_distribution(tmp_path)
    import json
    import os

    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, *blocked],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads(out)
    if blocked:
        assert result["maskers"] == []
        assert "upper-masker" not in [p["name"] for p in result["plugins"]]
    else:
        assert result["maskers"] == ["UpperMasker"]
        row = next(p for p in result["plugins"] if p["name"] == "upper-masker")
        assert row["origin"] == "fathom-upper-masker 1.2.3"
        assert row["hooks"] == ["fathom_maskers"]
