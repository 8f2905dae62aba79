"""Check model text against the numbered passages it was shown (answers and debate turns alike).

Three steps, all deterministic:
1. ``citations.validate``: markers that name no shown passage are removed and reported;
   sentences with no marker are flagged as uncited.
2. Support: every cited sentence is scored against the passages it cites
   (``assistant.support``), including each passage's title/author label, which the model saw.
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
from collections.abc import Sequence
from dataclasses import dataclass, field

from assistant import prompts
from assistant.citations import normalise_markers, split_sentences, uncited_sentences
from assistant.retrieval import RetrievedPassage
from assistant.support import support_score

_MARKERS = re.compile(r"(?:\[\d+\])+")
# Fewer words than this make no checkable claim: such a sentence never inherits a citation.
MIN_CLAIM_WORDS = 4
_DECLINE_PATTERN = re.compile(
    r"sources? (?:don't|don’t|do not|does not|doesn't) (?:say|answer|mention|cover|contain)", re.I
)


def is_decline(text: str) -> bool:
    """True if ``text`` says the sources do not cover the question."""
    return bool(_DECLINE_PATTERN.search(text))


def evidence_text(passage: RetrievedPassage) -> str:
    """What a sentence citing ``passage`` may draw on: its text and the label the model saw."""
    return f"{prompts.source_label(passage, with_publisher=True)}\n{passage.text}"


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
        return Grounding(text=fallback, invalid_citations=self.invalid_citations)


def _repoint(sentence: str, passages: Sequence[RetrievedPassage], cited: list[int]) -> int | None:
    """The one shown passage that supports ``sentence`` best, if it supports it at all."""
    scores = [
        (support_score(sentence, [evidence_text(p)]), number)
        for number, p in enumerate(passages, start=1)
        if number not in cited
    ]
    good = sorted(((s.score, n) for s, n in scores if s.supported), reverse=True)
    if not good or (len(good) > 1 and good[0][0] == good[1][0]):
        return None
    return good[0][1]


def _repointed(sentence: str, number: int) -> str:
    """``sentence`` with its first marker group replaced by ``[number]`` and any others removed."""
    groups = itertools.count()
    fixed = _MARKERS.sub(lambda m: f"[{number}]" if next(groups) == 0 else "", sentence)
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", fixed).rstrip()


_COMPLETE_SENTENCE = re.compile(r"[.!?][\"'”’)]*(?:\s*\[\d+\])*")


def drop_unfinished_sentence(text: str) -> str:
    """``text`` up to its last complete sentence (and that sentence's markers).

    For replies cut off by the token limit: the half sentence at the end has lost its
    citation and often its meaning.
    """
    ends = list(_COMPLETE_SENTENCE.finditer(text))
    return text[: ends[-1].end()] if ends else text


def _with_marker(sentence: str, marker: str) -> str:
    """``sentence`` with ``marker`` before its closing punctuation: "It rained [2]." """
    ending = re.search(r"[.!?][\"'”’)]*$", sentence)
    return f"{sentence[: ending.start()]} {marker}{ending.group(0)}" if ending else f"{sentence} {marker}"


def _carry_paragraph_citations(text: str, n_sources: int, passages: Sequence[RetrievedPassage]) -> tuple[str, list[str]]:
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
            found = re.findall(r"\[(\d+)\]", sentence)
            if found:
                markers_after = found
            elif markers_after and len(sentence.split()) >= MIN_CLAIM_WORDS:
                numbers = [int(n) for n in markers_after if 1 <= int(n) <= n_sources]
                if numbers and support_score(sentence, [evidence_text(passages[n - 1]) for n in numbers]).supported:
                    sentence = _with_marker(sentence, "".join(f"[{n}]" for n in numbers))
                    carried.append(f"carried {''.join(f'[{n}]' for n in numbers)}: {sentence}")
            rebuilt.append(sentence)
        paragraphs.append(" ".join(reversed(rebuilt)) if sentences else paragraph)
    return "".join(paragraphs), list(reversed(carried))


def check_grounding(raw: str, passages: Sequence[RetrievedPassage]) -> Grounding:
    """Validate, score and repair the citations of ``raw`` against ``passages`` (numbered from 1)."""
    text, _, invalid = normalise_markers(raw, len(passages))
    carried_text, carried = _carry_paragraph_citations(text, len(passages), passages)
    if carried:
        text = normalise_markers(carried_text, len(passages))[0]  # tidy the rejoined spacing
    result = Grounding(
        text=text,
        invalid_citations=invalid,
        uncited_sentences=uncited_sentences(text, (prompts.DECLINE,)),
        corrected_citations=carried,
    )
    for sentence in split_sentences(result.text):
        numbers = [int(n) for n in re.findall(r"\[(\d+)\]", sentence)]
        if is_decline(sentence):
            continue
        if numbers and support_score(sentence, [evidence_text(passages[n - 1]) for n in numbers]).supported:
            result.supported_sentences.append(sentence)
            continue
        # No claim without a source: a sentence whose citation does not support it (as bad as an
        # invented one), or that has none, gets the one shown passage that supports it, or leaves
        # the shown text and is reported. An unmarked sentence too short to be a claim never
        # gets a passage: that drops what an article smuggled into the reply ("Arr, matey!"
        # when a passage orders a pirate voice), whose words match the injected passage.
        claim = bool(numbers) or len(sentence.split()) >= MIN_CLAIM_WORDS
        better = _repoint(sentence, passages, numbers) if claim else None
        if better is None:
            result.unsupported_sentences.append(sentence)
            text = text.replace(sentence, "", 1)
            continue
        fixed = _repointed(sentence, better) if numbers else _with_marker(sentence, f"[{better}]")
        text = text.replace(sentence, fixed, 1)
        result.supported_sentences.append(fixed)
        was = "".join(f"[{n}]" for n in numbers)
        result.corrected_citations.append(f"{was} -> [{better}]: {fixed}" if numbers else f"added [{better}]: {fixed}")
    result.text = re.sub(r"[ \t]{2,}", " ", re.sub(r"\n{3,}", "\n\n", text)).strip()
    result.cited = list(dict.fromkeys(int(n) for n in re.findall(r"\[(\d+)\]", text)))
    return result
