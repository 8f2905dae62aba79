"""Which side of the motion a sentence helps, asked of the model before the sentence is offered to
a debater: a card must never argue its opponent's case.

A side's own articles often state the other side's case before they answer it ("economists say
rent control causes shortages ..."). Ranked by closeness to the motion, those sentences come
first, and the debater quoted them: on the rent-control excerpts most cards of the side for the
motion argued against it. Each candidate, best first, is put to the model as a three-way choice
under a JSON schema (which side is a debater who quotes it on: for, against or neither), and a
sentence it places on the opponent's side is not offered. Neither is kept: background is not
wrong, only weak. Measured on 61 candidate sentences of 4 motions over two topics, labelled by
hand (README, Debates): of 22 that argue the opponent's case 14 are set aside; of 22 that argue
the side's own case 2 are. A Yes/No question on one side ("does it give a reason to vote for
...?") said Yes to both kinds alike, and the same three-way question as a raw completion under a
one-word grammar (as the Yes/No judge decodes) set aside 6 of the 22 good ones: neither is used.

Sentences are asked about in rank order only until the turn has enough (its cards plus one, for
the model to choose among), so a turn costs a few short model calls; each answer is kept per
motion and sentence, so a sentence offered again (a rebuttal, a spar turn) costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from assistant import prompts
from assistant.cards import Candidate
from assistant.sides import DIRECTIONS, opponent
from assistant.structured import choice
from assistant.text import text_key

NEITHER = "neither"
ANSWERS = ("for", "against", NEITHER)
# Answers kept before the oldest are forgotten (a long-running server sees many motions).
MAX_REMEMBERED = 4096


class SideSorter:
    """The model's answer to "which side is a debater who quotes this on?", remembered per motion and sentence."""

    def __init__(self, chat_model: BaseChatModel, max_tokens: int = 12) -> None:
        self.chat_model = chat_model
        self.max_tokens = max_tokens
        self._answers: dict[tuple[str, str], str] = {}

    def knows(self, motion: str, sentence: str) -> bool:
        """Whether the answer for ``sentence`` on ``motion`` is remembered (asking again costs nothing)."""
        return (text_key(motion), text_key(sentence)) in self._answers

    def side_of(self, motion: str, sentence: str) -> str:
        """"for", "against" or "neither" (also when the reply is unusable)."""
        key = (text_key(motion), text_key(sentence))
        if key not in self._answers:
            user = prompts.SIDE_USER.format(motion=prompts.source_line(motion), sentence=prompts.source_line(sentence))
            messages = [SystemMessage(prompts.SIDE_SYSTEM), HumanMessage(user)]
            side = choice(self.chat_model, messages, "side", ANSWERS, self.max_tokens)
            if len(self._answers) >= MAX_REMEMBERED:
                self._answers.clear()
            self._answers[key] = side or NEITHER
        return self._answers[key]

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
