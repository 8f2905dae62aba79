"""The one text toolkit: sentences that survive abbreviations, words, numbers and stop words."""

from __future__ import annotations

import pytest

from assistant.checks.citations import uncited_sentences
from assistant.checks.grounding import check_grounding
from assistant.core.passage import Passage
from assistant.core.text import STOP_WORDS, number_key, sentence_spans, split_sentences, text_key, words


@pytest.mark.parametrize(
    "text",
    [
        "In October 2000 the envoy told Castell that, with U.S. help, the rail link could reopen [1].",
        "The accord was signed on Jan. 15, 2019 in Lisk [1].",
        "Dr. J. Reyne of the U.N. mission disagreed with the plan [2].",
        "The U.S. Navy and the U.K. sent observers to the Varn Strait [1][2].",
    ],
)
def test_an_answer_is_never_cut_at_an_abbreviation(text: str) -> None:
    assert split_sentences(text) == [text]


def test_sentences_keep_offsets_markers_and_line_breaks() -> None:
    text = "Talks worked in the U.S. [1] Then they failed. [2]\n- a list item\n\nLast one."
    spans = sentence_spans(text)
    assert [s.text for s in spans] == ["Talks worked in the U.S. [1]", "Then they failed. [2]", "- a list item", "Last one."]
    assert all(text[s.start : s.end] == s.text for s in spans)


def test_negation_and_quantity_words_are_never_stop_words() -> None:
    for word in ("not", "no", "never", "none", "without", "few", "most", "all", "five", "three", "first"):
        assert word not in STOP_WORDS


def test_number_words_digits_and_ordinals_compare_alike() -> None:
    values = [number_key(w.number) for w in words("five reasons, 5 reasons, the fifth test, twenty-five days, 40,000 tonnes, 3rd")
              if w.number is not None]  # fmt: skip
    assert values == ["5", "5", "5", "25", "40000", "3"]
    assert [w.surface for w in words("U.S.-ROK drills, or U. S. drills")] == ["US", "ROK", "drills", "or", "US", "drills"]


def test_the_checker_keeps_a_sentence_with_an_abbreviation_whole() -> None:
    passage = Passage(id="p-1", doc_id="p", index=0, start=0, end=80, score=1.0, title="T", source="t.txt",
                               text="The U.S. envoy met Castell in Lisk in March 2019 and the accord was signed.")  # fmt: skip
    checked = check_grounding("The U.S. envoy met Castell in Lisk in March 2019 [1].", [passage])
    assert checked.text == "The U.S. envoy met Castell in Lisk in March 2019 [1]." and checked.grounded
    assert uncited_sentences("The U.S. envoy met Castell [1].") == []


def test_text_key_ignores_case_spacing_and_punctuation_in_any_script() -> None:
    assert text_key("Should  the Pier be REBUILT?") == text_key("should the pier be rebuilt") == "should the pier be rebuilt"
    assert text_key("Straße über Zürich") == "strasse über zürich"
    # Motions in another script keep their words: an ASCII-only key made them all the same empty key.
    assert text_key("应该重建码头吗？") == "应该重建码头吗" != text_key("应该先签条约吗？")
    assert text_key("snake_case, U.S.") == "snake case u s"
