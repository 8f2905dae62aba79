"""What a debate or spar transcript is: its cards, claim checks, turns and status.

Plain data, shared by the chains that make a debate, the store that saves it
(``assistant.storage.transcripts``) and the exports that show it
(``assistant.present.transcript_export``), so none of them has to import another for its types.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from assistant.core.passage import NumberedPassage
from assistant.core.personas import MODERATOR_NAME, Persona

RUNNING = "running"
COMPLETE = "complete"
FAILED = "failed"
STOPPED = "stopped"  # cancelled mid-way (client gone, shutdown, time budget): the finished turns are kept
WAITING = "waiting"  # a spar session between turns: the user plays next, now or after a restart


@dataclass
class Card:
    """A piece of evidence as a debater cuts it: a tag (the claim in the debater's words), the
    quote (an exact sentence of a numbered source: ``source.text[start:end] == quote``) and
    the citation. ``tag_from`` is "model" when the model's tag passed its check against the
    quote, else "quote" (the tag is the trimmed quote; ``model_tag`` and ``tag_note`` say what
    the model wrote and why it was replaced). ``answers``: the opponent card a rebuttal card answers.
    """

    label: str  # "A1", "S2": unique in the debate
    role: str
    tag: str
    quote: str
    source: int  # the debate's source number [n]
    passage_id: str
    doc_id: str
    start: int
    end: int
    tag_from: str = "model"
    model_tag: str = ""
    tag_note: str = ""
    answers: str | None = None
    # Set when the card named an opponent card it did not answer (the link was dropped): why.
    answer_note: str = ""


SUPPORTED = "supported"
CONTRADICTED = "contradicted"
NOT_FOUND = "not found"


@dataclass
class ClaimCheck:
    """One sentence of a user's spar turn and what the library says of it.

    ``mark``: SUPPORTED (a passage states it), CONTRADICTED (the passage that speaks to it
    gives another number or the opposite polarity) or NOT_FOUND (no passage speaks to it, or
    the closest does not say it). ``source`` and ``quote``: the passage sentence that decided,
    exact text of the session's source ``source`` (None/"" when nothing came close).
    """

    label: str  # "U1", "U2": unique in the session, what the assistant's rebuttal cards name
    text: str
    mark: str
    reason: str = ""
    source: int | None = None
    quote: str = ""
    passage_id: str = ""
    coverage: float = 0.0


@dataclass
class DebateTurn:
    """One speaker's turn: what is shown, what the model wrote, and what the checks found."""

    index: int
    role: str  # "advocate", "skeptic" or "moderator"
    kind: str  # "opening", "rebuttal" or "summary"
    speaker: str
    text: str
    raw_text: str = ""
    cited: list[int] = field(default_factory=list)
    no_material: bool = False
    invalid_citations: list[str] = field(default_factory=list)
    corrected_citations: list[str] = field(default_factory=list)
    uncited_sentences: list[str] = field(default_factory=list)
    unsupported_sentences: list[str] = field(default_factory=list)
    repeated_sentences: list[str] = field(default_factory=list)  # said already in an earlier turn
    timing: dict = field(default_factory=dict)
    # Each checked sentence: text, supported, reason, evidence spans (passage_id, number, start, end, text).
    sentences: list[dict] = field(default_factory=list)
    cards: list[Card] = field(default_factory=list)  # empty for the moderator and for older debates
    # The judge's turn: each clash as ``assistant.chains.ballot.ClashCall`` fields (older debates: {"cards": [label,
    # label], "more_direct": label}), and the whole ballot (``Ballot.as_dict``; empty before ballots existed).
    clashes: list[dict] = field(default_factory=list)
    ballot: dict = field(default_factory=dict)
    claims: list[ClaimCheck] = field(default_factory=list)  # a user's spar turn: each sentence checked


@dataclass
class Debate:
    id: int
    motion: str
    created_at: str
    status: str
    rounds: int
    advocate: Persona
    skeptic: Persona
    sources: list[NumberedPassage]
    turns: list[DebateTurn] = field(default_factory=list)
    user_side: str | None = None  # a spar session: the side the user argues ("advocate" or "skeptic")

    def speakers(self) -> dict[str, str]:
        return {"advocate": self.advocate.name, "skeptic": self.skeptic.name, "moderator": MODERATOR_NAME}

    @property
    def is_spar(self) -> bool:
        return self.user_side is not None
