"""The one normaliser for model text (``assistant.checks.model_text``): each rule both ways, on sentences of
the third-party corpora read at run time, and through the checks a correct answer passes.

The sentences of ``../shared/corpus_more`` (and the seed ``../shared/corpus``) are read when the
tests run, never copied here: a model artefact is put into a real sentence ("U.S." -> "U. S."),
and the normaliser must give the sentence back exactly; every clean sentence must come through
unchanged. The made-up strings below are our own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.chains.cards import Candidate, assemble_cards
from assistant.checks.citations import StreamingCitationFilter, normalise_markers
from assistant.checks.grounding import check_grounding
from assistant.checks.model_text import (
    AbbreviationStop, DottedAbbreviation, HeadingFragment, LeadingMarker, RepeatedSentence, SourceHeader, SpacedDecimal,
    StreamingModelText, ThousandsSeparator, normalise_model_text, normalise_spacing,
)
from assistant.core.passage import Passage
from assistant.core.prompts import header_labels, source_label
from assistant.chains.qa import AskChain
from assistant.retrieval.retrieval import HybridRetriever
from assistant.chains.streaming import Generated, stream_filtered
from assistant.models.timing import Timing
from assistant.core.text import sentence_spans, split_sentences
from assistant.core.lexicon import NEGATIONS
from tests.conftest import shared_dir
from tests.fakes import ScriptedChatModel

# --- the corpora, read at run time ---------------------------------------------------------


@dataclass(frozen=True)
class CorpusSentence:
    """A sentence of a third-party article, with its paragraph (line) as a passage under its article's title."""

    text: str
    passage: Passage


@cache
def _manifest(folder: str) -> dict[str, dict]:
    path = shared_dir() / folder / "manifest.json"
    return {entry["file"]: entry for entry in json.loads(path.read_text())} if path.exists() else {}


@cache
def corpus_sentences(folders: tuple[str, ...] = ("corpus_more", "corpus")) -> tuple[CorpusSentence, ...]:
    """Every sentence of the shared corpora, each with its paragraph as a passage under its article's title."""
    found = []
    for folder in folders:
        for path in sorted((shared_dir() / folder).glob("*.txt")):
            meta = _manifest(folder).get(path.name, {})
            for index, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
                if not line.strip():
                    continue
                passage = Passage(f"{path.stem}-{index:04d}", path.stem, index, line, 0, len(line),
                                  title=meta.get("title") or path.stem, author=meta.get("author"))  # fmt: skip
                found.extend(CorpusSentence(s, passage) for s in split_sentences(line))
    return tuple(found)


needs_corpus = pytest.mark.skipif(not (shared_dir() / "corpus_more").is_dir(), reason="../shared/corpus_more not found")

# The model's artefacts, put into real sentences (a sentence with nothing an artefact applies to comes back as it is).
MONTH_ABBREVIATIONS = "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
ARTEFACTS: dict[str, Callable[[str], str]] = {
    "thousands separator": lambda s: re.sub(r"(?<![\d.])(\d{1,3}),(?=\d{3}(?!\d))", r"\1, ", s),
    "dotted abbreviation": lambda s: re.sub(r"\b[UDE]\.(?=[A-Z]\.)|\b[ei]\.(?=[eg]\.)", lambda m: m.group(0) + " ", s),
    "decimal": lambda s: re.sub(r"(?<![\d.])(\d{1,3})\.(?=\d)", r"\1. ", s),
    "month abbreviation": lambda s: re.sub(rf"\b({MONTH_ABBREVIATIONS})\.(?= \d)", r"\1 .", s),
}


def _with_artefacts() -> list[tuple[str, str, CorpusSentence]]:
    """(artefact, sentence with it, original) for every corpus sentence an artefact applies to."""
    cases = []
    for sentence in corpus_sentences():
        for name, apply in ARTEFACTS.items():
            spaced = apply(sentence.text)
            if spaced != sentence.text:
                cases.append((name, spaced, sentence))
    return cases


def _cited(sentence: str, number: int = 1) -> str:
    """``sentence`` as the model cites it: "... [1]." """
    return f"{sentence.rstrip('.')} [{number}]."


