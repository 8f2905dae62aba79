"""Ask: condense -> retrieve -> number passages -> prompt -> stream -> validate citations.

The answer is only as trustworthy as its citations, so the chain never passes model text
through unchecked: markers are validated against the passages actually shown, invalid ones
are removed (also while streaming), uncited sentences are listed, and an answer with no
valid citation at all is withheld and replaced by the honest "the sources don't say".
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import TYPE_CHECKING

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from assistant.core import prompts
from assistant.chains import quote_answer
from assistant.chains.ask_events import Answer, QuoteFound, SentenceChecked, SourcesFound
from assistant.retrieval.context import ContextBuilder
from assistant.checks.grounding import CheckedSentence, Grounding, is_decline, iter_grounding
from assistant.checks.model_text import normalise_model_text
from assistant.checks.relevance import RelevanceCheck, partial_text, related_text
from assistant.chains.configured_checks import make_relevance_check, make_verifier
from assistant.core.passage import NumberedPassage, Passage, offered_sentences, offered_text
from assistant.core.inputs import validate_history, validate_query
from assistant.chains.streaming import Generated, final_item, stream_filtered
from assistant.models.timing import Timing
from assistant.checks.verify import Verifier, article_label, judge_context

if TYPE_CHECKING:  # annotations only: a chain is given its retriever (``assistant.server.service.build``)
    from assistant.retrieval.retrieval import HybridRetriever

CONDENSE_MAX_TOKENS = 60


def finalize(
    question: str, standalone: str, raw: str, passages: Sequence[Passage], timing: Timing,
    verifier: Verifier | None = None, relevance: RelevanceCheck | None = None,
) -> Answer:
    """Validate the model's text against ``passages`` and decide whether it may be shown.

    Shown as answered only if at least one sentence carries a valid citation whose passage
    supports it (see ``assistant.checks.verify``). A reply that says the sources don't cover the
    question is a decline even if the model tacked a marker onto it; anything else without a
    supported citation is *withheld*: the user sees the decline, the raw text stays in the
    result for inspection. What survives must then answer the question (``relevance``):
    otherwise the user sees the decline, with the supported sentences below it under
    "Related, but not an answer:".
    """
    return final_item(iter_finalize(question, standalone, raw, passages, timing, verifier, relevance), Answer)


def iter_finalize(
    question: str, standalone: str, raw: str, passages: Sequence[Passage], timing: Timing,
    verifier: Verifier | None = None, relevance: RelevanceCheck | None = None,
) -> Iterator[SentenceChecked | Answer]:
    """``finalize`` step by step: a ``SentenceChecked`` per sentence as it is decided, then the ``Answer``."""
    started = time.perf_counter()
    checked: Grounding | None = None
    for index, item in enumerate(iter_grounding(raw, passages, verifier, standalone)):
        if isinstance(item, Grounding):
            checked = item
        else:
            yield SentenceChecked(index, item)
    assert checked is not None
    shown = checked.shown(prompts.DECLINE)
    verdict = None
    if checked.grounded and relevance is not None:
        verdict = relevance.check(standalone, shown.text, *cited_evidence(shown.sentences, passages))
    timing.verify_ms = (time.perf_counter() - started) * 1000
    timing.total_s += timing.verify_ms / 1000
    declined = not checked.grounded and (is_decline(raw) or not raw.strip())
    if verdict is None:
        text = shown.text
    elif verdict.answers:
        text = partial_text(shown.text, verdict.unanswered)
    else:
        text = related_text(prompts.DECLINE, shown.text)
    yield Answer(
        question=question,
        standalone_question=standalone,
        text=text,
        raw_text=raw,
        declined=not checked.grounded or (verdict is not None and not verdict.answers),
        withheld=not checked.grounded and not declined,
        passages=list(passages),
        citations=[NumberedPassage(n, passages[n - 1]) for n in sorted(shown.cited)],
        invalid_citations=shown.invalid_citations,
        corrected_citations=shown.corrected_citations,
        uncited_sentences=shown.uncited_sentences,
        unsupported_sentences=shown.unsupported_sentences,
        timing=timing,
        sentences=shown.sentences,
        answers_question=None if verdict is None else verdict.answers,
        relevance_reason="" if verdict is None else verdict.reason,
        unanswered_parts=[] if verdict is None else list(verdict.unanswered),
    )


def cited_evidence(
    sentences: Sequence[CheckedSentence], passages: Sequence[Passage]
) -> tuple[list[str], list[str], list[str]]:
    """The evidence of the supported sentences as the verifier's judge read it (each span with the
    sentence either side, so "shortly before that summit" comes with the sentence naming the 2000
    summit), and the title/author/publisher and stance of their articles."""
    by_id = {p.id: p for p in passages}
    spans = [e for s in sentences if s.supported for e in s.evidence]
    cited = [by_id[i] for i in dict.fromkeys(e.passage_id for e in spans) if i in by_id]
    evidence = [judge_context(p, offered_sentences(p), spans) for p in cited]
    return evidence, [article_label(p) for p in cited], [p.stance for p in cited]


class AskChain:
    """Question answering over the library with validated citations."""

    def __init__(self, retriever: HybridRetriever, chat_model: BaseChatModel) -> None:
        self.retriever = retriever
        self.chat_model = chat_model
        self.settings = retriever.settings
        self._verifier: Verifier | None = None
        embeddings = retriever.library.embeddings
        self.context = ContextBuilder(
            embeddings.embed_documents, embeddings.embed_query, retriever.next_passage, self.settings.context_tokens
        )

    @property
    def verifier(self) -> Verifier:
        """The configured verifier, built on first use (``rules+llm`` loads the local model)."""
        if self._verifier is None:
            self._verifier = make_verifier(self.settings)
        return self._verifier

    @cached_property
    def relevance(self) -> RelevanceCheck | None:
        """The configured relevance check (None when switched off), built on first use."""
        return make_relevance_check(self.settings)

    def sources(self, question: str, passages: Sequence[Passage]) -> tuple[list[Passage], list[str]]:
        """The numbered sources of the prompt and the text shown of each: the chosen evidence
        sentences (``context_mode = "sentences"``) or the whole passages; never a sentence set aside at ingest."""
        if self.settings.context_mode == "passages":
            return list(passages), [offered_text(p) for p in passages]
        chosen = self.context.build(question, passages)
        return [c.passage for c in chosen], [c.shown_text() for c in chosen]

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
        # Model text: searched with and read by the checks as the premise, so normalised like a reply.
        rewritten = normalise_model_text(rewritten.splitlines()[0].strip().strip('"')) if rewritten else ""
        if not rewritten or is_decline(rewritten) or len(rewritten) > 4 * len(question) + 200:
            return f"{history[-1][0]} {question}"
        return rewritten

    @staticmethod
    def answer_messages(
        question: str, passages: Sequence[Passage], texts: Sequence[str] | None = None
    ) -> list[BaseMessage]:
        """The prompt for answering ``question`` from the numbered ``passages`` (shown as ``texts``)."""
        return [
            SystemMessage(prompts.answer_system_prompt()),
            HumanMessage(prompts.answer_user_prompt(question, passages, texts)),
        ]

    def retrieve(
        self, question: str, history: Sequence[tuple[str, str]], k: int | None, doc_ids: Sequence[str] | None
    ) -> tuple[str, str, list[Passage], Timing, float]:
        """The opening every answer mode shares: the question and history checked, the follow-up
        made standalone, passages retrieved, timed. Returns (question, standalone question,
        passages, timing so far, start time)."""
        question = validate_query(question, self.settings.max_question_chars)
        history = validate_history(history, self.settings.max_question_chars)
        timing = Timing()
        started = time.perf_counter()
        standalone = self.condense(question, history)
        timing.condense_ms = (time.perf_counter() - started) * 1000
        t0 = time.perf_counter()
        retrieved = list(self.retriever.retrieve(standalone, k, doc_ids=doc_ids))
        timing.retrieval_ms = (time.perf_counter() - t0) * 1000
        return question, standalone, retrieved, timing, started

    def stream(
        self,
        question: str,
        history: Sequence[tuple[str, str]] = (),
        *,
        k: int | None = None,
        doc_ids: Sequence[str] | None = None,
    ) -> Iterator[str | SourcesFound | QuoteFound | SentenceChecked | Answer]:
        """Yield the sources once retrieved, display-safe text pieces as they are generated, each
        sentence's verdict as it is checked, then the final ``Answer``. In quotes mode, see
        ``assistant.chains.quote_answer.stream``."""
        if self.settings.quote_answers:
            yield from quote_answer.stream(self, question, history, k=k, doc_ids=doc_ids)
            return
        question, standalone, retrieved, timing, started = self.retrieve(question, history, k, doc_ids)
        t0 = time.perf_counter()
        passages, shown = self.sources(standalone, retrieved)
        timing.retrieval_ms += (time.perf_counter() - t0) * 1000
        if not passages:
            timing.total_s = time.perf_counter() - started
            yield prompts.DECLINE
            yield finalize(question, standalone, prompts.DECLINE, [], timing)
            return

        yield SourcesFound(passages, shown)
        raw = ""
        messages = self.answer_messages(standalone, passages, shown)
        for item in stream_filtered(self.chat_model, messages, len(passages), timing):
            if isinstance(item, Generated):
                raw = item.text
            else:
                yield item
        timing.total_s = time.perf_counter() - started
        yield from iter_finalize(question, standalone, raw, passages, timing, self.verifier, self.relevance)

    def ask(self, question: str, history: Sequence[tuple[str, str]] = (), **options) -> Answer:
        """The finished answer, without streaming."""
        return final_item(self.stream(question, history, **options), Answer)
