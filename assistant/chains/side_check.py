"""Which side of the motion a sentence helps, asked of the model before the sentence is offered to
a debater: a card must never argue its opponent's case.

A side's own articles often state the other side's case before they answer it ("economists say
rent control causes shortages ..."). Ranked by closeness to the motion, those sentences come
first, and the debater quoted them: on the rent-control excerpts most cards of the side for the
motion argued against it. So each candidate, best first, is put to the model: which side is a
debater who quotes it on, for or against the motion (or neither)?

How the answer is read (the local model). The question is not decoded: the model's next-token
log-probabilities of "for" and "against" after the question are read (``LlamaJudge.first_word_logprobs``),
and their difference, the sentence's *lean*, is compared with the lean the same question has
for the content-free sentence "N/A" on the same motion (contextual calibration, Zhao et al.
2021): this model leans to "against" on any sentence, and a decoded choice gives only the
winner. The sentence comes from the side's own article, so it is set aside only when it leans
to the opponent by more than ``LEAN_MARGIN`` beyond that baseline. Measured on hand-labelled
candidates (``README``, Debates), 61 of the first 4 motions (tuned there) and 106 of 4 other
motions (held out): of the sentences that argue the opponent's case 17 of 22 and 26 of 30 are set
aside, of those that argue the side's own case 1 of 22 and 2 of 37; the decoded three-way choice
set aside 14 of 22 and 25 of 30, and 2 of 22 and 8 of 37 of the side's own.

Other backends (an OpenAI-compatible server gives no logits here) keep the decoded choice under a
JSON schema, uncalibrated.

The same reading decides whether a rebuttal card disputes the card it names (``rejects``): the
judge's odds of Yes to "would a debater who believes the reply reject the card?", over a margin.

Sentences are asked about in rank order only until the turn has enough (its cards plus one, for
the model to choose among), so a turn costs a few short model calls; each answer is kept per
motion and sentence, so a sentence offered again (a rebuttal, a spar turn) costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from assistant.core import prompts
from assistant.chains.cards import Candidate
from assistant.models.yes_no import WordScorer, YesNo, odds_of_yes
from assistant.core.sides import DIRECTIONS, opponent
from assistant.models.structured import choice
from assistant.core.text import text_key

NEITHER = "neither"
ANSWERS = ("for", "against", NEITHER)
# Answers kept before the oldest are forgotten (a long-running server sees many motions).
MAX_REMEMBERED = 4096
# How far (in nats, beyond the content-free baseline) a sentence must lean to a side to count as
# arguing it: chosen on the first 61 labelled candidates (at 0.25, 1 of the side's own 22 and 17 of the
# opponent's 22 set aside; a lower margin loses more of the side's own), then checked on 106 held-out ones.
LEAN_MARGIN = 0.25
CONTENT_FREE = "N/A"
# How much likelier (log-odds) the judge must find Yes than No to "would a debater who believes the
# reply reject the card?" for a rebuttal card to keep the card it names. This model leans Yes to any
# pair (log-odds 0.3 to 1.5 on every link measured), so the line sits inside that band: chosen on 26
# hand-labelled links (7 that dispute the card they name: 4 kept, and 3 of the 19 others), then
# checked on 32 links of 8 later debates (8 that dispute: 6 kept, and 3 of the 24 others).
REJECT_MARGIN = 1.0
# What the model's reply starts with before it names a side (as the JSON-schema choice writes it).
REPLY_START = '{"side": "'


@dataclass(frozen=True)
class SideReading:
    """What the model makes of one sentence on one motion: the side it leans to beyond the motion's
    baseline (``leans``, which decides what is offered) and the side it would name (``named``)."""

    leans: str
    named: str


class SideSorter:
    """The model's answer to "which side is a debater who quotes this on?", remembered per motion and sentence."""

    def __init__(self, chat_model: BaseChatModel, scorer: WordScorer | None = None, max_tokens: int = 12) -> None:
        self.chat_model = chat_model
        self.scorer = scorer
        self.max_tokens = max_tokens
        self._readings: dict[tuple[str, str], SideReading] = {}
        self._baselines: dict[str, list[float]] = {}  # per motion: the log-probabilities for "N/A"

    def knows(self, motion: str, sentence: str) -> bool:
        """Whether the answer for ``sentence`` on ``motion`` is remembered (asking again costs nothing)."""
        return (text_key(motion), text_key(sentence)) in self._readings

    def side_of(self, motion: str, sentence: str) -> str:
        """"for", "against" or "neither": the side the sentence leans to (with a scorer), else the one
        the model names."""
        return self._reading(motion, sentence).leans

    def named_side(self, motion: str, sentence: str) -> str:
        """The side the model would name: with a scorer, the word among for, against and neither that
        gains most over the motion's content-free baseline; otherwise the choice it decodes ("neither"
        when the reply is unusable).

        A rebuttal link is checked with it when the dispute check is off. Read as the likeliest word
        with no baseline, it named nearly every sentence "against": on the 58 hand-labelled links
        (26 + 32) it kept 0 of the 6 disputing links the side for the motion made and 8 of the 9 the
        side against made, and in 10 debates (2026-12-07) 0 of the 20 links of the side for and 17 of
        the 20 of the side against, so the side against won 9 of the 10 ballots. Against the baseline
        it kept 6 of 6 and 6 of 9 (others: 16 of 20 and 12 of 23). Word and baseline come from the
        question asked when the sentence was offered, so checking a link mid-turn never asks the
        model again (the chat model is busy writing it, under its lock)."""
        return self._reading(motion, sentence).named

    def rejects(self, motion: str, claim: str, reply: str) -> bool | None:
        """Whether a debater who believes ``reply`` would reject ``claim``, read as the judge's odds of
        Yes (``REJECT_MARGIN``); None without a scorer (a server: the caller falls back).

        Asked decoded, the Yes/No judge said Yes to all 26 labelled links in four wordings, and two
        other wordings read as odds told disputing links from others no better than chance on the
        32 held-out ones (area under the ROC curve 0.54 and 0.61); this one 0.79 and 0.85."""
        if self.scorer is None:
            return None
        user = prompts.REJECT_USER.format(motion=prompts.source_line(motion), claim=prompts.source_line(claim),
                                          reply=prompts.source_line(reply))  # fmt: skip
        return odds_of_yes(self.scorer, YesNo(prompts.SIDE_SYSTEM, user)) > REJECT_MARGIN

    def _reading(self, motion: str, sentence: str) -> SideReading:
        key = (text_key(motion), text_key(sentence))
        if key not in self._readings:
            reading = self._scored(motion, sentence) if self.scorer is not None else self._decoded(motion, sentence)
            if len(self._readings) >= MAX_REMEMBERED:
                self._readings.clear()
                self._baselines.clear()
            self._readings[key] = reading
        return self._readings[key]

    def _decoded(self, motion: str, sentence: str) -> SideReading:
        """The side the model names, decoded under a JSON schema (any backend), read both ways."""
        question = _question(motion, sentence)
        messages = [SystemMessage(question.system), HumanMessage(question.user)]
        side = choice(self.chat_model, messages, "side", ANSWERS, self.max_tokens) or NEITHER
        return SideReading(side, side)

    def _scored(self, motion: str, sentence: str) -> SideReading:
        """The lean beyond the motion's baseline (by more than ``LEAN_MARGIN``), and the word that gains
        most over the baseline (both calibrated on the same content-free sentence)."""
        if text_key(motion) not in self._baselines:
            self._baselines[text_key(motion)] = self._logprobs(motion, CONTENT_FREE)
        baseline = self._baselines[text_key(motion)]
        gains = [logprob - base for logprob, base in zip(self._logprobs(motion, sentence), baseline)]
        lean = gains[0] - gains[1]
        leans = "for" if lean > LEAN_MARGIN else "against" if lean < -LEAN_MARGIN else NEITHER
        best = max(gains)  # a tie with "neither" (a sentence read like the content-free one) names neither side
        return SideReading(leans, NEITHER if gains[2] == best else ANSWERS[gains.index(best)])

    def _logprobs(self, motion: str, sentence: str) -> list[float]:
        """The model's log-probabilities of "for", "against" and "neither" as its next word after the question."""
        assert self.scorer is not None
        return self.scorer.first_word_logprobs(_question(motion, sentence), REPLY_START, ANSWERS)

    def keep(self, motion: str, role: str, candidates: Sequence[Candidate], wanted: int,
             most_questions: int) -> tuple[list[Candidate], int]:
        """The first ``wanted`` candidates the model does not place on ``role``'s opponent's side, and
        how many it set aside on the way; at most ``most_questions`` new questions are put to the
        model (remembered answers are free), which bounds the turn's cost when many are set aside."""
        against = DIRECTIONS[opponent(role)]
        kept: list[Candidate] = []
        set_aside = asked = 0
        for candidate in candidates:
            text = candidate.sentence.text
            if len(kept) == wanted or (asked == most_questions and not self.knows(motion, text)):
                break
            asked += not self.knows(motion, text)
            if self.side_of(motion, text) == against:
                set_aside += 1
            else:
                kept.append(candidate)
        return kept, set_aside


def _question(motion: str, sentence: str) -> YesNo:
    """The which-side question (the motion first, so questions on one motion share their start)."""
    user = prompts.SIDE_USER.format(motion=prompts.source_line(motion), sentence=prompts.source_line(sentence))
    return YesNo(prompts.SIDE_SYSTEM, user)
