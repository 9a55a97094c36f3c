"""How a plugin declares an adapter: port, kind, options model and factory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from fathom.core.domain.errors import ConfigurationError

if TYPE_CHECKING:
    from fathom.entrypoints.settings import Settings

PORTS = ("records", "telemetry", "blob", "queue", "cache", "llm")


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    port: str
    kind: str
    options: type[BaseModel]
    factory: Callable[[Any, Settings], Any]
    description: str = ""


class AdapterRegistry:
    def __init__(self, specs: list[AdapterSpec]) -> None:
        self._specs: dict[tuple[str, str], AdapterSpec] = {}
        for spec in specs:
            key = (spec.port, spec.kind)
            if spec.port not in PORTS:
                raise ConfigurationError(
                    f"adapter {spec.kind!r} names an unknown port {spec.port!r}"
                )
            if key in self._specs:
                raise ConfigurationError(
                    f"two plugins declare the {spec.port} adapter {spec.kind!r}"
                )
            self._specs[key] = spec

    def kinds(self, port: str) -> list[str]:
        return sorted(kind for (p, kind) in self._specs if p == port)

    def validate(self, port: str, kind: str, options: dict[str, Any]) -> BaseModel:
        """Parse an adapter's options, or raise one clear line naming the setting."""
        spec = self._spec(port, kind)
        try:
            return spec.options.model_validate(options)
        except ValidationError as exc:
            raise ConfigurationError(_explain(port, kind, spec.options, exc)) from None

    def build(self, port: str, kind: str, options: dict[str, Any], settings: Settings) -> Any:
        return self._spec(port, kind).factory(self.validate(port, kind, options), settings)

    def _spec(self, port: str, kind: str) -> AdapterSpec:
        spec = self._specs.get((port, kind))
        if spec is None:
            raise ConfigurationError(
                f"FATHOM_{port.upper()}__KIND={kind!r} is not a known {port} adapter; "
                "choose one of: " + ", ".join(self.kinds(port))
            )
        return spec


def _explain(port: str, kind: str, model: type[BaseModel], exc: ValidationError) -> str:
    known = ", ".join(sorted(model.model_fields)) or "none"
    problems = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"])
        env = f"FATHOM_{port.upper()}__{name.upper()}"
        if error["type"] == "extra_forbidden":
            problems.append(f"unknown option {name!r} ({env})")
        elif error["type"] == "missing":
            problems.append(f"missing option {name!r} ({env})")
        else:
            problems.append(f"option {name!r} ({env}): {error['msg']}")
    return f"{port} adapter {kind!r}: " + "; ".join(problems) + f". Known options: {known}"
