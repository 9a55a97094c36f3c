"""Normalising the usage and cost a client reports on a generation.

Langfuse accepts three fields (ingestion `types.ts`): the legacy `usage` object, `usageDetails`
(OpenAI Chat Completions usage, OpenAI Responses usage, or any map of counts) and `costDetails`.
Upstream rejects the whole event when one of them has a wrong shape; these functions are
lenient instead and drop what cannot be used, so the edge decides how strict to be.
The result feeds `merge_provided_usage_and_cost`, the equivalent of upstream's
`provided_usage_details` / `provided_cost_details`.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class UsageUnit(enum.StrEnum):
    CHARACTERS = "CHARACTERS"
    TOKENS = "TOKENS"
    MILLISECONDS = "MILLISECONDS"
    SECONDS = "SECONDS"
    IMAGES = "IMAGES"
    REQUESTS = "REQUESTS"


@dataclass(frozen=True, slots=True)
class LegacyUsage:
    """The legacy `usage` object after normalisation."""

    input: int | None = None
    output: int | None = None
    total: int | None = None
    unit: UsageUnit | None = None
    input_cost: float | None = None
    output_cost: float | None = None
    total_cost: float | None = None


def as_count(value: Any) -> int | None:
    """A non-negative integer count, from an int, an integral float or a string of digits."""
    if isinstance(value, bool):  # bool is an int subclass; JSON true is not a count
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() and value >= 0 else None
    if isinstance(value, str):
        text = value.strip()
        return int(text) if text.isascii() and text.isdigit() else None
    return None


def as_cost(value: Any) -> float | None:
    """A non-negative finite number of USD."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def _as_unit(value: Any) -> UsageUnit | None:
    if isinstance(value, str) and value in UsageUnit.__members__:
        return UsageUnit(value)
    return None


_OPENAI_STYLE_KEYS = ("promptTokens", "completionTokens", "totalTokens")


def normalize_usage(raw: Any) -> LegacyUsage | None:
    """The legacy `usage` object: `{input, output, total, unit, inputCost, outputCost,
    totalCost}` or OpenAI-ish `{promptTokens, completionTokens, totalTokens}` (unit TOKENS;
    upstream then ignores every other key, costs included). None for empty or unusable input."""
    if not isinstance(raw, Mapping) or not raw:
        return None
    if any(key in raw for key in _OPENAI_STYLE_KEYS):
        usage = LegacyUsage(
            input=as_count(raw.get("promptTokens")),
            output=as_count(raw.get("completionTokens")),
            total=as_count(raw.get("totalTokens")),
            unit=UsageUnit.TOKENS,
        )
    else:
        usage = LegacyUsage(
            input=as_count(raw.get("input")),
            output=as_count(raw.get("output")),
            total=as_count(raw.get("total")),
            unit=_as_unit(raw.get("unit")),
            input_cost=as_cost(raw.get("inputCost")),
            output_cost=as_cost(raw.get("outputCost")),
            total_cost=as_cost(raw.get("totalCost")),
        )
    return None if usage == LegacyUsage() else usage


_CHAT_COMPLETIONS = ("prompt_tokens", "completion_tokens", "total_tokens")
_CHAT_COMPLETIONS_DETAILS = ("prompt_tokens_details", "completion_tokens_details")
_RESPONSES = ("input_tokens", "output_tokens", "total_tokens")
_RESPONSES_DETAILS = ("input_tokens_details", "output_tokens_details")


def _openai_usage(
    raw: Mapping[str, Any], counts: tuple[str, str, str], details: tuple[str, str]
) -> dict[str, int] | None:
    # Upstream's schemas are strict: any other key means "not this shape", and the three
    # counts are required.
    if not raw.keys() <= {*counts, *details}:
        return None
    input_count, output_count, total = (as_count(raw.get(key)) for key in counts)
    if input_count is None or output_count is None or total is None:
        return None
    for key in details:
        if raw.get(key) is not None and not isinstance(raw[key], Mapping):
            return None
    result = {"input": input_count, "output": output_count, "total": total}
    for direction, key in zip(("input", "output"), details, strict=True):
        for name, value in (raw.get(key) or {}).items():
            count = as_count(value)
            if count is None:
                continue
            result[f"{direction}_{name}"] = count
            # Details are parts of the headline count: subtract so buckets do not overlap.
            result[direction] = max(result[direction] - count, 0)
    return result


