"""Scores shared by answers and debate turns, defined so that they cannot flatter the product.

Definitions (the README's "Evaluation" section repeats them):
- **evidence holds the quote** (headline): a passage the shown answer cites contains one of
  the question's expected quotes (case, typographic quotes and spacing ignored). Gold data,
  not the product's own verifier, decides: the verifier filters what is shown, so scoring
  with it would grade the product by its own rules.
- **keyword recall**: each expected keyword is a ``|``-separated list of alternatives; a
  group counts if any alternative occurs as whole words in the shown text without citation
  markers. Questions without keywords are left out of the mean (None).
- **citation validity**: markers the model wrote (its raw output) that name a shown passage /
  all markers it wrote. Markers the checker added or re-pointed do not count.
- **citation precision**: share of cited passages that come from an expected source document.
- **cited sentence share**: sentences of the shown text carrying at least one ``[n]``.
- **declined / withheld**: *declined* means the model itself said the sources do not cover
  the question; *withheld* means the checker hid a reply none of whose sentences held up.
  Abstention is correct when an answerable question is answered (withheld is a failure) and
  an unanswerable one is declined by the model; a withheld reply to an unanswerable question
  is counted as *rescued*, not as a correct decline.
- **not an answer**: the relevance check showed the supported sentences only as "Related,
  but not an answer" (the product's own check, reported as such, never as a score of it).
- **no answer shown** (unanswerable questions) and **keyword in the answer** (answerable
  ones): the independent figures for the relevance check. No answer text shown at all
  (declined, withheld or only related facts), resp. the shown answer holds at least one
  expected keyword.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from assistant.checks.citations import normalise_markers
from assistant.core.passage import Passage
from assistant.core.text import CITATION, split_sentences, strip_markers
from eval.questions import Question, normalize_for_match


def _has_words(haystack: str, phrase: str) -> bool:
    """``phrase`` occurs in ``haystack`` as whole words (both already normalised)."""
    phrase = phrase.strip()
    return bool(phrase) and re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", haystack) is not None


def keyword_recall(text: str, keywords: list[str]) -> float | None:
    """Share of keyword groups found as whole words in ``text`` (markers removed); None without keywords."""
    if not keywords:
        return None
    haystack = normalize_for_match(strip_markers(text))
    hits = [any(_has_words(haystack, normalize_for_match(alt)) for alt in group.split("|")) for group in keywords]
    return sum(hits) / len(hits)


def evidence_holds_quote(cited: Sequence[int], passages: Sequence[Passage], quotes: Sequence[str]) -> bool | None:
    """A cited passage (1-based numbers) contains an expected quote; None when there are no quotes."""
    if not quotes:
        return None
    wanted = [normalize_for_match(q) for q in quotes]
    return any(w in normalize_for_match(passages[n - 1].text) for n in cited if 0 < n <= len(passages) for w in wanted)


def raw_citation_validity(raw: str, n_sources: int) -> float | None:
    """Valid markers the model wrote / all markers it wrote; None if it wrote none."""
    normalised, _, invalid = normalise_markers(raw, n_sources)
    valid = len(CITATION.findall(normalised))
    return valid / (valid + len(invalid)) if valid + len(invalid) else None


@dataclass(frozen=True)
class GenerationScore:
    """What answers and debate turns are scored on alike (None: does not apply, left out of means)."""

    id: str
    mode: str
    answerable: bool
    declined: bool  # the model said the sources do not cover it
    withheld: bool  # the checker hid a reply whose sentences did not hold up
    abstention_correct: bool
    rescued: bool | None  # unanswerable, the model answered anyway, the checker withheld it
    evidence_holds_quote: bool | None
    keyword_recall: float | None
    citation_validity: float | None
    citation_precision: float | None
    cited_sentence_share: float | None
    cited_expected_source: bool | None
    not_an_answer: bool
    no_answer_shown: bool | None
    keyword_in_answer: bool | None


def generation_fields(
    question: Question,
    text: str,
    raw: str,
    declined: bool,
    withheld: bool,
    cited: Sequence[int],
    passages: Sequence[Passage],
    cited_files: Sequence[str],
    not_an_answer: bool = False,
) -> dict:
    """The ``GenerationScore`` fields for shown ``text`` and the model's ``raw`` output.

    ``cited``: valid source numbers of the shown text; ``cited_files``: their file names;
    ``not_an_answer``: the relevance check showed them only as related facts.
    """
    answered = not declined and not withheld and not not_an_answer
    recall = keyword_recall(text if answered else "", question.expected_keywords)
    sentences = split_sentences(text) if answered else []
    expected = set(question.expected_sources)
    return {
        "id": question.id,
        "mode": question.mode,
        "answerable": question.answerable,
        "declined": declined,
        "withheld": withheld,
        "abstention_correct": answered if question.answerable else declined,
        "rescued": None if question.answerable else withheld,
        "evidence_holds_quote": evidence_holds_quote(cited if answered else [], passages, question.expected_quotes)
        if question.answerable
        else None,
        "keyword_recall": (keyword_recall(text if answered else "", question.expected_keywords))
        if question.answerable
        else None,
        "citation_validity": raw_citation_validity(raw, len(passages)),
        "citation_precision": sum(f in expected for f in cited_files) / len(cited_files)
        if answered and cited_files and expected
        else None,
        "cited_sentence_share": sum(bool(CITATION.search(s)) for s in sentences) / len(sentences) if sentences else None,
        "cited_expected_source": any(name in expected for name in cited_files) if question.answerable else None,
        "not_an_answer": not_an_answer,
        "no_answer_shown": None if question.answerable else not answered,
        "keyword_in_answer": None if not question.answerable or recall is None else recall > 0,
    }


def mean(values: Iterable[float | bool | None]) -> float | None:
    """Mean of the values that exist; None when there are none (shown as an empty cell)."""
    present = [float(v) for v in values if v is not None]
    return statistics.fmean(present) if present else None
