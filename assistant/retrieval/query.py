"""Query understanding without a model call: what to search for, and in which documents.

Two things drown the topic of a question in a small library. Instruction words ("Argue as a
skeptic:", "Debate:", "according to the sources") match every passage a little and the
answer a little less; they are stripped before searching. And a question that names an
author or publisher ("What does Lee say ...", "Do Lee and Gurtov agree ...") is about that
author's article: the retriever adds a ranking restricted to each named document, so a
comparison across two articles finds both sides instead of the one that shares more words.
"Do both authors ..." or "each article" names every document of a small library.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

# Leading instructions: "Argue as a skeptic:", "Argue for engagement:", "Debate:", "Motion:".
_LEADING_INSTRUCTION = re.compile(
    r"^\s*(?:(?:please\s+)?(?:argue|debate|discuss|motion|question|task)\b[^:?]{0,40}:\s*)+",
    re.IGNORECASE,
)
# Phrases that point at the library rather than the topic.
_LIBRARY_PHRASES = re.compile(
    r",?\s*\b(?:according to|based on|from|in|as described in)\s+(?:the|these|your|my)\s+"
    r"(?:sources?|articles?|texts?|documents?|passages?|library)\b,?"
    r"|\b(?:do|does|did)\s+(?:the|these)\s+(?:sources?|articles?|texts?|documents?)\s+(?:say|mention|tell|show)\b",
    re.IGNORECASE,
)
_MIN_NAME_CHARS = 3
# "Do both authors ...", "each article", "the three pieces": a question about every document.
_EVERY_DOCUMENT = re.compile(
    r"\b(?:both|each|all|every|the two|the three|the four)\s+(?:of the\s+)?"
    r"(?:authors?|articles?|pieces?|writers?|op-?eds?|essays?|documents?)\b",
    re.IGNORECASE,
)
# Above this many documents, "all the articles" is no longer a search per document.
MAX_DOCUMENTS_FOR_EVERY = 8


class NamedDocument(Protocol):
    # Read-only members, so a frozen dataclass (registry.DocumentRecord) is one.
    @property
    def id(self) -> str: ...
    @property
    def author(self) -> str | None: ...
    @property
    def publisher(self) -> str | None: ...


def search_text(question: str) -> str:
    """``question`` without the instruction words around its topic (the question itself when
    nothing would be left)."""
    stripped = _LEADING_INSTRUCTION.sub("", question)
    stripped = re.sub(r"\s+([?.!,;:])", r"\1", " ".join(_LIBRARY_PHRASES.sub(" ", stripped).split()))
    return stripped if len(stripped) >= _MIN_NAME_CHARS else question


def _names(document: NamedDocument) -> set[str]:
    """How a question may name a document: its author's full name or surname, its publisher."""
    names: set[str] = set()
    if document.author:
        names.add(document.author)
        surname = document.author.split()[-1]
        if len(surname) >= _MIN_NAME_CHARS and surname[0].isupper():
            names.add(surname)
    if document.publisher:
        publisher = document.publisher.split("(")[0].strip()
        if len(publisher) >= _MIN_NAME_CHARS:
            names.add(publisher)
    return names


def named_documents(question: str, documents: Iterable[NamedDocument]) -> list[str]:
    """Ids of the documents whose author or publisher the question names (whole words, as
    written), or of every document when it asks about "both authors" or "each article" in a
    small library."""
    documents = list(documents)
    if _EVERY_DOCUMENT.search(question) and len(documents) <= MAX_DOCUMENTS_FOR_EVERY:
        return [d.id for d in documents]
    found = []
    for document in documents:
        if any(re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", question) for name in _names(document)):
            found.append(document.id)
    return found
