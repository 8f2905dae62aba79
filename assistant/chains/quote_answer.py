"""Quote-first answers (``answer_mode = "quotes"``, issue 27): the model picks sentences, code quotes them.

A free-prose answer is policed after the fact by lexical rules, and each rule fitted to one
question breaks an unseen one. Here the model sees numbered evidence sentences and returns,
under a JSON schema (a llama.cpp grammar; ``response_format`` for an OpenAI-compatible server,
as the debate's cards do: ``structured.stream_structured``), the ids of 1-3 sentences that answer
and a short answer. The quotes are spans of their passages, so exact by construction, and
only the short answer is the model's own text: it is normalised and checked against the chosen
quotes alone (the ``Verifier``, its judge included when configured, asked whether it is a correct
answer to the question: ``yes_no.answer_question``). The model's ids are weaker than its words: a
short answer its picks do not hold is checked against the sentence that does
(``sentence_holding``). What the user sees:

- the short answer, then each quote verbatim with its ``[n]``;
- the decline when no sentence answers, when its quotes do not hold the short answer, or when it
  does not answer the question (the relevance check), with the chosen quotes as "Related, but not an answer".

The result is the same ``Answer`` as free mode's, so the API, the CLI and the UI keep working.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, cast

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from assistant.core.lexicon import is_content_word
from assistant.core import prompts
from assistant.core.text import clean_user_text
from assistant.chains.ask_events import Answer, EvidenceSentence, QuoteFound, SourcesFound
from assistant.models.structured import StructuredReply, stream_structured
from assistant.checks.grounding import CheckedSentence
from assistant.checks.model_text import normalise_model_text
from assistant.core.passage import NumberedPassage, Passage, offered_sentences, offered_text
from assistant.checks.relevance import (
    RESTATES_QUESTION, Relevance, RelevanceCheck, partial_text, related_text, restates_question,
)
from assistant.models.timing import Timing
from assistant.core.text import Sentence, words
from assistant.checks.verify import NO_ANSWER, Verdict, Verifier, article_label

if TYPE_CHECKING:
    from assistant.chains.qa import AskChain

MAX_QUOTES = 3
# What the grammar lets the short answer be: plain characters only (no quotation mark or brace,
# so the reply being written can be read as it grows), at most ~200 characters.
ANSWER_PATTERN = r"^[A-Za-z0-9 ,.;:'%$()/?!&+-]{0,200}$"
# The reply is ~3 ids and ~200 characters: ~90 tokens.
QUOTES_MAX_TOKENS = 160
QUOTE_STAGE = "quote"  # a quote is its own evidence: exact by construction, not checked


def evidence_sentences(
    passages: Sequence[Passage], chosen: Sequence[Sequence[Sentence]] | None = None
) -> list[EvidenceSentence]:
    """Every offered sentence of the numbered ``passages`` (or the ``chosen`` ones of each), numbered
    1..N across all of them in prompt order."""
    out: list[EvidenceSentence] = []
    for number, passage in enumerate(passages, start=1):
        sentences = chosen[number - 1] if chosen is not None else offered_sentences(passage)
        for sentence in sorted(sentences, key=lambda s: s.start):
            out.append(EvidenceSentence(len(out) + 1, number, passage, sentence))
    return out


def quotes_schema(n_sentences: int) -> dict:
    """The reply: up to ``MAX_QUOTES`` distinct offered ids (an id outside 1..N cannot be written), then the answer."""
    ids = {"type": "integer", "enum": list(range(1, n_sentences + 1))}
    quotes = {"type": "array", "items": ids, "minItems": 0, "maxItems": MAX_QUOTES}
    answer = {"type": "string", "pattern": ANSWER_PATTERN}
    return {"type": "object", "properties": {"quotes": quotes, "answer": answer}, "required": ["quotes", "answer"]}


def quotes_messages(question: str, sentences: Sequence[EvidenceSentence]) -> list[BaseMessage]:
    """The fixed system message first (prefix cache), then the numbered sentences under one header per document."""
    lines: list[str] = []
    previous = None
    for s in sentences:
        label = prompts.source_label(s.passage)
        if label != previous:
            lines.append(f"{chr(10) if lines else ''}{prompts.SOURCE_HEADER.format(label=label)}")
            previous = label
        lines.append(f"[{s.id}] {prompts.source_line(s.quote)}")
    user = prompts.QUOTES_USER.format(sentences="\n".join(lines), question=clean_user_text(question))
    return [SystemMessage(prompts.QUOTES_SYSTEM), HumanMessage(user)]


_QUOTE_IDS = re.compile(r'"quotes"\s*:\s*\[([^\]]*)(\]?)')
_ANSWER_SO_FAR = re.compile(r'"answer"\s*:\s*"([^"\\]*)')


def finished_ids(partial: str) -> list[int]:
    """The quote ids a reply being written has completed so far (an id is complete once a ``,`` or ``]`` follows)."""
    match = _QUOTE_IDS.search(partial)
    if not match:
        return []
    pieces = match.group(1).split(",")
    complete = pieces if match.group(2) else pieces[:-1]
    return [int(p) for p in (p.strip() for p in complete) if p.isdigit()]


def answer_so_far(partial: str) -> str:
    """The short answer as written so far ("" before it starts)."""
    match = _ANSWER_SO_FAR.search(partial)
    return match.group(1) if match else ""


def picked(ids: Sequence[object], sentences: Sequence[EvidenceSentence]) -> tuple[list[EvidenceSentence], list[str]]:
    """The valid picks (offered ids, each once, at most ``MAX_QUOTES``) and the refused ones as written."""
    chosen: list[EvidenceSentence] = []
    refused: list[str] = []
    for value in ids:
        valid = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= len(sentences)
        if not valid:
            refused.append(str(value))
        elif sentences[cast(int, value) - 1] not in chosen and len(chosen) < MAX_QUOTES:  # valid: an int
            chosen.append(sentences[cast(int, value) - 1])
    return chosen, refused


def check_short_answer(verifier: Verifier, short: str, quotes: Sequence[EvidenceSentence], question: str) -> Verdict:
    """Does the short answer follow from its quotes? The verifier reads the chosen quotes only
    (joined as one passage that carries the title, author and publisher of every quoted article:
    an answer may name the article it quotes), with the question as the premise."""
    if not short or not quotes:
        return Verdict(False, "no short answer", rule=NO_ANSWER)
    joined = " ".join(q.quote for q in quotes)
    labels = " ".join(dict.fromkeys(article_label(q.passage) for q in quotes))
    only_quotes = replace(quotes[0].passage, text=joined, start=0, end=len(joined), set_aside=(), lead_in="",
                          title=labels, author="", publisher="")  # fmt: skip
    return verifier.verify(short, [only_quotes], given=question, as_answer=True)


def sentence_holding(short: str, sentences: Sequence[EvidenceSentence],
                     picks: Sequence[EvidenceSentence]) -> EvidenceSentence | None:  # fmt: skip
    """The offered sentence that holds the short answer, for a short answer its picks do not hold.

    The 1.5B model often writes the right short answer and picks the id of a neighbouring
    sentence, a byline or the document's title ("October 2006" with a sentence about Kim's
    legacy; "May 16, 2023" with the op-ed's byline, beside the line with the date). Ids are a
    weak signal; the answer's own words are a strong one. The sentence must hold every number of
    the short answer and at least half of its content words (stems); among those, the most
    content words win, then the sentence nearest a pick in the prompt. None when no sentence
    qualifies or the best is already picked; the verifier still decides whether it holds the
    answer, and relevance whether it answers the question.
    """
    ws = words(short)
    numbers = {w.number for w in ws if w.number is not None}
    terms = {w.stem for w in ws if is_content_word(w)}
    if not numbers and not terms:
        return None
    needed = (len(terms) + 1) // 2
    best: tuple[tuple[int, int], EvidenceSentence] | None = None
    for s in sentences:
        sw = words(s.quote)
        if not numbers <= {w.number for w in sw if w.number is not None}:
            continue
        held = len(terms & {w.stem for w in sw})
        if held < needed or (not numbers and not held):
            continue
        distance = min((abs(s.id - p.id) for p in picks), default=0)
        rank = (held, -distance)
        if best is None or rank > best[0]:
            best = (rank, s)
    if best is None or best[1] in picks:
        return None
    return best[1]


def stream(chain: AskChain, question: str, history: Sequence[tuple[str, str]] = (), *, k: int | None = None,
           doc_ids: Sequence[str] | None = None) -> Iterator[str | SourcesFound | QuoteFound | Answer]:  # fmt: skip
    """``AskChain.stream`` in quotes mode: the sources, each ``QuoteFound`` as its id completes, the
    short answer's words as ``str`` pieces, then the final ``Answer``."""

    question, standalone, retrieved, timing, started = chain.retrieve(question, history, k, doc_ids)
    t0 = time.perf_counter()
    if chain.settings.context_mode == "passages":
        passages, sentences = list(retrieved), evidence_sentences(retrieved)
        shown = [offered_text(p) for p in passages]
    else:
        built = chain.context.build(standalone, retrieved)
        passages, shown = [c.passage for c in built], [c.shown_text() for c in built]
        sentences = evidence_sentences(passages, [c.sentences for c in built])
    timing.retrieval_ms += (time.perf_counter() - t0) * 1000
    if not sentences:
        timing.total_s = time.perf_counter() - started
        yield prompts.DECLINE
        yield Answer(question, standalone, prompts.DECLINE, prompts.DECLINE, True, [], timing=timing)
        return
    yield SourcesFound(passages, shown)

    reply: StructuredReply | None = None
    announced = 0
    written = ""
    messages = quotes_messages(standalone, sentences)
    for item in stream_structured(chain.chat_model, messages, quotes_schema(len(sentences)), QUOTES_MAX_TOKENS):
        if isinstance(item, StructuredReply):
            reply = item
            break
        chosen, _ = picked(finished_ids(item), sentences)
        for quote in chosen[announced:]:
            yield QuoteFound(announced, quote)
            announced += 1
        so_far = answer_so_far(item)
        if len(so_far) > len(written):
            yield so_far[len(written) :]
            written = so_far
    assert reply is not None
    timing.first_token_ms = reply.timing.first_token_ms
    timing.generation_s = reply.timing.generation_s
    timing.prompt_tokens, timing.output_tokens = reply.timing.prompt_tokens, reply.timing.output_tokens
    timing.reused_prompt_tokens = reply.timing.reused_prompt_tokens
    yield finish(chain, question, standalone, reply, passages, sentences, timing, started)


