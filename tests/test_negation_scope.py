"""Negation is judged in the clause that carries the claim (issue 27, failure class 2).

A faithful reply was withdrawn as "negation or doubt in the evidence only" when the negation
belonged to a neighbouring clause of the evidence sentence. The cases are built at run time from
the sentences of ``../shared/corpus_more`` (nothing of them is copied here): every sentence whose
negation sits in one clause and whose later clause carries a claim of its own.
"""

from __future__ import annotations

import pytest

from assistant.core.lexicon import clauses, is_content_word, negation_cues
from assistant.core.passage import Passage
from assistant.checks.verify import Verifier, words
from tests.test_model_text import corpus_sentences, needs_corpus

DENIED = "negation or doubt in the evidence only"


def _claim(clause: str) -> str:
    """A clause as a claim of its own: its first letter capitalised, a full stop at the end."""
    text = " ".join(clause.split()).rstrip(".,;:")
    return text[:1].upper() + text[1:] + "."


def _cases() -> list[tuple[str, str, Passage]]:
    """(claim, negated clause, passage): a later clause, with no cue and four content words or more,
    of a sentence whose earlier clause has a negation cue."""
    found = []
    for sentence in corpus_sentences(("corpus_more",)):
        parts = clauses(sentence.text)
        negated = [i for i, part in enumerate(parts) if negation_cues(words(part), part)]
        for i, part in enumerate(parts):
            content = [w for w in words(part) if is_content_word(w)]
            if negated and negated[0] < i and not negation_cues(words(part), part) and len(content) >= 4:
                found.append((_claim(part), parts[negated[0]], sentence.passage))
    return found


@needs_corpus
def test_a_negation_in_a_neighbouring_clause_does_not_withdraw_the_clause_that_carries_the_claim() -> None:
    cases = _cases()
    files = {passage.doc_id for _, _, passage in cases}
    assert len(cases) >= 3 and len(files) >= 2, cases  # the class, across articles
    verifier = Verifier()
    denied = [(claim, verifier.rules(claim, [passage]).reason) for claim, _, passage in cases]
    assert [d for d in denied if d[1] == DENIED] == []


@needs_corpus
def test_the_negated_clause_itself_is_still_denied_without_its_cue() -> None:
    """The check can fail: the clause that holds the cue, stated without it, is refused."""
    verifier = Verifier()
    refused = 0
    for _, clause, passage in _cases():
        ws = words(clause)
        cues = {ws[i].surface for i in negation_cues(ws, clause)}
        affirmed = " ".join(w for w in clause.split() if w.strip(".,;:") not in cues)
        if len([w for w in words(affirmed) if is_content_word(w)]) >= 3:
            refused += verifier.rules(_claim(affirmed), [passage]).reason == DENIED
    assert refused >= 2


@pytest.mark.parametrize(
    ("evidence", "claim"),
    [
        ("Kim met the No. 2 official of the party in May.", "Kim met a senior official of the party in May."),
        ("The No 10 team signed the deal in May.", "The team signed the deal in May."),
    ],
)
def test_no_before_a_number_is_the_abbreviation_not_a_negation(evidence: str, claim: str) -> None:
    passage = Passage("a-0", "a", 0, evidence, 0, len(evidence), title="A report")
    assert Verifier().rules(claim, [passage]).reason != DENIED
