"""Structured replies: the model's whole reply under a JSON schema, on every backend.

llama.cpp turns the schema into a grammar (the JSON always parses, every id is one of the
offered ones); an OpenAI-compatible server gets it as ``response_format``, in the form it
accepts; the extractive baseline has no model and gets an empty reply, so callers fall back.
Used for evidence cards, quote-first answers, stance suggestions and the Yes/No judge.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from assistant.models.timing import Timing


# The backends by their LangChain type name (``_llm_type``), as for "openai-chat" below: this module
# sits under every model backend (``assistant.models.llm`` names its two by these constants).
LOCAL_LLM_TYPE = "llama-cpp-local"
EXTRACTIVE_LLM_TYPE = "extractive-baseline"

@dataclass
class StructuredReply:
    """What the model wrote (``raw``), parsed as a JSON object (``parsed``, None if unusable), and its timing."""

    parsed: dict | None
    raw: str
    timing: Timing


def _response_formats(chat_model: BaseChatModel, schema: dict) -> list[dict | None]:
    """The ways to ask this backend for JSON following ``schema``, best first.

    llama.cpp in-process and llama-cpp-python's server take ``json_object`` with a ``schema``
    (decoded under a grammar); OpenAI, vLLM and llama.cpp's own server take ``json_schema``.
    An OpenAI-compatible server that refuses one form is asked with the next.
    """
    as_object = {"type": "json_object", "schema": schema}
    if chat_model._llm_type == LOCAL_LLM_TYPE:
        return [as_object]
    if chat_model._llm_type == "openai-chat":
        return [{"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}, as_object, None]
    return [None]


def structured_reply(chat_model: BaseChatModel, messages: list[BaseMessage], schema: dict, max_tokens: int) -> StructuredReply:
    """The model's whole reply under ``schema`` (see ``stream_structured``)."""
    reply = None
    for reply in stream_structured(chat_model, messages, schema, max_tokens):
        pass
    assert isinstance(reply, StructuredReply)
    return reply


def choice(chat_model: BaseChatModel, messages: list[BaseMessage], field: str, options: Sequence[str],
           max_tokens: int) -> str | None:
    """One of ``options``: the model's reply ``{field: option}`` under a schema that allows only them,
    or None when the reply is unusable (the extractive baseline, a server ignoring the schema)."""
    schema = {"type": "object", "properties": {field: {"type": "string", "enum": list(options)}}, "required": [field]}
    parsed = structured_reply(chat_model, messages, schema, max_tokens).parsed
    answer = parsed.get(field) if parsed else None
    return answer if answer in options else None


def stream_structured(
    chat_model: BaseChatModel, messages: list[BaseMessage], schema: dict, max_tokens: int
) -> Iterator[str | StructuredReply]:
    """The reply under ``schema`` as it is written (the text so far, after each piece), then the
    ``StructuredReply``. Each format of ``_response_formats`` is tried until the backend accepts one.

    The extractive baseline has no model to ask: an empty reply, and the caller falls back.
    """
    if chat_model._llm_type == EXTRACTIVE_LLM_TYPE:
        yield StructuredReply(None, "", Timing())
        return
    formats = _response_formats(chat_model, schema)
    for n, response_format in enumerate(formats):
        written = False
        try:
            for item in _reply_stream(chat_model, messages, response_format, max_tokens):
                written = written or isinstance(item, str)
                yield item
            return
        except Exception as exc:  # an OpenAI-compatible server refusing this response_format: HTTP 400/422,
            # or a 500 naming it (llama-cpp-python's server validates the field that way)
            if type(exc).__name__ == "LengthFinishReasonError":  # openai's parser: the reply hit the token limit
                yield StructuredReply(None, "", Timing())  # no usable cards: the caller falls back to quotes
                return
            refused = getattr(exc, "status_code", None) in (400, 422) or "response_format" in str(exc)
            if written or n == len(formats) - 1 or not refused:
                raise
    raise AssertionError("unreachable")


def _reply_stream(
    chat_model: BaseChatModel, messages: list[BaseMessage], response_format: dict | None, max_tokens: int
) -> Iterator[str | StructuredReply]:
    timing = Timing()
    options: dict[str, Any] = {"max_tokens": max_tokens}
    if response_format is not None:
        options["response_format"] = response_format
    started = time.perf_counter()
    pieces: list[str] = []
    for chunk in chat_model.stream(messages, **options):
        text = chunk.content if isinstance(chunk.content, str) else ""
        if text and timing.first_token_ms is None:
            timing.first_token_ms = (time.perf_counter() - started) * 1000
        pieces.append(text)
        usage: Mapping[str, Any] = chunk.usage_metadata or {}
        timing.prompt_tokens = usage.get("input_tokens", timing.prompt_tokens)
        timing.output_tokens = usage.get("output_tokens", timing.output_tokens)
        timing.reused_prompt_tokens = (chunk.response_metadata or {}).get("reused_prompt_tokens", timing.reused_prompt_tokens)
        if text:
            yield "".join(pieces)
    timing.generation_s = time.perf_counter() - started
    text = "".join(pieces)
    match = re.search(r"\{.*\}", text, re.DOTALL)
    try:
        parsed = json.loads(match.group(0)) if match else None
    except ValueError:
        parsed = None
    yield StructuredReply(parsed if isinstance(parsed, dict) else None, text, timing)
