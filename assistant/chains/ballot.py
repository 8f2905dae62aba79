"""The judge's ballot: each clash decided by the flow, with a reason made of the two cards' checked
claims; the dropped arguments; and a decision whose reason cites only cards.

A clash is a card and a card that answers it (``Card.answers``, which a rebuttal keeps only when
the rebuttal check found that it responds to the card it names).

Why the ballot is decided by rules and not by the model: asked to write a one-sentence reason and
pick the winner of each clash (one call under a JSON schema, four debates over two topics), the
1.5B model copied one card's tag as its "reason" in 8 of 9 clashes, picked the first card of the
pair in 7 of 9, and took 25-60 s per ballot on two cores. A reason that only repeats one quote
cannot be checked against both, and a pick that follows the order reads as arbitrary. So:

- **Who holds a clash** is the flow rule debaters judge by: an answer holds its clash unless the
  side it answered answered it back in turn (then the original argument holds). A thread of
  answers scores once, in its last clash: A1, answered by S1, answered back by A2 is one point
  for the side that made A2, not one for A1 and one for A2; and an answer that holds its clash
  does not score again as an argument the other side dropped.
- **Why** is one sentence built from the two cards' tags, each of which passed the tag check
  against its own quote (or is its trimmed quote): nothing in it is a claim of the judge's own.
- **Dropped arguments** come from the flow sheet (``assistant.chains.flow``, the one home of that rule):
  each counts for the side that made it, since the other side could have answered and did not.
  Arguments no later speech could name (the last speech's, and openings before a debate's other
  opening) are listed as not weighed, and so are cards after the openings that answer no card
  (new in a rebuttal: the other side is not held to answer them).
- **The criterion** the user chooses ("impact on regional security") is where the model judges:
  it names the clash that matters most on it (a choice among clash numbers, a few tokens), and
  that clash counts twice.
- **The decision** is the count: clashes held, the opponent's drops, the decisive clash again.
  A tie goes against the motion: the side for it has to prove it (presumption).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from assistant.core import prompts
from assistant.chains.flow import LAST_SPEECH, NEW_IN_REBUTTAL, UNLINKED, flow_of
from assistant.core.sides import AGAINST, FOR, SIDES, opponent
from assistant.models.structured import StructuredReply, structured_reply
from assistant.core.debate_record import SUPPORTED, Debate

DEFAULT_CRITERION = "the most direct evidence on the motion"
# The side a tie goes to: the side for the motion has to prove it.
PRESUMPTION = AGAINST


@dataclass
class ClashCall:
    """One clash: ``argument`` (the card answered), ``answer`` (the card answering it), the label of
    the card that holds it, and why, in one sentence made of the cards' own claims."""

    number: int
    argument: str
    answer: str
    winner: str | None  # None: neither holds it (a spar claim the sources support, against a card)
    reason: str


@dataclass
class Ballot:
    """The whole ballot, saved on the judge's turn (``DebateTurn.ballot``) and shown as its text."""

    criterion: str
    clashes: list[ClashCall] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # card labels, in flow order
    unweighed: list[str] = field(default_factory=list)  # unanswered, but no later speech could name them
    new_in_rebuttal: list[str] = field(default_factory=list)  # cards after the openings that answer no card
    decisive: int | None = None  # the clash the judge named as mattering most on the criterion
    score: dict[str, int] = field(default_factory=dict)  # role -> clashes held + the opponent's drops + decisive
    decision: str | None = None  # the winning role; None only when neither side has a card
    rfd: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Point:
    """An argument on the flow: a card (its tag), or a spar user's checked claim (its sentence and mark)."""

    label: str
    role: str
    text: str
    source: int | None
    answers: str | None = None
    mark: str | None = None  # a claim's check; None for a card

    @property
    def earns(self) -> bool:
        """Whether it can count for its side: every card (its quote is exact and its tag checked), a
        claim only when the sources support it."""
        return self.mark is None or self.mark == SUPPORTED

    def cited(self) -> str:
        return f"{self.label} [{self.source}]" if self.source else self.label


def points_of(debate: Debate) -> list[Point]:
    """Every card and every spar claim of ``debate``, in the order they were made."""
    points = []
    for turn in debate.turns:
        points += [Point(c.label, turn.role, c.text, c.source, None, c.mark) for c in turn.claims]
        points += [Point(c.label, c.role, c.tag, c.source, c.answers) for c in turn.cards]
    return points


