"""What is asked of the Yes/No judge, and what a judge is: the questions and the interface, no backend.

The checks (``assistant.checks``) and the debate's side check ask their questions through this
interface alone; how a model answers is the backend's business (``assistant.models.judge``), and
which one answers follows the settings (``assistant.chains.configured_checks``). Keeping the two
apart means a check never loads a model by itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from assistant.core.prompts import source_line

JUDGE_SYSTEM = "You are a strict fact checker."


@dataclass(frozen=True)
class YesNo:
    """One question for the judge: the system line and the user message (a Yes/No question ends in
    "Answer Yes or No."; the side check's asks for a side, read by ``LlamaJudge.first_word_logprobs``)."""

    system: str
    user: str

    def chatml(self) -> str:
        """Raw ChatML ending in the assistant turn, for the local model's completion call."""
        return (f"<|im_start|>system\n{self.system}<|im_end|>\n<|im_start|>user\n{self.user}<|im_end|>\n"
                "<|im_start|>assistant\n")  # fmt: skip


def support_question(claim: str, context: str, label: str) -> YesNo:
    """Is ``claim`` true according to ``context`` (from the article ``label``)? The text comes first
    and the statement last, so statements citing the same text share the evaluated prefix."""
    source = f" (from {label})" if label else ""
    return YesNo(JUDGE_SYSTEM, f'Text{source}: "{context}"\nStatement: "{claim}"\n'
                               "Is the statement true according to the text? Answer Yes or No.")  # fmt: skip


class WordScorer(Protocol):
    """What reads the model's next-word log-probabilities (``LlamaJudge``; a scripted one in tests)."""

    def first_word_logprobs(self, question: YesNo, reply_start: str, words: Sequence[str]) -> list[float]: ...


def odds_of_yes(scorer: WordScorer, question: YesNo) -> float:
    """log P(Yes) - log P(No) as the first word of the reply to ``question``."""
    yes, no = scorer.first_word_logprobs(question, "", ("Yes", "No"))
    return yes - no


def answer_question(question: str, answer: str, context: str) -> YesNo:
    """Is ``answer`` a correct answer to ``question`` according to ``context``? Asked of a quote-first
    answer, where "is it true" is not enough: a sentence copied from the quotes is true and answers
    nothing, and "Tufts University" is true of another man than the one asked about. Without the
    article's title and author, unlike ``support_question``: with them the judge's odds of Yes rise
    for wrong answers as much as for right ones (area under the ROC curve 0.72 with, 0.78 without,
    on the answers below)."""
    return YesNo(JUDGE_SYSTEM, f'Text: "{context}"\nQuestion: {question}\nAnswer: {answer}\n'
                               "Is this answer to the question correct according to the text? Answer Yes or No.")  # fmt: skip


# How much likelier than No the judge's Yes must be for a short answer to stand: log-odds 0.8 (Yes
# about 2.2 times as likely as No). Decoded, the 1.5B judge says Yes to most answers. Read as odds,
# on the 32 short answers of the tune half of eval/data/questions_more.jsonl that reached the judge
# (2026-12-07, each read by a person: 19 right, 13 wrong or not answers), 8 of the 13 fall below
# 0.8 and 2 of the 19 right ones do.
ANSWER_ODDS = 0.8


class YesNoJudge(ABC):
    """A model answering ``YesNo`` questions; called with (claim, context, label) it is the verifier's judge."""

    def __call__(self, claim: str, context: str, label: str) -> bool:
        # The context is article text: its own markers removed, as in every prompt (``prompts.source_line``).
        return self.yes(support_question(" ".join(claim.split()), source_line(context), label))

    def answers(self, question: str, answer: str, context: str) -> bool:
        """Does ``answer`` correctly answer ``question`` according to ``context``? By the odds of Yes
        (``ANSWER_ODDS``) where the backend gives them, else by the decoded answer."""
        asked = answer_question(" ".join(question.split()), " ".join(answer.split()), source_line(context))
        odds = self.yes_odds(asked)
        return self.yes(asked) if odds is None else odds > ANSWER_ODDS

    @abstractmethod
    def yes(self, question: YesNo) -> bool:
        """The model's Yes (True) or No to ``question``."""

    def yes_odds(self, question: YesNo) -> float | None:
        """log P(Yes) - log P(No) as the reply's first word, or None where the backend gives no log-probabilities."""
        return None
