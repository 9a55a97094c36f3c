"""Counting tokens when a generation reports no usage (upstream `features/tokenisation`).

The rules live here; the BPE tables do not. A `TextEncodingCounter` adapter counts tokens of a
plain string in a named encoding (`cl100k_base`, `o200k_base`, `claude`, …) and
`ModelTokenCounter` turns a model definition plus an input/output value into a count the way
upstream does: OpenAI chat-message arrays with per-message and per-name overhead, everything
else as a string or as its JSON text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from fathom.core.domain.pricing import Model

CLAUDE_ENCODING = "claude"


class TokenCounter(Protocol):
    """Port: tokens of an observation's input or output for a matched model, or None when the
    model has no usable tokenizer or the value cannot be counted."""

    def count(self, model: Model, text_or_messages: Any) -> int | None: ...


class TextEncodingCounter(Protocol):
    """Port: tokens of `text` in the BPE encoding `encoding`, special tokens counted as one
    token each; None when the encoding is unavailable."""

    def count_text(self, encoding: str, text: str) -> int | None: ...


# Upstream accepts only these `tokenizerModel` values (`isTiktokenModel`), each mapped to its
# encoding as tiktoken maps it.
TIKTOKEN_MODEL_ENCODINGS: Mapping[str, str] = {
    "davinci-002": "cl100k_base",
    "babbage-002": "cl100k_base",
    "text-davinci-003": "p50k_base",
    "text-davinci-002": "p50k_base",
    "text-davinci-001": "r50k_base",
    "text-curie-001": "r50k_base",
    "text-babbage-001": "r50k_base",
    "text-ada-001": "r50k_base",
    "davinci": "r50k_base",
    "curie": "r50k_base",
    "babbage": "r50k_base",
    "ada": "r50k_base",
    "code-davinci-002": "p50k_base",
    "code-davinci-001": "p50k_base",
    "code-cushman-002": "p50k_base",
    "code-cushman-001": "p50k_base",
    "davinci-codex": "p50k_base",
    "cushman-codex": "p50k_base",
    "text-davinci-edit-001": "p50k_edit",
    "code-davinci-edit-001": "p50k_edit",
    "text-embedding-ada-002": "cl100k_base",
    "text-similarity-davinci-001": "r50k_base",
    "text-similarity-curie-001": "r50k_base",
    "text-similarity-babbage-001": "r50k_base",
    "text-similarity-ada-001": "r50k_base",
    "text-search-davinci-doc-001": "r50k_base",
    "text-search-curie-doc-001": "r50k_base",
    "text-search-babbage-doc-001": "r50k_base",
    "text-search-ada-doc-001": "r50k_base",
    "code-search-babbage-code-001": "r50k_base",
    "code-search-ada-code-001": "r50k_base",
    "gpt2": "gpt2",
    "gpt-3.5-turbo": "cl100k_base",
    "gpt-35-turbo": "cl100k_base",
    "gpt-3.5-turbo-0301": "cl100k_base",
    "gpt-3.5-turbo-0613": "cl100k_base",
    "gpt-3.5-turbo-1106": "cl100k_base",
    "gpt-3.5-turbo-0125": "cl100k_base",
    "gpt-3.5-turbo-16k": "cl100k_base",
    "gpt-3.5-turbo-16k-0613": "cl100k_base",
    "gpt-3.5-turbo-instruct": "cl100k_base",
    "gpt-3.5-turbo-instruct-0914": "cl100k_base",
    "gpt-4": "cl100k_base",
    "gpt-4-0314": "cl100k_base",
    "gpt-4-0613": "cl100k_base",
    "gpt-4-32k": "cl100k_base",
    "gpt-4-32k-0314": "cl100k_base",
    "gpt-4-32k-0613": "cl100k_base",
    "gpt-4-turbo": "cl100k_base",
    "gpt-4-turbo-2024-04-09": "cl100k_base",
    "gpt-4-turbo-preview": "cl100k_base",
    "gpt-4-1106-preview": "cl100k_base",
    "gpt-4-0125-preview": "cl100k_base",
    "gpt-4-vision-preview": "cl100k_base",
    "gpt-4o": "o200k_base",
    "gpt-4o-2024-05-13": "o200k_base",
}

# Only these get the chat-message treatment upstream (`isChatModel`); other models count a
# message array as its JSON text even when their config has tokensPerMessage.
OPENAI_CHAT_MODELS = frozenset(
    {
        "gpt-4",
        "gpt-4-0314",
        "gpt-4-0613",
        "gpt-4-32k",
        "gpt-4-32k-0314",
        "gpt-4-32k-0613",
        "gpt-3.5-turbo",
        "gpt-35-turbo",
        "gpt-3.5-turbo-0301",
        "gpt-3.5-turbo-0613",
        "gpt-3.5-turbo-1106",
        "gpt-3.5-turbo-16k",
        "gpt-3.5-turbo-16k-0613",
        "gpt-4-1106-preview",
        "gpt-4-vision-preview",
        "gpt-4o-2024-05-13",
        "gpt-4o",
    }
)

# Message keys whose values are tokenised (OpenAI chat API fields).
_COUNTED_MESSAGE_KEYS = frozenset(
    {"content", "role", "name", "tool_calls", "function_call", "toolCalls", "functionCall"}
)
# Every reply is primed with <|start|>assistant<|message|>.
REPLY_PRIMING_TOKENS = 3


@dataclass(frozen=True, slots=True)
class OpenAITokenizerConfig:
    tokenizer_model: str
    encoding: str
    tokens_per_message: int | None = None
    tokens_per_name: int | None = None


def openai_tokenizer_config(model: Model) -> OpenAITokenizerConfig | None:
    config = model.tokenizer_config
    if not isinstance(config, Mapping):
        return None
    tokenizer_model = config.get("tokenizerModel")
    if not isinstance(tokenizer_model, str):
        return None
    encoding = TIKTOKEN_MODEL_ENCODINGS.get(tokenizer_model)
    if encoding is None:
        return None  # upstream rejects the config ("Unknown tiktoken model")
    per_message = config.get("tokensPerMessage")
    per_name = config.get("tokensPerName")
    return OpenAITokenizerConfig(
        tokenizer_model=tokenizer_model,
        encoding=encoding,
        tokens_per_message=per_message if _is_number(per_message) else None,
        tokens_per_name=per_name if _is_number(per_name) else None,
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# Integers up to 2**53 are exact doubles; JavaScript prints those without a fraction.
_MAX_EXACT_INTEGER = 2.0**53


def _as_javascript_numbers(value: Any) -> Any:
    # JSON.parse has no integral floats: `1.0` comes back as 1 and is written "1", where
    # Python writes "1.0"; a non-finite number is written null. Without this, a structured
    # input holding such numbers would count different tokens than upstream.
    if type(value) is float:
        if not math.isfinite(value):
            return None
        if value.is_integer() and abs(value) < _MAX_EXACT_INTEGER:
            return int(value)
        return value
    if isinstance(value, dict):
        return {key: _as_javascript_numbers(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_as_javascript_numbers(item) for item in value]
    return value


def json_text(value: Any) -> str:
    """JSON text as JavaScript's JSON.stringify writes it (compact, unescaped Unicode,
    integral numbers without a fraction)."""
    return json.dumps(
        _as_javascript_numbers(value), separators=(",", ":"), ensure_ascii=False, default=str
    )


def parse_json_prioritised(text: str) -> Any:
    """The JSON value a string holds, or the string itself when it is not JSON (upstream stores
    input/output as strings and parses them back before counting)."""
    try:
        return json.loads(text, parse_constant=_not_javascript_json)
    except (ValueError, RecursionError):
        return text


def _not_javascript_json(constant: str) -> Any:
    # JSON.parse rejects NaN and Infinity, so upstream counts such a string as plain text.
    raise ValueError(f"{constant} is not JSON")


def is_chat_message_array(value: Any) -> bool:
    # Like upstream's `every`, an empty array counts as a (message-less) chat.
    return isinstance(value, list) and all(
        isinstance(item, Mapping)
        and isinstance(item.get("role"), str)
        and isinstance(item.get("content"), str)
        and ("name" not in item or isinstance(item["name"], str))
        for item in value
    )


def _absent_upstream(value: Any) -> bool:
    # Upstream keeps only a JavaScript-truthy input/output and stores it as text, so "", 0 and
    # false are never counted while an empty array or object is (as "[]" / "{}").
    if value is None or value is False:
        return True
    return isinstance(value, str | int | float) and not value


class ModelTokenCounter:
    """`TokenCounter` following upstream's algorithm on top of a `TextEncodingCounter`."""

    __slots__ = ("_encoder",)

    def __init__(self, encoder: TextEncodingCounter) -> None:
        self._encoder = encoder

    def count(self, model: Model, text_or_messages: Any) -> int | None:
        value = text_or_messages
        if _absent_upstream(value):
            return None
        if model.tokenizer_id == "openai":
            return self._count_openai(model, value)
        if model.tokenizer_id == "claude":
            text = value if isinstance(value, str) else json_text(value)
            return self._encoder.count_text(CLAUDE_ENCODING, text)
        return None

    def _count_openai(self, model: Model, value: Any) -> int | None:
        config = openai_tokenizer_config(model)
        if config is None:
            return None
        parsed = parse_json_prioritised(value) if isinstance(value, str) else value
        if is_chat_message_array(parsed) and config.tokenizer_model in OPENAI_CHAT_MODELS:
            return self._count_chat(parsed, config)
        text = parsed if isinstance(parsed, str) else json_text(parsed)
        return self._encoder.count_text(config.encoding, text)

    def _count_chat(
        self, messages: list[Mapping[str, Any]], config: OpenAITokenizerConfig
    ) -> int | None:
        if config.tokens_per_message is None or config.tokens_per_name is None:
            return None  # upstream: invalid chat config, no count
        total = 0
        for message in messages:
            total += config.tokens_per_message
            for key, field_value in message.items():
                if field_value and key in _COUNTED_MESSAGE_KEYS:
                    # Upstream hands non-strings (tool_calls arrays) straight to tiktoken,
                    # which fails; their JSON text is the useful count.
                    text = field_value if isinstance(field_value, str) else json_text(field_value)
                    tokens = self._encoder.count_text(config.encoding, text)
                    if tokens is None:
                        return None  # encoding unavailable: no partial counts
                    total += tokens
                if key == "name":
                    total += config.tokens_per_name
        return int(total + REPLY_PRIMING_TOKENS)


def tokenized_usage(input_count: int | None, output_count: int | None) -> dict[str, int]:
    """Usage details from counted tokens: `input`, `output` and, when either is non-zero,
    `total`."""
    usage: dict[str, int] = {}
    if input_count is not None:
        usage["input"] = input_count
    if output_count is not None:
        usage["output"] = output_count
    if input_count or output_count:
        usage["total"] = (input_count or 0) + (output_count or 0)
    return usage


def count_usage(counter: TokenCounter, model: Model, input: Any, output: Any) -> dict[str, int]:
    """`{input, output, total}` for a generation whose usage was not reported."""
    return tokenized_usage(counter.count(model, input), counter.count(model, output))