def find_clashes(points: Sequence[Point]) -> list[tuple[Point, Point]]:
    """(argument, answer) for every card that answers another point, in the order the answers were given."""
    by_label = {p.label: p for p in points}
    return [(by_label[p.answers], p) for p in points if p.answers in by_label]


def clash_holder(argument: Point, answer: Point, points: Sequence[Point]) -> tuple[Point | None, str]:
    """The point that holds the clash by the flow rule (None: neither), and the reason, from the points' own
    checked text. A spar user cannot name what their sentences answer, so a claim the sources support
    against a card that answers it is even; one they do not support loses to the card's evidence."""
    if argument.mark is not None:
        if argument.earns:
            return None, (f"{answer.label} answers {argument.label} “{argument.text}” with “{answer.text}” "
                          f"[{answer.source}]; both rest on the sources, so neither holds it.")  # fmt: skip
        return answer, (f"{answer.label} answers {argument.label} “{argument.text}”, which the sources do not "
                        f"support ({argument.mark}), with “{answer.text}” [{answer.source}].")  # fmt: skip
    back = next((p for p in points if p.answers == answer.label and p.role == argument.role), None)
    if back is not None:
        return argument, (f"{argument.label} holds: {answer.label}'s answer “{answer.text}” was answered in turn by "
                          f"{back.label}, “{back.text}” [{back.source}].")  # fmt: skip
    return answer, (f"{answer.label} answers {argument.label}'s “{argument.text}” with “{answer.text}” [{answer.source}], "
                    "and that answer was not answered back.")  # fmt: skip


def decisive_clash(chat_model: BaseChatModel | None, motion: str, criterion: str,
                   clashes: Sequence[tuple[Point, Point]]) -> tuple[int | None, StructuredReply | None]:  # fmt: skip
    """The number of the clash the model says matters most on ``criterion`` (the only one when
    there is one; None without a model or with an unusable reply), and its reply."""
    if len(clashes) < 2:
        return (1 if clashes else None), None
    if chat_model is None:
        return None, None
    shown = "\n".join(
        f"Clash {n}: {prompts.source_line(a.text)} / answered by: {prompts.source_line(b.text)}"
        for n, (a, b) in enumerate(clashes, start=1)
    )
    user = prompts.DECISIVE_USER.format(motion=prompts.source_line(motion), criterion=criterion, clashes=shown)
    schema = {"type": "object", "required": ["clash"],
              "properties": {"clash": {"type": "integer", "enum": list(range(1, len(clashes) + 1))}}}  # fmt: skip
    reply = structured_reply(chat_model, [SystemMessage(prompts.BALLOT_SYSTEM), HumanMessage(user)], schema, 12)
    number = (reply.parsed or {}).get("clash")
    return (number if isinstance(number, int) and 1 <= number <= len(clashes) else None), reply


def judge_ballot(chat_model: BaseChatModel | None, motion: str, debate: Debate,
                 criterion: str = DEFAULT_CRITERION) -> tuple[Ballot, StructuredReply | None]:  # fmt: skip
    """The ballot of ``debate``'s cards and claims (its judge's turn not yet added), and the judge's
    reply (None when there was nothing to ask, or no model: the extractive baseline, a spar)."""
    points = points_of(debate)
    by_label = {p.label: p for p in points}
    ballot = Ballot(criterion=criterion, score={role: 0 for role in SIDES})
    clashes = find_clashes(points)
    for number, (argument, answer) in enumerate(clashes, start=1):
        holder, reason = clash_holder(argument, answer, points)
        ballot.clashes.append(ClashCall(number, argument.label, answer.label, holder.label if holder else None, reason))
        if holder is answer:  # an answer answered back scores in the clash that answers it: one point a thread
            ballot.score[holder.role] += 1
    flow = flow_of(debate)
    # An answer nobody answered back is on the flow as dropped, but it scored in the clash it holds.
    answers = {answer.label for _, answer in clashes}
    ballot.dropped = [label for label in flow.dropped if label in by_label and label not in answers]
    in_clash = {point.label for pair in clashes for point in pair}
    ballot.unweighed = [c.label for row in flow.rows for c in row.cells
                        if c.status in (LAST_SPEECH, UNLINKED) and c.label in by_label and c.label not in in_clash]  # fmt: skip
    ballot.new_in_rebuttal = [c.label for row in flow.rows for c in row.cells if c.status == NEW_IN_REBUTTAL]
    for label in ballot.dropped:
        ballot.score[by_label[label].role] += by_label[label].earns
    ballot.decisive, reply = decisive_clash(chat_model, motion, criterion, clashes)
    if ballot.decisive is not None and ballot.clashes[ballot.decisive - 1].winner:  # (even when carried forward)
        winner = ballot.clashes[ballot.decisive - 1].winner
        assert winner is not None  # the condition just above checked it
        ballot.score[by_label[winner].role] += 1
    if points:
        a, s = ballot.score[FOR], ballot.score[AGAINST]
        ballot.decision = FOR if a > s else AGAINST if s > a else PRESUMPTION
    ballot.rfd = reason_for_decision(ballot, by_label, debate.speakers())
    return ballot, reply


