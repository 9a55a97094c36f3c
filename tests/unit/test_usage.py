"""Normalisation of ingested `usage`, `usageDetails` and `costDetails`."""

from __future__ import annotations

import math
from typing import Any

import pytest

from fathom.core.domain.usage import (
    LegacyUsage,
    UsageUnit,
    as_count,
    merge_provided_usage_and_cost,
    normalize_cost_details,
    normalize_usage,
    normalize_usage_details,
    provided_cost_details,
    provided_usage_details,
)

# --- legacy `usage` ---------------------------------------------------------------------------


def test_legacy_usage_object() -> None:
    usage = normalize_usage(
        {
            "input": 10,
            "output": 20,
            "total": 30,
            "unit": "CHARACTERS",
            "inputCost": 0.1,
            "outputCost": 0.2,
            "totalCost": 0.3,
        }
    )
    assert usage == LegacyUsage(
        input=10,
        output=20,
        total=30,
        unit=UsageUnit.CHARACTERS,
        input_cost=0.1,
        output_cost=0.2,
        total_cost=0.3,
    )


def test_openai_style_legacy_usage_becomes_tokens_and_drops_costs() -> None:
    usage = normalize_usage(
        {"promptTokens": 5, "completionTokens": 7, "totalTokens": 12, "inputCost": 1.0}
    )
    assert usage == LegacyUsage(input=5, output=7, total=12, unit=UsageUnit.TOKENS)
    # One OpenAI-style key is enough to switch shapes.
    assert normalize_usage({"promptTokens": 5, "input": 99}) == LegacyUsage(
        input=5, unit=UsageUnit.TOKENS
    )


@pytest.mark.parametrize("raw", [None, {}, [], "usage", {"unit": "PARSECS", "input": -1}])
def test_empty_or_unusable_legacy_usage_is_none(raw: Any) -> None:
    assert normalize_usage(raw) is None


def test_legacy_usage_drops_invalid_fields() -> None:
    assert normalize_usage({"input": 1.5, "output": "3", "total": True, "inputCost": -1}) == (
        LegacyUsage(output=3)
    )


# --- usageDetails -----------------------------------------------------------------------------


def test_openai_chat_completions_usage() -> None:
    details = normalize_usage_details(
        {
            "prompt_tokens": 100,
            "completion_tokens": 50,
            "total_tokens": 150,
            "prompt_tokens_details": {"cached_tokens": 30, "audio_tokens": None},
            "completion_tokens_details": {
                "reasoning_tokens": 20,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
    )
    assert details == {
        "input": 70,
        "output": 30,
        "total": 150,
        "input_cached_tokens": 30,
        "output_reasoning_tokens": 20,
        "output_audio_tokens": 0,
        "output_accepted_prediction_tokens": 0,
        "output_rejected_prediction_tokens": 0,
    }


def test_openai_details_subtraction_floors_at_zero() -> None:
    details = normalize_usage_details(
        {
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 8, "audio_tokens": 8},
            "completion_tokens_details": None,
        }
    )
    assert details == {
        "input": 0,
        "output": 5,
        "total": 15,
        "input_cached_tokens": 8,
        "input_audio_tokens": 8,
    }


def test_openai_responses_usage() -> None:
    details = normalize_usage_details(
        {
            "input_tokens": 328,
            "output_tokens": 52,
            "total_tokens": 380,
            "input_tokens_details": {"cached_tokens": 128},
            "output_tokens_details": {"reasoning_tokens": 12},
        }
    )
    assert details == {
        "input": 200,
        "output": 40,
        "total": 380,
        "input_cached_tokens": 128,
        "output_reasoning_tokens": 12,
    }


def test_openai_shapes_are_strict_and_fall_back_to_generic_map() -> None:
    # An extra key means "not the OpenAI shape": the counts are kept as they are.
    anthropic_like = {
        "input_tokens": 10,
        "output_tokens": 5,
        "total_tokens": 15,
        "cache_read_input_tokens": 4,
    }
    assert normalize_usage_details(anthropic_like) == anthropic_like
    # A missing required count does the same; the nested details object is dropped.
    assert normalize_usage_details(
        {"prompt_tokens": 10, "completion_tokens": 5, "prompt_tokens_details": {"x": 1}}
    ) == {"prompt_tokens": 10, "completion_tokens": 5}


def test_generic_usage_map() -> None:
    details = normalize_usage_details(
        {
            "input": 10,
            "output": "20",
            "cache_read": " 3 ",
            "float_int": 4.0,
            "fraction": 1.5,
            "negative": -1,
            "negative_text": "-1",
            "text": "ten",
            "flag": True,
            "nested": {"a": 1},
            "missing": None,
            "nan": math.nan,
        }
    )
    assert details == {"input": 10, "output": 20, "cache_read": 3, "float_int": 4}


@pytest.mark.parametrize("raw", [None, {}, {"a": "x", "b": -2}, [1, 2], 5])
def test_empty_usage_details_is_none(raw: Any) -> None:
    assert normalize_usage_details(raw) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 0), (7, 7), (7.0, 7), ("12", 12), ("１２", None), ("1e3", None), (-3, None),
     (1.5, None), (math.inf, None), (False, None), (None, None), ([1], None)],
)  # fmt: skip
def test_as_count(value: Any, expected: int | None) -> None:
    assert as_count(value) == expected


