"""The ingestion masking callback plugin, against a real HTTP callback on 127.0.0.1."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from fathom.core.domain.errors import ConfigurationError
from fathom.entrypoints.settings import Settings
from fathom.plugins.builtin.masking_callback import (
    MaskingCallback,
    load_masking_settings,
)
from fathom.plugins.manager import build_plugin_manager

ENV_NAMES = [
    "LANGFUSE_INGESTION_MASKING_CALLBACK_URL",
    "LANGFUSE_INGESTION_MASKING_CALLBACK_TIMEOUT_MS",
    "LANGFUSE_INGESTION_MASKING_CALLBACK_FAIL_CLOSED",
    "LANGFUSE_INGESTION_MASKING_MAX_RETRIES",
    "LANGFUSE_INGESTION_MASKING_PROPAGATED_HEADERS",
]
REDACTED = "[REDACTED]"


def make_events() -> list[dict[str, Any]]:
    return [
        {
            "id": "evt-1",
            "type": "trace-create",
            "timestamp": "2024-01-01T00:00:00.000Z",
            "body": {"id": "trace-1", "name": "chat", "input": "my secret is 42"},
        },
        {
            "id": "evt-2",
            "type": "generation-create",
            "timestamp": "2024-01-01T00:00:01.000Z",
            "body": {"id": "gen-1", "traceId": "trace-1", "input": "harmless", "output": "ok"},
        },
    ]


def redact(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a site's masking policy would do: blank inputs that mention a secret."""
    masked = copy.deepcopy(events)
    for event in masked:
        value = event["body"].get("input")
        if isinstance(value, str) and "secret" in value:
            event["body"]["input"] = REDACTED
    return masked


def make_export() -> list[dict[str, Any]]:
    """The `resourceSpans` of an OTLP/JSON export, as the callback receives them."""
    return [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "a"}}]},
            "scopeSpans": [
                {
                    "scope": {"name": "langfuse-sdk", "version": "5.0.4"},
                    "spans": [
                        {
                            "traceId": "nXWM4y5bmYHA/ckwtQW//g==",
                            "spanId": "+whBAfMvR0E=",
                            "name": "chat",
                            "kind": "SPAN_KIND_INTERNAL",
                            "startTimeUnixNano": "1796569837103818747",
                            "attributes": [
                                {
                                    "key": "langfuse.observation.input",
                                    "value": {"stringValue": '{"q": "my secret is 42"}'},
                                },
                                {"key": "tags", "value": {"arrayValue": {"values": []}}},
                            ],
                        }
                    ],
                }
            ],
        }
    ]


