"""Debate transcripts in SQLite, and their Markdown export.

A debate is saved when it starts (motion, personas, the shared numbered sources) and again
after every turn, so a crash or a closed browser loses at most the turn being generated,
and any app replica can list and export it. Sources are stored as copies of the passages
(title, source, offsets, text), so a transcript stays readable after its document is
deleted from the library.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Iterator

from assistant.prompts import MODERATOR_NAME, Persona, source_label

RUNNING = "running"
COMPLETE = "complete"
FAILED = "failed"
STOPPED = "stopped"  # cancelled mid-way (client gone, shutdown, time budget): the finished turns are kept

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


@dataclass(frozen=True)
class SourcePassage:
    """A numbered source of a debate, copied from the library when the debate started."""

    number: int
    passage_id: str
    doc_id: str
    title: str
    author: str | None
    publisher: str | None
    source: str
    start: int
    end: int
    text: str


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


@dataclass
class Debate:
    id: int
    motion: str
    created_at: str
    status: str
    rounds: int
    advocate: Persona
    skeptic: Persona
    sources: list[SourcePassage]
    turns: list[DebateTurn] = field(default_factory=list)

    def speakers(self) -> dict[str, str]:
        return {"advocate": self.advocate.name, "skeptic": self.skeptic.name, "moderator": MODERATOR_NAME}


class TranscriptStore:
    """Saved debates (one SQLite file in the data dir)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._unfinished: set[int] = set()  # debates this store started and no status has ended yet

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._conn:
            yield self._conn

    def create(self, motion: str, rounds: int, advocate: Persona, skeptic: Persona, sources: list[SourcePassage]) -> Debate:
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        personas = json.dumps({"advocate": asdict(advocate), "skeptic": asdict(skeptic)})
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO debates(motion, created_at, status, rounds, personas, sources) VALUES (?, ?, ?, ?, ?, ?)",
                (motion, created, RUNNING, rounds, personas, json.dumps([asdict(s) for s in sources])),
            )
        self._unfinished.add(cursor.lastrowid)
        return Debate(cursor.lastrowid, motion, created, RUNNING, rounds, advocate, skeptic, list(sources))

    def add_turn(self, debate_id: int, turn: DebateTurn) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO turns(debate_id, idx, data) VALUES (?, ?, ?)",
                (debate_id, turn.index, json.dumps(asdict(turn))),
            )

    def set_status(self, debate_id: int, status: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE debates SET status = ? WHERE id = ?", (status, debate_id))
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
            sources=[SourcePassage(**s) for s in json.loads(row[6])],
            turns=[DebateTurn(**json.loads(t[0])) for t in turns],
        )  # fmt: skip

    def list(self, limit: int = 50) -> list[tuple[int, str, str, str, int]]:
        """(id, motion, created_at, status, turns) of the newest debates."""
        with self._tx() as db:
            return db.execute(
                "SELECT d.id, d.motion, d.created_at, d.status, COUNT(t.idx) FROM debates d "
                "LEFT JOIN turns t ON t.debate_id = d.id GROUP BY d.id ORDER BY d.id DESC LIMIT ?",
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


_KIND_TITLES = {"opening": "Opening", "rebuttal": "Rebuttal", "summary": "Summary"}


def to_markdown(debate: Debate) -> str:
    """The transcript as Markdown: turns with their [n] markers, then the numbered references."""
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
        lines += [f"## {_KIND_TITLES.get(turn.kind, turn.kind)}: {turn.speaker}", "", turn.text, ""]
        flagged = [f"no citation: {s}" for s in turn.uncited_sentences]
        flagged += [f"not supported by its source: {s}" for s in turn.unsupported_sentences]
        flagged += [f"repeats an earlier turn: {s}" for s in turn.repeated_sentences]
        if flagged:
            lines += [f"> Flagged: {item}" for item in flagged] + [""]
    lines += ["## References", ""]
    for source in debate.sources:
        quote = " ".join(source.text.split())
        lines.append(
            f"{source.number}. {source_label(source, with_publisher=True)}. {source.source}, "
            f"characters {source.start}-{source.end}."
        )
        lines.append(f"   > {quote}")
    return "\n".join(lines).rstrip() + "\n"
