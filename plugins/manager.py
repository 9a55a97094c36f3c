"""Builds the plugin manager: built-ins first, then the `fathom` entry-point group."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib.metadata import entry_points

import pluggy

from fathom.plugins import hookspecs
from fathom.plugins.builtin import BUILTIN_PLUGINS

ENTRY_POINT_GROUP = "fathom"
log = logging.getLogger(__name__)


class FathomPluginManager(pluggy.PluginManager):
    """Remembers which distribution each plugin came from, for `fathom plugins`."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.origins: dict[str, str] = {}


def build_plugin_manager(blocked: Iterable[str] = ()) -> FathomPluginManager:
    """A fresh manager per container, so two containers in one process never share state.

    `blocked` holds plugin names (built-in module names or entry-point names) to skip.
    """
    manager = FathomPluginManager()
    manager.add_hookspecs(hookspecs)
    blocked = set(blocked)
    for name in blocked:
        manager.set_blocked(name)
    for name, module in BUILTIN_PLUGINS:
        if name not in blocked:
            manager.register(module, name=name)
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name in blocked or manager.has_plugin(entry_point.name):
            continue
        try:
            plugin = entry_point.load()
        except Exception as exc:  # a broken third-party plugin must not take the server down
            log.error("plugin %s could not be loaded: %s", entry_point.name, exc)
            continue
        manager.register(plugin, name=entry_point.name)
        dist = entry_point.dist
        manager.origins[entry_point.name] = f"{dist.name} {dist.version}" if dist else "unknown"
    return manager


def describe_plugins(manager: FathomPluginManager) -> list[dict[str, object]]:
    """Name, origin and implemented hooks of every registered plugin (for `fathom plugins`)."""
    rows = []
    for name, plugin in manager.list_name_plugin():
        if plugin is None:
            continue
        hooks = sorted(caller.name for caller in manager.get_hookcallers(plugin) or [])
        rows.append({"name": name, "origin": manager.origins.get(name, "built-in"), "hooks": hooks})
    return rows
