"""Domain objects → the JSON shapes of Langfuse's public API (camelCase, ISO times)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from fathom.core.domain.pricing import Model
from fathom.core.domain.scores import Score, ScoreDataType
from fathom.core.domain.tracing import Observation, Trace


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    # Langfuse renders milliseconds with a Z suffix.
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def trace_core(trace: Trace) -> dict[str, Any]:
    return {
        "id": trace.id,
        "projectId": trace.project_id,
        "timestamp": iso(trace.timestamp),
        "name": trace.name,
        "userId": trace.user_id,
        "sessionId": trace.session_id,
        "release": trace.release,
        "version": trace.version,
        "tags": trace.tags,
        "public": trace.public,
        "bookmarked": trace.bookmarked,
        "environment": trace.environment,
        "createdAt": iso(trace.created_at),
        "updatedAt": iso(trace.updated_at),
        "externalId": None,
    }


def trace_io(trace: Trace) -> dict[str, Any]:
    return {"input": trace.input, "output": trace.output, "metadata": trace.metadata}


def excluded_trace_io() -> dict[str, Any]:
    """What upstream renders for a trace whose `io` field group was left out: it does not
    select the columns, and its converter turns the missing values into null, null and {}."""
    return {"input": None, "output": None, "metadata": {}}


def trace_json(trace: Trace) -> dict[str, Any]:
    return {**trace_core(trace), **trace_io(trace)}


def trace_html_path(trace: Trace) -> str:
    return f"/project/{trace.project_id}/traces/{trace.id}"


def reduce_details(details: Mapping[str, float]) -> tuple[float | None, float | None, float]:
    """Upstream's `reduceUsageOrCostDetails`: every key starting with `input` (`output`)
    counts as input (output), None when there is none; the total is the `total` key or 0."""
    input_sum: float | None = None
    output_sum: float | None = None
    for key, value in details.items():
        if key.startswith("input"):
            input_sum = (input_sum or 0) + value
        elif key.startswith("output"):
            output_sum = (output_sum or 0) + value
    return input_sum, output_sum, details.get("total", 0)


def _price(model: Model | None, usage_type: str) -> Decimal | None:
    return model.prices.get(usage_type) if model is not None else None


def _float_price(model: Model | None, usage_type: str) -> float | None:
    price = _price(model, usage_type)
    return float(price) if price is not None else None


def _decimal_string(model: Model | None, usage_type: str) -> str | None:
    price = _price(model, usage_type)
    # Fixed-point, never `1E-7`: the contract shows prices like "0.0001".
    return format(price, "f") if price is not None else None


def observation_json(observation: Observation, model: Model | None = None) -> dict[str, Any]:
    """The `ObservationsView` shape (v1 list/get and the observations of a trace).

    `model` is the matched model (`internal_model_id`), whose default prices fill
    `inputPrice`/`outputPrice`/`totalPrice`.
    """
    costs = observation.cost_details
    details = observation.usage_details
    input_tokens, output_tokens, total_tokens = reduce_details(details)
    input_cost, output_cost, total_cost_value = reduce_details(costs)
    prompt_tokens = int(input_tokens or 0)
    completion_tokens = int(output_tokens or 0)
    total = int(total_tokens)
    calculated_total = (
        float(costs["total"]) if "total" in costs else float(observation.total_cost or 0.0)
    )
    return {
        "id": observation.id,
        "traceId": observation.trace_id,
        "projectId": observation.project_id,
        "type": observation.type.value,
        "name": observation.name,
        "startTime": iso(observation.start_time),
        "endTime": iso(observation.end_time),
        "completionStartTime": iso(observation.completion_start_time),
        "model": observation.model,
        "modelParameters": observation.model_parameters,
        "input": observation.input,
        "output": observation.output,
        "metadata": observation.metadata,
        "version": observation.version,
        "level": observation.level.value,
        "statusMessage": observation.status_message,
        "parentObservationId": observation.parent_observation_id,
        "environment": observation.environment,
        "promptId": observation.prompt_id,
        "promptName": observation.prompt_name,
        "promptVersion": observation.prompt_version,
        "modelId": observation.internal_model_id,
        # Upstream's legacy `usage` carries the token counts only (the contract's cost keys
        # are optional and upstream never fills them).
        "usage": {
            "input": prompt_tokens,
            "output": completion_tokens,
            "total": total,
            "unit": "TOKENS",
        },
        "usageDetails": details,
        "costDetails": costs,
        "inputPrice": _float_price(model, "input"),
        "outputPrice": _float_price(model, "output"),
        "totalPrice": _float_price(model, "total"),
        "calculatedInputCost": input_cost,
        "calculatedOutputCost": output_cost,
        # Upstream reads the `total` cost key and falls back to 0, never null.
        "calculatedTotalCost": calculated_total,
        # No `totalCost`: upstream's v1 transform drops it (`calculatedTotalCost` carries it).
        "promptTokens": prompt_tokens,
        "completionTokens": completion_tokens,
        "totalTokens": total,
        "unit": "TOKENS",
        "latency": observation.latency_seconds,
        "timeToFirstToken": observation.time_to_first_token_seconds,
        "usagePricingTierName": observation.usage_pricing_tier_name,
        "createdAt": iso(observation.created_at),
        "updatedAt": iso(observation.updated_at),
    }


def _raw(value: Any) -> str | None:
    """v2 observations return input/output as the raw strings that were stored."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


