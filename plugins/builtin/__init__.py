"""Built-in plugins: registered through the same hooks as third-party ones."""

from __future__ import annotations

from types import ModuleType

from fathom.plugins.builtin import core_adapters, masking_callback, model_catalog

# (name, module): names are what `FATHOM_BLOCKED_PLUGINS` refers to.
BUILTIN_PLUGINS: list[tuple[str, ModuleType]] = [
    ("fathom.core_adapters", core_adapters),
    ("fathom.model_catalog", model_catalog),
    ("fathom.masking_callback", masking_callback),
]
