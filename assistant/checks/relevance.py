"""Does what survived the support check answer the question that was asked?

The verifier asks "does the cited passage say this?", never "is this an answer?". Asked
"How many missiles did North Korea launch in 2022?", the small model wrote a true, cited,
supported sentence about nuclear tests between 2006 and 2017, and it was shown as the
answer. So before an answer is shown, this check runs on the kept sentences as a whole:

1. Rules (cheap, no model):
   - every year the question names must be in the answer or its evidence;
   - every name the question uses (capitalised words, not the question word) must be in the
     answer, its evidence, or the title/author/publisher of a cited article: a question
     about the Singapore summit is not answered by sentences about Panmunjom;
   - a question that names one side's article ("the skeptic article") must be answered from
     documents of that stance;
   - an answer made only of the question's own words answers nothing ("the rival candidate" to
     "Who was the rival candidate the mayor defeated?");
   - "how many / how much" needs a number or a quantity word in the answer, and a number of
     what the question counts ("How many sailors survived" is not answered by "46 sailors
     died"); "when / what year / what date" needs a number (year, date, time of day), a month
     or a word such as "morning".
2. Judge (``relevance = "rules+llm"``): the backend's model, allowed to answer only "Yes" or
   "No" (``judge``), is asked whether the answer gives what the question asks for.

When the answer fails, the user sees the honest decline, and the supported sentences under
"Related, but not an answer:", never as the answer itself.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from assistant.core.lexicon import (
    MONTHS, QUANTITY_WORDS, counted_words, counts_them, found_in, is_content_word, is_dated, is_year, names_in,
)
from assistant.models.yes_no import YesNo, YesNoJudge
from assistant.core.prompts import source_line
from assistant.core.text import Word, strip_markers, words
from assistant.checks.verify import named_side

RELATED_HEADING = "Related, but not an answer:"
RESTATES_QUESTION = "the answer only restates the question"
PARTIAL_NOTE = "Answered only in part: nothing that held up against the sources answers this for"
# Questions whose answer is a quantity: "how many", "how old", "what is the population of ...".
_QUANTITY_QUESTION = re.compile(
    r"\bhow (many|much|long|often|old|far|large|big|tall|high)\b|\bwhat (number|percentage|share|amount|proportion)\b"
    r"|\bwhat (is|was|are|were) the (population|size|cost|price|age|budget|value|death toll|number|amount|"
    r"percentage|share|length|height|distance|area|total)\b",
    re.I,
)
_TIME_QUESTION = re.compile(r"^\W*when\b|\b(what|which|in what|on what) (year|month|date|day|decade)\b", re.I)
# Words that place an answer in time without a number ("in the spring", "every morning", "at noon").
_TIME_WORDS = frozenset(
    "spring summer autumn fall winter morning evening afternoon night noon midnight weekday weekdays weekend "
    "monday tuesday wednesday thursday friday saturday sunday today yesterday tomorrow ago".split()
)
_QUESTION_WORDS = frozenset("what which who whom whose when where why how is are do does did was were can could".split())


@dataclass(frozen=True)
class Relevance:
    """Whether the kept text answers the question, why not, and which stage decided."""

    answers: bool
    reason: str = ""
    stage: str = "rules"
    seconds: float = 0.0
    # Parties a question asks the same of ("Lee and Gurtov each") that the answer leaves out:
    # the answer is shown as a partial one, with a note naming them.
    unanswered: tuple[str, ...] = ()


class AnswerJudge(Protocol):
    def answers(self, question: str, answer: str) -> bool: ...


class RelevanceCheck:
    """Rules first, then (when a judge is given) the local model's Yes/No."""

    def __init__(self, judge: AnswerJudge | None = None) -> None:
        self.judge = judge

    def check(self, question: str, answer: str, evidence: Sequence[str], metadata: Sequence[str] = (),
              stances: Sequence[str] = ()) -> Relevance:  # fmt: skip
        """``answer``: the shown sentences; ``evidence``: what they were verified against;
        ``metadata``: titles, authors and publishers of the cited articles; ``stances``: their stances."""
        started = time.perf_counter()
        reason, unanswered = rules_verdict(question, strip_markers(answer), evidence, metadata, stances)
        if reason:
            return Relevance(False, reason, "rules", time.perf_counter() - started)
        if self.judge is None:
            return Relevance(True, "", "rules", time.perf_counter() - started, unanswered)
        yes = self.judge.answers(question, " ".join(strip_markers(answer).split()))
        reason = "" if yes else "the model judged that this does not answer the question"
        return Relevance(yes, reason, "llm", time.perf_counter() - started, unanswered if yes else ())