# --- costDetails ------------------------------------------------------------------------------


def test_cost_details_keep_non_negative_finite_numbers() -> None:
    assert normalize_cost_details(
        {
            "input": 0.001,
            "output": 2,
            "zero": 0,
            "negative": -0.5,
            "inf": math.inf,
            "nan": math.nan,
            "text": "0.5",
            "flag": True,
            "missing": None,
        }
    ) == {"input": 0.001, "output": 2.0, "zero": 0.0}
    assert normalize_cost_details({"negative": -1}) is None
    assert normalize_cost_details(None) is None
    assert normalize_cost_details({}) is None


# --- merge into provided usage/cost -----------------------------------------------------------


def test_merge_legacy_usage_only_derives_total() -> None:
    usage = normalize_usage({"input": 10, "output": 20, "inputCost": 0.5})
    assert merge_provided_usage_and_cost(usage, None, None) == (
        {"input": 10, "output": 20, "total": 30},
        {"input": 0.5},
    )
    only_input = normalize_usage({"input": 10})
    assert merge_provided_usage_and_cost(only_input, None, None) == (
        {"input": 10, "total": 10},
        {},
    )


def test_merge_usage_details_override_legacy_and_suppress_derived_total() -> None:
    usage = normalize_usage({"input": 10, "output": 20, "totalCost": 1.0})
    details = normalize_usage_details({"input": 12, "cache_read": 3})
    costs = normalize_cost_details({"input": 0.25})
    assert merge_provided_usage_and_cost(usage, details, costs) == (
        {"input": 12, "output": 20, "cache_read": 3},
        {"total": 1.0, "input": 0.25},
    )


def test_merge_explicit_total_is_kept() -> None:
    usage = normalize_usage({"input": 10, "output": 20, "total": 25})
    assert merge_provided_usage_and_cost(usage, {"x": 1}, None)[0] == {
        "input": 10,
        "output": 20,
        "total": 25,
        "x": 1,
    }


def test_merge_zero_total_is_replaced_like_upstream() -> None:
    # Upstream writes `usage.total || fallback`: a 0 total is falsy there.
    usage = normalize_usage({"input": 4, "output": 6, "total": 0})
    assert merge_provided_usage_and_cost(usage, None, None)[0] == {
        "input": 4,
        "output": 6,
        "total": 10,
    }


def test_merge_nothing() -> None:
    assert merge_provided_usage_and_cost(None, None, None) == ({}, {})
    assert merge_provided_usage_and_cost(
        None, normalize_usage_details({"prompt_tokens": 1, "completion_tokens": 2,
                                       "total_tokens": 3}), None
    ) == ({"input": 1, "output": 2, "total": 3}, {})  # fmt: skip


def test_raw_event_normalisers_for_merge() -> None:
    raw_usage = {"promptTokens": 3, "completionTokens": 4}
    assert provided_usage_details(raw_usage, None) == {"input": 3, "output": 4, "total": 7}
    assert provided_usage_details(
        {"input": 1}, {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}
    ) == {"input": 10, "output": 2, "total": 12}
    assert provided_usage_details(None, {"bad": "x"}) is None
    assert provided_cost_details({"inputCost": 0.5}, {"output": 0.25, "bad": -1}) == {
        "input": 0.5,
        "output": 0.25,
    }
    # OpenAI-style legacy usage carries no costs upstream.
    assert provided_cost_details({"promptTokens": 1, "inputCost": 0.5}, None) is None