# --- each rule, both ways (our own strings) ---------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "text", "expected"),
    [
        (ThousandsSeparator(), "About 16, 000 people", "About 16,000 people"),
        (ThousandsSeparator(), "$1, 250, 000 in aid", "$1,250,000 in aid"),
        (ThousandsSeparator(), "between 16, 500 and 17, 000", "between 16,500 and 17,000"),
        (ThousandsSeparator(), "some 2, 300 families", "some 2,300 families"),
        (ThousandsSeparator(), "5, 050 tonnes", "5,050 tonnes"),
        (DottedAbbreviation(), "the U. S. and the U. N. met in D. C.", "the U.S. and the U.N. met in D.C."),
        (DottedAbbreviation(), "allies, e. g. Japan, i. e. friends", "allies, e.g. Japan, i.e. friends"),
        (DottedAbbreviation(), "U. S.-ROK drills and the U. S. A.", "U.S.-ROK drills and the U.S.A."),
        (SpacedDecimal(), "it rose 3. 5 percent", "it rose 3.5 percent"),
        (SpacedDecimal(), "about US$1. 7 billion", "about US$1.7 billion"),
        (SpacedDecimal(), "a 0. 5% rise", "a 0.5% rise"),
        (AbbreviationStop(), "on Jan . 15, 2024", "on Jan. 15, 2024"),
        (AbbreviationStop(), "the No . 2 official met Dr . Lee", "the No. 2 official met Dr. Lee"),
    ],
)
def test_each_spacing_rule_rejoins_its_artefact(rule, text: str, expected: str) -> None:
    assert rule.apply(text) == expected
    assert normalise_model_text(text) == expected
    assert normalise_model_text(expected) == expected


@pytest.mark.parametrize(
    "text",
    [
        "In 2006, 200 people marched.",  # a year, then a count
        "On March 5, 200 people marched.",  # a day of a month, then a count
        "On Jan. 5, 300 people marched.",
        "Items 1, 2, 3 and 4 were agreed.",  # a list
        "Scores of 85, 100 and 120 were given.",  # list items with three digits
        "Votes of 100, 200, 30 were cast.",
        "He wrote 1,000, then 2,000 words.",  # already written right
        "In '98, 300 people left.",
        "J. R. R. Tolkien wrote it.",  # initials of a name, as its article writes them
        "It was Plan B. A. Smith said so.",
        "He was born in 1924. 5 years later he moved.",  # a sentence ending in a number, no unit after
        "Chapter 3. 5 stars were given.",
        "The mar . on it",  # not an abbreviation
        "Kim died in 2009 [1]. Kim was 85 [1].",
    ],
)
def test_the_spacing_rules_leave_what_is_not_their_artefact(text: str) -> None:
    assert normalise_model_text(text) == text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # SourceHeader: every form the prompt's header is copied in; its marker stays with the sentence.
        ("From (Why Talks Work, by Mira Castell): Talks worked [1].", "Talks worked [1]."),
        ("From (Why Talks Work, by Mira Castell) [1] Talks worked.", "[1] Talks worked."),
        ("From [1], Why Talks Work, by Mira Castell: Talks worked [1].", "Talks worked [1]."),
        ("From [1], Why Talks Work: Talks worked [1].", "Talks worked [1]."),
        ("Aid came [2]. From (Why Talks Work, by Mira Castell): Talks worked [1].", "Aid came [2]. Talks worked [1]."),
        # HeadingFragment: a heading as a sentence, or as a prefix.
        ("Abstract [1]. Talks worked [1].", "Talks worked [1]."),
        ("Summary: Talks worked [1].", "Talks worked [1]."),
        ("Abstract [1]: Talks worked.", "[1] Talks worked."),
        # LeadingMarker: the "[n] sentence" layout on a sentence that also ends cited.
        ("[1] Talks worked [1]. [2] Aid came [2].", "Talks worked [1]. Aid came [2]."),
        ("[2] Talks worked [1].", "Talks worked [1]."),
        # RepeatedSentence: once, with every citation.
        ("Talks worked [1]. Talks worked [1]. Talks worked [1].", "Talks worked [1]."),
        ("Talks worked [1]. Talks worked [2].", "Talks worked [1][2]."),
        ("[1] Talks worked [1]. [1] Talks worked [1].", "Talks worked [1]."),
    ],
)
def test_copied_prompt_layout_is_dropped(raw: str, expected: str) -> None:
    labels = ["Why Talks Work, by Mira Castell", "Why Talks Work"]
    assert normalise_model_text(raw, labels) == expected
    assert normalise_model_text(expected, labels) == expected


@pytest.mark.parametrize(
    "text",
    [
        "From Why Talks Work, we learn that talks worked [1].",  # a title opens a sentence, no header punctuation
        "Aid came from (mostly) China [1].",
        "[1] Talks worked. [2] Aid came.",  # only opening markers: markers_after_sentences' case
        "Talks worked. [1] Aid came [1].",  # after an uncited sentence the marker may be its
        "Abstract thinking helped [1].",
        "Background checks were required [1].",
        "Talks worked [1]. Aid came [1]. Talks worked [1].",  # repeated, but not in a row
        "Yes [1]. Talks worked [1].",
    ],
)
def test_the_layout_rules_leave_prose_alone(text: str) -> None:
    assert normalise_model_text(text, ["Why Talks Work, by Mira Castell", "Why Talks Work"]) == text


