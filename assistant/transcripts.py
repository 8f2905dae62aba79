"""Debate and spar transcripts in SQLite, and their Markdown export.

A spar session (``assistant.spar``) is a debate in which one side is the user: the same
record, with ``user_side`` set and the user's turns carrying ``claims`` (each sentence's check)
instead of cards.

A debate is saved when it starts (motion, personas, the shared numbered sources) and again
after every turn, so a crash or a closed browser loses at most the turn being generated,
and any app replica can list and export it. Sources are stored as copies of the passages
(title, source, offsets, text), so a transcript stays readable after its document is
deleted from the library.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Iterator
from typing import TypeVar

from assistant.cite import cite_line
from assistant.flow import flow_dict, flow_section
from assistant.passage import NumberedPassage
from assistant.prompts import MODERATOR_NAME, Persona, source_label
from assistant.text import text_key

RUNNING = "running"
COMPLETE = "complete"
FAILED = "failed"
STOPPED = "stopped"  # cancelled mid-way (client gone, shutdown, time budget): the finished turns are kept
WAITING = "waiting"  # a spar session between turns: the user plays next, now or after a restart

T = TypeVar("T")
# The schema version (PRAGMA user_version) this code writes; see ``_migrate``.
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS debates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    motion TEXT NOT NULL,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL,
    rounds INTEGER NOT NULL,
    personas TEXT NOT NULL,
    sources TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    debate_id INTEGER NOT NULL REFERENCES debates(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (debate_id, idx)
);
"""


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
    # The judge's turn: each clash as ``assistant.ballot.ClashCall`` fields (older debates: {"cards": [label,
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


class TranscriptStore:
    """Saved debates (one SQLite file in the data dir)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._conn.execute("PRAGMA journal_mode = WAL")
        _migrate(self._conn)
        self._lock = threading.Lock()
        self._unfinished: set[int] = set()  # debates this store started and no status has ended yet

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._conn:
            yield self._conn

    def create(self, motion: str, rounds: int, advocate: Persona, skeptic: Persona, sources: list[NumberedPassage],
               user_side: str | None = None) -> Debate:  # fmt: skip
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        # The user's side rides in the personas JSON: a spar session needs no schema change.
        personas = json.dumps({"advocate": asdict(advocate), "skeptic": asdict(skeptic), "user_side": user_side})
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO debates(motion, created_at, status, rounds, personas, sources) VALUES (?, ?, ?, ?, ?, ?)",
                (motion, created, RUNNING, rounds, personas, json.dumps([s.as_dict() for s in sources])),
            )
        self._unfinished.add(cursor.lastrowid)
        return Debate(cursor.lastrowid, motion, created, RUNNING, rounds, advocate, skeptic, list(sources), [], user_side)

    def set_sources(self, debate_id: int, sources: list[NumberedPassage]) -> None:
        """Replace the numbered source list (a spar session adds the passages its claim checks cite)."""
        with self._tx() as db:
            db.execute("UPDATE debates SET sources = ? WHERE id = ?", (json.dumps([s.as_dict() for s in sources]), debate_id))

    def add_turn(self, debate_id: int, turn: DebateTurn) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO turns(debate_id, idx, data) VALUES (?, ?, ?)",
                (debate_id, turn.index, json.dumps(asdict(turn))),
            )

    def set_status(self, debate_id: int, status: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE debates SET status = ? WHERE id = ?", (status, debate_id))
        if status == RUNNING:
            self._unfinished.add(debate_id)
        else:
            self._unfinished.discard(debate_id)

    def get(self, debate_id: int) -> Debate:
        with self._tx() as db:
            row = db.execute(
                "SELECT id, motion, created_at, status, rounds, personas, sources FROM debates WHERE id = ?", (debate_id,)
            ).fetchone()
            turns = db.execute("SELECT data FROM turns WHERE debate_id = ? ORDER BY idx", (debate_id,)).fetchall()
        if row is None:
            raise KeyError(f"no debate with id {debate_id}")
        personas = json.loads(row[5])
        return Debate(
            id=row[0], motion=row[1], created_at=row[2], status=row[3], rounds=row[4],
            advocate=Persona(**personas["advocate"]), skeptic=Persona(**personas["skeptic"]),
            sources=[NumberedPassage.from_dict(s) for s in json.loads(row[6])],
            turns=[_turn_from_json(t[0]) for t in turns], user_side=personas.get("user_side"),
        )  # fmt: skip

    def on_motion(self, motion: str) -> list[Debate]:
        """Every saved debate and spar session on ``motion``, oldest first: the same motion up to case,
        spacing and punctuation (``text_key``), so "Should X?" typed again finds "should  x"."""
        key = text_key(motion)
        with self._tx() as db:
            rows = db.execute("SELECT id, motion FROM debates ORDER BY id").fetchall()
        return [self.get(debate_id) for debate_id, saved in rows if text_key(saved) == key]

    def list(self, limit: int = 50, spar: bool = False) -> list[tuple[int, str, str, str, int]]:
        """(id, motion, created_at, status, turns) of the newest debates, or of the newest spar sessions."""
        kind = "IS NOT NULL" if spar else "IS NULL"
        with self._tx() as db:
            return db.execute(
                "SELECT d.id, d.motion, d.created_at, d.status, COUNT(t.idx) FROM debates d "
                f"LEFT JOIN turns t ON t.debate_id = d.id WHERE json_extract(d.personas, '$.user_side') {kind} "
                "GROUP BY d.id ORDER BY d.id DESC LIMIT ?",
                (limit,),
            ).fetchall()

    def close(self) -> None:
        """Mark the debates this store started and that are still running as stopped (their finished
        turns are saved already; a shutdown may end a process before their generation unwinds), then close."""
        with self._lock:
            for debate_id in sorted(self._unfinished):
                self._conn.execute("UPDATE debates SET status = ? WHERE id = ? AND status = ?", (STOPPED, debate_id, RUNNING))
            self._conn.commit()
            self._unfinished.clear()
            self._conn.close()


def _migrate(conn: sqlite3.Connection) -> None:
    """Create the tables, or bring a file written by an older version up to ``SCHEMA_VERSION``.

    Version 0 (the first release) has the same tables; turns and sources are JSON and load by
    field name (``_known``), so a field added since takes its default and nothing is rewritten.
    """
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise RuntimeError(f"the transcripts were written by a newer version (schema {version}, this code knows {SCHEMA_VERSION})")
    conn.executescript(_SCHEMA)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _known(kind: type[T], fields: dict) -> T:
    """``kind(**fields)`` with only the fields ``kind`` has: a field a later version dropped or
    renamed is skipped instead of failing every saved debate; one it added takes its default."""
    names = {f.name for f in dataclasses.fields(kind)}
    return kind(**{k: v for k, v in fields.items() if k in names})


def _turn_from_json(data: str) -> DebateTurn:
    """A stored turn; turns saved before cards existed load with no cards."""
    fields = json.loads(data)
    fields["cards"] = [_known(Card, c) for c in fields.get("cards", [])]
    fields["claims"] = [_known(ClaimCheck, c) for c in fields.get("claims", [])]
    return _known(DebateTurn, fields)


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
    cite it (``assistant.cite.cite_line``: author, date, title, publisher, URL or file name, source
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
    and the flow sheet (``assistant.flow``) under "flow"."""
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
