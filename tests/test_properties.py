"""Property tests (hypothesis) for the two parsers everything else trusts: citations and splitting.

test_citations.py pins named cases and checks marker ranges on a small alphabet; test_split.py
checks offsets on a small alphabet. Here the inputs are arbitrary Unicode text with marker-like
noise spliced in, and the properties are the contracts other modules rely on:
- citations: validation never raises; every marker left names a shown source; ``cited`` lists
  exactly the markers left, in order of first use; normalising twice changes nothing more; a
  token stream cut anywhere shows the same text as the whole reply validated at once.
- splitting: each passage is the exact slice ``text[start:end]``; passages come in document
  order, cover every non-space character, and fit the embedding window.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from assistant.checks.citations import StreamingCitationFilter, normalise_markers, split_sentences
from tests.fakes import validate
from assistant.storage.embeddings import load_tokenizer
from assistant.core.settings import Settings
from ingest.split import PassageSplitter

_MARKER_LIKE = st.sampled_from([
    "[", "]", "[[", "]]", "[1]", "[2]", "[3]", "[0]", "[-1]", "[01]", "[99]", "[12345678901234567890]",
    "[1,2]", "[1, 2; 3]", "[1-3]", "[3-1]", "[1–2]", "[1-100000]", "[[2]]", "[[2]", "[2]]", "[]", "[ ]",
    "[Source 2]", "[source 9]", "[Sources 1 and 2]", "[ref. 3]", "[#2]", "[sic]", "[the US]", "[1a]",
    "[2 and more]", "[١]", "[²]", "[\n1]", " [1] .", " ,", ". ", "! ", "? ", "\n", "\n\n", " ", "\t",
    "U. S. ", "Dr. Lee [1]. ", '"Quoted [2]." ', "(see [1]) ",
])  # fmt: skip
_text = st.lists(st.one_of(st.text(max_size=15), _MARKER_LIKE), max_size=30).map("".join)
_n_sources = st.integers(min_value=0, max_value=12)


def _markers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\[(\d+)\]", text)]


@settings(max_examples=400, deadline=None)
@given(text=_text, n_sources=_n_sources)
@example(text="[[5]x] and [1]]", n_sources=3)
@example(text="[1][2][2] [9] [1-2]", n_sources=2)
def test_validation_never_raises_and_keeps_only_shown_sources(text: str, n_sources: int) -> None:
    result = validate(text, n_sources)
    left = _markers(result.text)
    assert all(1 <= n <= n_sources for n in left), result.text
    assert result.cited == list(dict.fromkeys(left))  # cited is exactly what is left, in order of first use
    assert all(s.strip() for s in result.uncited_sentences)
    assert all(isinstance(raw, str) and raw for raw in result.invalid)


@settings(max_examples=400, deadline=None)
@given(text=_text, n_sources=_n_sources)
def test_normalising_is_idempotent(text: str, n_sources: int) -> None:
    once, cited, _ = normalise_markers(text, n_sources)
    twice, cited_again, invalid_again = normalise_markers(once, n_sources)
    assert twice == once
    assert cited_again == cited and invalid_again == []
    assert validate(once, n_sources).uncited_sentences == validate(text, n_sources).uncited_sentences


@settings(max_examples=300, deadline=None)
@given(text=_text, n_sources=_n_sources, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12))
def test_a_stream_cut_anywhere_shows_what_validation_of_the_whole_reply_shows(
    text: str, n_sources: int, cuts: list[int]
) -> None:
    shown = _streamed(text, n_sources, cuts)
    assert all(1 <= n <= n_sources for n in _markers(shown)), shown
    # A bracket open longer than the filter waits is shown as prose as it streams (documented).
    assume(not _bracket_open_longer_than(text, StreamingCitationFilter._MAX_HOLD))
    final, _, _ = normalise_markers(text, n_sources)
    assert " ".join(shown.split()) == " ".join(final.split())


@settings(max_examples=300, deadline=None)
@given(
    runs=st.lists(st.tuples(st.sampled_from(["[", "]", "0", "2", " ", ":", "[1]"]), st.integers(1, 60)), max_size=8),
    n_sources=st.integers(min_value=0, max_value=3),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=6),
)
@example(runs=[("[", 60), ("0", 47), (" ", 1), ("]", 2), ("0", 50), ("]", 45), ("2", 2)], n_sources=3, cuts=[120])
def test_a_stream_never_shows_a_marker_of_no_source_even_after_long_bracket_runs(
    runs: list[tuple[str, int]], n_sources: int, cuts: list[int]
) -> None:
    shown = _streamed("".join(piece * times for piece, times in runs), n_sources, cuts)
    assert all(1 <= n <= n_sources for n in _markers(shown)), shown


def _streamed(text: str, n_sources: int, cuts: list[int]) -> str:
    bounds = sorted({0, len(text), *(c for c in cuts if c < len(text))})
    pieces = [text[a:b] for a, b in zip(bounds, bounds[1:])]
    stream = StreamingCitationFilter(n_sources)
    return "".join(stream.feed(piece) for piece in pieces) + stream.finish()


def _bracket_open_longer_than(text: str, limit: int) -> bool:
    """True if an outermost "[" stays unclosed for more than ``limit`` characters."""
    depth, start = 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            start = i if depth == 0 else start
            depth += 1
        elif ch == "]" and depth:
            depth -= 1
            if depth == 0 and i - start > limit:
                return True
    return depth > 0 and len(text) - start > limit


@settings(max_examples=300, deadline=None)
@given(text=_text)
def test_sentences_are_pieces_of_the_text_in_order(text: str) -> None:
    position = 0
    for sentence in split_sentences(text):
        found = text.find(sentence, position)
        assert found >= 0 and sentence == sentence.strip() and sentence
        position = found + len(sentence)


# --- Splitting ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(Settings())


@pytest.fixture(scope="module")
def splitter(tokenizer) -> PassageSplitter:
    return PassageSplitter(tokenizer, chunk_tokens=24, overlap_tokens=6)


_words = st.sampled_from(
    ["the", "harbour", "Arandia", "accord", "grain", "40,000", "é", "naïve", "東京", "🙂", "x" * 70]
)
_separators = st.sampled_from(
    [" ", " ", " ", ". ", "! ", "? ", ", ", "; ", "\n", "\n\n", "\n \n", "\t", "  ", "—", '." ', "\u00a0"]
)
_prose = st.lists(st.tuples(_words, _separators).map("".join), max_size=120).map("".join)
# Repetitive text is where locating a chunk by searching for it can find the wrong copy.
_repetitive = st.lists(st.sampled_from(["ab ", "ab. ", "ab\n\n", "cd ef. ", "ab"]), max_size=150).map("".join)


def _check_passages(text: str, passages, tokenizer) -> None:
    for i, p in enumerate(passages):
        assert p.index == i
        assert text[p.start : p.end] == p.text and p.text and p.text == p.text.strip()
        assert len(tokenizer.tokenize(p.text)) <= 24
    for before, after in zip(passages, passages[1:]):
        assert before.start < after.start and before.end <= after.end  # document order
        assert after.start <= before.end or not text[before.end : after.start].strip()  # no gap with content
    covered = bytearray(len(text))
    for p in passages:
        covered[p.start : p.end] = b"\1" * (p.end - p.start)
    missing = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert not missing, f"characters {missing[:5]} ({text[missing[0]]!r}...) are in no passage"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(_prose, _repetitive, st.text(max_size=300)))
@example(text="ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab")
def test_passages_are_exact_ordered_slices_that_cover_the_text(splitter: PassageSplitter, tokenizer, text: str) -> None:
    _check_passages(text, splitter.split(text), tokenizer)
