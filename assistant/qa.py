"""Ask: condense -> retrieve -> number passages -> prompt -> stream -> validate citations.

The answer is only as trustworthy as its citations, so the chain never passes model text
through unchecked: markers are validated against the passages actually shown, invalid ones
are removed (also while streaming), uncited sentences are listed, and an answer with no
valid citation at all is withheld and replaced by the honest "the sources don't say".
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from assistant import prompts
from assistant.grounding import check_grounding, is_decline
from assistant.retrieval import HybridRetriever, RetrievedPassage, validate_history, validate_query
from assistant.streaming import Generated, Timing, final_item, stream_filtered

CONDENSE_MAX_TOKENS = 60


@dataclass(frozen=True)
class CitedPassage:
    """A passage the answer cites, under the number the answer uses for it."""

    number: int
    passage: RetrievedPassage

    @property
    def title(self) -> str:
        return self.passage.title

    @property
    def source(self) -> str:
        return self.passage.source


@dataclass
class Answer:
    """An answer as shown to the user, with its cited passages, what was fixed or flagged, and timing.

    ``text`` is what may be shown; ``raw_text`` is what the model wrote. ``declined`` covers
    both an honest decline and a *withheld* reply (no supported citation at all).
    """

    question: str
    standalone_question: str
    text: str
    raw_text: str
    declined: bool
    passages: list[RetrievedPassage]
    citations: list[CitedPassage] = field(default_factory=list)
    invalid_citations: list[str] = field(default_factory=list)
    corrected_citations: list[str] = field(default_factory=list)
    uncited_sentences: list[str] = field(default_factory=list)
    unsupported_sentences: list[str] = field(default_factory=list)
    withheld: bool = False
    timing: Timing = field(default_factory=Timing)


def finalize(
    question: str, standalone: str, raw: str, passages: Sequence[RetrievedPassage], timing: Timing
) -> Answer:
    """Validate the model's text against ``passages`` and decide whether it may be shown.

    Shown as answered only if at least one sentence carries a valid citation whose passage
    supports it (see ``assistant.support``). A reply that says the sources don't cover the
    question is a decline even if the model tacked a marker onto it; anything else without a
    supported citation is *withheld*: the user sees the decline, the raw text stays in the
    result for inspection.
    """
    checked = check_grounding(raw, passages)
    shown = checked.shown(prompts.DECLINE)
    declined = not checked.grounded and (is_decline(raw) or not raw.strip())
    return Answer(
        question=question,
        standalone_question=standalone,
        text=shown.text,
        raw_text=raw,
        declined=not checked.grounded,
        withheld=not checked.grounded and not declined,
        passages=list(passages),
        citations=[CitedPassage(n, passages[n - 1]) for n in sorted(shown.cited)],
        invalid_citations=shown.invalid_citations,
        corrected_citations=shown.corrected_citations,
        uncited_sentences=shown.uncited_sentences,
        unsupported_sentences=shown.unsupported_sentences,
        timing=timing,
    )


class AskChain:
    """Question answering over the library with validated citations."""

    def __init__(self, retriever: HybridRetriever, chat_model: BaseChatModel) -> None:
        self.retriever = retriever
        self.chat_model = chat_model
        self.settings = retriever.settings

    def condense(self, question: str, history: Sequence[tuple[str, str]]) -> str:
        """A follow-up rewritten to stand alone; falls back to joining it with the last question."""
        history = list(history)[-self.settings.max_history_turns :] if self.settings.max_history_turns else []
        if not history:
            return question
        messages = [SystemMessage(prompts.CONDENSE_SYSTEM), HumanMessage(prompts.condense_user_prompt(history, question))]
        try:
            rewritten = str(self.chat_model.invoke(messages, max_tokens=CONDENSE_MAX_TOKENS).content).strip()
        except Exception:  # a failed rewrite must not fail the question
            rewritten = ""
        rewritten = rewritten.splitlines()[0].strip().strip('"') if rewritten else ""
        if not rewritten or is_decline(rewritten) or len(rewritten) > 4 * len(question) + 200:
            return f"{history[-1][0]} {question}"
        return rewritten

    @staticmethod
    def answer_messages(question: str, passages: Sequence[RetrievedPassage]) -> list[BaseMessage]:
        """The prompt for answering ``question`` from the numbered ``passages``."""
        return [
            SystemMessage(prompts.answer_system_prompt(passages)),
            HumanMessage(prompts.answer_user_prompt(question)),
        ]

    def stream(
        self,
        question: str,
        history: Sequence[tuple[str, str]] = (),
        *,
        k: int | None = None,
        doc_ids: Sequence[str] | None = None,
    ) -> Iterator[str | Answer]:
        """Yield display-safe text pieces as they are generated, then the final ``Answer``."""
        question = validate_query(question, self.settings.max_question_chars)
        history = validate_history(history, self.settings.max_question_chars)
        timing = Timing()
        started = time.perf_counter()
        standalone = self.condense(question, history)
        timing.condense_ms = (time.perf_counter() - started) * 1000

        t0 = time.perf_counter()
        passages = self.retriever.retrieve(standalone, k, doc_ids=doc_ids)
        timing.retrieval_ms = (time.perf_counter() - t0) * 1000
        if not passages:
            timing.total_s = time.perf_counter() - started
            yield prompts.DECLINE
            yield finalize(question, standalone, prompts.DECLINE, [], timing)
            return

        raw = ""
        for item in stream_filtered(self.chat_model, self.answer_messages(standalone, passages), len(passages), timing):
            if isinstance(item, Generated):
                raw = item.text
            else:
                yield item
        timing.total_s = time.perf_counter() - started
        yield finalize(question, standalone, raw, passages, timing)

    def ask(self, question: str, history: Sequence[tuple[str, str]] = (), **options) -> Answer:
        """The finished answer, without streaming."""
        return final_item(self.stream(question, history, **options), Answer)