def _cited(labels: Sequence[str], by_label: dict[str, Point]) -> str:
    return ", ".join(by_label[label].cited() for label in labels)


def reason_for_decision(ballot: Ballot, by_label: dict[str, Point], speakers: dict[str, str]) -> str:
    """Why the winner won, citing cards and claims only: the clashes each side holds, the drops, the decisive clash."""
    if ballot.decision is None:
        return "Neither side put forward an argument, so there is nothing to decide."
    winner, loser = ballot.decision, opponent(ballot.decision)
    tied = ballot.score[winner] == ballot.score[loser]
    parts = [f"{speakers[winner]} wins {'on a tie, ' if tied else ''}{ballot.score[winner]} to {ballot.score[loser]}."]
    for role in (winner, loser):
        held = [c for c in ballot.clashes if c.winner == c.answer and by_label[c.winner].role == role]
        if held:
            listed = "; ".join(
                f"clash {c.number} ({_cited([c.answer], by_label)} over {_cited([c.argument], by_label)})" for c in held
            )
            parts.append(f"{speakers[role]} holds {listed}.")
        drops = [label for label in ballot.dropped if by_label[label].role == role and by_label[label].earns]
        if drops:
            counts = "counts" if len(drops) == 1 else "count"
            parts.append(f"{speakers[opponent(role)]} dropped {_cited(drops, by_label)}, which {counts} for {speakers[role]}.")
    if ballot.decisive is not None and len(ballot.clashes) > 1 and ballot.clashes[ballot.decisive - 1].winner:
        parts.append(f"Clash {ballot.decisive} matters most on {ballot.criterion}, so it counts twice.")
    if tied:
        parts.append(f"A tie goes against the motion: {speakers[FOR]} has to prove it.")
    return " ".join(parts)


def ballot_lines(ballot: Ballot, debate: Debate) -> list[str]:
    """The ballot as text lines (the judge's turn, a spar's scorecard): the criterion, a line per
    clash, the drops, what was not weighed, the decision."""
    by_label = {p.label: p for p in points_of(debate)}
    speakers = debate.speakers()
    lines = [f"Judged on {ballot.criterion}."]
    for clash in ballot.clashes:
        argument, answer = by_label[clash.argument], by_label[clash.answer]
        held = f"{speakers[by_label[clash.winner].role]} holds it." if clash.winner else "Neither side holds it."
        lines.append(f"Clash {clash.number}, {argument.cited()} against {answer.cited()}: {held} {clash.reason}")
    if not ballot.clashes:
        lines.append("No card answered another, so there is no clash to judge.")
    for label in ballot.dropped:
        point = by_label[label]
        unearned = "" if point.earns else f"; the sources do not support it ({point.mark}), so it counts for nothing"
        lines.append(f"Dropped: {label} “{point.text}”{f' [{point.source}]' if point.source else ''}: "
                     f"{speakers[opponent(point.role)]} could answer it and did not{unearned}.")  # fmt: skip
    if ballot.unweighed:
        lines.append(f"Not weighed, as no later speech could name them: {_cited(ballot.unweighed, by_label)}.")
    if ballot.new_in_rebuttal:
        lines.append(f"Not weighed, as new in a rebuttal (they answer no card): {_cited(ballot.new_in_rebuttal, by_label)}.")
    if ballot.decision is not None:
        lines.append(f"Decision: {speakers[ballot.decision]}. Reason for decision: {ballot.rfd}")
    else:
        lines.append(ballot.rfd)
    return lines