def test_each_rule_is_a_named_documented_class() -> None:
    for rule in (ThousandsSeparator, DottedAbbreviation, SpacedDecimal, AbbreviationStop, SourceHeader, HeadingFragment,
                 LeadingMarker, RepeatedSentence):  # fmt: skip
        assert rule.__doc__ and len(rule.__doc__.split()) >= 12, rule.__name__


# --- on the third-party corpora ----------------------------------------------------------------


@needs_corpus
def test_a_corpus_sentence_with_the_models_spacing_is_given_back_exactly() -> None:
    cases = _with_artefacts()
    assert len(cases) >= 10
    assert {name for name, _, _ in cases} >= {"dotted abbreviation", "decimal", "month abbreviation"}
    for name, spaced, sentence in cases:
        assert normalise_model_text(spaced) == sentence.text, name


@needs_corpus
def test_every_clean_corpus_sentence_and_paragraph_comes_through_unchanged() -> None:
    sentences = corpus_sentences()
    assert len(sentences) > 100
    for sentence in sentences:
        labels = header_labels([sentence.passage])
        assert normalise_model_text(sentence.text, labels) == sentence.text
        cited = _cited(sentence.text)
        assert normalise_model_text(cited, labels) == cited
    for paragraph in {s.passage.text.strip() for s in sentences}:
        assert normalise_model_text(paragraph) == paragraph


# --- the stream ---------------------------------------------------------------------------------

_PIECES = st.sampled_from([
    "16", ",", ", ", "000", "500", " ", "and ", "or ", "17", "U", ". ", "S", ".", "N", "e", "g", "3", "5", " percent",
    "%", " million", "Jan", " .", " 15", "March ", "No", "In 2006", "[1]", "[2]", "[9]", "[", "]", "\n", "people",
    "'98",
])  # fmt: skip
_stream_text = st.lists(st.one_of(_PIECES, st.text(max_size=6)), max_size=40).map("".join)


def _shown(text: str, n_sources: int, cuts: list[int]) -> str:
    """``text`` streamed in pieces cut at ``cuts`` through both filters, as ``stream_filtered`` runs them."""
    bounds = sorted({0, len(text), *(c for c in cuts if c < len(text))})
    markers, spacing = StreamingCitationFilter(n_sources), StreamingModelText()
    shown = "".join(spacing.feed(markers.feed(text[a:b])) for a, b in zip(bounds, bounds[1:]))
    return shown + spacing.feed(markers.finish()) + spacing.finish()


@settings(max_examples=400, deadline=None)
@given(text=_stream_text, n_sources=st.integers(0, 3), cuts=st.lists(st.integers(0, 300), max_size=12))
def test_a_stream_cut_anywhere_shows_the_spacing_the_whole_reply_gets(
    text: str, n_sources: int, cuts: list[int]
) -> None:
    whole = normalise_spacing(normalise_markers(text, n_sources)[0])
    assert " ".join(_shown(text, n_sources, cuts).split()) == " ".join(whole.split())


@settings(max_examples=300, deadline=None)
@given(text=_stream_text)
def test_normalising_model_text_is_idempotent(text: str) -> None:
    once = normalise_model_text(text, ["Why Talks Work"])
    assert normalise_model_text(once, ["Why Talks Work"]) == once


# --- through the checks: a correct answer with an artefact is not withdrawn, and shows clean -------


@needs_corpus
def test_a_corpus_sentence_with_a_spacing_artefact_passes_the_checks_and_is_shown_as_written() -> None:
    cases = _with_artefacts()
    # The corpora have no thousands separator: that class is checked on our own sentences below.
    assert {name for name, _, _ in cases} >= {"dotted abbreviation", "decimal", "month abbreviation"}
    for name, spaced, sentence in cases:
        checked = check_grounding(_cited(spaced), [sentence.passage])
        assert checked.grounded, (name, [(s.text, s.reason) for s in checked.sentences])
        assert checked.text == _cited(sentence.text), name


