"""A saved debate's evidence cards as a Word document, laid out the way debaters file evidence.

Debaters keep and trade evidence as .docx files: each card is a tag (a heading, so it shows in
Word's navigation pane), a cite line, and the whole paragraph the quote was cut from, with the
part that is read aloud highlighted. Printing the paragraph around the quote lets a reader
check that the quote is not taken out of context; the Markdown brief (``to_brief``) shows the
quote alone. Grouping and wording follow ``to_brief``, so both exports read the same.

Every string comes from an article, a user or the model, and an article may hold characters
that XML 1.0 cannot (NUL, other control characters, lone surrogates): python-docx refuses them
with a ValueError, so each one is dropped before it reaches the document (``xml_safe``).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from docx import Document
from docx.document import Document as WordDocument
from docx.enum.text import WD_COLOR_INDEX
from docx.text.paragraph import Paragraph

from assistant.passage import NumberedPassage
from assistant.transcripts import Card, Debate

DOCX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
NO_CARDS = "No cards for this side."
TRIMMED_QUOTE_NOTE = " (tag: trimmed quote)"

# Everything outside XML 1.0's Char production: C0 controls other than tab, newline and carriage
# return, lone surrogates, and U+FFFE/U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str | None) -> str:
    """``text`` without the characters an XML document cannot hold (python-docx raises on them)."""
    return _NOT_XML.sub("", text or "")


def to_docx(debate: Debate) -> bytes:
    """Every card of ``debate`` grouped by side, as the bytes of a .docx file."""
    document = Document()
    document.core_properties.title = xml_safe(debate.motion)[:255]
    document.add_heading(xml_safe(debate.motion), level=0)
    document.add_paragraph(f"Evidence cards of debate {debate.id}, {xml_safe(debate.created_at)}.")
    sources = {s.number: s for s in debate.sources}
    speakers = debate.speakers()
    for role in ("advocate", "skeptic"):
        document.add_heading(xml_safe(speakers[role].capitalize()), level=1)
        cards = [c for t in debate.turns for c in t.cards if c.role == role]
        if not cards:
            document.add_paragraph(NO_CARDS)
        for card in cards:
            _add_card(document, card, sources.get(card.source))
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _add_card(document: WordDocument, card: Card, source: NumberedPassage | None) -> None:
    """Tag heading, cite line, then the passage with the quote highlighted in place."""
    heading = document.add_heading(level=2)
    heading.add_run(xml_safe(f"{card.label}. {card.tag}"))
    note = f" (answers {card.answers})" if card.answers else (f" ({card.answer_note})" if card.answer_note else "")
    note += "" if card.tag_from == "model" else TRIMMED_QUOTE_NOTE
    if note:
        heading.add_run(xml_safe(note)).italic = True
    if source is None:  # a card whose source is missing from the saved debate: the quote alone
        _add_text(document.add_paragraph(), "", card.quote, "")
        return
    _add_cite(document.add_paragraph(), source)
    before, quote, after = _cut(source.text, card)
    _add_text(document.add_paragraph(), before, quote, after)


def cite_parts(source: NumberedPassage) -> list[str]:
    """Author, title, publisher and where the article came from (its URL or file name), without
    the empty ones. A saved debate keeps no date for its sources, so there is none to print."""
    passage = source.passage
    title = f"“{_one_line(passage.title)}”" if _one_line(passage.title) else ""
    parts = [_one_line(passage.author), title, _one_line(passage.publisher), _one_line(_location(passage.source))]
    return [part for part in parts if part]


def _one_line(text: str | None) -> str:
    return xml_safe(" ".join((text or "").split()))


def _location(source: str) -> str:
    """A web article's URL in full (a reader can open it); a file's name only (the folder is the
    user's machine, nothing a reader of the brief can open); a pasted text says so."""
    if source.startswith(("http://", "https://")):
        return source
    if source.startswith("pasted:"):
        return "pasted text"
    return Path(source).name or source


def _add_cite(paragraph: Paragraph, source: NumberedPassage) -> None:
    """The cite line, the author in bold as debaters print it, then the debate's source number."""
    parts = cite_parts(source)
    if _one_line(source.passage.author):  # then it is the first part
        paragraph.add_run(parts.pop(0)).bold = True
        paragraph.add_run(", " if parts else " ")
    paragraph.add_run(", ".join(parts) + (" " if parts else "") + f"[{source.number}]")


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
