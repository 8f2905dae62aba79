"""Debate and spar transcripts in SQLite.

What a transcript holds is in ``assistant.core.debate_record``; its Markdown, brief and JSON
exports are in ``assistant.present.transcript_export``. A spar session (``assistant.chains.spar``) is a debate in which one side is the user: the same
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from assistant.core.debate_record import RUNNING, STOPPED, Card, ClaimCheck, Debate, DebateTurn
from assistant.core.passage import NumberedPassage
from assistant.core.prompts import Persona
from assistant.core.text import text_key

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")  # _known reads the fields of a dataclass

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
        debate_id = cursor.lastrowid
        assert debate_id is not None  # an INSERT always sets lastrowid
        self._unfinished.add(debate_id)
        return Debate(debate_id, motion, created, RUNNING, rounds, advocate, skeptic, list(sources), [], user_side)

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
