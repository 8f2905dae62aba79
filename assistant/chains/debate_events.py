"""What a debate and a spar session stream, in the order the user sees it, and the spar scorecard.

The debate chain (``assistant.chains.debate``) and the spar chain (``assistant.chains.spar``) yield
these; the API's lines (``assistant.present.events``), the CLI and the web UI present them. They
live apart from the chains so that presenting an event does not load the chain that makes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from assistant.core.debate_record import Card, ClaimCheck, Debate, DebateTurn

if TYPE_CHECKING:  # annotations only: the scorecard carries the ballot the spar chain made
    from assistant.chains.ballot import Ballot


@dataclass(frozen=True)
class DebateStarted:
    """The debate is saved and its numbered sources are fixed; turns follow.

    ``hints``: for each side, the source numbers its own search found, best first.
    """

    debate: Debate
    hints: dict[str, list[int]] = field(default_factory=dict)


@dataclass(frozen=True)
class TurnStarted:
    index: int
    role: str
    kind: str
    speaker: str


@dataclass(frozen=True)
class TurnText:
    """Text of a turn as it becomes known (one card line at a time)."""

    index: int
    text: str


@dataclass(frozen=True)
class CardMade:
    """One evidence card of the turn ``index``, as soon as it is built."""

    index: int
    card: Card


@dataclass(frozen=True)
class TurnFinished:
    turn: DebateTurn


@dataclass(frozen=True)
class ClaimMarked:
    """One sentence of the user's turn ``index`` has been checked.

    ``final`` False: the rules' mark, shown at once while the local model's judge has yet to
    confirm or revise it. Every sentence gets one final mark (True), after all provisional ones;
    only final marks are saved and scored. Without a judge the rules' mark is the final one.
    """

    index: int
    claim: ClaimCheck
    final: bool = True


@dataclass(frozen=True)
class SideScore:
    role: str
    speaker: str
    claims: int
    supported: int
    contradicted: int
    not_found: int


@dataclass(frozen=True)
class UnusedCard:
    """Evidence of the user's own side that none of their claims drew on: source [n] and its sentence."""

    source: int
    quote: str


@dataclass
class Scorecard:
    """Per side: claims made, supported, contradicted, unfounded; what the user could have used; and,
    once the session is over, the judge's ballot (``assistant.chains.ballot``) and its text."""

    sides: list[SideScore]
    unused: list[UnusedCard] = field(default_factory=list)
    complete: bool = False
    ballot: Ballot | None = None
    ballot_text: str = ""
