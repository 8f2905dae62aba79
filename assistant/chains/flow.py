"""The flow sheet: a saved debate or spar session laid out the way debaters keep it on paper.

One column per speech that put arguments down (cards, or a spar user's checked claims), in the
order they were given; one row per argument thread. An opening card (or a user's claim) starts a
row in its speech's column; every card that answers it (``Card.answers`` names its label) sits in
the same row, in its own speech's column, and answers to those answers continue the row. A
rebuttal card that answers nothing starts a row of its own. So a reader follows an argument
across the page and sees at once where it stopped.

What happened to an argument nobody answered (each cell's ``status``; the rule lives here only):

- ``dropped``: the other side gave a later speech that could have named it, and none of its
  cards did. In debate terms the other side conceded the point.
- ``last_speech``: the other side gave no later speech at all (the debate's final rebuttal, a
  spar closing answered by the assistant's last turn, a session or debate stopped half way). An
  argument made in the last speech cannot be answered, so it is "new in the last speech", never
  held against the side that had no chance to reply.
- ``unlinked``: the other side spoke later, but only in speeches that cannot name what they
  answer: a debate's openings (written from each side's own case, with no links) or a spar
  user's free text (claims carry no ``answers``). The user may well have answered in words; the
  flow cannot tell, so it says neither answered nor dropped.
- ``new_in_rebuttal``: a card after the openings that answers no card (its link was dropped by
  the rebuttal check, or it named none). Rebuttals answer; they do not open new arguments, so the
  other side is not held to answer it. Weighed as dropped, the side for the motion, whose
  rebuttal comes before the other side's last one, scored such cards in 8 of 10 one-round
  debates over three corpora (2026-12-07).

Pure functions over a ``Debate``: nothing is stored, so older transcripts get a flow too (one
without cards has no columns).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from assistant.core.sides import SIDES, opponent

if TYPE_CHECKING:  # only for annotations: transcripts imports this module for its Markdown export
    from assistant.core.debate_record import Debate, DebateTurn

ANSWERED = "answered"
DROPPED = "dropped"
LAST_SPEECH = "last_speech"
UNLINKED = "unlinked"
NEW_IN_REBUTTAL = "new_in_rebuttal"


@dataclass
class FlowColumn:
    """One speech: its turn index in the debate, role, kind and the speaker's shown name."""

    turn: int
    role: str
    kind: str
    speaker: str


@dataclass
class FlowCell:
    """One argument in one speech. ``text``: a card's tag or a user's sentence; ``mark``: a spar
    claim's check (supported, contradicted, not found), None for a card; ``column``: its index in
    ``Flow.columns``."""

    column: int
    label: str
    role: str
    text: str
    source: int | None
    mark: str | None
    answers: str | None
    status: str


@dataclass
class FlowRow:
    """One argument thread; a column may hold several cells (two answers to one card)."""

    cells: list[FlowCell] = field(default_factory=list)

    def by_column(self, columns: int) -> list[list[FlowCell]]:
        """The row's cells grouped under each of the flow's ``columns`` (empty lists where it is blank)."""
        return [[c for c in self.cells if c.column == at] for at in range(columns)]


@dataclass
class Flow:
    """Columns in speech order, rows in the order their threads started, and the labels of the
    dropped arguments (``status == DROPPED``) in flow order."""

    columns: list[FlowColumn] = field(default_factory=list)
    rows: list[FlowRow] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def flow_of(debate: Debate) -> Flow:
    """The flow sheet of ``debate`` (see the module docstring for the rows and the statuses)."""
    speeches = [t for t in debate.turns if t.cards or t.claims]
    answered = {c.answers for t in speeches for c in t.cards if c.answers}
    flow = Flow(columns=[FlowColumn(t.index, t.role, t.kind, t.speaker) for t in speeches])
    row_of: dict[str, FlowRow] = {}
    for column, turn in enumerate(speeches):
        for cell in _cells(turn, column, answered, _unanswered_status(debate, turn)):
            row = row_of.get(cell.answers or "")
            if row is None:
                row = FlowRow()
                flow.rows.append(row)
            row.cells.append(cell)
            row_of[cell.label] = row
    flow.dropped = [c.label for row in flow.rows for c in row.cells if c.status == DROPPED]
    return flow