METADATA_TRUNCATION = 200


def observation_v2_json(
    observation: Observation,
    groups: set[str],
    trace: Trace | None,
    expand_metadata: set[str],
    model: Model | None = None,
) -> dict[str, Any]:
    """`ObservationV2`: `core` always, the other field groups on request.

    `modelId` and the three prices are required (nullable) whatever the groups: null unless
    the `model` group was asked for; prices are decimal strings.
    """
    with_model = "model" in groups
    out: dict[str, Any] = {
        "id": observation.id,
        "traceId": observation.trace_id,
        "startTime": iso(observation.start_time),
        "endTime": iso(observation.end_time),
        "projectId": observation.project_id,
        "parentObservationId": observation.parent_observation_id,
        "type": observation.type.value,
        "modelId": observation.internal_model_id if with_model else None,
        "inputPrice": _decimal_string(model, "input") if with_model else None,
        "outputPrice": _decimal_string(model, "output") if with_model else None,
        "totalPrice": _decimal_string(model, "total") if with_model else None,
    }
    if "basic" in groups:
        out.update(
            name=observation.name,
            level=observation.level.value,
            statusMessage=observation.status_message,
            version=observation.version,
            environment=observation.environment,
            bookmarked=trace.bookmarked if trace else False,
            public=trace.public if trace else False,
            userId=trace.user_id if trace else None,
            sessionId=trace.session_id if trace else None,
            isRootObservation=observation.parent_observation_id is None,
        )
    if "time" in groups:
        out.update(
            completionStartTime=iso(observation.completion_start_time),
            createdAt=iso(observation.created_at),
            updatedAt=iso(observation.updated_at),
        )
    if "io" in groups:
        out.update(input=_raw(observation.input), output=_raw(observation.output))
    if "metadata" in groups:
        out["metadata"] = {
            key: _truncate(value, key in expand_metadata)
            for key, value in observation.metadata.items()
        }
    if with_model:
        out.update(
            # The contract names it `providedModelName`; upstream's server and the SDK 5
            # client it generated use `model`.
            providedModelName=observation.model,
            model=observation.model,
            internalModelId=observation.internal_model_id,
            modelParameters=observation.model_parameters,
        )
    if "usage" in groups:
        out.update(
            usageDetails=observation.usage_details,
            costDetails=observation.cost_details,
            totalCost=observation.total_cost,
            usagePricingTierName=observation.usage_pricing_tier_name,
        )
    if "prompt" in groups:
        out.update(
            promptId=observation.prompt_id,
            promptName=observation.prompt_name,
            promptVersion=observation.prompt_version,
        )
    if "metrics" in groups:
        out.update(
            latency=observation.latency_seconds,
            timeToFirstToken=observation.time_to_first_token_seconds,
        )
    if "trace_context" in groups:
        out.update(
            tags=trace.tags if trace else [],
            release=trace.release if trace else None,
            traceName=trace.name if trace else None,
        )
    return out


