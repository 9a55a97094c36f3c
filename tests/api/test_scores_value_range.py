"""`GET /api/public/v3/scores` with `valueMin`/`valueMax`: inclusive bounds on numeric scores."""

from __future__ import annotations

import uuid

from aiohttp.test_utils import TestClient

from tests.api.conftest import wait_for
from tests.conftest import basic_auth


async def test_v3_scores_value_bounds(client: TestClient) -> None:
    trace_id = uuid.uuid4().hex
    response = await client.post(
        "/api/public/scores",
        json=[
            {"id": f"{trace_id}-{value}", "traceId": trace_id, "name": "q", "value": value}
            for value in (0.1, 0.5, 0.9)
        ]
        + [{"traceId": trace_id, "name": "tone", "value": "calm", "dataType": "CATEGORICAL"}],
        headers=basic_auth(),
    )
    assert response.status == 202
    await wait_for(client, "/api/public/v3/scores", lambda b: len(b["data"]) == 4, traceId=trace_id)

    async def values(**params: str) -> list[float]:
        body = await wait_for(
            client, "/api/public/v3/scores", lambda b: True, traceId=trace_id, **params
        )
        return sorted(s["value"] for s in body["data"])

    assert await values(dataType="NUMERIC", valueMin="0.5") == [0.5, 0.9]
    assert await values(dataType="NUMERIC", valueMax="0.5") == [0.1, 0.5]
    assert await values(dataType="NUMERIC", valueMin="0.2", valueMax="0.8") == [0.5]
    assert await values(dataType="NUMERIC", valueMin="1") == []

    for params in (
        {"valueMin": "0.5"},  # upstream requires dataType=NUMERIC with the bounds
        {"dataType": "CATEGORICAL", "valueMax": "1"},
        {"dataType": "NUMERIC", "valueMin": "high"},
    ):
        response = await client.get(
            "/api/public/v3/scores", params={"traceId": trace_id, **params}, headers=basic_auth()
        )
        assert response.status == 400, params
        assert "Invalid request data" in (await response.json())["message"]
