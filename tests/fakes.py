"""A deterministic chat model for unit tests of chain logic (in addition to the real model tests).

``ScriptedChatModel`` answers by a rule that reads the prompt the chain built, so a test can
cite "the passage that mentions X" without knowing in advance which number it will get.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from collections.abc import Callable, Iterator
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult


class ScriptedChatModel(BaseChatModel):
    """Replies ``rule(messages)``, streamed in small pieces; records every call."""

    rule: Callable[[list[BaseMessage]], str]
    calls: list[list[BaseMessage]] = []
    finish_reason: str = "stop"  # "length" plays a reply cut off by the token limit

    @property
    def _llm_type(self) -> str:
        return "scripted-test-model"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> ChatResult:
        self.calls.append(messages)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.rule(messages)))])

    def _stream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> Iterator[ChatGenerationChunk]:
        self.calls.append(messages)
        reply = self.rule(messages)
        for i in range(0, len(reply), 3):  # 3-character pieces split markers like "[1" + "2]"
            yield ChatGenerationChunk(message=AIMessageChunk(content=reply[i : i + 3]))
        yield ChatGenerationChunk(message=AIMessageChunk(content="", response_metadata={"finish_reason": self.finish_reason}))


def number_of(messages: list[BaseMessage], phrase: str) -> int:
    """The [n] under which the prompt shows the passage containing ``phrase``."""
    prompt = "\n".join(str(m.content) for m in messages)
    for match in re.finditer(r"^\[(\d+)\] (.*)$", prompt, re.MULTILINE):
        if phrase in match.group(2):
            return int(match.group(1))
    raise AssertionError(f"no passage with {phrase!r} in the prompt")




def evidence(messages: list[BaseMessage]) -> dict[int, str]:
    """The numbered evidence sentences of a debate card prompt (the last message), by id."""
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^\[(\d+)\] (.*)$", messages[-1].content, re.MULTILINE)}


def evidence_id(messages: list[BaseMessage], phrase: str) -> int | None:
    """The id of the first evidence sentence containing ``phrase`` (None if none is offered)."""
    return next((i for i, text in evidence(messages).items() if phrase in text), None)


@dataclass
class Validated:
    """What the citation step makes of a reply: canonical text, cited numbers, invalid markers, uncited sentences."""

    text: str
    cited: list[int]
    invalid: list[str]
    uncited_sentences: list[str]


def validate(text: str, n_sources: int, exempt_sentences: tuple[str, ...] = ()) -> Validated:
    """``normalise_markers`` then ``uncited_sentences``, as ``assistant.checks.grounding`` runs them."""
    from assistant.checks.citations import normalise_markers, uncited_sentences

    normalised, cited, invalid = normalise_markers(text, n_sources)
    return Validated(normalised, cited, invalid, uncited_sentences(normalised, exempt_sentences))