def rule_violation(question: str, answer: str, evidence: Sequence[str], metadata: Sequence[str] = (),
                   stances: Sequence[str] = ()) -> str:  # fmt: skip
    """The first rule the answer breaks for this question, or ""."""
    return rules_verdict(question, answer, evidence, metadata, stances)[0]


def rules_verdict(question: str, answer: str, evidence: Sequence[str], metadata: Sequence[str] = (),
                  stances: Sequence[str] = ()) -> tuple[str, tuple[str, ...]]:  # fmt: skip
    """The first rule the answer breaks for this question ("" if none), and the parties of a
    question that asks the same of each that the answer leaves out (it answers in part)."""
    conflict = named_side(question, set(stances)) if stances else None
    if conflict:  # "What would the skeptic article accept?" answered from the advocate's article
        return f"the question asks about the {conflict[0]} side; the answer cites only the {conflict[1]} side", ()
    question_words = words(question)
    pool_text = " ".join([answer, *evidence]).lower()
    pool = words(" ".join([answer, *evidence]))
    meta_text = " ".join(metadata).lower()
    meta = words(" ".join(metadata))
    for word in question_words:
        if is_year(word) and word.surface not in pool_text:
            return f"the question asks about {word.surface}; the answer does not", ()
    frame = _TIME_FRAME.search(question)
    if frame and not _sets_frame(frame, pool_text):
        return f"the question asks about {frame[0].split(maxsplit=1)[1]}; the answer does not", ()

    def present(word: Word) -> bool:  # in the answer, its evidence, or the cited articles' title/author
        return found_in(word, pool, pool_text) or found_in(word, meta, meta_text)

    missing = [w for w in names_in(question_words) if w.lower not in _QUESTION_WORDS and w.lower not in MONTHS
               and not present(w)]  # fmt: skip
    left_out = _left_out_parties(question, present) if missing else []
    in_left_out = {w.lower for party in left_out for w in words(party)}
    stray = [w for w in missing if w.lower not in in_left_out]
    if stray:
        return f"the question is about {stray[0].surface}; the answer is not", ()
    if restates_question(question, answer):
        return RESTATES_QUESTION, ()
    return _type_violation(question, words(answer), pool, pool_text), tuple(left_out)


_YES_NO_QUESTION = re.compile(r"^\W*(is|are|was|were|do|does|did|has|have|had|can|could|will|would|should)\b", re.I)


def restates_question(question: str, answer: str) -> bool:
    """Does the answer say nothing the question does not? Asked "Who was the rival candidate the
    mayor defeated?", the reply "the rival candidate" (or a sentence made of the question's own
    words) names no one. Every content word and number of the answer is then one of the question's.
    A yes/no question is answered by its own words plus "yes" or "not", so it is left out."""
    if _YES_NO_QUESTION.match(question):
        return False
    asked = words(question)
    asked_text = " ".join(w.lower for w in asked)
    said = [w for w in words(answer) if is_content_word(w) or w.number is not None]
    return bool(said) and all(found_in(w, asked, asked_text) for w in said)


def _left_out_parties(question: str, present: Callable[[Word], bool]) -> list[str]:
    """Parties of a question that asks the same of each ("Lee and Gurtov each", "both Seoul and
    Tokyo", "How do A and B differ") that the answer leaves out while it covers another party of
    the same list: such a question is answered in part. A joint question has no left-out parties."""
    if not _DISTRIBUTIVE.search(question):
        return []
    left_out = []
    for match in _PARTIES.finditer(question):
        parties = [" ".join(w.surface for w in words(p) if w.lower not in _QUESTION_WORDS)
                   for p in _LIST_SEPARATOR.split(match[0])]  # fmt: skip
        covered = [p for p in parties if p and all(present(w) for w in words(p))]
        if covered:
            left_out += [p for p in parties if p and p not in covered]
    return left_out