def redact_export(resource_spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A masking policy written for Langfuse's callback: attribute values, by OTLP path."""
    masked = copy.deepcopy(resource_spans)
    for resource in masked:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                for attribute in span["attributes"]:
                    text = attribute["value"].get("stringValue")
                    if text is not None and "secret" in text:
                        attribute["value"]["stringValue"] = REDACTED
    return masked


def first_span(resource_spans: list[dict[str, Any]]) -> dict[str, Any]:
    span: dict[str, Any] = resource_spans[0]["scopeSpans"][0]["spans"][0]
    return span


@dataclass
class Callback:
    """A masking service with one route per behaviour and a log of what it received."""

    server: TestServer
    requests: list[tuple[str, CIMultiDict[str], Any]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    def calls(self, path: str) -> int:
        return sum(1 for seen, _, _ in self.requests if seen == path)


@pytest.fixture
async def callback() -> AsyncIterator[Callback]:
    app = web.Application()
    state = Callback(server=TestServer(app, host="127.0.0.1"))

    async def received(request: web.Request) -> Any:
        try:
            body = await request.json()
        except ValueError:
            body = None
        state.requests.append((request.path, CIMultiDict(request.headers), body))
        return body

    async def mask(request: web.Request) -> web.Response:
        body = await received(request)
        return web.json_response({"events": redact(body["events"])})

    async def slow(request: web.Request) -> web.Response:
        body = await received(request)
        # Held until teardown, so the server never waits on a sleeping handler to shut down.
        await state.release.wait()
        return web.json_response(body)

    async def flaky(request: web.Request) -> web.Response:
        body = await received(request)
        if state.calls("/flaky") == 1:
            return web.json_response({"error": "Internal Server Error"}, status=500)
        return web.json_response({"events": redact(body["events"])})

    async def error(request: web.Request) -> web.Response:
        await received(request)
        return web.json_response({"error": "Internal Server Error"}, status=500)

    async def bad_request(request: web.Request) -> web.Response:
        await received(request)
        return web.json_response({"error": "nope"}, status=400)

    async def short(request: web.Request) -> web.Response:
        body = await received(request)
        return web.json_response({"events": body["events"][:-1]})

    async def no_body(request: web.Request) -> web.Response:
        body = await received(request)
        events = redact(body["events"])
        del events[1]["body"]
        return web.json_response({"events": events})

    async def changed_id(request: web.Request) -> web.Response:
        body = await received(request)
        events = redact(body["events"])
        events[0]["body"]["id"] = "another-trace"
        return web.json_response({"events": events})

    async def bare_list(request: web.Request) -> web.Response:
        body = await received(request)
        return web.json_response(redact(body["events"]))

    async def not_json(request: web.Request) -> web.Response:
        await received(request)
        return web.Response(text="<html>masked</html>", content_type="text/html")

    async def flaky_client_error(request: web.Request) -> web.Response:
        body = await received(request)
        if state.calls("/flaky-client-error") == 1:
            return web.json_response({"error": "nope"}, status=400)
        return web.json_response({"events": redact(body["events"])})

    async def json_as_text(request: web.Request) -> web.Response:
        body = await received(request)
        masked = json.dumps({"events": redact(body["events"])})
        return web.Response(text=masked, content_type="text/plain")

    async def no_content(request: web.Request) -> web.Response:
        await received(request)
        return web.Response(status=204)

    async def moved(request: web.Request) -> web.Response:
        await received(request)
        # 307 keeps the method and the body, so the callback may live behind a redirect.
        raise web.HTTPTemporaryRedirect(location="/mask")

    async def mask_otlp(request: web.Request) -> web.Response:
        return web.json_response(redact_export(await received(request)))

    async def otlp_moved_span(request: web.Request) -> web.Response:
        masked = redact_export(await received(request))
        first_span(masked)["spanId"] = "AAAAAAAAAAE="
        return web.json_response(masked)

    async def otlp_added_field(request: web.Request) -> web.Response:
        masked = redact_export(await received(request))
        first_span(masked)["attributes"][0]["value"]["note"] = "masked"
        return web.json_response(masked)

    async def otlp_dropped_attribute(request: web.Request) -> web.Response:
        masked = redact_export(await received(request))
        first_span(masked)["attributes"].pop()
        return web.json_response(masked)

    async def otlp_value_to_object(request: web.Request) -> web.Response:
        masked = redact_export(await received(request))
        first_span(masked)["name"] = {"masked": True}
        return web.json_response(masked)

    async def otlp_events_shape(request: web.Request) -> web.Response:
        await received(request)
        return web.json_response({"events": []})

    app.router.add_post("/mask", mask)
    app.router.add_post("/otlp", mask_otlp)
    app.router.add_post("/otlp-moved-span", otlp_moved_span)
    app.router.add_post("/otlp-added-field", otlp_added_field)
    app.router.add_post("/otlp-dropped-attribute", otlp_dropped_attribute)
    app.router.add_post("/otlp-value-to-object", otlp_value_to_object)
    app.router.add_post("/otlp-events-shape", otlp_events_shape)
    app.router.add_post("/flaky-client-error", flaky_client_error)
    app.router.add_post("/json-as-text", json_as_text)
    app.router.add_post("/no-content", no_content)
    app.router.add_post("/moved", moved)
    app.router.add_post("/slow", slow)
    app.router.add_post("/flaky", flaky)
    app.router.add_post("/error", error)
    app.router.add_post("/bad-request", bad_request)
    app.router.add_post("/short", short)
    app.router.add_post("/no-body", no_body)
    app.router.add_post("/changed-id", changed_id)
    app.router.add_post("/bare-list", bare_list)
    app.router.add_post("/not-json", not_json)
    await state.server.start_server()
    yield state
    state.release.set()
    await state.server.close()


@pytest.fixture
async def maskers() -> AsyncIterator[list[MaskingCallback]]:
    """Collects the maskers a test builds and closes their sessions afterwards."""
    made: list[MaskingCallback] = []
    yield made
    for masker in made:
        await masker.close()


@pytest.fixture
def make_masker(maskers: list[MaskingCallback]) -> Any:
    def make(url: str, **options: Any) -> MaskingCallback:
        options.setdefault("backoff_base_seconds", 0.01)
        # Tests that count attempts must not lose one to the 500 ms default on a loaded
        # machine; the timeout tests set their own.
        options.setdefault("timeout_ms", 10_000)
        masker = MaskingCallback(url, **options)
        maskers.append(masker)
        return masker

    return make


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


async def run_mask(masker: MaskingCallback, headers: Any = None) -> list[dict[str, Any]]:
    return await masker.mask("project-1", "org-1", make_events(), headers or {})


# --- the happy path --------------------------------------------------------------------


async def test_masking_is_applied(callback: Callback, make_masker: Any) -> None:
    masked = await run_mask(make_masker(callback.url("/mask")))

    assert masked == redact(make_events())
    assert masked[0]["body"]["input"] == REDACTED
    assert masked[1]["body"]["input"] == "harmless"
    path, headers, body = callback.requests[0]
    assert body == {"events": make_events()}
    assert headers["Content-Type"] == "application/json"


async def test_callback_gets_org_project_and_propagated_headers(
    callback: Callback, make_masker: Any
) -> None:
    masker = make_masker(callback.url("/mask"), propagated_headers=["X-Tenant", "x-request-id"])
    incoming = CIMultiDict(
        {"x-tenant": "acme", "X-Request-ID": "req-7", "Authorization": "Basic c2VjcmV0"}
    )

    await run_mask(masker, incoming)

    _, headers, _ = callback.requests[0]
    assert headers["X-Langfuse-Org-Id"] == "org-1"
    assert headers["X-Langfuse-Project-Id"] == "project-1"
    assert headers["X-Tenant"] == "acme"
    assert headers["X-Request-Id"] == "req-7"
    # Only the configured headers travel; credentials of the ingesting client stay here.
    assert "Authorization" not in headers


async def test_propagated_headers_match_plain_dicts_case_insensitively(
    callback: Callback, make_masker: Any
) -> None:
    masker = make_masker(callback.url("/mask"), propagated_headers=["x-tenant"])

    await run_mask(masker, {"X-TENANT": "acme", "X-Other": "no"})

    _, headers, _ = callback.requests[0]
    assert headers["x-tenant"] == "acme"
    assert "x-other" not in headers


async def test_repeated_propagated_header_is_joined(callback: Callback, make_masker: Any) -> None:
    masker = make_masker(callback.url("/mask"), propagated_headers=["x-tenant"])
    incoming = CIMultiDict([("X-Tenant", "acme"), ("x-tenant", "beta")])

    await run_mask(masker, incoming)

    _, headers, _ = callback.requests[0]
    assert headers.getall("x-tenant") == ["acme, beta"]


async def test_session_is_created_lazily_reused_and_closed(
    callback: Callback, make_masker: Any
) -> None:
    masker = make_masker(callback.url("/mask"))
    assert masker._session is None

    await run_mask(masker)
    session = masker._session
    await run_mask(masker)

    assert session is not None and masker._session is session
    await masker.close()
    assert session.closed and masker._session is None
    # Still usable after close: a new session is made on demand.
    assert (await run_mask(masker))[0]["body"]["input"] == REDACTED


async def test_no_events_no_call(callback: Callback, make_masker: Any) -> None:
    assert await make_masker(callback.url("/mask")).mask("p", "o", [], {}) == []
    assert callback.requests == []


# --- failures: fail-open keeps the originals, fail-closed drops them ----------------------


async def test_timeout_fails_open(
    callback: Callback, make_masker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    masker = make_masker(callback.url("/slow"), timeout_ms=100, max_retries=0)

    with caplog.at_level(logging.WARNING, "fathom.plugins.builtin.masking_callback"):
        started = asyncio.get_running_loop().time()
        result = await run_mask(masker)
        elapsed = asyncio.get_running_loop().time() - started

    assert result == make_events()
    assert elapsed < 1.0
    assert "no answer within 100 ms" in caplog.text
    assert "unmasked" in caplog.text


async def test_timeout_fails_closed(
    callback: Callback, make_masker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    masker = make_masker(callback.url("/slow"), timeout_ms=100, max_retries=0, fail_closed=True)

    with caplog.at_level(logging.WARNING, "fathom.plugins.builtin.masking_callback"):
        assert await run_mask(masker) == []

    assert "fail-closed" in caplog.text


async def test_timeout_is_per_attempt_and_retried(callback: Callback, make_masker: Any) -> None:
    masker = make_masker(callback.url("/slow"), timeout_ms=50, max_retries=2)

    assert await run_mask(masker) == make_events()
    assert callback.calls("/slow") == 3


async def test_connection_error_fails_open_and_closed(make_masker: Any) -> None:
    # Port 1 on loopback: nothing listens there, the connection is refused at once.
    url = "http://127.0.0.1:1/mask"

    assert await run_mask(make_masker(url, max_retries=1)) == make_events()
    assert await run_mask(make_masker(url, max_retries=1, fail_closed=True)) == []


async def test_server_error_is_retried(callback: Callback, make_masker: Any) -> None:
    masked = await run_mask(make_masker(callback.url("/flaky"), max_retries=1))

    assert masked[0]["body"]["input"] == REDACTED
    assert callback.calls("/flaky") == 2


async def test_without_retries_a_server_error_is_a_failure(
    callback: Callback, make_masker: Any
) -> None:
    assert await run_mask(make_masker(callback.url("/flaky"), max_retries=0)) == make_events()
    assert callback.calls("/flaky") == 1
    closed = make_masker(callback.url("/error"), max_retries=0, fail_closed=True)
    assert await run_mask(closed) == []


async def test_retries_stop_after_max_retries(callback: Callback, make_masker: Any) -> None:
    masker = make_masker(callback.url("/error"), max_retries=2, fail_closed=True)

    assert await run_mask(masker) == []
    assert callback.calls("/error") == 3


async def test_client_error_is_retried_like_any_failure(
    callback: Callback, make_masker: Any
) -> None:
    # Langfuse retries every failed attempt, a 4xx included.
    masker = make_masker(callback.url("/bad-request"), max_retries=3)

    assert await run_mask(masker) == make_events()
    assert callback.calls("/bad-request") == 4


async def test_client_error_then_success_masks(callback: Callback, make_masker: Any) -> None:
    masked = await run_mask(make_masker(callback.url("/flaky-client-error"), max_retries=1))

    assert masked[0]["body"]["input"] == REDACTED
    assert callback.calls("/flaky-client-error") == 2


async def test_backoff_starts_at_100_ms_and_doubles(callback: Callback, make_masker: Any) -> None:
    masker = make_masker(callback.url("/error"), max_retries=2, backoff_base_seconds=0.1)

    started = asyncio.get_running_loop().time()
    await run_mask(masker)
    elapsed = asyncio.get_running_loop().time() - started

    # 100 ms before the first retry, 200 ms before the second.
    assert callback.calls("/error") == 3
    assert 0.3 <= elapsed < 1.0


async def test_json_body_counts_whatever_its_content_type(
    callback: Callback, make_masker: Any
) -> None:
    masked = await run_mask(make_masker(callback.url("/json-as-text")))

    assert masked == redact(make_events())


async def test_empty_success_is_a_failure(callback: Callback, make_masker: Any) -> None:
    closed = make_masker(callback.url("/no-content"), max_retries=0, fail_closed=True)

    assert await run_mask(closed) == []


async def test_redirect_is_followed(callback: Callback, make_masker: Any) -> None:
    masked = await run_mask(make_masker(callback.url("/moved"), max_retries=0))

    assert masked == redact(make_events())
    assert callback.calls("/mask") == 1
    assert callback.requests[-1][2] == {"events": make_events()}


@pytest.mark.parametrize("path", ["/short", "/no-body", "/changed-id", "/bare-list", "/not-json"])
async def test_schema_breaking_answers_are_failures(
    callback: Callback, make_masker: Any, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "fathom.plugins.builtin.masking_callback"):
        open_result = await run_mask(make_masker(callback.url(path), max_retries=1))
        closed_result = await run_mask(
            make_masker(callback.url(path), max_retries=1, fail_closed=True)
        )

    assert open_result == make_events()
    assert closed_result == []
    # Retried like any failed attempt: two attempts for each masker.
    assert callback.calls(path) == 4
    assert "not JSON" in caplog.text or "breaks the schema" in caplog.text


# --- OTLP exports, as Langfuse sends them -----------------------------------------------


async def test_an_otlp_export_is_sent_as_its_resource_spans_and_masked(
    callback: Callback, make_masker: Any
) -> None:
    masked = await make_masker(callback.url("/otlp")).mask_otlp(
        "project-1", "org-1", make_export(), {}
    )

    assert masked == redact_export(make_export())
    assert first_span(masked)["attributes"][0]["value"]["stringValue"] == REDACTED
    path, headers, body = callback.requests[0]
    assert body == make_export()  # the bare array, as Langfuse posts it
    assert headers["X-Langfuse-Project-Id"] == "project-1"


async def test_an_empty_export_is_not_sent(callback: Callback, make_masker: Any) -> None:
    assert await make_masker(callback.url("/otlp")).mask_otlp("p", "o", [], {}) == []
    assert callback.requests == []


@pytest.mark.parametrize(
    "path",
    [
        "/otlp-moved-span",
        "/otlp-added-field",
        "/otlp-dropped-attribute",
        "/otlp-value-to-object",
        "/otlp-events-shape",
    ],
)
async def test_an_otlp_answer_must_keep_the_structure_and_the_span_ids(
    callback: Callback, make_masker: Any, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "fathom.plugins.builtin.masking_callback"):
        kept = await make_masker(callback.url(path)).mask_otlp("p", "o", make_export(), {})
        dropped = await make_masker(callback.url(path), fail_closed=True).mask_otlp(
            "p", "o", make_export(), {}
        )

    assert kept == make_export()  # fail-open: the export goes on unmasked
    assert dropped is None  # fail-closed: the whole export is dropped
    assert callback.calls(path) == 4  # retried like any failed attempt
    assert "breaks the schema" in caplog.text and "an OTLP export" in caplog.text


# --- settings and the hook -----------------------------------------------------------------


def test_settings_defaults(clean_env: pytest.MonkeyPatch) -> None:
    config = load_masking_settings()

    assert config.callback_url is None
    assert config.callback_timeout_ms == 500
    assert config.callback_fail_closed is False
    assert config.max_retries == 1
    assert config.propagated_header_names == ()


def test_settings_from_langfuse_variables(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("LANGFUSE_INGESTION_MASKING_CALLBACK_URL", "http://masker:8080/mask")
    clean_env.setenv("LANGFUSE_INGESTION_MASKING_CALLBACK_TIMEOUT_MS", "250")
    clean_env.setenv("LANGFUSE_INGESTION_MASKING_CALLBACK_FAIL_CLOSED", "true")
    clean_env.setenv("LANGFUSE_INGESTION_MASKING_MAX_RETRIES", "0")
    clean_env.setenv("LANGFUSE_INGESTION_MASKING_PROPAGATED_HEADERS", " X-Tenant, x-team ,,")

    masker = MaskingCallback.from_settings(load_masking_settings())

    assert masker.url == "http://masker:8080/mask"
    assert masker.timeout_seconds == 0.25
    assert masker.fail_closed is True
    assert masker.max_retries == 0
    assert masker.propagated_headers == {"x-tenant", "x-team"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LANGFUSE_INGESTION_MASKING_CALLBACK_URL", "masker:8080/mask"),
        ("LANGFUSE_INGESTION_MASKING_CALLBACK_TIMEOUT_MS", "fast"),
        ("LANGFUSE_INGESTION_MASKING_CALLBACK_TIMEOUT_MS", "0"),
        ("LANGFUSE_INGESTION_MASKING_CALLBACK_FAIL_CLOSED", "maybe"),
        ("LANGFUSE_INGESTION_MASKING_MAX_RETRIES", "-1"),
        ("LANGFUSE_INGESTION_MASKING_PROPAGATED_HEADERS", "x-ok, bad header"),
        ("LANGFUSE_INGESTION_MASKING_PROPAGATED_HEADERS", "X-Langfuse-Project-Id"),
    ],
)
def test_bad_values_name_the_variable(clean_env: pytest.MonkeyPatch, name: str, value: str) -> None:
    clean_env.setenv("LANGFUSE_INGESTION_MASKING_CALLBACK_URL", "http://masker/mask")
    clean_env.setenv(name, value)

    with pytest.raises(ConfigurationError) as caught:
        load_masking_settings()

    assert name in caught.value.message
    assert repr(value) in caught.value.message


def test_empty_url_leaves_masking_off(clean_env: pytest.MonkeyPatch, settings: Settings) -> None:
    clean_env.setenv("LANGFUSE_INGESTION_MASKING_CALLBACK_URL", "")

    maskers = [
        m for ms in build_plugin_manager().hook.fathom_maskers(settings=settings) for m in ms
    ]
    assert not any(isinstance(masker, MaskingCallback) for masker in maskers)


def test_plugin_returns_nothing_without_url(
    clean_env: pytest.MonkeyPatch, settings: Settings
) -> None:
    manager = build_plugin_manager()

    assert manager.has_plugin("fathom.masking_callback")
    maskers = [m for ms in manager.hook.fathom_maskers(settings=settings) for m in ms]
    assert not any(isinstance(masker, MaskingCallback) for masker in maskers)


async def test_hook_is_discovered_and_masks(
    clean_env: pytest.MonkeyPatch, settings: Settings, callback: Callback, maskers: list[Any]
) -> None:
    clean_env.setenv("LANGFUSE_INGESTION_MASKING_CALLBACK_URL", callback.url("/mask"))
    clean_env.setenv("LANGFUSE_INGESTION_MASKING_PROPAGATED_HEADERS", "x-tenant")

    found = [m for ms in build_plugin_manager().hook.fathom_maskers(settings=settings) for m in ms]
    maskers.extend(found)

    [masker] = [m for m in found if isinstance(m, MaskingCallback)]
    assert (await run_mask(masker, {"X-Tenant": "acme"}))[0]["body"]["input"] == REDACTED
    assert callback.requests[0][1]["x-tenant"] == "acme"


def test_blocking_the_plugin_turns_masking_off(
    clean_env: pytest.MonkeyPatch, settings: Settings
) -> None:
    clean_env.setenv("LANGFUSE_INGESTION_MASKING_CALLBACK_URL", "http://masker/mask")

    manager = build_plugin_manager(blocked=["fathom.masking_callback"])

    assert not manager.has_plugin("fathom.masking_callback")
    maskers = [m for ms in manager.hook.fathom_maskers(settings=settings) for m in ms]
    assert not any(isinstance(masker, MaskingCallback) for masker in maskers)