@pytest.mark.parametrize(
    ("evidence", "answer"),
    [
        ("About 16,000 troops left the border towns in 2004.", "About 16, 000 troops left the border towns in 2004."),
        ("The fund paid 1,250,000 dollars to 300 families.", "The fund paid 1, 250, 000 dollars to 300 families."),
        ("Between 16,500 and 17,000 people marched.", "Between 16, 500 and 17, 000 people marched."),
    ],
)
def test_a_thousands_separator_split_by_a_space_is_no_reason_to_withdraw(evidence: str, answer: str) -> None:
    """The number rule: "16, 000" read as 16 and 0 was "number '16' is not in the evidence"."""
    passage = Passage("own-0", "own", 0, evidence, 0, len(evidence), title="Own", author="Us")
    checked = check_grounding(_cited(answer), [passage])
    assert checked.grounded, [(s.text, s.reason) for s in checked.sentences]
    assert checked.text == _cited(evidence)


@needs_corpus
def test_a_copied_source_header_lends_its_title_no_negation() -> None:
    """The polarity rule: a header copied as "From [1], <title, by author>: <sentence> [1]." glued
    its title's "don't" (or any negation) to a faithful sentence: "negation or doubt in the sentence only"."""

    def negated(text: str) -> bool:
        return any(w.lower().strip("'’") in NEGATIONS or w.lower().endswith(("n't", "n’t")) for w in text.split())

    cases = [
        s for s in corpus_sentences(("corpus_more",))
        if negated(s.passage.title) and not negated(s.text)
        and check_grounding(_cited(s.text), [s.passage]).grounded  # passes as it is written
    ]
    assert cases, "a corpus_more title with a negation"
    for sentence in cases:
        for header in (f"From [1], {source_label(sentence.passage)}:", f"From ({source_label(sentence.passage)}) [1]"):
            checked = check_grounding(f"{header} {_cited(sentence.text)}", [sentence.passage])
            assert checked.grounded, (header, [(s.text, s.reason) for s in checked.sentences])
            assert checked.text == _cited(sentence.text)


@needs_corpus
def test_copied_prompt_layout_is_not_shown_leading_markers_headings_and_repeats() -> None:
    """A reply that copies the prompt's "[n] sentence" layout, a heading line and a sentence twice is
    shown as the sentence once, cited once; nothing of the layout is checked or listed as withdrawn."""
    sentences = [s for s in corpus_sentences(("corpus_more",)) if len(s.text.split()) >= 8][:12]
    for sentence in sentences:
        raw = f"Abstract [1]. [1] {_cited(sentence.text)} [1] {_cited(sentence.text)}"
        checked = check_grounding(raw, [sentence.passage])
        assert checked.text == _cited(sentence.text), raw
        assert [s.text for s in checked.sentences] == [_cited(sentence.text)]


OWN_QUOTE = "The North received about US$1.7 billion in aid from the U.S. before the first summit."


def test_a_card_tag_with_a_spacing_artefact_is_kept_and_shown_clean() -> None:
    """The tag check: "US$1. 7 billion" read as the numbers 1 and 7 failed the tag; the card fell back to the quote."""
    passage = Passage("own-0", "own", 0, OWN_QUOTE, 0, len(OWN_QUOTE), title="Own", author="Us")
    candidates = [Candidate(1, passage, s) for s in sentence_spans(OWN_QUOTE)]
    reply = {"cards": [{"id": 1, "tag": "The U. S. saw the North receive US$1. 7 billion in aid"}]}
    [card] = assemble_cards("advocate", reply, candidates, 1, 1, set())
    assert card.tag_from == "model", card.tag_note
    assert card.tag == "The U.S. saw the North receive US$1.7 billion in aid"


def test_the_streamed_preview_shows_the_rejoined_spacing() -> None:
    """What streams is what the whole reply's check shows: "16,000", "U.S.", not the model's spacing."""
    reply = "About 16, 000 troops left the U. S. base on Jan . 15, a rise of 3. 5 percent [1]."
    model = ScriptedChatModel(rule=lambda messages: reply, calls=[])
    pieces = list(stream_filtered(model, [], 1, Timing()))
    shown = "".join(p for p in pieces if isinstance(p, str))
    assert isinstance(pieces[-1], Generated) and pieces[-1].raw == reply
    assert shown == "About 16,000 troops left the U.S. base on Jan. 15, a rise of 3.5 percent [1]."


def test_a_follow_up_the_model_rewrites_is_normalised_before_it_is_searched_and_checked(library) -> None:
    """The condensed question is model text too: it is searched with, and the checks read it as the premise."""
    model = ScriptedChatModel(rule=lambda messages: "How many of the 16, 000 U. S. troops left?", calls=[])
    chain = AskChain(HybridRetriever(library), model)
    condensed = chain.condense("How many left?", [("Who left?", "Troops left [1].")])
    assert condensed == "How many of the 16,000 U.S. troops left?"
