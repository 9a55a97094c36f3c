"""Domain objects → the JSON shapes of Langfuse's public API (camelCase, ISO times)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson

from fathom.core.domain.scores import Score, ScoreDataType
from fathom.core.domain.tracing import GENERATION_LIKE, Observation, Trace


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


def trace_json(trace: Trace) -> dict[str, Any]:
    return {**trace_core(trace), **trace_io(trace)}


def trace_html_path(trace: Trace) -> str:
    return f"/project/{trace.project_id}/traces/{trace.id}"


def _usage(observation: Observation) -> dict[str, Any]:
    details = observation.usage_details
    return {
        "input": details.get("input", 0),
        "output": details.get("output", 0),
        "total": details.get("total", 0),
        "unit": "TOKENS",
        "inputCost": observation.cost_details.get("input"),
        "outputCost": observation.cost_details.get("output"),
        "totalCost": observation.total_cost,
    }


def observation_json(observation: Observation) -> dict[str, Any]:
    """The `ObservationsView` shape (v1 list/get and the observations of a trace)."""
    costs = observation.cost_details
    details = observation.usage_details
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
        "usage": _usage(observation),
        "usageDetails": details,
        "costDetails": costs,
        "inputPrice": None,
        "outputPrice": None,
        "totalPrice": None,
        "calculatedInputCost": costs.get("input"),
        "calculatedOutputCost": costs.get("output"),
        "calculatedTotalCost": observation.total_cost,
        "totalCost": observation.total_cost,
        "promptTokens": details.get("input", 0),
        "completionTokens": details.get("output", 0),
        "totalTokens": details.get("total", 0),
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
) -> dict[str, Any]:
    """`ObservationV2`: `core` always, the other field groups on request."""
    out: dict[str, Any] = {
        "id": observation.id,
        "traceId": observation.trace_id,
        "startTime": iso(observation.start_time),
        "endTime": iso(observation.end_time),
        "projectId": observation.project_id,
        "parentObservationId": observation.parent_observation_id,
        "type": observation.type.value,
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
    if "model" in groups:
        out.update(
            providedModelName=observation.model,
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


def trace_latency(observations: Iterable[Observation], trace: Trace) -> float:
    """Seconds from the trace start to the last observation's end (0 without observations)."""
    start = trace.timestamp
    end = start
    for observation in observations:
        start = min(start, observation.start_time)
        end = max(end, observation.end_time or observation.start_time)
    return (end - start).total_seconds()


def total_cost(observations: Iterable[Observation]) -> float:
    return sum(
        o.total_cost or 0.0
        for o in observations
        if o.type in GENERATION_LIKE or o.total_cost is not None
    )


def page_meta(page: int, limit: int, total: int) -> dict[str, int]:
    return {
        "page": page,
        "limit": limit,
        "totalItems": total,
        "totalPages": (total + limit - 1) // limit if limit else 0,
    }
