"""Check model text against the numbered passages it was shown (answers and debate turns alike).

Three steps, all deterministic:
1. ``citations.normalise_markers``: markers that name no shown passage are removed and reported;
   sentences with no marker are flagged as uncited (unless step 3 gives them their passage).
2. Support: every cited sentence is aligned with the sentence(s) of the passages it cites
   that say the same thing and verified against them (``assistant.checks.verify``: numbers, names,
   negation, coverage, then optionally the local model as a Yes/No judge). The evidence span
   is kept with the sentence, so the UI can show what the claim was checked against.
3. Repair: a small model often puts the right claim under the wrong number (the author-bio
   passage instead of the paragraph it just paraphrased). If the cited passages do not
   support a sentence but exactly one other shown passage supports it best, the marker is
   re-pointed to that passage and the change is reported. Likewise an unmarked sentence
   inherits the marker that closes its paragraph if that passage supports it ("A. B. [2]"),
   or else the one shown passage that supports it best. Sentences that no shown passage
   supports, cited or not, are removed from the text and reported: nothing shown makes a
   claim without a source (the honest decline sentence excepted).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from assistant.core import prompts
from assistant.checks.citations import markers_after_sentences, normalise_markers, uncited_sentences, with_marker
from assistant.checks.model_text import normalise_model_text
from assistant.core.passage import Passage
from assistant.core.text import CITATION, MARKER_RUN, marker_numbers, sentence_spans, split_sentences
from assistant.checks.verify import EvidenceSpan, Verdict, Verifier

_RULES = Verifier()  # the rules stage alone: cheap enough to try every shown passage when re-pointing
# Fewer words than this make no checkable claim: such a sentence never inherits a citation.
MIN_CLAIM_WORDS = 4
_DECLINE_PATTERN = re.compile(
    r"sources? (?:don't|don’t|do not|does not|doesn't) (?:say|answer|mention|cover|contain)", re.I
)


def is_decline(text: str) -> bool:
    """True if ``text`` says the sources do not cover the question."""
    return bool(_DECLINE_PATTERN.search(text))


@dataclass(frozen=True)
class CheckedSentence:
    """A sentence of the reply, whether it is shown as supported, why not, and its evidence."""

    text: str
    supported: bool
    reason: str = ""
    evidence: tuple[EvidenceSpan, ...] = ()
    stage: str = "rules"

    def as_dict(self) -> dict:
        return {"text": self.text, "supported": self.supported, "reason": self.reason, "stage": self.stage,
                "evidence": [e.as_dict() for e in self.evidence]}  # fmt: skip


@dataclass
class Grounding:
    """The checked text and everything that was wrong with the raw text."""

    text: str
    cited: list[int] = field(default_factory=list)
    supported_sentences: list[str] = field(default_factory=list)
    unsupported_sentences: list[str] = field(default_factory=list)
    uncited_sentences: list[str] = field(default_factory=list)
    invalid_citations: list[str] = field(default_factory=list)
    corrected_citations: list[str] = field(default_factory=list)  # "[2] -> [1]: <sentence>"
    sentences: list[CheckedSentence] = field(default_factory=list)  # every checked sentence, shown or withdrawn

    @property
    def grounded(self) -> bool:
        """At least one sentence carries a citation whose passage supports it."""
        return bool(self.supported_sentences)

    def shown(self, fallback: str) -> Grounding:
        """What may be shown: this result if grounded, else ``fallback`` with no citations or flags.

        Invalid markers stay reported either way: they were in what the model wrote.
        """
        if self.grounded:
            return self
        withdrawn = [CheckedSentence(s.text, False, s.reason or "withheld", s.evidence, s.stage) for s in self.sentences]
        return Grounding(text=fallback, invalid_citations=self.invalid_citations, sentences=withdrawn)


def _verdict(verifier: Verifier, sentence: str, passages: Sequence[Passage], numbers: Sequence[int],
             question: str = "") -> Verdict:  # fmt: skip
    """``sentence`` checked against the cited ``numbers`` (1-based into ``passages``), as an answer to ``question``."""
    return verifier.verify(sentence, [passages[n - 1] for n in numbers], list(numbers), question)


def _repoint(sentence: str, passages: Sequence[Passage], cited: list[int], question: str = "") -> int | None:
    """The one shown passage whose evidence supports ``sentence`` best (by the rules), if any does."""
    good = sorted(
        ((verdict.coverage, number) for number in range(1, len(passages) + 1) if number not in cited
         for verdict in [_verdict(_RULES, sentence, passages, [number], question=question)] if verdict.supported),
        reverse=True,
    )  # fmt: skip
    if not good or (len(good) > 1 and good[0][0] == good[1][0]):
        return None
    return good[0][1]


def _repointed(sentence: str, number: int) -> str:
    """``sentence`` with its first marker group replaced by ``[number]`` and any others removed."""
    groups = itertools.count()
    fixed = MARKER_RUN.sub(lambda m: f"[{number}]" if next(groups) == 0 else "", sentence)
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", fixed).rstrip()


_ENDED = re.compile(rf"[.!?][\"'”’)]*(?:\s*{CITATION.pattern})*$")


def drop_unfinished_sentence(text: str) -> str:
    """``text`` up to its last complete sentence (and that sentence's markers).

    For replies cut off by the token limit: the half sentence at the end has lost its
    citation and often its meaning. Sentences come from the one splitter, so "U.S." is not an end.
    """
    for span in reversed(sentence_spans(text)):
        if _ENDED.search(span.text):
            return text[: span.end]
    return text


def _carry_paragraph_citations(text: str, n_sources: int, passages: Sequence[Passage],
                               question: str = "") -> tuple[str, list[str]]:  # fmt: skip
    """Give an unmarked sentence the marker that closes its paragraph, if that passage supports it.

    Small models often cite once per paragraph ("A. B. C. [2]"). Each sentence carried this
    way is checked against the passage on its own, and the carry is reported.
    """
    carried: list[str] = []
    paragraphs = []
    for paragraph in re.split(r"(\n\s*\n)", text):
        sentences = split_sentences(paragraph) if paragraph.strip() else []
        markers_after: list[str] = []
        rebuilt: list[str] = []
        for sentence in reversed(sentences):
            found = [str(n) for n in marker_numbers(sentence)]
            if found:
                markers_after = found
            elif markers_after and len(sentence.split()) >= MIN_CLAIM_WORDS:
                numbers = [int(n) for n in markers_after if 1 <= int(n) <= n_sources]
                if numbers and _verdict(_RULES, sentence, passages, numbers, question=question).supported:
                    sentence = with_marker(sentence, "".join(f"[{n}]" for n in numbers))
                    carried.append(f"carried {''.join(f'[{n}]' for n in numbers)}: {sentence}")
            rebuilt.append(sentence)
        paragraphs.append(" ".join(reversed(rebuilt)) if sentences else paragraph)
    return "".join(paragraphs), list(reversed(carried))


def check_grounding(raw: str, passages: Sequence[Passage], verifier: Verifier | None = None,
                    question: str = "") -> Grounding:  # fmt: skip
    """Validate, verify and repair the citations of ``raw`` against ``passages`` (numbered from 1).

    ``verifier``: rules only when not given (``assistant.chains.configured_checks.make_verifier`` builds the configured one).
    ``question``: what ``raw`` answers; names and numbers it gives may be restated (``Verifier.rules``).
    """
    *_, result = iter_grounding(raw, passages, verifier, question)
    assert isinstance(result, Grounding)
    return result


def iter_grounding(
    raw: str, passages: Sequence[Passage], verifier: Verifier | None = None, question: str = ""
) -> Iterator[CheckedSentence | Grounding]:
    """``check_grounding`` step by step: each sentence's verdict as its check completes, then the result.

    The model stage takes about a second per sentence on a laptop CPU, so the UI and the API
    mark each sentence verified or withdrawn as it is decided instead of after the last one.
    """
    verifier = verifier or _RULES
    text, invalid, carried = _prepared(raw, passages, question)
    result = Grounding(
        text=text,
        invalid_citations=invalid,
        uncited_sentences=uncited_sentences(text, (prompts.DECLINE,)),
        corrected_citations=carried,
    )
    edits: list[tuple[int, int, str]] = []  # (start, end, new text) of sentences withdrawn or repaired
    for span in sentence_spans(text):
        sentence = span.text
        numbers = marker_numbers(sentence)
        if is_decline(sentence):
            continue
        verdict = _verdict(verifier, sentence, passages, numbers, question=question) if numbers else None
        if verdict is not None and verdict.supported:
            result.supported_sentences.append(sentence)
            result.sentences.append(CheckedSentence(sentence, True, "", verdict.evidence, verdict.stage))
            yield result.sentences[-1]
            continue
        # No claim without a source: a sentence whose citation does not support it (as bad as an
        # invented one), or that has none, gets the one shown passage that supports it, or leaves
        # the shown text and is reported. An unmarked sentence too short to be a claim never
        # gets a passage: that drops what an article smuggled into the reply ("Arr, matey!"
        # when a passage orders a pirate voice), whose words match the injected passage.
        claim = bool(numbers) or len(sentence.split()) >= MIN_CLAIM_WORDS
        better = _repoint(sentence, passages, numbers, question) if claim else None
        repointed = _verdict(verifier, sentence, passages, [better], question=question) if better is not None else None
        if repointed is None or not repointed.supported:
            final = repointed or verdict
            reason = final.reason if final else "no citation"
            result.unsupported_sentences.append(sentence)
            result.sentences.append(CheckedSentence(sentence, False, reason, final.evidence if final else (),
                                                    final.stage if final else "rules"))  # fmt: skip
            yield result.sentences[-1]
            edits.append((span.start, span.end, ""))
            continue
        assert better is not None  # repointed, checked just above, is set only when better is
        fixed = _repointed(sentence, better) if numbers else with_marker(sentence, f"[{better}]")
        if not numbers and sentence in result.uncited_sentences:  # it has its passage now: no longer uncited
            result.uncited_sentences.remove(sentence)
        edits.append((span.start, span.end, fixed))
        result.supported_sentences.append(fixed)
        result.sentences.append(CheckedSentence(fixed, True, "", repointed.evidence, repointed.stage))
        yield result.sentences[-1]
        was = "".join(f"[{n}]" for n in numbers)
        result.corrected_citations.append(f"{was} -> [{better}]: {fixed}" if numbers else f"added [{better}]: {fixed}")
    result.text = _edited(text, edits)
    result.cited = marker_numbers(result.text)
    yield result


def _prepared(raw: str, passages: Sequence[Passage], question: str) -> tuple[str, list[str], list[str]]:
    """(canonical text, invalid markers, carried citations): markers checked and rewritten (an invalid
    one reported before anything can drop it), the model's artefacts undone (``normalise_model_text``:
    the one point where a reply enters the checks), markers moved after the sentences they open,
    and carried to the unmarked sentences of their paragraph."""
    text, _, invalid = normalise_markers(raw, len(passages))
    text = markers_after_sentences(normalise_model_text(text, prompts.header_labels(passages)))
    carried_text, carried = _carry_paragraph_citations(text, len(passages), passages, question)
    if carried:
        text = normalise_markers(carried_text, len(passages))[0]  # tidy the rejoined spacing
    return text, invalid, carried


def _edited(text: str, edits: Sequence[tuple[int, int, str]]) -> str:
    """``text`` with each (start, end) span replaced, by offset: the same words earlier stay as they are."""
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return re.sub(r"[ \t]{2,}", " ", re.sub(r"\n{3,}", "\n\n", text)).strip()
