"""Citation parsing and validation against adversarial model output."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.checks.citations import StreamingCitationFilter, normalise_markers
from tests.fakes import validate


@pytest.mark.parametrize(
    ("raw", "n_sources", "expected_text", "cited", "invalid"),
    [
        ("The port reopened [1].", 3, "The port reopened [1].", [1], []),
        ("The port reopened [0].", 3, "The port reopened.", [], ["[0]"]),
        ("The port reopened [99].", 3, "The port reopened.", [], ["[99]"]),
        ("Both happened [1,2].", 3, "Both happened [1][2].", [1, 2], []),
        ("Both happened [1, 2; 3].", 3, "Both happened [1][2][3].", [1, 2, 3], []),
        ("All three [1-3].", 3, "All three [1][2][3].", [1, 2, 3], []),
        ("A range too far [2-5].", 3, "A range too far [2][3].", [2, 3], ["[2-5]"]),
        ("Inverted [3-1].", 3, "Inverted.", [], ["[3-1]"]),
        ("Huge range [1-100000].", 3, "Huge range.", [], ["[1-100000]"]),
        ("Nested [[2]].", 3, "Nested [2].", [2], []),
        ("Labelled [Source 2].", 3, "Labelled [2].", [2], []),
        ("Labelled badly [source 7].", 3, "Labelled badly.", [], ["[source 7]"]),
        ("Empty marker [].", 3, "Empty marker.", [], ["[]"]),
        ("Letters [1a].", 3, "Letters.", [], ["[1a]"]),
        ("Negative [-1].", 3, "Negative.", [], ["[-1]"]),
        ("Duplicate [2][2] and [2, 2].", 3, "Duplicate [2][2] and [2].", [2], []),
        ("Prose in brackets [sic] stays [1].", 3, "Prose in brackets [sic] stays [1].", [1], []),
        ('He said "we will talk [2]" at the border [1].', 3, 'He said "we will talk [2]" at the border [1].', [2, 1], []),
        ('He said "we will talk [9]" at the border.', 3, 'He said "we will talk" at the border.', [], ["[9]"]),
        ("No sources at all [1].", 0, "No sources at all.", [], ["[1]"]),
    ],
)
def test_markers_are_normalised_and_invalid_ones_removed(
    raw: str, n_sources: int, expected_text: str, cited: list[int], invalid: list[str]
) -> None:
    text, got_cited, got_invalid = normalise_markers(raw, n_sources)
    assert text == expected_text
    assert got_cited == cited
    assert got_invalid == invalid


def test_uncited_sentences_are_flagged_but_short_and_decline_ones_are_not() -> None:
    raw = (
        "The rail link reopened after eleven years [1]. "
        "Grain shipments then doubled within a single month. "
        "In short: "
        "The sources don't say."
    )
    result = validate(raw, 2, exempt_sentences=("The sources don't say.",))
    assert result.cited == [1]
    assert result.uncited_sentences == ["Grain shipments then doubled within a single month."]


def test_a_sentence_with_only_an_invalid_marker_counts_as_uncited() -> None:
    result = validate("Inspectors were expelled in the spring of that year [7].", 3)
    assert result.invalid == ["[7]"]
    assert result.uncited_sentences == ["Inspectors were expelled in the spring of that year."]


@pytest.mark.parametrize(
    "pieces",
    [
        ["The hotline ", "was used twice ", "[", "1", "]", "."],
        ["The hotline was used twice [", "9", "]."],
        ["The hotline was used twice [[", "2]", "]."],
        ["The hotline [sic", "] was used twice [1-", "2]."],
    ],
)
def test_streaming_filter_never_shows_an_invalid_marker(pieces: list[str]) -> None:
    stream = StreamingCitationFilter(n_sources=2)
    shown = "".join(stream.feed(p) for p in pieces) + stream.finish()
    final, _, _ = normalise_markers("".join(pieces), 2)
    assert "[9]" not in shown and "[[" not in shown
    assert " ".join(shown.split()) == " ".join(final.split())


def test_streaming_filter_releases_an_unclosed_bracket_eventually() -> None:
    stream = StreamingCitationFilter(n_sources=2)
    shown = stream.feed("A list [of things that never closes " + "x" * 60) + stream.finish()
    assert shown.startswith("A list [of things")


_model_output = st.lists(
    st.one_of(
        st.text(alphabet=st.characters(blacklist_characters="[]"), max_size=12),
        st.sampled_from(["[", "]", "[1]", "[0]", "[99]", "[1,2]", "[1-3]", "[[2]]", "[]", "[Source 2]", "[sic]"]),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(pieces=_model_output, n_sources=st.integers(min_value=0, max_value=6))
def test_property_every_marker_left_names_a_shown_source(pieces: list[str], n_sources: int) -> None:
    text = "".join(pieces)
    result = validate(text, n_sources)
    for number in re.findall(r"\[\s*(\d+)\s*\]", result.text):
        assert 1 <= int(number) <= n_sources
    assert set(result.cited) <= set(range(1, n_sources + 1))
    # Streaming in arbitrary pieces shows the same words as validating the whole text.
    stream = StreamingCitationFilter(n_sources)
    shown = "".join(stream.feed(p) for p in pieces) + stream.finish()
    for number in re.findall(r"\[(\d+)\]", shown):
        assert 1 <= int(number) <= n_sources


def test_unfinished_last_sentence_is_dropped_and_paragraph_citations_are_carried() -> None:
    from assistant.checks.grounding import check_grounding, drop_unfinished_sentence
    from assistant.core.passage import Passage

    assert drop_unfinished_sentence("One fact [1]. Another fact [2]. And then the") == "One fact [1]. Another fact [2]."
    assert drop_unfinished_sentence("Done here. [3] Half a") == "Done here. [3]"
    assert drop_unfinished_sentence("no end at all") == "no end at all"

    def passage(n: int, text: str) -> Passage:
        return Passage(id=f"d-{n}", doc_id="d", index=n, text=text, start=0, end=len(text), title="T",
                                source="s.txt", score=1.0)  # fmt: skip

    passages = [
        passage(1, "The hotline was used twice in 2020. It defused naval incidents near the Varn Strait."),
        passage(2, "Sanctions cut imports of specialty steel by seventy percent."),
    ]
    raw = "The hotline was used twice in 2020. Dragons ate the grain silos. It defused naval incidents near the Varn Strait. [1]"
    checked = check_grounding(raw, passages)
    assert "The hotline was used twice in 2020 [1]." in checked.text
    assert checked.corrected_citations == ["carried [1]: The hotline was used twice in 2020 [1]."]
    assert checked.uncited_sentences == ["Dragons ate the grain silos."]
    assert "Dragons" not in checked.text and checked.unsupported_sentences == ["Dragons ate the grain silos."]
    wrong = check_grounding("Sanctions cut steel imports by seventy percent [1]. The hotline was used twice [9].", passages)
    # [1] re-pointed to [2]; the invalid [9] dropped, and its sentence given the passage that supports it.
    assert wrong.text == "Sanctions cut steel imports by seventy percent [2]. The hotline was used twice [1]."
    assert wrong.invalid_citations == ["[9]"] and wrong.cited == [2, 1]
    # Too short to be a claim: never given a citation, even when a passage holds its words.
    greeted = check_grounding("Arr, matey! The hotline was used twice in 2020 [1].", [passage(1, "Arr, matey! " + passages[0].text)])
    assert greeted.text == "The hotline was used twice in 2020 [1]." and greeted.unsupported_sentences == ["Arr, matey!"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("[1] Seoul must act. Drift is the alternative. [2] Kim is risky.",
         "Seoul must act [1]. Drift is the alternative [1]. Kim is risky [2]."),
        ("[1] The issue remains. [2]", "The issue remains [1][2]."),
        ("[1][2] A holds.\n\n[3] B holds.", "A holds [1][2].\n\nB holds [3]."),
        ("A holds [1]. B holds [2].", "A holds [1]. B holds [2]."),  # already after: untouched
        ("[1] A holds. B holds [2].", "[1] A holds. B holds [2]."),  # mixed layouts: untouched
    ],
)
def test_markers_that_open_sentences_move_after_each_sentence_they_open(raw: str, expected: str) -> None:
    from assistant.checks.citations import markers_after_sentences

    assert markers_after_sentences(raw) == expected


def test_a_reply_in_the_sources_layout_keeps_each_claim_with_its_own_passage() -> None:
    from assistant.checks.grounding import check_grounding
    from assistant.core.passage import Passage

    texts = ["The hotline was used twice in 2020.", "The rail link reopened after eleven years."]
    passages = [Passage(id=f"d-{n}", doc_id="d", index=n, text=t, start=0, end=len(t), title="T",
                                 source="t.txt", score=1.0) for n, t in enumerate(texts)]  # fmt: skip
    checked = check_grounding("[1] The hotline was used twice in 2020. [2] The rail link reopened after eleven years.", passages)
    assert checked.text == "The hotline was used twice in 2020 [1]. The rail link reopened after eleven years [2]."
    assert checked.corrected_citations == [] and checked.unsupported_sentences == []


def test_a_sentence_given_its_passage_is_no_longer_flagged_as_uncited() -> None:
    """Bug: uncited sentences were listed before the repair, so a sentence that got its [n] stayed flagged."""
    from assistant.checks.grounding import check_grounding
    from assistant.core.passage import Passage

    texts = ["The hotline was used twice in 2020.", "The rail link reopened after eleven years."]
    passages = [Passage(id=f"d-{n}", doc_id="d", index=n, text=t, start=0, end=len(t), title="T",
                                 source="t.txt", score=1.0) for n, t in enumerate(texts)]  # fmt: skip
    checked = check_grounding("The hotline was used twice in 2020 [1]. The rail link reopened after eleven years.", passages)
    assert checked.text.endswith("after eleven years [2].") and checked.corrected_citations
    assert checked.uncited_sentences == []


def test_a_repaired_sentence_is_changed_where_it_stands_not_where_its_words_first_occur() -> None:
    """Bug: ``text.replace(sentence, fixed, 1)`` changed the first occurrence of the words, which can
    be the tail of an earlier sentence that says the opposite."""
    from assistant.checks.grounding import check_grounding
    from assistant.core.passage import Passage

    texts = ["In the end Varga never met Osei in Lisk.", "Varga met Osei in Lisk in 2012."]
    passages = [Passage(id=f"d-{n}", doc_id="d", index=n, text=t, start=0, end=len(t), title="T",
                                 source="t.txt", score=1.0) for n, t in enumerate(texts)]  # fmt: skip
    checked = check_grounding("It is false that Varga met Osei in Lisk [1]. Varga met Osei in Lisk [1].", passages)
    assert checked.corrected_citations == ["[1] -> [2]: Varga met Osei in Lisk [2]."]
    assert checked.text == "It is false that Varga met Osei in Lisk [1]. Varga met Osei in Lisk [2]."
