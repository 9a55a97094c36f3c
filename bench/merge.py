"""Parse + merge throughput of the legacy ingestion path.

10 000 events: 1 000 traces, each with a trace-create and 5 observations (2 spans, 2
generations, 1 event) whose creates carry 1–2 KB inputs, plus span/generation updates.
Prints µs per event for parse, sort and merge separately and together (best of N runs).

    /tmp/venv/bin/python bench/merge.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from fathom.core.domain.ingestion import parse_batch, sort_events
from fathom.core.domain.merge import merge_batch

TRACES = 1_000
BASE = datetime(2025, 1, 1, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _payload(rng: random.Random) -> list[dict[str, str]]:
    size = rng.randint(1024, 2048)
    text = "".join(rng.choice("abcdefghij klmnop") for _ in range(size - 60))
    return [{"role": "system", "content": "You are terse."}, {"role": "user", "content": text}]


def make_batch(seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    inputs = [_payload(rng) for _ in range(64)]
    batch: list[dict[str, Any]] = []
    n = 0

    def envelope(kind: str, body: dict[str, Any], at: datetime) -> None:
        nonlocal n
        n += 1
        batch.append({"id": f"ev-{n}", "timestamp": _iso(at), "type": kind, "body": body})

    for t in range(TRACES):
        start = BASE + timedelta(seconds=t)
        trace_id = f"trace-{t:06d}"
        envelope(
            "trace-create",
            {
                "id": trace_id,
                "timestamp": _iso(start),
                "name": "chat",
                "userId": f"user-{t % 50}",
                "sessionId": f"sess-{t % 200}",
                "tags": ["bench", "prod"],
                "metadata": {"tier": "gold", "region": {"name": "eu"}},
                "environment": "production",
                "input": inputs[t % 64],
            },
            start,
        )
        root = f"{trace_id}-span-0"
        for i, kind in enumerate(("span", "span", "generation", "generation", "event")):
            obs_id = f"{trace_id}-{kind}-{i}"
            at = start + timedelta(milliseconds=10 * (i + 1))
            body: dict[str, Any] = {
                "id": obs_id,
                "traceId": trace_id,
                "name": f"{kind}-{i}",
                "startTime": _iso(at),
                "input": inputs[(t + i) % 64],
                "metadata": {"step": i},
                "environment": "production",
            }
            if i:
                body["parentObservationId"] = root
            if kind == "generation":
                body.update(
                    model="gpt-4o-mini",
                    modelParameters={"temperature": 0.2, "max_tokens": 256},
                    promptName="chat",
                    promptVersion=3,
                )
            envelope(f"{kind}-create", body, at)
            if kind != "event":
                end = at + timedelta(milliseconds=400)
                update: dict[str, Any] = {
                    "id": obs_id,
                    "traceId": trace_id,
                    "endTime": _iso(end),
                    "output": {"role": "assistant", "content": "fine"},
                    "environment": "production",
                }
                if kind == "generation":
                    update["usage"] = {"input": 512, "output": 12, "unit": "TOKENS"}
                    update["completionStartTime"] = _iso(at + timedelta(milliseconds=90))
                envelope(f"{kind}-update", update, end)
    return batch


def run(batch: list[dict[str, Any]]) -> tuple[float, float, float]:
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    events, errors = parse_batch(batch)
    t1 = time.perf_counter()
    ordered = sort_events(events)
    t2 = time.perf_counter()
    result = merge_batch("project-1", ordered, {}, {}, {}, now)
    t3 = time.perf_counter()
    assert not errors, errors[:1]
    assert len(result.observations) == TRACES * 5 and len(result.traces) == TRACES
    return t1 - t0, t2 - t1, t3 - t2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    batch = make_batch()
    count = len(batch)
    raw_bytes = len(json.dumps(batch))
    best = min((run(batch) for _ in range(args.runs)), key=sum)
    parse_s, sort_s, merge_s = best
    per = 1e6 / count
    print(f"events: {count} ({raw_bytes / 1e6:.1f} MB of JSON), best of {args.runs} runs")
    print(f"parse:  {parse_s * per:6.2f} µs/event")
    print(f"sort:   {sort_s * per:6.2f} µs/event")
    print(f"merge:  {merge_s * per:6.2f} µs/event")
    print(f"total:  {sum(best) * per:6.2f} µs/event ({count / sum(best):,.0f} events/s)")


if __name__ == "__main__":
    main()
