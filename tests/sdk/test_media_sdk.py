"""Multi-modal tracing with the official SDK against a live server on the default (local) blob
store: the SDK uploads the bytes through Fathom's own upload link, the trace keeps a media
reference, and `GET /api/public/media/{id}` hands readers a URL that serves the same bytes."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable
from typing import Any

import httpx
from langfuse import Langfuse
from langfuse.media import LangfuseMedia

from fathom.core.domain.media import find_media_references


def poll(fetch: Callable[[], httpx.Response], ready: Callable[[httpx.Response], bool]) -> Any:
    deadline = time.monotonic() + 20
    response = fetch()
    while not ready(response):
        if time.monotonic() > deadline:
            raise AssertionError(f"not ready: {response.status_code} {response.text[:500]}")
        time.sleep(0.1)
        response = fetch()
    return response.json()


def test_traced_media_is_uploaded_referenced_and_downloadable(
    langfuse: Langfuse, api: httpx.Client
) -> None:
    image = b"\x89PNG\r\n\x1a\n" + os.urandom(4096)
    audio = b"RIFF" + os.urandom(1024)
    media = LangfuseMedia(content_bytes=image, content_type="image/png")
    with langfuse.start_as_current_observation(
        name="multimodal", input={"prompt": "describe", "image": media}
    ) as span:
        span.update(
            output={
                "voice": "data:audio/wav;base64," + base64.b64encode(audio).decode(),
            }
        )
        trace_id = span.trace_id
    langfuse.flush()

    trace = poll(
        lambda: api.get(f"/api/public/traces/{trace_id}"),
        lambda r: r.status_code == 200 and bool(r.json()["observations"]),
    )
    observation = trace["observations"][0]
    [image_ref] = find_media_references(observation["input"])
    assert observation["input"]["prompt"] == "describe"
    assert (image_ref.content_type, image_ref.source) == ("image/png", "bytes")
    assert image_ref.media_id == media._media_id
    [audio_ref] = find_media_references(observation["output"])
    assert (audio_ref.content_type, audio_ref.source) == ("audio/wav", "base64_data_uri")

    for reference, expected in ((image_ref, image), (audio_ref, audio)):
        record = poll(
            lambda ref=reference: api.get(f"/api/public/media/{ref.media_id}"),
            lambda r: r.status_code == 200,
        )
        assert record["contentType"] == reference.content_type
        assert record["contentLength"] == len(expected)
        # The URL works without the API key, as a presigned URL would.
        with httpx.Client(timeout=10) as anonymous:
            downloaded = anonymous.get(record["url"])
        assert downloaded.status_code == 200
        assert downloaded.content == expected

    resolved = LangfuseMedia.resolve_media_references(
        obj=observation["input"], langfuse_client=langfuse, resolve_with="base64_data_uri"
    )
    assert resolved["image"] == "data:image/png;base64," + base64.b64encode(image).decode()
