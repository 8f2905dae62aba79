"""The one passage type, from the splitter to a saved debate, and its numbered view.

A passage is a span of one document (``text == document[start:end]``) with a deterministic
id. The splitter makes it, the registry stores it, the retriever returns it with the
document's title, author, publisher, date, URL and stance and with why it ranked (``score`` and the two
rankings), and the verifier reads its ``lead_in``. Every later step shows a passage under a
number: ``NumberedPassage`` is that view (an answer's citations, a debate's sources).

A passage also carries the spans of the sentences set aside in it at ingest because they
address the assistant (``ingest.injection``): ``offered_sentences`` and ``offered_text`` are what
any step may offer a model as evidence, so such a sentence is never a card, a quote or prompt text.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.core.text import Sentence, sentence_spans

UNKNOWN_STANCE = "unknown"


def passage_id(doc_id: str, index: int) -> str:
    """Deterministic: the same document always yields the same passage ids."""
    return f"{doc_id}-{index:04d}"


@dataclass(frozen=True)
class Passage:
    """One retrievable span of a document; the fields after ``end`` are filled by retrieval."""

    id: str
    doc_id: str
    index: int
    text: str
    start: int
    end: int
    title: str = ""
    source: str = ""
    author: str | None = None
    publisher: str | None = None
    # The document's date as its metadata gave it ("2024-04", "2014-03-05"): part of a card's cite line.
    date: str | None = None
    # The article's address as its metadata gave it (a manifest's ``url``, or the page a URL ingest
    # fetched): where a card's cite line says to find it, rather than the name of the stored file.
    url: str | None = None
    # The document's confirmed stance (advocate, skeptic or unknown): a sentence that says "the
    # skeptic article argues ..." must cite a skeptic document (``assistant.checks.verify``).
    stance: str = UNKNOWN_STANCE
    # The end of the passage before it in its document: what "that summit" or "he" at the start
    # of this passage refers to. Read by the verifier, never shown or cited.
    lead_in: str = ""
    # Why it ranked where it did (retrieval; shown with the sources).
    score: float = 0.0
    dense_rank: int | None = None
    dense_similarity: float | None = None
    lexical_rank: int | None = None
    lexical_score: float | None = None
    # (start, end) in ``text`` of the sentences set aside at ingest (filled by the registry).
    set_aside: tuple[tuple[int, int], ...] = ()

    def sets_aside(self, start: int, end: int) -> bool:
        """Whether ``text[start:end]`` overlaps a sentence set aside at ingest."""
        return any(s < end and start < e for s, e in self.set_aside)


def offered_sentences(passage: Passage) -> list[Sentence]:
    """The sentences of ``passage`` a model may be offered: all but those set aside at ingest."""
    return [s for s in sentence_spans(passage.text) if not passage.sets_aside(s.start, s.end)]


def offered_text(passage: Passage) -> str:
    """``passage.text`` with the sentences set aside at ingest cut out ("..." where they were)."""
    if not passage.set_aside:
        return passage.text
    pieces: list[str] = []
    at = 0
    for start, end in sorted(passage.set_aside):
        kept = passage.text[at:start].strip() if start > at else ""
        pieces += [kept] if kept else []
        if not pieces or pieces[-1] != "...":
            pieces.append("...")
        at = max(at, end)
    pieces.append(passage.text[at:].strip())
    return " ".join(piece for piece in pieces if piece)


@dataclass(frozen=True)
class NumberedPassage:
    """A passage under the number ``[n]`` an answer or a debate shows and cites it with."""

    number: int
    passage: Passage

    @property
    def title(self) -> str:
        return self.passage.title

    @property
    def source(self) -> str:
        return self.passage.source

    @property
    def text(self) -> str:
        return self.passage.text

    @property
    def stance(self) -> str:
        return self.passage.stance

    def as_dict(self) -> dict:
        """Flat, as the API sends a numbered source and a debate saves one (the first release's keys,
        and ``date`` and ``url`` since cards print them).

        A saved debate keeps its own copy of what a cite line prints, date and URL included, rather than
        looking it up in the library when it is exported: the document may be deleted or its metadata
        changed since, and a saved debate should print the same cards every time."""
        p = self.passage
        return {
            "number": self.number, "passage_id": p.id, "doc_id": p.doc_id, "index": p.index, "title": p.title,
            "author": p.author, "publisher": p.publisher, "date": p.date, "url": p.url, "source": p.source,
            "start": p.start, "end": p.end, "text": p.text, "stance": p.stance,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict) -> NumberedPassage:
        """The inverse of ``as_dict``; also reads what older versions saved (no index, stance, date or URL),
        ignoring keys it does not know."""
        pid = data["passage_id"]
        index = data.get("index")
        if index is None:  # saved before the index was: the id ends in it (``passage_id``)
            tail = pid.rsplit("-", 1)[-1]
            index = int(tail) if tail.isdigit() else 0
        passage = Passage(
            id=pid, doc_id=data["doc_id"], index=index, text=data["text"], start=data["start"], end=data["end"],
            title=data.get("title") or "", source=data.get("source") or "", author=data.get("author"),
            publisher=data.get("publisher"), date=data.get("date") or None,
            url=data.get("url") or None, stance=data.get("stance") or UNKNOWN_STANCE,
        )  # fmt: skip
        return cls(int(data["number"]), passage)
