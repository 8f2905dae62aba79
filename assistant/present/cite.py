"""A card's cite line: the one rule both card exports print, the Word cards (``assistant.present.docx_export``)
and the Markdown brief (``assistant.present.transcript_export.to_brief``), so a card is cited the same in either.

Debaters cite author, date, title, publisher and where a reader finds the article, in that order,
then the debate's source number. Everything comes from the debate's saved copy of its sources
(``NumberedPassage.as_dict``), never from the library: a document may be deleted or its metadata
changed since, and a saved debate should print the same cards every time. A debate saved before
sources kept their date or URL prints none.

A module of its own because ``docx_export`` imports ``transcripts`` (its Debate and Card), and
``transcripts`` must not import ``docx_export``: that would be a cycle, and would load python-docx
wherever a transcript is read.
"""

from __future__ import annotations

from pathlib import Path

from assistant.core.passage import NumberedPassage, Passage
from assistant.core.text import xml_safe


def cite_parts(source: NumberedPassage) -> list[str]:
    """Author, date, “title”, publisher and where the article is (``location``), without the empty
    ones, each on one line and without characters a document cannot hold."""
    passage = source.passage
    title = one_line(passage.title)
    parts = [passage.author, passage.date, f"“{title}”" if title else "", passage.publisher, location(passage)]
    return [part for part in map(one_line, parts) if part]


def cite_line(source: NumberedPassage) -> str:
    """The cite line as text: its parts, then the debate's source number,
    e.g. ``Mara Quell, 2024-03, “Notes”, Tessaly Gazette, https://news.test/notes [1]``."""
    parts = cite_parts(source)
    return ", ".join(parts) + (" " if parts else "") + f"[{source.number}]"


def location(passage: Passage) -> str:
    """Where a reader finds the article. Its URL when the document has one: a manifest's ``url`` (the
    stored file's name means nothing to a reader), or for a page ingested from the web the address its
    metadata or the fetch ended at, printed instead of the address typed (its ``source``), not beside it.
    Else a web source in full, a file's name only (the folder is the user's machine, nothing a reader
    can open), and a pasted text says so."""
    if passage.url:
        return passage.url
    source = passage.source
    if source.startswith(("http://", "https://")):
        return source
    if source.startswith("pasted:"):
        return "pasted text"
    return Path(source).name or source


def one_line(text: str | None) -> str:
    """``text`` on one line, its runs of whitespace as single spaces, without the characters XML cannot hold."""
    return xml_safe(" ".join((text or "").split()))