def _cells(turn: DebateTurn, column: int, answered: set[str], unanswered: str) -> list[FlowCell]:
    """A speech's arguments as cells: its claims, else its cards; ANSWERED when a card names the
    label, else ``unanswered`` (what the speeches after this one make of it)."""

    def status(label: str, new_argument: bool = False) -> str:
        return ANSWERED if label in answered else NEW_IN_REBUTTAL if new_argument else unanswered

    if turn.claims:
        return [FlowCell(column, c.label, turn.role, c.text, c.source, c.mark, None, status(c.label))
                for c in turn.claims]  # fmt: skip
    # A card that answers nothing after the openings opens a new argument where only answers belong.
    return [FlowCell(column, c.label, c.role, c.tag, c.source, None, c.answers,
                     status(c.label, new_argument=turn.kind != "opening" and not c.answers)) for c in turn.cards]  # fmt: skip


def _unanswered_status(debate: Debate, turn: DebateTurn) -> str:
    """What an argument of ``turn`` that no card answers is: DROPPED, LAST_SPEECH or UNLINKED."""
    other = opponent(turn.role) if turn.role in SIDES else None
    later = [t for t in debate.turns if t.index > turn.index and t.role == other]
    if not later:
        return LAST_SPEECH
    return DROPPED if any(_names_what_it_answers(debate, t) for t in later) else UNLINKED


def _names_what_it_answers(debate: Debate, turn: DebateTurn) -> bool:
    """Whether ``turn``'s cards could name the opposing argument they answer: every assistant turn of
    a spar session, a debate's rebuttals; never a debate's openings or a spar user's free text."""
    if debate.is_spar:
        return turn.role != debate.user_side
    return turn.kind != "opening"


def flow_dict(debate: Debate) -> dict:
    """The flow sheet as JSON-ready data (the dataclasses as dicts)."""
    return asdict(flow_of(debate))


def _cell_markdown(cell: FlowCell) -> str:
    """``A1: tag [n]``, a claim's mark in italics, and what became of it when nobody answered."""
    text = f"{cell.label}: {cell.text}" + (f" [{cell.source}]" if cell.source else "")
    text = " ".join(text.split()).replace("|", "\\|")  # one line: a newline or a bar would end the cell
    if cell.mark:
        text += f" *({cell.mark})*"
    if cell.status == DROPPED:
        text += " **dropped**"
    elif cell.status == LAST_SPEECH:
        text += " *(last speech)*"
    elif cell.status == NEW_IN_REBUTTAL:
        text += " *(new in a rebuttal)*"
    return text


def flow_table(flow: Flow) -> list[str]:
    """The flow as Markdown table lines (none when there is nothing to flow); several cells of one
    speech in one row are joined by ``<br>``."""
    if not flow.columns:
        return []
    heads = [" ".join(f"{c.speaker} ({c.kind})".split()).replace("|", "\\|") for c in flow.columns]
    lines = ["| " + " | ".join(heads) + " |", "|" + " --- |" * len(heads)]
    for row in flow.rows:
        cells = ["<br>".join(_cell_markdown(c) for c in column) for column in row.by_column(len(heads))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def flow_section(debate: Debate) -> list[str]:
    """A transcript's "## Flow" section (nothing for a debate without cards or claims)."""
    table = flow_table(flow_of(debate))
    return ["## Flow", "", *table, ""] if table else []


def to_flow_markdown(debate: Debate) -> str:
    """The flow sheet alone, as a Markdown table (``da export N --format flow``)."""
    table = flow_table(flow_of(debate))
    return "\n".join(table) + "\n" if table else "No cards or claims to flow yet.\n"
