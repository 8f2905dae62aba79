"""Stream a chat model's reply through the citation filter, timing it as it goes.

Shared by answers and debate turns: both show text as it is generated, neither may ever
show an invalid ``[n]``, and both report the same timing figures.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from assistant.checks.citations import StreamingCitationFilter
from assistant.checks.grounding import drop_unfinished_sentence
from assistant.checks.model_text import StreamingModelText
from assistant.models.timing import Timing


T = TypeVar("T")


def final_item(stream: Iterable[object], kind: type[T]) -> T:
    """Run ``stream`` to the end and return its last item of type ``kind`` (the finished result)."""
    result = None
    for item in stream:
        if isinstance(item, kind):
            result = item
    if result is None:
        raise RuntimeError(f"the stream ended without a {kind.__name__}")
    return result


@dataclass
class Generated:
    """The complete raw reply, after the stream has ended; ``truncated`` if it hit max_tokens."""

    raw: str
    timing: Timing
    truncated: bool = False

    @property
    def text(self) -> str:
        """The reply to check: without the half sentence the token limit cut off, if it did."""
        return drop_unfinished_sentence(self.raw) if self.truncated else self.raw


def stream_filtered(
    chat_model: BaseChatModel, messages: list[BaseMessage], n_sources: int, timing: Timing, **options
) -> Iterator[str | Generated]:
    """Yield display-safe text pieces, then one ``Generated`` with the raw text; fills ``timing``.

    Display-safe: markers checked (``StreamingCitationFilter``), then the model's spacing artefacts
    rejoined (``StreamingModelText``: "16,000", "U.S."), as the whole reply's check will show them."""
    shown = StreamingCitationFilter(n_sources)
    spaced = StreamingModelText()
    pieces: list[str] = []
    finish_reason = None
    started = time.perf_counter()
    for chunk in chat_model.stream(messages, **options):
        text = chunk.content if isinstance(chunk.content, str) else ""
        usage = getattr(chunk, "usage_metadata", None)
        if usage:
            timing.output_tokens = usage.get("output_tokens", 0) or timing.output_tokens
            timing.prompt_tokens = usage.get("input_tokens", 0) or timing.prompt_tokens
        metadata = chunk.response_metadata or {}
        if metadata.get("reused_prompt_tokens") is not None:
            timing.reused_prompt_tokens = metadata["reused_prompt_tokens"]
        finish_reason = metadata.get("finish_reason") or finish_reason
        if not text:
            continue
        if timing.first_token_ms is None:
            timing.first_token_ms = (time.perf_counter() - started) * 1000
        pieces.append(text)
        safe = spaced.feed(shown.feed(text))
        if safe:
            yield safe
    tail = spaced.feed(shown.finish()) + spaced.finish()
    if tail:
        yield tail
    timing.generation_s = time.perf_counter() - started
    timing.output_tokens = timing.output_tokens or len(pieces)
    yield Generated("".join(pieces), timing, truncated=finish_reason == "length")
