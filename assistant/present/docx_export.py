"""Evidence cards as a Word document, laid out the way debaters file evidence: one saved debate's
(``to_docx``), or every card on a motion from all saved debates and spar sessions (``motion_docx``).

Debaters keep and trade evidence as .docx files: each card is a tag (a heading, so it shows in
Word's navigation pane), a cite line (author, date, title, publisher, where to find it), and the
whole paragraph the quote was cut from, with the part that is read aloud highlighted. Printing the
paragraph around the quote lets a reader check that the quote is not taken out of context. The
Markdown brief (``to_brief``) prints the same cite line (``assistant.present.cite``, the one rule for
both), then the passage id and stance, and the quote alone.

A debater files evidence by motion, not by debate: ``motion_docx`` puts every card cut on one
motion into one file, by side, each quote once (``file_cards``).

Every string comes from an article, a user or the model, and an article may hold characters
that XML 1.0 cannot (NUL, other control characters, lone surrogates): python-docx refuses them
with a ValueError, so each one is dropped before it reaches the document (``xml_safe``).
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace

from docx import Document
from docx.document import Document as WordDocument
from docx.enum.text import WD_COLOR_INDEX
from docx.text.paragraph import Paragraph

from assistant.core.errors import UserError
from assistant.present.cite import cite_line, one_line
from assistant.core.passage import NumberedPassage
from assistant.core.sides import SIDE_CHOICES, SIDES
from assistant.core.text import text_key, xml_safe
from assistant.core.debate_record import Card, Debate

DOCX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
NO_CARDS = "No cards for this side."
TRIMMED_QUOTE_NOTE = " (tag: trimmed quote)"
# A motion's file has one heading per side, named for the side rather than for any debate's speakers.
SIDE_HEADINGS = {side: label.capitalize() for label, side in SIDE_CHOICES}  # "For the motion", "Against the motion"


class NoCardsError(UserError, LookupError):
    """No saved debate or spar session on a motion has a card: said plainly rather than sent as an
    empty document (the CLI exits non-zero, the REST API answers 404, the UI shows the message)."""

    status = 404


@dataclass(frozen=True)
class FiledCard:
    """A card as a document files it: the card, its source (None when the saved debate lost it),
    and a note for its heading ("in 3 debates")."""

    card: Card
    source: NumberedPassage | None
    note: str = ""


def to_docx(debate: Debate) -> bytes:
    """Every card of ``debate`` grouped by side, as the bytes of a .docx file."""
    document = _titled(debate.motion)
    document.add_paragraph(f"Evidence cards of debate {debate.id}, {xml_safe(debate.created_at)}.")
    sources = {s.number: s for s in debate.sources}
    speakers = debate.speakers()
    for role in SIDES:
        cards = [FiledCard(c, sources.get(c.source)) for t in debate.turns for c in t.cards if c.role == role]
        _add_side(document, speakers[role].capitalize(), cards)
    return _saved(document)


def motion_docx(motion: str, debates: Sequence[Debate]) -> bytes:
    """Every card of ``debates`` (the saved debates and spar sessions on ``motion``, oldest first:
    ``TranscriptStore.on_motion``) in one .docx file, by side, each quote once (``file_cards``).
    NoCardsError when there is none, naming ``motion`` as asked."""
    filed = file_cards(debates)
    if not any(filed.values()):
        raise NoCardsError(_no_cards(motion, debates))
    document = _titled(debates[0].motion)
    example = debates[0].id
    document.add_paragraph(
        f"Every card cut on this motion in saved debates and spar sessions {', '.join(str(d.id) for d in debates)}. "
        f"A label such as {example}/A1 is card A1 of debate {example}; a quote cut from the same document more than "
        "once is filed once, under its first label."
    )
    for side in SIDES:
        _add_side(document, SIDE_HEADINGS[side], filed[side])
    return _saved(document)


def file_cards(debates: Sequence[Debate]) -> dict[str, list[FiledCard]]:
    """The cards of ``debates`` by side ("advocate", "skeptic"), in the debates' order and each turn's.

    A quote cut from the same document (``doc_id`` and ``text_key`` of the quote) counts once a side:
    the first card is kept, its note says how many debates cut it. Labels are unique within one
    debate only, so a filed card is labelled ``debate/label`` ("7/A1"), and the card a rebuttal
    answers is named by the label it is filed under (a duplicate answered is the first one cut).
    """
    first: dict[tuple[str, str, str], tuple[Debate, Card]] = {}
    used_in: dict[tuple[str, str, str], set[int]] = {}
    filed_as: dict[tuple[int, str], str] = {}  # (debate id, label there) -> label in the file
    for debate in debates:
        for card in (c for t in debate.turns for c in t.cards if c.role in SIDES):
            key = (card.role, card.doc_id, text_key(card.quote))
            kept_debate, kept = first.setdefault(key, (debate, card))
            used_in.setdefault(key, set()).add(debate.id)
            filed_as[(debate.id, card.label)] = f"{kept_debate.id}/{kept.label}"
    sources = {(d.id, s.number): s for d in debates for s in d.sources}
    filed: dict[str, list[FiledCard]] = {side: [] for side in SIDES}
    for key, (debate, card) in first.items():
        answers = filed_as.get((debate.id, card.answers), f"{debate.id}/{card.answers}") if card.answers else None
        relabelled = replace(card, label=filed_as[(debate.id, card.label)], answers=answers)
        n = len(used_in[key])
        filed[card.role].append(FiledCard(relabelled, sources.get((debate.id, card.source)),
                                          f" (in {n} debates)" if n > 1 else ""))  # fmt: skip
    return filed


def motion_filename(motion: str) -> str:
    """``cards-<the motion's words>.docx`` in ASCII letters, digits and hyphens, at most about 60 of
    them (``cards.docx`` when none is left): safe in a Content-Disposition header, which HTTP sends
    as Latin-1, and as a file name on any system."""
    ascii_text = unicodedata.normalize("NFKD", motion).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:60].rstrip("-")
    return f"cards-{slug}.docx" if slug else "cards.docx"


def _no_cards(motion: str, debates: Sequence[Debate]) -> str:
    """Why a motion has no cards to file: no debate on it, or none that cut any."""
    shown = " ".join(motion.split())
    if not debates:
        return f"no saved debate or spar session has the motion “{shown}”"
    n = len(debates)
    return (f"the {n} saved debate{'s' if n != 1 else ''} on the motion “{shown}” "
            f"{'have' if n != 1 else 'has'} no cards (saved before cards existed, or stopped before any)")  # fmt: skip


def _titled(motion: str) -> WordDocument:
    """A new document with ``motion`` as its title (in the text and in the file's properties)."""
    document = Document()
    document.core_properties.title = xml_safe(motion)[:255]
    document.add_heading(xml_safe(motion), level=0)
    return document


def _add_side(document: WordDocument, heading: str, cards: Sequence[FiledCard]) -> None:
    """One side: its heading, then each card, or a line saying it has none."""
    document.add_heading(xml_safe(heading), level=1)
    if not cards:
        document.add_paragraph(NO_CARDS)
    for filed in cards:
        _add_card(document, filed)


def _saved(document: WordDocument) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _add_card(document: WordDocument, filed: FiledCard) -> None:
    """Tag heading, cite line, then the passage with the quote highlighted in place."""
    card, source = filed.card, filed.source
    heading = document.add_heading(level=2)
    heading.add_run(xml_safe(f"{card.label}. {card.tag}"))
    note = f" (answers {card.answers})" if card.answers else (f" ({card.answer_note})" if card.answer_note else "")
    note += ("" if card.tag_from == "model" else TRIMMED_QUOTE_NOTE) + filed.note
    if note:
        heading.add_run(xml_safe(note)).italic = True
    if source is None:  # a card whose source is missing from the saved debate: the quote alone
        _add_text(document.add_paragraph(), "", card.quote, "")
        return
    _add_cite(document.add_paragraph(), source)
    before, quote, after = _cut(source.text, card)
    _add_text(document.add_paragraph(), before, quote, after)


def _add_cite(paragraph: Paragraph, source: NumberedPassage) -> None:
    """The cite line (``cite_line``), with the author, which opens it when there is one, in bold as
    debaters print it."""
    line = cite_line(source)
    if author := one_line(source.passage.author):
        paragraph.add_run(author).bold = True
        line = line[len(author):]
    paragraph.add_run(line)


def _cut(text: str, card: Card) -> tuple[str, str, str]:
    """The passage split around the card's quote. The offsets are the card's own; a card whose
    offsets do not hold its quote (edited by hand, saved by an older version) is found by search,
    and failing that shown as its quote alone."""
    start, end = card.start, card.end
    if not (0 <= start <= end <= len(text) and text[start:end] == card.quote):
        start = text.find(card.quote) if card.quote else -1
        if start < 0:
            return "", card.quote, ""
        end = start + len(card.quote)
    return text[:start], text[start:end], text[end:]


def _add_text(paragraph: Paragraph, before: str, quote: str, after: str) -> None:
    """One paragraph: the text around the quote in plain runs, the quote highlighted and bold."""
    if before := xml_safe(before):
        paragraph.add_run(before)
    read = paragraph.add_run(xml_safe(quote))
    read.bold = True
    read.font.highlight_color = WD_COLOR_INDEX.YELLOW
    if after := xml_safe(after):
        paragraph.add_run(after)