def _truncate(value: Any, expand: bool) -> Any:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    if expand or len(text) <= METADATA_TRUNCATION:
        return value
    return text[:METADATA_TRUNCATION] + "..."


def _score_value(score: Score) -> dict[str, Any]:
    if score.data_type is ScoreDataType.NUMERIC:
        return {"value": score.value}
    if score.data_type is ScoreDataType.TEXT:
        return {"stringValue": score.string_value}
    # The contract types `value` as a number for every non-text score; upstream stores 0
    # for a categorical score without a numeric mapping.
    value = score.value if score.value is not None else 0
    return {"value": value, "stringValue": score.string_value}


def score_json(score: Score) -> dict[str, Any]:
    """The v1/v2 `Score` shape (discriminated by `dataType`)."""
    return {
        "id": score.id,
        "projectId": score.project_id,
        "traceId": score.trace_id,
        "observationId": score.observation_id,
        "sessionId": score.session_id,
        "datasetRunId": score.dataset_run_id,
        "name": score.name,
        "source": score.source.value,
        "dataType": score.data_type.value,
        **_score_value(score),
        "timestamp": iso(score.timestamp),
        "createdAt": iso(score.created_at),
        "updatedAt": iso(score.updated_at),
        "authorUserId": score.author_user_id,
        "comment": score.comment,
        "metadata": score.metadata,
        "configId": score.config_id,
        "queueId": score.queue_id,
        "environment": score.environment,
    }


def score_trace_json(trace: Trace | None) -> dict[str, Any] | None:
    """The `trace` object of a v1/v2 score list item (null for scores without a trace)."""
    if trace is None:
        return None
    return {
        "userId": trace.user_id,
        "tags": trace.tags,
        "environment": trace.environment,
        "sessionId": trace.session_id,
    }


def score_v3_json(score: Score, groups: set[str]) -> dict[str, Any]:
    """`ScoreV3`: core fields, `value` typed by data type, optional groups."""
    value: Any
    if score.data_type is ScoreDataType.NUMERIC:
        value = score.value
    elif score.data_type is ScoreDataType.BOOLEAN:
        value = bool(score.value)
    else:
        value = score.string_value
    out: dict[str, Any] = {
        "id": score.id,
        "projectId": score.project_id,
        "name": score.name,
        "source": score.source.value,
        "dataType": score.data_type.value,
        "value": value,
        "timestamp": iso(score.timestamp),
        "environment": score.environment,
        "createdAt": iso(score.created_at),
        "updatedAt": iso(score.updated_at),
    }
    if "details" in groups:
        out.update(comment=score.comment, configId=score.config_id, metadata=score.metadata)
    if "annotation" in groups:
        out.update(authorUserId=score.author_user_id, queueId=score.queue_id)
    if "subject" in groups:
        out["subject"] = score_subject(score)
    return out


def score_subject(score: Score) -> dict[str, Any] | None:
    if score.observation_id:
        return {"kind": "observation", "id": score.observation_id, "traceId": score.trace_id}
    if score.trace_id:
        return {"kind": "trace", "id": score.trace_id}
    if score.session_id:
        return {"kind": "session", "id": score.session_id}
    if score.dataset_run_id:
        return {"kind": "experiment", "id": score.dataset_run_id}
    return None


def trace_latency(observations: Iterable[Observation]) -> float:
    """Upstream's single-trace latency in seconds: first observation start to last end (the
    last start when no observation has ended); 0 without observations."""
    starts = [o.start_time for o in observations]
    if not starts:
        return 0.0
    ends = [o.end_time for o in observations if o.end_time is not None]
    first = min(starts)
    last = max(ends) if ends else max(starts)
    return (last - first).total_seconds()


def total_cost(observations: Iterable[Observation]) -> float:
    return sum(o.total_cost or 0.0 for o in observations)


def page_meta(page: int, limit: int, total: int) -> dict[str, int]:
    return {
        "page": page,
        "limit": limit,
        "totalItems": total,
        "totalPages": (total + limit - 1) // limit if limit else 0,
    }
