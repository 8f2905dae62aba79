"""A saved debate as Markdown, a brief or JSON, and a spar session with its scorecard: what the CLI,
the API and the web app export."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from assistant.chains.flow import flow_dict, flow_section
from assistant.core.debate_record import COMPLETE, NOT_FOUND, Card, Debate, DebateTurn
from assistant.core.passage import NumberedPassage
from assistant.core.prompts import source_label
from assistant.core.sides import DIRECTIONS, side_label
from assistant.present.cite import cite_line

if TYPE_CHECKING:  # annotations only: a scorecard is rendered, not made, here
    from assistant.chains.debate_events import Scorecard

_KIND_TITLES = {"opening": "Opening", "rebuttal": "Rebuttal", "summary": "Summary"}


def turn_title(turn: DebateTurn) -> str:
    """"Opening", "Rebuttal", "Closing"; the judge's turn is a "Ballot" (a "Summary" in debates saved before ballots)."""
    return "Ballot" if turn.ballot else _KIND_TITLES.get(turn.kind, turn.kind.capitalize())


def to_markdown(debate: Debate) -> str:
    """The transcript as Markdown: turns with their [n] markers, the flow sheet, then the numbered references."""
    speakers = debate.speakers()
    lines = [
        f"# Debate: {debate.motion}",
        "",
        f"*{debate.created_at}. {speakers['advocate'].capitalize()} versus {speakers['skeptic']}, "
        f"{debate.rounds} rebuttal round{'s' if debate.rounds != 1 else ''}."
        + ("" if debate.status == COMPLETE else f" Status: {debate.status}.")
        + "*",
        "",
    ]
    for turn in debate.turns:
        body = "\n".join(card_markdown(card) for card in turn.cards) if turn.cards else turn.text.replace("\n", "\n\n")
        lines += [f"## {turn_title(turn)}: {turn.speaker}", "", body, ""]
        flagged = [f"no citation: {s}" for s in turn.uncited_sentences]
        flagged += [f"not supported by its source: {s}" for s in turn.unsupported_sentences]
        flagged += [f"repeats an earlier turn: {s}" for s in turn.repeated_sentences]
        if flagged:
            lines += [f"> Flagged: {item}" for item in flagged] + [""]
    lines += flow_section(debate)
    lines += references_markdown(debate)
    return "\n".join(lines).rstrip() + "\n"


def references_markdown(debate: Debate) -> list[str]:
    """The numbered references: each source's label, file and offsets, and its text as a quote."""
    lines = ["## References", ""]
    for source in debate.sources:
        quote = " ".join(source.text.split())
        lines.append(
            f"{source.number}. {source_label(source.passage, with_publisher=True)}. {source.source}, "
            f"characters {source.passage.start}-{source.passage.end}."
        )
        lines.append(f"   > {quote}")
    return lines


def card_markdown(card: Card) -> str:
    """A card as a debater prints it: the tag in bold, the quote as a block quote, the citation."""
    answers = f" *(answers {card.answers})*" if card.answers else (f" *({card.answer_note})*" if card.answer_note else "")
    checked = "" if card.tag_from == "model" else " *(tag: trimmed quote)*"
    return f"**{card.label}. {card.tag}**{answers}{checked}\n\n> “{card.quote}” [{card.source}]\n"


def _document_name(source: NumberedPassage) -> str:
    return Path(source.source).name or source.source


def to_brief(debate: Debate) -> str:
    """Every card grouped by side: the debate as a brief to print. Each card is cited as the Word cards
    cite it (``assistant.present.cite.cite_line``: author, date, title, publisher, URL or file name, source
    number), then the passage id and stance, which let a reader find the passage and its side again."""
    sources = {s.number: s for s in debate.sources}
    speakers = debate.speakers()
    lines = [f"# Brief: {debate.motion}", ""]
    for role in ("advocate", "skeptic"):
        cards = [c for t in debate.turns for c in t.cards if c.role == role]
        lines += [f"## {speakers[role].capitalize()}", ""]
        if not cards:
            lines += ["(no cards)", ""]
        for card in cards:
            source = sources.get(card.source)
            answers = f" (answers {card.answers})" if card.answers else ""
            cite = (f"{cite_line(source)}; passage {source.passage.id}, stance {source.stance}." if source is not None
                    else f"Source [{card.source}] is missing from the saved debate; passage {card.passage_id}.")  # fmt: skip
            lines += [
                f"### {card.label}. {card.tag}{answers}",
                "",
                cite,
                "",
                f"> “{card.quote}”",
                "",
            ]
    return "\n".join(lines).rstrip() + "\n"


def to_json(debate: Debate) -> dict:
    """Per turn and card: role, tag, quote, passage id, document id, document file name and stance;
    and the flow sheet (``assistant.chains.flow``) under "flow"."""
    sources = {s.number: s for s in debate.sources}

    def card_dict(card: Card) -> dict:
        source = sources[card.source]
        return {
            "label": card.label, "role": card.role, "tag": card.tag, "tag_from": card.tag_from, "quote": card.quote,
            "answers": card.answers, "source": card.source, "passage_id": card.passage_id, "doc_id": card.doc_id,
            "document": _document_name(source), "stance": source.stance, "start": card.start, "end": card.end,
        }  # fmt: skip

    return {
        "id": debate.id, "motion": debate.motion, "created_at": debate.created_at, "status": debate.status,
        "rounds": debate.rounds,
        "turns": [
            {"index": t.index, "role": t.role, "kind": t.kind, "speaker": t.speaker, "text": t.text,
             "cards": [card_dict(c) for c in t.cards], "clashes": t.clashes, "cited": t.cited}
            for t in debate.turns
        ],
        "flow": flow_dict(debate),
    }  # fmt: skip


def scorecard_markdown(card: Scorecard) -> str:
    """The scorecard as a Markdown table plus the unused evidence list."""
    lines = ["| side | claims | supported | contradicted | not found |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {side_label(s.speaker, s.role)} | {s.claims} | {s.supported} | {s.contradicted} | {s.not_found} |" for s in card.sides]
    if card.unused:
        lines += ["", "Evidence for your side you did not use:", ""]
        lines += [f"- “{u.quote}” [{u.source}]" for u in card.unused]
    if card.ballot_text:
        lines += ["", "Ballot:", "", *(f"- {line}" for line in card.ballot_text.splitlines())]
    return "\n".join(lines)


def to_spar_markdown(debate: Debate, card: Scorecard) -> str:
    """A session as Markdown: each user turn with its marks, the assistant's cards, the scorecard, the flow
    sheet, references."""
    lines = [f"# Spar: {debate.motion}", "",
             f"*{debate.created_at}. You argue {DIRECTIONS.get(debate.user_side or '', '')} the motion; status: {debate.status}.*",
             ""]  # fmt: skip
    for turn in debate.turns:
        lines += [f"## {turn.kind.capitalize()}: {turn.speaker}", ""]
        if turn.claims:
            for claim in turn.claims:
                cited = f" [{claim.source}]" if claim.source else ""
                lines.append(f"- **{claim.label}** {claim.text} — *{claim.mark}*{cited}")
                if claim.quote and claim.mark != NOT_FOUND:
                    lines.append(f"  > “{claim.quote}”")
            lines.append("")
        elif turn.cards:
            lines += [card_markdown(c) for c in turn.cards]
        else:
            lines += [turn.text, ""]
    lines += ["## Scorecard", "", scorecard_markdown(card), "", *flow_section(debate), *references_markdown(debate)]
    return "\n".join(lines).rstrip() + "\n"
