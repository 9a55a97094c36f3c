"""Token counting: upstream's rules (with a fake encoding) and the real offline tokenizers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fathom.core.domain.pricing import Model, ModelMatcher
from fathom.core.domain.tokens import (
    ModelTokenCounter,
    TokenCounter,
    count_usage,
    is_chat_message_array,
    openai_tokenizer_config,
    parse_json_prioritised,
    tokenized_usage,
)
from fathom.plugins.builtin.model_catalog import load_default_models


@pytest.fixture(scope="module")
def matcher() -> ModelMatcher:
    return ModelMatcher(load_default_models())


def _model(matcher: ModelMatcher, name: str) -> Model:
    model = matcher.match(name)
    assert model is not None, name
    return model


class WordEncoding:
    """One token per whitespace-separated word; records what it was asked."""

    def __init__(self, known: frozenset[str] = frozenset({"o200k_base", "cl100k_base", "claude"})):
        self.known = known
        self.calls: list[tuple[str, str]] = []

    def count_text(self, encoding: str, text: str) -> int | None:
        self.calls.append((encoding, text))
        return len(text.split()) if encoding in self.known else None


MESSAGES = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "name": "ann", "content": "hello there world"},
]


def test_openai_chat_messages_get_per_message_and_name_overhead(matcher: ModelMatcher) -> None:
    encoding = WordEncoding()
    counter = ModelTokenCounter(encoding)
    gpt4o = _model(matcher, "gpt-4o")  # tokensPerMessage 3, tokensPerName 1
    # message 1: 3 + role(1) + content(2); message 2: 3 + role(1) + name(1) + 1 + content(3);
    # then 3 for the reply priming.
    assert counter.count(gpt4o, MESSAGES) == 6 + 9 + 3
    assert {enc for enc, _ in encoding.calls} == {"o200k_base"}
    # Input stored as a JSON string is parsed back first.
    assert counter.count(gpt4o, json.dumps(MESSAGES)) == 18


def test_legacy_chat_config_with_negative_name_overhead(matcher: ModelMatcher) -> None:
    counter = ModelTokenCounter(WordEncoding())
    old = _model(matcher, "gpt-3.5-turbo-0301")  # tokensPerMessage 4, tokensPerName -1
    assert counter.count(old, MESSAGES) == (4 + 1 + 2) + (4 + 1 + 1 - 1 + 3) + 3


def test_non_chat_tokenizer_model_counts_json_text(matcher: ModelMatcher) -> None:
    encoding = WordEncoding()
    counter = ModelTokenCounter(encoding)
    # gpt-4-turbo-preview's tokenizerModel is "gpt-4" (a chat model) ...
    assert counter.count(_model(matcher, "gpt-4-turbo-preview"), MESSAGES) == 18
    # ... but text-embedding-ada-002 is not a chat model: the messages are JSON text.
    embedding = _model(matcher, "text-embedding-ada-002")
    counter.count(embedding, MESSAGES)
    assert encoding.calls[-1] == ("cl100k_base", json.dumps(MESSAGES, separators=(",", ":")))


def test_strings_objects_and_empty_values(matcher: ModelMatcher) -> None:
    encoding = WordEncoding()
    counter = ModelTokenCounter(encoding)
    gpt4o = _model(matcher, "gpt-4o")
    assert counter.count(gpt4o, "one two three") == 3
    assert counter.count(gpt4o, '"quoted json string"') == 3  # parsed to its string
    assert counter.count(gpt4o, {"answer": "a b"}) == 2  # '{"answer":"a' 'b"}'
    assert encoding.calls[-1] == ("o200k_base", '{"answer":"a b"}')
    assert counter.count(gpt4o, None) is None
    # Upstream keeps only a truthy input and counts it as stored text: "" is never counted,
    # while an empty array is stored as "[]", a message-less chat (only the reply priming).
    assert counter.count(gpt4o, "") is None
    assert counter.count(gpt4o, []) == 3
    assert counter.count(gpt4o, "[]") == 3


def test_tool_calls_are_counted_as_json(matcher: ModelMatcher) -> None:
    counter: TokenCounter = ModelTokenCounter(WordEncoding())
    message = {
        "role": "assistant",
        "content": "ok",
        "tool_calls": [{"id": "1", "function": {"name": "f", "arguments": "{}"}}],
        "ignored_key": "a b c d e f",
    }
    # 3 + role(1) + content(1) + tool_calls JSON (1 word, no spaces) + 3
    assert counter.count(_model(matcher, "gpt-4o"), [message]) == 9


def test_claude_counts_strings_and_json(matcher: ModelMatcher) -> None:
    encoding = WordEncoding()
    counter = ModelTokenCounter(encoding)
    claude = _model(matcher, "claude-3-5-sonnet-20240620")
    assert counter.count(claude, "a b c") == 3
    # Claude does not parse JSON strings and has no message overhead.
    assert counter.count(claude, json.dumps(MESSAGES)) == len(json.dumps(MESSAGES).split())
    counter.count(claude, MESSAGES)
    assert encoding.calls[-1] == ("claude", json.dumps(MESSAGES, separators=(",", ":")))


def test_models_without_usable_tokenizer(matcher: ModelMatcher) -> None:
    counter = ModelTokenCounter(WordEncoding())
    assert counter.count(_model(matcher, "gemini-2.5-pro"), "a b") is None  # no tokenizer
    # text-davinci-003 needs p50k_base, which the encoder does not have.
    assert counter.count(_model(matcher, "text-davinci-003"), "a b") is None
    unknown = Model("x", "x", "x", tokenizer_id="openai", tokenizer_config={"tokenizerModel": "o9"})
    assert openai_tokenizer_config(unknown) is None
    assert counter.count(unknown, "a b") is None
    weird = Model("y", "y", "y", tokenizer_id="sentencepiece")
    assert counter.count(weird, "a b") is None


def test_chat_model_without_overhead_config_gives_none() -> None:
    counter = ModelTokenCounter(WordEncoding())
    model = Model(
        "z", "z", "z", tokenizer_id="openai", tokenizer_config={"tokenizerModel": "gpt-4"}
    )
    assert counter.count(model, MESSAGES) is None
    assert counter.count(model, "a b") == 2


def test_helpers() -> None:
    assert parse_json_prioritised("not json") == "not json"
    assert parse_json_prioritised("[1, 2]") == [1, 2]
    assert is_chat_message_array([{"role": "user", "content": "x"}])
    assert not is_chat_message_array([{"role": "user", "content": ["x"]}])
    assert not is_chat_message_array([{"role": "user", "content": "x", "name": 3}])
    assert not is_chat_message_array({"role": "user", "content": "x"})
    assert tokenized_usage(5, 7) == {"input": 5, "output": 7, "total": 12}
    assert tokenized_usage(5, None) == {"input": 5, "total": 5}
    assert tokenized_usage(0, 0) == {"input": 0, "output": 0}
    assert tokenized_usage(None, None) == {}


def test_count_usage(matcher: ModelMatcher) -> None:
    counter = ModelTokenCounter(WordEncoding())
    gpt4o = _model(matcher, "gpt-4o")
    assert count_usage(counter, gpt4o, "a b c", "d e") == {"input": 3, "output": 2, "total": 5}
    assert count_usage(counter, gpt4o, "a b c", None) == {"input": 3, "total": 3}


# --- the real tokenizers ----------------------------------------------------------------------

# OpenAI's cookbook example ("How to count tokens with tiktoken"): its documented counts are 129
# prompt tokens for gpt-3.5-turbo-0613 / gpt-4-0613 / gpt-4 and 124 for gpt-4o / gpt-4o-mini.
COOKBOOK_MESSAGES: list[dict[str, Any]] = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate "
        "jargon into plain English.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "New synergies will help drive top-line growth.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities "
        "for increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client "
        "deliverable.",
    },
]


@pytest.fixture(scope="module")
def real_counter() -> Any:
    pytest.importorskip("toktok")
    from fathom.adapters.llm.tokenizer import TiktokenCounter

    return TiktokenCounter()


@pytest.mark.parametrize(
    ("model_name", "expected"),
    [
        ("gpt-3.5-turbo-0613", 129),
        ("gpt-4-0613", 129),
        ("gpt-4", 129),
        ("gpt-4o", 124),
        ("gpt-4o-mini", 124),
        ("gpt-3.5-turbo-0301", 127),  # 4 per message, -1 per name
    ],
)
def test_real_openai_chat_counts_match_cookbook(
    real_counter: Any, matcher: ModelMatcher, model_name: str, expected: int
) -> None:
    assert real_counter.count(_model(matcher, model_name), COOKBOOK_MESSAGES) == expected


def test_real_openai_text_counts(real_counter: Any, matcher: ModelMatcher) -> None:
    gpt4o = _model(matcher, "gpt-4o")  # o200k_base
    gpt4 = _model(matcher, "gpt-4")  # cl100k_base
    assert real_counter.count(gpt4o, "hello world") == 2
    assert real_counter.count(gpt4, "hello world") == 2
    # The same text differs between the two encodings.
    text = "Fathom counts tokens offline: 東京タワーは高さ333メートルです。"
    assert real_counter.count(gpt4o, text) != real_counter.count(gpt4, text)
    # Special tokens count as one token (upstream encodes with allowed_special="all").
    assert real_counter.count(gpt4, "<|endoftext|>") == 1
    assert real_counter.encodings.available("o200k_base")
    assert not real_counter.encodings.available("p50k_base")
    assert real_counter.count(_model(matcher, "text-davinci-003"), "hello") is None


def test_real_claude_counts(matcher: ModelMatcher) -> None:
    pytest.importorskip("anthropic_tokenizer")
    from fathom.adapters.llm.tokenizer import TiktokenCounter

    counter = TiktokenCounter()
    claude = _model(matcher, "claude-3-5-sonnet-20240620")
    # The expectations of @anthropic-ai/tokenizer's own tests.
    assert counter.count(claude, "hello world!") == 3
    assert counter.count(claude, "™") == 1  # NFKC-normalised first
    assert counter.count(claude, "<EOT>") == 1  # special tokens allowed


def test_missing_package_counts_none(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from fathom.adapters.llm.tokenizer import OfflineEncodings

    monkeypatch.setitem(sys.modules, "toktok", None)  # makes `import toktok` fail
    monkeypatch.setitem(sys.modules, "anthropic_tokenizer", None)
    encodings = OfflineEncodings()
    assert encodings.count_text("o200k_base", "hello") is None
    assert encodings.count_text("claude", "hello") is None