def _type_violation(question: str, answer_words: Sequence[Word], pool: Sequence[Word], pool_text: str) -> str:
    """The answer-type rules: a quantity, an amount paid, a count of what is counted, a date."""
    if _QUANTITY_QUESTION.search(question) and not any(
        w.number is not None or w.lower in QUANTITY_WORDS for w in answer_words
    ):
        return "the question asks how many or how much; the answer gives no number"
    if _PAY_QUESTION.search(question) and not any(_is_amount(answer_words, i) for i in range(len(answer_words))):
        return "the question asks for an amount paid; the answer gives none"
    counted = counted_words(question)
    for word in counted:
        if not found_in(word, pool, pool_text):
            return f"the question counts {word.surface!r}; the answer does not"
    if counted and not counts_them(answer_words, counted):
        return f"the answer gives no number of {' '.join(w.surface for w in counted)}"
    if _TIME_QUESTION.search(question) and not any(
        w.number is not None or w.lower in MONTHS or w.lower in _TIME_WORDS for w in answer_words
    ):
        return "the question asks when; the answer gives no date or time"
    return ""


def _is_amount(ws: Sequence[Word], at: int) -> bool:
    """The word at ``at`` is a number that can be an amount: not a date, not an ordinal ("a fourth test")."""
    word = ws[at]
    return word.number is not None and not is_dated(ws, at) and not _ORDINAL.fullmatch(word.lower)


_ORDINAL = re.compile(r"\d*(?:1st|2nd|3rd|\dth)|first|second|third|[a-z]+th")
# "what were they paid", "what did the reactors cost", "what was their wage", "how much were they paid".
_PAY_QUESTION = re.compile(
    r"\bwhat (?:was|were|is|are|did|does|do|will|would)\s+(?:[\w'’-]+\s+){0,3}?(?:paid|earn|earned|cost|charged)\b"
    r"|\bwhat (?:was|were|is|are) (?:the|their|his|her|its) (?:wages?|salary|salaries|pay|price|fees?)\b"
    r"|\bhow much\s+(?:[\w'’-]+\s+){0,4}?(?:paid|pay|earn|earned|cost|charged)\b",
    re.I,
)


def _sets_frame(frame: re.Match, pool_text: str) -> bool:
    """The answer or its evidence sets the question's time frame: the same qualifier (or one of
    its synonyms) before the same unit, at most one word between ("in its last full year")."""
    qualifiers = "|".join(_FRAME_SYNONYMS.get(frame["qualifier"].lower(), [frame["qualifier"].lower()]))
    unit = frame["unit"].lower().removesuffix("s")
    return re.search(rf"\b(?:{qualifiers})\s+(?:[\w-]+\s+)?{unit}s?\b", pool_text) is not None