def normalize_usage_details(raw: Any) -> dict[str, int] | None:
    """`usageDetails`: OpenAI Chat Completions usage, OpenAI Responses usage (both become
    `input`/`output`/`total` plus `input_<k>`/`output_<k>` per detail, details subtracted from
    their headline count, floored at 0), or any map of counts (non-negative integers and
    integer strings kept, everything else dropped). None when nothing usable is left."""
    if not isinstance(raw, Mapping) or not raw:
        return None
    result = _openai_usage(raw, _CHAT_COMPLETIONS, _CHAT_COMPLETIONS_DETAILS)
    if result is None:
        result = _openai_usage(raw, _RESPONSES, _RESPONSES_DETAILS)
    if result is None:
        result = {}
        for key, value in raw.items():
            count = as_count(value)
            if isinstance(key, str) and count is not None:
                result[key] = count
    return result or None


def normalize_cost_details(raw: Any) -> dict[str, float] | None:
    """`costDetails`: a map keeping non-negative finite numbers. None when empty."""
    if not isinstance(raw, Mapping):
        return None
    result: dict[str, float] = {}
    for key, value in raw.items():
        cost = as_cost(value)
        if isinstance(key, str) and cost is not None:
            result[key] = cost
    return result or None


def merge_provided_usage_and_cost(
    usage: LegacyUsage | None,
    usage_details: Mapping[str, int] | None,
    cost_details: Mapping[str, float] | None,
) -> tuple[dict[str, int], dict[str, float]]:
    """Upstream's `provided_usage_details` and `provided_cost_details` of one event.

    Legacy `usage.input/output/total` come first and `usageDetails` overrides them key by key;
    without `usageDetails` a missing total becomes input + output. Legacy costs map to
    `input/output/total` and `costDetails` overrides them.
    """
    provided_usage: dict[str, int] = {}
    provided_cost: dict[str, float] = {}
    if usage is not None:
        total = usage.total
        # Upstream: `usage.total || (no usageDetails ? fallback : undefined)`; a zero total is
        # falsy there and is replaced by the fallback, which this keeps.
        if not total:
            if usage_details:
                total = None
            elif usage.input and usage.output:
                total = usage.input + usage.output
            else:
                total = usage.input if usage.input is not None else usage.output
        if usage.input is not None:
            provided_usage["input"] = usage.input
        if usage.output is not None:
            provided_usage["output"] = usage.output
        if total is not None:
            provided_usage["total"] = total
        if usage.input_cost is not None:
            provided_cost["input"] = usage.input_cost
        if usage.output_cost is not None:
            provided_cost["output"] = usage.output_cost
        if usage.total_cost is not None:
            provided_cost["total"] = usage.total_cost
    for key, count in (usage_details or {}).items():
        if count is not None:
            provided_usage[key] = count
    for key, cost in (cost_details or {}).items():
        if cost is not None:
            provided_cost[key] = cost
    return provided_usage, provided_cost


def provided_usage_details(usage: Any, usage_details: Any) -> dict[str, int] | None:
    """Raw `usage` + `usageDetails` of one event → its provided usage details, or None.

    Fits `merge.UsageNormalizer`."""
    provided, _ = merge_provided_usage_and_cost(
        normalize_usage(usage), normalize_usage_details(usage_details), None
    )
    return provided or None


def provided_cost_details(usage: Any, cost_details: Any) -> dict[str, float] | None:
    """Raw `usage` + `costDetails` of one event → its provided cost details, or None.

    Fits `merge.CostNormalizer`."""
    _, provided = merge_provided_usage_and_cost(
        normalize_usage(usage), None, normalize_cost_details(cost_details)
    )
    return provided or None
