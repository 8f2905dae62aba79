"""Does the cited passage say what the sentence says? Align, then check meaning, then (optionally) ask.

Stage 0, alignment: the sentence is compared with every sentence of the passages it cites
(``assistant.core.text.sentence_spans``, so offsets are kept; none set aside at ingest because it
addresses the assistant) and the one or two that share most of its content words become its
*evidence*: a passage id plus character offsets plus text.
All later rules read only that evidence, not the whole passage: a name or year that occurs
elsewhere in the passage does not make a sentence about something else true.

Stage 1, rules (``verifier = "rules"``), each one a reason to reject:
- **numbers**: every number of the sentence (digits, number words, ordinals: "five" = 5,
  "third" = 3, "2,000" = 2000, "half a billion" = 500 million) must occur in the best
  evidence sentence, or in its context (the second aligned sentence and the two sentences
  before it) when the best sentence gives no rival number of the same kind (year or count);
  and a number must count the same thing: "two artillery shells" fails against "artillery
  shelled the island, killing two marines";
- **names**: every capitalised word not opening the sentence (every all-caps word, and the
  first word when the passage writes it as a name) must occur in the best evidence sentence,
  in its context when that sentence names nobody else or refers back with a pronoun ("He was
  sent home ..."), or in the document's title, author or publisher, which the sentence may
  name ("Lee argues ..."); "Korean" matches "Korea", "US" matches "United States";
- **polarity**: a negation or doubt word (not, no, never, none, without, unlikely, fail,
  doubt, wishful, rather than ...) on one side and none on the other rejects. In the
  evidence a cue counts only near the words the sentence shares with it (its scope);
- **coverage**: at least ``MIN_COVERAGE`` of the sentence's content words (stemmed, stop
  words and words of attribution removed) must occur in the evidence.

Stage 2, judge (``verifier = "rules+llm"``): sentences the rules pass, and refusals the rules
cannot settle (``UNDECIDED``), are put to the backend's model as a Yes/No question
(``yes_no.support_question``, decoded as ``judge`` describes), with the evidence and its
neighbouring sentences as the text; a quote-first short answer (``as_answer``, with its question
given) is asked about as an answer to that question (``yes_no.answer_question``, by the odds of Yes where
the backend gives them). The text comes
first and the statement last, so sentences citing the same passage share the evaluated prefix.
``Verifier.verify`` runs both; ``rules`` and ``confirm`` run one stage each (spar shows the
rules' mark at once and the judge's when it comes).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from itertools import takewhile
from typing import NamedTuple, Protocol

from assistant.core.lexicon import (
    ATTRIBUTION, MONTHS, alike, counted_after, denies_claim, found_in, is_content_word, is_dated, is_name, is_year,
    names_in, refers_back, same_word,
)
from assistant.core.passage import Passage, offered_sentences
from assistant.core.text import STOP_WORDS, Sentence, Word, number_key, sentence_spans, strip_markers, words

MIN_COVERAGE = 0.5
# How many sentences before the best one count as its context (what "it", "the North", "that summit" refer to).
CONTEXT_SENTENCES = 2


@dataclass(frozen=True)
class EvidenceSpan:
    """The sentence(s) of a passage a claim was checked against: ``passage.text[start:end] == text``."""

    passage_id: str
    start: int
    end: int
    text: str
    number: int | None = None  # the source number the answer uses for the passage, if numbered

    def as_dict(self) -> dict:
        return {"passage_id": self.passage_id, "number": self.number, "start": self.start, "end": self.end,
                "text": self.text}  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    """The decision on one sentence, why, and the evidence it was checked against."""

    supported: bool
    reason: str  # empty when supported
    evidence: tuple[EvidenceSpan, ...] = ()
    coverage: float = 0.0
    stage: str = "rules"  # which stage decided: "rules" or "llm"
    seconds: dict[str, float] = field(default_factory=dict)
    # Refused on a point the rules cannot settle (see ``UNDECIDED``); a judge, when there is one, decides.
    undecided: bool = False
    rule: str = ""  # which rule refused (one of ``RULES``), "" when supported: for code, ``reason`` is for people


# The rules a refusal names (``Verdict.rule``), so code acts on what refused, never on the wording of
# the reason: spar's "contradicted" (``CONFLICTS``), the refusals left to the judge (``UNDECIDED``).
NO_EVIDENCE, NUMBER, MISCOUNT = "no-evidence", "number", "miscount"
NAME, SPLICED_NAME, NAME_FORM = "name", "spliced-name", "name-form"
NEGATION_IN_CLAIM, NEGATION_IN_EVIDENCE, STANCE = "negation-in-claim", "negation-in-evidence", "stance"
TOO_FEW_WORDS, COVERAGE, JUDGE, NO_ANSWER = "too-few-words", "coverage", "judge", "no-answer"
RULES = frozenset({NO_EVIDENCE, NUMBER, MISCOUNT, NAME, SPLICED_NAME, NAME_FORM, NEGATION_IN_CLAIM,
                   NEGATION_IN_EVIDENCE, STANCE, TOO_FEW_WORDS, COVERAGE, JUDGE, NO_ANSWER})  # fmt: skip
# Refusals that say the evidence speaks to the sentence and says otherwise: another number, the
# other polarity (spar marks them "contradicted" when the evidence covers the sentence).
CONFLICTS = frozenset({NUMBER, MISCOUNT, NEGATION_IN_CLAIM, NEGATION_IN_EVIDENCE})
# Refusals the word rules cannot settle, left to the judge when there is one. A negation only the
# sentence carries may be the evidence's own point in other words ("warmth, not force" for "rather
# than"; "say nothing about" for "do not mention"); the rules see a cue on one side only. A negation
# only the evidence carries stays a rule: there the sentence asserts what the source denies.
UNDECIDED = frozenset({NEGATION_IN_CLAIM})
CLAIM_ONLY_NEGATION = "negation or doubt in the sentence only"
JUDGED_NO = "the model judged the evidence does not say this"


class Refusal(NamedTuple):
    """A rule a sentence breaks: its id (``RULES``) and the reason shown to people."""

    rule: str
    reason: str


@dataclass(frozen=True)
class _Candidate:
    passage: Passage
    number: int | None
    sentence: Sentence
    words: tuple[Word, ...]


def _miscounted(claim_words: Sequence[Word], evidence_words: Sequence[Word]) -> Refusal | None:
    """A number that counts one thing in the sentence and another in the evidence: "two artillery
    shells were fired" where the evidence says "artillery shelled the island, killing two marines".

    Fires only when what the sentence counts is mentioned in the evidence but the number does not
    stand before it there, where it counts something named; an elliptical count ("many reasons
    ..., but here are just three.") and a count of something the evidence never mentions ("three
    summits" for "met three times") are left to coverage and the judge.
    """
    for i, word in enumerate(claim_words):
        if word.number is None or is_dated(claim_words, i):
            continue
        counted = counted_after(claim_words, i)
        mentioned = [c for c in counted if any(same_word(c.stem, e.stem) for e in evidence_words if is_content_word(e))]
        spots = [j for j, e in enumerate(evidence_words)
                 if e.number is not None and number_key(e.number) == number_key(word.number) and not is_dated(evidence_words, j)]  # fmt: skip
        counts = [counted_after(evidence_words, j) for j in spots]
        if not mentioned or not counts or not all(counts):  # none there, or "here are just three."
            continue
        if not any(same_word(c.stem, e.stem) for after in counts for e in after for c in mentioned):
            return Refusal(MISCOUNT, f"number {word.surface!r} counts something else in the evidence")
    return None


def _only_in_a_name(claim_words: Sequence[Word], pool: Sequence[Word], meta: Sequence[Word], meta_text: str) -> Word | None:
    """A plain word of the claim that the evidence has only as another form inside a name: "Lee studied at
    Harvard" against "Center Associate at Harvard's Davis Center for Russian and Eurasian Studies". A
    name's "Studies" says nothing of studying. The same form ("the nuclear treaty" for "the Nuclear
    Non-Proliferation Treaty") is the thing itself, named, and counts."""
    names = {id(w) for w in names_in(list(pool))}  # by identity: the pool joins several sentences' words
    plain = [w for w in pool if id(w) not in names]
    in_names = [w for w in pool if id(w) in names]
    claim_names = {id(w) for w in names_in(list(claim_words))}  # "il's" of "Jong-il's" is a name's part too
    for word in claim_words:
        if not is_content_word(word) or word.capitalised or id(word) in claim_names or word.joined:
            continue
        if found_in(word, plain, "") or found_in(word, meta, meta_text):
            continue
        matches = [w for w in in_names if alike(word, w)]
        if matches and all(w.lower != word.lower for w in matches):
            return word
    return None


def _spliced_name(claim: str, claim_words: Sequence[Word], pool: Sequence[Word]) -> str | None:
    """Two adjacent name words of the claim that the evidence writes only inside *other* names:
    "Kim Moo-hyun" against "Kim Dae-jung and Roh Moo-hyun". Each word is in the evidence, so the
    name rule passes it, but no such person is. A word the evidence also writes on its own
    ("the U.S. and other governments") may be joined to another name ("U.S. Congress")."""
    in_pool = list(pool)
    name_ids = {id(w) for w in names_in(in_pool)}
    named_pairs = [(a, b) for a, b in zip(in_pool, in_pool[1:]) if id(a) in name_ids and id(b) in name_ids]

    def only_inside_names(word: Word) -> bool:
        occurrences = [w for w in in_pool if alike(word, w)]
        return bool(occurrences) and all(any(w is a or w is b for a, b in named_pairs) for w in occurrences)

    claim_names = {id(w) for w in names_in(list(claim_words))}
    for a, b in zip(claim_words, claim_words[1:]):
        a_named = id(a) in claim_names or (a.index == 0 and a.capitalised)  # "Kim Moo-hyun pursued ..."
        if not a_named or id(b) not in claim_names or b.index != a.index + 1:
            continue
        if a.lower in _TITLES or b.lower in _TITLES or a.surface.endswith(("'s", "’s")):
            continue
        if not re.search(rf"{re.escape(a.surface)}(?:\s+|-){re.escape(b.surface)}", claim):
            continue  # not one name: "According to Pritchard, Kim Jong-il ..."
        if any(alike(a, x) and alike(b, y) for x, y in named_pairs):
            continue
        if only_inside_names(a) and only_inside_names(b):
            run = [a, b, *takewhile(lambda w: w.joined, claim_words[b.index + 1 :])]
            return "".join(("-" if w.joined else " ") + w.surface for w in run).strip(" -")
    return None


# Words that stand before a name without being part of it ("President Kim", "leader Kim Jong Un").
_TITLES = frozenset(
    "president presidents leader leaders supreme chairman chairwoman secretary minister prime premier general "
    "professor dr mr mrs ms senator ambassador envoy king queen prince vice deputy foreign defense defence "
    "state first lady emeritus director chief editor".split()
)


def answer_with_question(claim: str, question: str) -> str:
    """A fragment that only makes sense as the answer ("October 2006 [4]" to "When did ...?"),
    as the statement it makes: the question followed by it. Any other sentence as it is; so is a
    fragment that names no value (a number or a name), such as a reply cut off mid-sentence."""
    ws = words(claim)
    names_a_value = any(w.number is not None or (w.capitalised and w.lower not in STOP_WORDS | ATTRIBUTION) for w in ws)
    if not question or sum(is_content_word(w) for w in ws) >= 2 or not names_a_value:
        return claim
    return f"{' '.join(question.split()).rstrip('?')}: {claim}"


# "the skeptic article says ...", "the pro-engagement author argues ...", "the article against the
# motion": which side a sentence attributes its claim to, in words that fit any motion (stances are
# for or against a library's motion). Words of attribution otherwise count for nothing, so this is
# checked apart.
_WORK = r"(?:article|author|piece|op-ed|essay|writer|side|view)"
_SIDE_NAMED = {
    "skeptic": re.compile(rf"\b(?:skeptic(?:al)?|sceptic(?:al)?|anti(?:-\w+)+)\s+{_WORK}|\b{_WORK}s?\s+against\s+the\s+motion", re.I),
    "advocate": re.compile(rf"\b(?:advocate'?s?|pro(?:-\w+)+)\s+{_WORK}|\b{_WORK}s?\s+(?:for|in\s+favou?r\s+of)\s+the\s+motion", re.I),
}


def named_side(text: str, stances: set[str]) -> tuple[str, str] | None:
    """(side named, side cited) when ``text`` names one side's article ("the skeptic article") and
    ``stances``, the stances of the documents it rests on, are all the other side's; else None."""
    for side, named in _SIDE_NAMED.items():
        other = "advocate" if side == "skeptic" else "skeptic"
        if named.search(text) and stances == {other}:
            return side, other
    return None


def _stance_conflict(claim: str, passages: Sequence[Passage]) -> Refusal | None:
    """The refusal when the sentence names one side's article but cites only the other side's."""
    if conflict := named_side(claim, {p.stance for p in passages}):
        return Refusal(STANCE, f"it attributes this to the {conflict[0]} side; its evidence is from the {conflict[1]} side")
    return None


def article_label(passage: Passage) -> str:
    """Title, author and publisher of the passage's article: what a sentence may name ("Lee argues ...")."""
    return " ".join(filter(None, (passage.title, passage.author, passage.publisher)))


class Judge(Protocol):
    def __call__(self, claim: str, context: str, label: str) -> bool: ...

    def answers(self, question: str, answer: str, context: str) -> bool: ...


class Verifier:
    """Aligns a sentence with its cited passages and decides whether they support it.

    ``judge``: the optional second stage (a ``yes_no.YesNoJudge``); ``None`` means rules only.
    """

    def __init__(self, judge: Judge | None = None, min_coverage: float = MIN_COVERAGE) -> None:
        self.judge = judge
        self.min_coverage = min_coverage
        self._sentences: dict[tuple[str, int, tuple[tuple[int, int], ...]], list[Sentence]] = {}
        self._guard = threading.Lock()

    @property
    def mode(self) -> str:
        return "rules+llm" if self.judge is not None else "rules"

    def _spans(self, passage: Passage) -> list[Sentence]:
        """The passage's sentences that may be evidence (``offered_sentences``: none set aside at ingest)."""
        key = (passage.id, hash(passage.text), passage.set_aside)
        with self._guard:
            if key not in self._sentences:
                if len(self._sentences) > 4096:
                    self._sentences.clear()
                self._sentences[key] = offered_sentences(passage)
            return self._sentences[key]

    def align(self, claim: str, passages: Sequence[Passage], numbers: Sequence[int | None] | None = None
              ) -> tuple[list[_Candidate], list[_Candidate]]:  # fmt: skip
        """The one or two sentences of ``passages`` sharing most content with ``claim``, and all candidates."""
        terms = [w for w in words(claim) if is_content_word(w) or w.number is not None]
        candidates: list[_Candidate] = []
        for i, passage in enumerate(passages):
            number = numbers[i] if numbers else None
            for sentence in self._spans(passage):
                candidates.append(_Candidate(passage, number, sentence, tuple(words(sentence.text))))
        if not candidates:
            return [], []

        def matched(c: _Candidate) -> set[int]:
            return {t.index for t in terms if found_in(t, c.words, c.sentence.text.lower())}

        def weight(indices: set[int]) -> float:
            by_index = {t.index: t for t in terms}
            return sum(2.0 if (by_index[i].number is not None or by_index[i].capitalised) else 1.0 for i in indices)

        scored = sorted(((weight(matched(c)), -k, c) for k, c in enumerate(candidates)), key=lambda x: (x[0], x[1]),
                        reverse=True)  # fmt: skip
        best = scored[0][2]
        chosen = [best]
        covered = matched(best)
        for _, _, other in scored[1:]:
            extra = matched(other) - covered
            if extra and weight(extra) >= 1.0:
                chosen.append(other)
                break
        return chosen, candidates

    def _all(self, passage: Passage) -> list[list[Word]]:
        """The words of every sentence of ``passage``."""
        return [words(span.text) for span in self._spans(passage)]

    def _antecedents(self, candidate: _Candidate) -> tuple[Word, ...]:
        """Words of the ``CONTEXT_SENTENCES`` sentences just before ``candidate``: in its passage,
        and for a passage's first sentences, at the end of the one before (its ``lead_in``)."""
        spans = self._spans(candidate.passage)
        at = next((i for i, s in enumerate(spans) if s.start == candidate.sentence.start), 0)
        before = [span.text for span in spans[max(0, at - CONTEXT_SENTENCES) : at]]
        if at < CONTEXT_SENTENCES:
            lead_in = candidate.passage.lead_in
            before = [span.text for span in sentence_spans(lead_in)][-(CONTEXT_SENTENCES - at) :] + before if lead_in else before
        return tuple(w for text in before for w in words(text))

    def rules(self, claim: str, passages: Sequence[Passage], numbers: Sequence[int | None] | None = None,
              given: str = "") -> Verdict:  # fmt: skip
        """Stage 1 only: alignment plus the number, name, polarity and coverage rules.

        ``given``: the question the sentence answers. A name or number the question itself gives
        ("Which NGO effort ...", "... July 2014 threat ...") is the user's premise, restated: it
        must be in a cited passage, not necessarily in the sentence the claim is aligned with.
        """
        claim = answer_with_question(claim, given)
        chosen, _ = self.align(claim, passages, numbers)
        if not chosen:
            return Verdict(False, "no passage to check against", rule=NO_EVIDENCE)
        evidence = tuple(
            EvidenceSpan(c.passage.id, c.sentence.start, c.sentence.end, c.sentence.text, c.number) for c in chosen
        )
        pool = [w for c in chosen for w in c.words]
        pool_text = " ".join(c.sentence.text for c in chosen).lower()
        meta_text = " ".join(article_label(p) for p in passages)
        meta = words(meta_text)
        claim_words = words(claim)
        premise = self._premise(given, passages)
        reject = self._reject(claim, claim_words, chosen, meta, meta_text.lower(), premise)
        terms = [w for w in claim_words if is_content_word(w)]
        found = [w for w in terms if found_in(w, pool, pool_text) or found_in(w, meta, meta_text.lower())]
        coverage = len(found) / len(terms) if terms else 0.0
        reject = reject or _stance_conflict(claim, passages)
        if reject:  # undecided only when every other rule passes: then only the judge can tell
            checkable = len(terms) >= 2 and coverage >= self.min_coverage
            return Verdict(False, reject.reason, evidence, coverage, undecided=checkable and reject.rule in UNDECIDED,
                           rule=reject.rule)  # fmt: skip
        if len(terms) < 2:
            return Verdict(False, "too few words to make a checkable claim", evidence, coverage, rule=TOO_FEW_WORDS)
        if coverage < self.min_coverage:
            return Verdict(False, f"only {coverage:.0%} of its words are in the evidence", evidence, coverage,
                           rule=COVERAGE)  # fmt: skip
        return Verdict(True, "", evidence, coverage)

    def _premise(self, given: str, passages: Sequence[Passage]) -> list[Word]:
        """Names and numbers of the question ``given`` that the cited passages contain."""
        if not given:
            return []
        text = " ".join(p.text for p in passages)
        pool = words(text)
        numbers = {number_key(w.number) for w in pool if w.number is not None}
        asked = words(given)
        return [w for w in asked
                if (w.number is not None and number_key(w.number) in numbers)
                or (w.number is None and is_name(w, None) and found_in(w, pool, text.lower()))]  # fmt: skip

    def _reject(self, claim: str, claim_words: list[Word], chosen: list[_Candidate], meta: list[Word],
                meta_text: str, premise: Sequence[Word] = ()) -> Refusal | None:  # fmt: skip
        """The first rule the claim breaks against its best evidence sentence, or None.

        Numbers and names must be in the best sentence. They may come from its context (the
        second aligned sentence and the sentences just before it: what "it", "the North" or
        "that summit" refer to) only when the best sentence names no *other* person, place or
        number: "Roh Moo-hyun met Kim" must not pass where the sentence says "Kim Dae-jung met
        Kim" and the sentence before mentions Roh. A pronoun in the best sentence lets names
        come from the context anyway ("He was sent home ..." after "Otto Warmbier was arrested").
        """
        best = chosen[0]
        context = [w for c in chosen[1:] for w in c.words] + list(self._antecedents(best))
        claim_text = claim.lower()
        claim_numbers = {number_key(w.number) for w in claim_words if w.number is not None}
        best_numbers = {(number_key(w.number), is_year(w)) for w in best.words if w.number is not None}
        context_numbers = {number_key(w.number) for w in context if w.number is not None}
        premise_numbers = {number_key(w.number) for w in premise if w.number is not None}
        for word in claim_words:
            if word.number is None or (number_key(word.number), is_year(word)) in best_numbers:
                continue
            if number_key(word.number) in {n for n, _ in best_numbers} | premise_numbers:
                continue
            # A year may come from the context unless the best sentence gives another year; a count likewise.
            rival = any(year == is_year(word) and n not in claim_numbers for n, year in best_numbers)
            if rival or number_key(word.number) not in context_numbers:
                return Refusal(NUMBER, f"number {word.surface!r} is not in the evidence")
        if miscounted := _miscounted(claim_words, best.words):
            return miscounted
        competing = [w for w in names_in(list(best.words)) if w.lower not in MONTHS
                     and not found_in(w, claim_words, claim_text) and not found_in(w, meta, meta_text)]  # fmt: skip
        pool = list(best.words)
        if not competing or refers_back(best.words):
            pool += context
        pool_text = " ".join(w.surface for w in pool).lower()
        proper = frozenset(w.lower for c in self._all(best.passage) for w in names_in(c))
        for word in names_in(claim_words, proper):
            if not (found_in(word, pool, pool_text) or found_in(word, meta, meta_text) or found_in(word, premise, "")):
                return Refusal(NAME, f"name {word.surface!r} is not in the evidence")
        if spliced := _spliced_name(claim, claim_words, pool):
            return Refusal(SPLICED_NAME, f"name {spliced!r} is not in the evidence: its parts belong to other names there")
        if only_in_a_name := _only_in_a_name(claim_words, pool, meta, meta_text):
            return Refusal(NAME_FORM, f"{only_in_a_name.surface!r} is in the evidence only as another form of a word in a name")
        # Each side's negation counts where it governs what the two share ("Seoul would not try to swallow
        # the North" against "not attempt to absorb the North" shares only the name: neither denies it).
        claim_negated = denies_claim(claim, [w for w in best.words if is_content_word(w) or w.number is not None])
        evidence_negated = denies_claim(best.sentence.text, [t for t in claim_words if is_content_word(t) or t.number is not None])
        if claim_negated != evidence_negated:
            if claim_negated:
                return Refusal(NEGATION_IN_CLAIM, CLAIM_ONLY_NEGATION)
            return Refusal(NEGATION_IN_EVIDENCE, "negation or doubt in the evidence only")
        return None

    def verify(self, claim: str, passages: Sequence[Passage], numbers: Sequence[int | None] | None = None,
               given: str = "", as_answer: bool = False) -> Verdict:  # fmt: skip
        """Rules, then (if configured) the judge on what the rules pass; ``given`` as in ``rules``;
        ``as_answer``: the claim is the whole answer to the ``given`` question (a quote-first short
        answer), so the judge is asked whether it answers it correctly, not only whether it is true."""
        started = time.perf_counter()
        verdict = self.rules(claim, passages, numbers, given)
        verdict = replace(verdict, stage="rules", seconds={"rules": time.perf_counter() - started})
        return self.confirm(verdict, claim, passages, given, as_answer)

    def confirm(self, verdict: Verdict, claim: str, passages: Sequence[Passage], given: str = "",
                as_answer: bool = False) -> Verdict:  # fmt: skip
        """Stage 2 only: the judge's Yes or No on a ``verdict`` of ``rules`` for the same claim, passages
        and ``given``. Apart from ``verify`` so a caller can show the rules' decision first and the
        judge's after (spar). The judge withdraws support the rules gave, and decides the refusals
        the rules cannot settle (``Verdict.undecided``): its Yes supports those, its No keeps the
        rules' reason. Any other refusal, or no judge, comes back as it is, at no model call."""
        if not (verdict.supported or verdict.undecided) or self.judge is None:
            return verdict
        started = time.perf_counter()
        by_id = {p.id: p for p in passages}
        first = by_id[verdict.evidence[0].passage_id]
        context = judge_context(first, self._spans(first), verdict.evidence)
        label = article_label(first)
        # Without its markers: asked about "... Peninsula [1].", the 1.5B judge says No to a sentence
        # it accepts without the "[1]" (measured on real answers; the claim sets have no markers).
        # The whole answer to a ``given`` question is asked about as an answer: true is not enough.
        # A sentence of a free answer is asked whether it is true (a fragment with its question).
        if as_answer and given:
            yes = self.judge.answers(given, strip_markers(claim), context)
        else:
            yes = self.judge(strip_markers(answer_with_question(claim, given)), context, label)
        seconds = {**verdict.seconds, "llm": time.perf_counter() - started}
        if yes:
            return replace(verdict, supported=True, reason="", rule="", undecided=False, stage="llm", seconds=seconds)
        if verdict.undecided:  # the judge agrees with the rules' refusal
            return replace(verdict, undecided=False, stage="llm", seconds=seconds)
        return replace(verdict, supported=False, reason=JUDGED_NO, rule=JUDGE, stage="llm", seconds=seconds)


def judge_context(passage: Passage, spans: Sequence[Sentence], evidence: Sequence[EvidenceSpan]) -> str:
    """The evidence sentences of ``passage`` and one sentence either side of them, in passage order;
    for a passage's first sentence, the one before is the last of its ``lead_in`` ("that summit")."""
    mine = {(e.start, e.end) for e in evidence if e.passage_id == passage.id}
    keep: set[int] = set()
    for i, span in enumerate(spans):
        if (span.start, span.end) in mine:
            keep.update(j for j in (i - 1, i, i + 1) if 0 <= j < len(spans))
    lead_in = passage.lead_in
    before = [sentence_spans(lead_in)[-1].text] if 0 in keep and lead_in.strip() else []
    return " ".join(before + [spans[i].text for i in sorted(keep)])