# A time frame a question sets relative to the thing it asks about: "in its final year", "during
# the first months", "over the last decade", "in the park's final year". A frame anchored to a
# year ("in the first month of 2024") is left to the year rule: a date in January 2024 answers it.
_TIME_FRAME = re.compile(
    r"\b(?:in|during|over|for|within|by)\s+(?:its|their|the|his|her|that|this|(?:the\s+)?[\w-]+['’]s)\s+"
    r"(?P<qualifier>first|final|last|early|earliest|late|opening|closing|initial)\s+"
    r"(?P<unit>years?|months?|weeks?|days?|decades?|term|session|round|phase|stage)\b(?!\s+of\s+\d)",
    re.I,
)
# Words that set the same frame: an answer "in the last year" meets "in its final year".
_FRAME_SYNONYMS = {
    "final": ["final", "last", "closing"], "last": ["final", "last", "closing"], "closing": ["final", "last", "closing"],
    "first": ["first", "initial", "opening", "early"], "initial": ["first", "initial", "opening", "early"],
    "opening": ["first", "initial", "opening", "early"], "early": ["early", "earliest", "first", "initial"],
    "earliest": ["early", "earliest", "first", "initial"], "late": ["late", "last", "final"],
}
# Markers of a question that asks the same of each party it lists.
_DISTRIBUTIVE = re.compile(
    r"\b(each|both|respectively|differ|differs|difference|compare|compared|contrast|versus|vs)\b", re.I
)
# A list of names: "Lee and Gurtov", "Seoul, Tokyo and Washington", "South Korea or Japan".
_NAME = r"[A-Z][\w.'’-]*(?:\s+[A-Z][\w.'’-]*)*"
_PARTIES = re.compile(rf"{_NAME}(?:\s*,\s*{_NAME})*\s*,?\s+(?:and|or)\s+{_NAME}")
_LIST_SEPARATOR = re.compile(r"\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+")


def related_text(decline: str, supported: str) -> str:
    """What is shown when nothing kept answers: the decline, then the related facts, marked."""
    return f"{decline}\n\n{RELATED_HEADING}\n{supported}" if supported.strip() else decline


def partial_text(answer: str, unanswered: Sequence[str]) -> str:
    """An answer that covers some of the parties asked about, and a note naming the rest."""
    if not unanswered:
        return answer
    return f"{answer}\n\n{PARTIAL_NOTE} {' and '.join(', '.join(unanswered).rsplit(', ', 1))}."


# Chosen among three wordings on 12 hand-written question/answer pairs (6 answers, 6 near
# misses): this one accepted all 6 answers and rejected 3 near misses; "does the answer give
# the information the question asks for" said No to 5 of 6 answers, "can the question be
# answered from the text" said Yes to everything.
RELEVANCE_SYSTEM = "You are a strict grader."


def _yes_no_question(fields: Sequence[tuple[str, str]], question: str) -> YesNo:
    """The labelled texts (spacing collapsed), then the question."""
    body = "".join(f"{label}: {' '.join(text.split())}\n" for label, text in fields)
    return YesNo(RELEVANCE_SYSTEM, f"{body}{question} Answer Yes or No.")


def relevance_question(question: str, answer: str) -> YesNo:
    """The relevance question: the question, the response, then the instruction."""
    return _yes_no_question([("Question", question), ("Response", answer)], "Does the response answer the question?")


class ModelAnswerJudge:
    """The verifier's Yes/No judge, asked the relevance question instead of the support one."""

    def __init__(self, judge: YesNoJudge) -> None:
        self._judge = judge

    def answers(self, question: str, answer: str) -> bool:
        return self._judge.yes(relevance_question(question, answer))


def rebuttal_question(claim: str, reply: str) -> YesNo:
    """The rebuttal question: the opponent's card, the reply, then the instruction. Both hold quotes
    from articles: their own markers are removed, as in every prompt (``prompts.source_line``)."""
    return _yes_no_question([("Claim", source_line(claim)), ("Reply", source_line(reply))],
                          "Does the reply respond to the claim (dispute, qualify or counter it)?")


class RebuttalCheck:
    """Does a rebuttal card answer the opponent card it names? The same rule as for answers:
    shared subject matter first (no content word in common is no answer), then the local model."""

    def __init__(self, judge: YesNoJudge | None = None) -> None:
        self.judge = judge

    def check(self, claim: str, reply: str) -> Relevance:
        started = time.perf_counter()
        claim_stems = {w.stem for w in words(claim) if is_content_word(w)}
        if not any(w.stem in claim_stems for w in words(reply) if is_content_word(w)):
            return Relevance(False, "it shares no subject with the card it names", "rules", time.perf_counter() - started)
        if self.judge is None:
            return Relevance(True, "", "rules", time.perf_counter() - started)
        yes = self.judge.yes(rebuttal_question(claim, reply))
        reason = "" if yes else "the model judged that it does not respond to the card it names"
        return Relevance(yes, reason, "llm", time.perf_counter() - started)