def answers_question(relevance: RelevanceCheck | None, question: str, short: str,
                     quotes: Sequence[EvidenceSentence]) -> Relevance | None:  # fmt: skip
    """The relevance check on the short answer and its quotes (a number the short answer gives is
    "of grain" in its quote), after the one rule that reads the short answer alone: it must say
    more than the question's own words. None: nothing to check, or the check is switched off."""
    if not quotes or not short or relevance is None:
        return None
    if restates_question(question, short):
        return Relevance(False, RESTATES_QUESTION)
    articles = list({q.passage.id: q.passage for q in quotes}.values())
    shown = f"{short} {' '.join(q.quote for q in quotes)}"
    return relevance.check(question, shown, [q.quote for q in quotes], [article_label(p) for p in articles],
                           [p.stance for p in articles])  # fmt: skip


def finish(chain: AskChain, question: str, standalone: str, reply: StructuredReply, passages: Sequence[Passage],
           sentences: Sequence[EvidenceSentence], timing: Timing, started: float) -> Answer:  # fmt: skip
    """The ``Answer`` from the whole reply: picks validated, the short answer checked against them,
    relevance asked of the short answer and its quotes. A short answer its picks do not hold is
    checked once more against the offered sentence that holds its words (``sentence_holding``),
    which then replaces the picks.

    Shown: the short answer and its quotes when both checks pass; otherwise the decline, with the
    quotes the model chose under "Related, but not an answer" (a failed short answer says nothing
    about whether its quotes answer: the model often picks a neighbouring sentence or a byline)."""

    parsed = reply.parsed or {}
    ids = cast("list[object]", parsed.get("quotes")) if isinstance(parsed.get("quotes"), list) else []
    quotes, refused = picked(ids, sentences)
    short = normalise_model_text(" ".join(str(parsed.get("answer") or "").split()), prompts.header_labels(passages))
    checked_at = time.perf_counter()
    verdict = check_short_answer(chain.verifier, short, quotes, standalone) if short and quotes else None
    holding = sentence_holding(short, sentences, quotes) if short and not (verdict and verdict.supported) else None
    if holding is not None:  # the model's ids missed the sentence its answer comes from: check against that one
        anchored = check_short_answer(chain.verifier, short, [holding], standalone)
        if anchored.supported:
            quotes, verdict = [holding], anchored
    shown_short = verdict is not None and verdict.supported
    relevant = answers_question(chain.relevance, standalone, short, quotes) if shown_short else None
    answered = shown_short and (relevant is None or relevant.answers)
    # One supported entry per evidence span (the UI highlights each once): the short answer with all
    # its quotes when it passed; otherwise each quote on its own, after the failed answer if any.
    checks = []
    if short and verdict is not None:
        checks.append(CheckedSentence(short, verdict.supported, verdict.reason, tuple(q.span() for q in quotes),
                                      verdict.stage))  # fmt: skip
    if not shown_short:
        checks += [CheckedSentence(q.line(), True, "", (q.span(),), QUOTE_STAGE) for q in quotes]
    block = "\n".join(q.line() for q in quotes)
    if answered:
        text = partial_text(f"{short}\n\n{block}", relevant.unanswered if relevant else ())
    else:
        text = related_text(prompts.DECLINE, block)
    timing.verify_ms = (time.perf_counter() - checked_at) * 1000
    timing.total_s = time.perf_counter() - started
    numbers = sorted({q.number for q in quotes})
    return Answer(
        question=question, standalone_question=standalone, text=text, raw_text=reply.raw, declined=not answered,
        passages=list(passages), citations=[NumberedPassage(n, passages[n - 1]) for n in numbers],
        invalid_citations=refused, unsupported_sentences=[short] if short and not shown_short else [],
        timing=timing, sentences=checks, answers_question=None if relevant is None else relevant.answers,
        relevance_reason="" if relevant is None else relevant.reason,
        unanswered_parts=[] if relevant is None else list(relevant.unanswered),
        answer=short if answered else "", quotes=[q.as_dict() for q in quotes],
    )  # fmt: skip
