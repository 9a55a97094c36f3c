"""Pricing of merged observations: match the model, infer usage and cost (upstream's rules)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Protocol

from fathom.core.domain.pricing import (
    Model,
    ModelMatcher,
    infer_usage_and_cost,
    needs_tokenization,
)
from fathom.core.domain.tokens import TokenCounter, count_usage
from fathom.core.domain.tracing import Observation


class ModelSource(Protocol):
    """Where the models come from: `ModelCatalog` (built-ins + project models) in the app."""

    async def models(self) -> Sequence[Model]:
        """The current list; the same object for as long as nothing changed."""
        ...


class StaticModels:
    """A fixed model list, for embedding without a record store and for benchmarks."""

    def __init__(self, models: Iterable[Model]) -> None:
        self._models = tuple(models)

    async def models(self) -> Sequence[Model]:
        return self._models


def _clear_pricing(observation: Observation) -> None:
    observation.usage_details = {}
    observation.cost_details = {}
    observation.total_cost = None
    observation.usage_pricing_tier_name = None
    observation.internal_model_id = None


class PriceObservations:
    """Fills `internal_model_id`, usage and cost details, total cost and pricing tier.

    Ingested usage and cost win; otherwise usage is counted with a real tokenizer and cost
    is computed from the matched model's (tiered) prices. The matcher is rebuilt only when
    the source hands back a different list object (a model was created or deleted), so
    matching a known name costs well under 1 µs.
    """

    def __init__(self, models: ModelSource, counter: TokenCounter | None = None) -> None:
        self._models = models
        self._counter = counter
        self._matcher: ModelMatcher | None = None
        self._matched_list: Sequence[Model] | None = None

    def invalidate(self) -> None:
        self._matcher = None
        self._matched_list = None

    async def prepare(self) -> None:
        await self._current_matcher()

    async def _current_matcher(self) -> ModelMatcher:
        models = await self._models.models()
        if self._matcher is None or models is not self._matched_list:
            self._matcher = ModelMatcher(models)
            self._matched_list = models
        return self._matcher

    async def __call__(self, project_id: str, observations: list[Observation]) -> None:
        matcher = await self._current_matcher()
        # A few microseconds per observation, tens of milliseconds for a worker's chunk: on a
        # thread, so the requests `fathom serve` answers meanwhile do not wait for it.
        await asyncio.to_thread(self._price, matcher, project_id, observations)

    def _price(
        self, matcher: ModelMatcher, project_id: str, observations: list[Observation]
    ) -> None:
        for observation in observations:
            provided_usage = observation.provided_usage_details
            provided_cost = observation.provided_cost_details
            model = (
                matcher.match(observation.model, at=observation.start_time, project_id=project_id)
                if observation.model
                else None
            )
            if model is None and not provided_usage and not provided_cost:
                # Upstream recomputes these on every merge: a stored row whose model changed to
                # an unknown name must not keep the old model's usage and cost.
                if (
                    observation.internal_model_id is not None
                    or observation.usage_details
                    or observation.cost_details
                ):
                    _clear_pricing(observation)
                continue
            tokenized = None
            if self._counter is not None and needs_tokenization(
                model, provided_usage, observation.level.value
            ):
                assert model is not None
                tokenized = count_usage(self._counter, model, observation.input, observation.output)
            priced = infer_usage_and_cost(
                provided_usage,
                provided_cost,
                model,
                tokenized_usage=tokenized,
                model_parameters=observation.model_parameters,
                metadata=observation.metadata,
            )
            observation.usage_details = dict(priced.usage_details)
            observation.cost_details = dict(priced.cost_details)
            observation.total_cost = priced.total_cost
            observation.usage_pricing_tier_name = priced.tier_name
            observation.internal_model_id = model.id if model is not None else None
