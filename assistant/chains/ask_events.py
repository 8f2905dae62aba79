"""The events of an ask, in the order the user sees them, and the answer they end in.

Free prose (``assistant.chains.qa``) and quote-first answers (``assistant.chains.quote_answer``)
stream the same events and end in the same ``Answer``, so the API, the CLI and the UI present
both the same way. They live here, apart from either chain, so neither chain imports the other
for its types.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from assistant.checks.grounding import CheckedSentence
from assistant.checks.verify import EvidenceSpan
from assistant.core.passage import NumberedPassage, Passage
from assistant.core.text import Sentence
from assistant.models.timing import Timing


@dataclass(frozen=True)
class SourcesFound:
    """The numbered sources of the prompt, shown the moment retrieval ends: the model needs
    seconds to read them before its first word, and the user can start reading too."""

    passages: list[Passage]
    texts: list[str]


@dataclass(frozen=True)
class SentenceChecked:
    """One sentence of the reply, decided as its check completes: supported (with its evidence) or withdrawn."""

    index: int
    sentence: CheckedSentence


@dataclass
class Answer:
    """An answer as shown to the user, with its cited passages, what was fixed or flagged, and timing.

    ``text`` is what may be shown; ``raw_text`` is what the model wrote. ``declined`` covers
    both an honest decline and a *withheld* reply (no supported citation at all).
    """

    question: str
    standalone_question: str
    text: str
    raw_text: str
    declined: bool
    passages: list[Passage]
    citations: list[NumberedPassage] = field(default_factory=list)
    invalid_citations: list[str] = field(default_factory=list)
    corrected_citations: list[str] = field(default_factory=list)
    uncited_sentences: list[str] = field(default_factory=list)
    unsupported_sentences: list[str] = field(default_factory=list)
    withheld: bool = False
    timing: Timing = field(default_factory=Timing)
    # Every checked sentence with its verdict and evidence span (withdrawn ones included).
    sentences: list[CheckedSentence] = field(default_factory=list)
    # The relevance check: None when it did not run (declined, withheld, or switched off);
    # False means the supported sentences are shown only as "Related, but not an answer".
    answers_question: bool | None = None
    relevance_reason: str = ""
    # Parties the question asks the same of that nothing shown answers for ("Lee" of "Lee and
    # Gurtov each"): the answer is partial, and ``text`` ends with a note naming them.
    unanswered_parts: list[str] = field(default_factory=list)
    # Quote-first answers only (``answer_mode = "quotes"``, ``assistant.chains.quote_answer``): the short
    # answer shown ("" when none passed its check) and the chosen quotes (sentence, passage id,
    # source number, offsets). Empty in free mode.
    answer: str = ""
    quotes: list[dict] = field(default_factory=list)

    @property
    def not_an_answer(self) -> bool:
        return self.answers_question is False


@dataclass(frozen=True)
class EvidenceSentence:
    """A sentence the model may pick: its prompt id, the source number of its passage and its offsets."""

    id: int
    number: int
    passage: Passage
    sentence: Sentence

    @property
    def quote(self) -> str:
        """The sentence as the passage has it (``passage.text[start:end]``)."""
        return self.passage.text[self.sentence.start : self.sentence.end]

    def as_dict(self) -> dict:
        return {"sentence": self.quote, "passage_id": self.passage.id, "number": self.number,
                "start": self.sentence.start, "end": self.sentence.end}  # fmt: skip

    def span(self) -> EvidenceSpan:
        return EvidenceSpan(self.passage.id, self.sentence.start, self.sentence.end, self.quote, self.number)

    def line(self) -> str:
        """The quote as shown to the user: verbatim, in quotation marks, with its source number."""
        return f"“{self.quote}” [{self.number}]"


@dataclass(frozen=True)
class QuoteFound:
    """A quote the model has chosen, shown as soon as its id is complete (before the short answer)."""

    index: int
    quote: EvidenceSentence

    @property
    def display(self) -> str:
        return self.quote.line() + "\n"
