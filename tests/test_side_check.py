"""The side check's reading of next-word probabilities: a lean measured against the motion's
content-free baseline, a margin before a sentence counts for a side, one baseline per motion."""

from __future__ import annotations

from collections.abc import Sequence

from assistant.models.yes_no import YesNo
from assistant.chains.side_check import ANSWERS, CONTENT_FREE, LEAN_MARGIN, REJECT_MARGIN, REPLY_START, SideSorter


class ScriptedScorer:
    """Log-probabilities of ("for", "against") per sentence; records every question it is asked."""

    def __init__(self, leans: dict[str, float | tuple[float, float, float]]) -> None:
        self.leans = leans
        self.asked: list[str] = []

    def first_word_logprobs(self, question: YesNo, reply_start: str, words: Sequence[str]) -> list[float]:
        if tuple(words) == ("Yes", "No"):  # the rebuttal question: the odds scripted per reply
            reply = next(s for s in self.leans if f'Statement B: "{s}"' in question.user)
            self.asked.append(reply)
            return [self.leans[reply], 0.0]
        assert reply_start == REPLY_START and tuple(words) == ANSWERS
        sentence = next(s for s in self.leans if f'"{s}"' in question.user)
        self.asked.append(sentence)
        scripted = self.leans[sentence]
        return list(scripted) if isinstance(scripted, tuple) else [scripted, 0.0, -0.5]  # "for", "against", "neither"


def test_a_sentence_counts_for_a_side_only_beyond_the_baseline_and_the_margin() -> None:
    """The model leans to "against" on every sentence here (the baseline, -1.0): a sentence at the
    baseline is neither, one far above it is for, one far below is against, one within the margin neither."""
    scorer = ScriptedScorer({CONTENT_FREE: -1.0, "A": -1.0, "B": -1.0 + 2 * LEAN_MARGIN, "C": -1.0 - 2 * LEAN_MARGIN,
                             "D": -1.0 + LEAN_MARGIN / 2, "E": 1.0})  # fmt: skip
    sorter = SideSorter(chat_model=None, scorer=scorer)  # type: ignore[arg-type]  # the scorer answers; no chat model is asked
    assert [sorter.side_of("M?", s) for s in "ABCD"] == ["neither", "for", "against", "neither"]


def test_the_side_a_sentence_is_named_is_the_word_that_gains_most_over_the_baseline() -> None:
    """This model's likeliest word is "against" for nearly every sentence; read that way, every rebuttal
    link of the side for the motion was dropped. Against the content-free baseline: the word that gains
    most, and neither when nothing gains over "neither" (a sentence read like "N/A")."""
    scorer = ScriptedScorer({CONTENT_FREE: (-2.0, -0.5, -1.5), "Same.": (-2.0, -0.5, -1.5), "Pro.": (-1.2, -0.6, -1.5),
                             "Con.": (-2.5, -0.2, -1.5), "Off.": (-2.2, -0.6, -1.0)})  # fmt: skip
    sorter = SideSorter(chat_model=None, scorer=scorer)  # type: ignore[arg-type]
    assert [sorter.named_side("M?", s) for s in ("Same.", "Pro.", "Con.", "Off.")] == ["neither", "for", "against", "neither"]


def test_the_baseline_is_asked_once_per_motion_and_answers_are_remembered() -> None:
    scorer = ScriptedScorer({CONTENT_FREE: 0.0, "A": 1.0, "B": -1.0})
    sorter = SideSorter(chat_model=None, scorer=scorer)  # type: ignore[arg-type]
    for _ in range(2):
        sorter.side_of("Motion one?", "A")
        sorter.side_of("Motion one?", "B")
    sorter.side_of("Motion two?", "A")
    assert scorer.asked == [CONTENT_FREE, "A", "B", CONTENT_FREE, "A"]
    assert sorter.knows("motion one", "a") and not sorter.knows("Motion two?", "B")


def test_a_rebuttal_disputes_a_card_only_when_the_judge_finds_yes_likelier_by_the_margin() -> None:
    """This model leans Yes to every pair: odds of Yes at the margin or under are not a dispute."""
    scorer = ScriptedScorer({"far": REJECT_MARGIN + 0.2, "near": REJECT_MARGIN - 0.2, "no": -1.0})
    sorter = SideSorter(chat_model=None, scorer=scorer)  # type: ignore[arg-type]
    assert [sorter.rejects("M?", "The card's quote.", reply) for reply in ("far", "near", "no")] == [True, False, False]
    assert SideSorter(chat_model=None).rejects("M?", "a", "b") is None  # type: ignore[arg-type]  # no odds on a server
