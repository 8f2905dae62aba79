"""Debate and spar transcripts, in the database of ``assistant.storage.database`` (a SQLite file, or PostgreSQL).

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
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import Column, Connection, ForeignKey, Integer, MetaData, Table, Text, func, select, update

from assistant.core.debate_record import RUNNING, STOPPED, Card, ClaimCheck, Debate, DebateTurn
from assistant.core.passage import NumberedPassage
from assistant.core.personas import Persona
from assistant.core.settings import Settings
from assistant.core.text import text_key
from assistant.storage import database

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")  # _known reads the fields of a dataclass

# The revision each PRAGMA user_version of a transcripts file from before Alembic matches.
LEGACY_REVISIONS = ("transcripts_0001", "transcripts_0001")

# The newest layout, as the queries see it; the migrations (``transcripts_*``) build it, and
# tests/test_database.py checks that the two agree.
METADATA = MetaData()
DEBATES = Table(
    "debates", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("motion", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("rounds", Integer, nullable=False),
    Column("personas", Text, nullable=False),
    Column("sources", Text, nullable=False),
    Column("user_side", Text),  # a spar session: the side the user argues; None for a debate
    Column("updated_at", Text),  # the last save (see ``TranscriptStore.running_for_at_most_s``)
    sqlite_autoincrement=True,
)  # fmt: skip
TURNS = Table(
    "turns", METADATA,
    Column("debate_id", Integer, ForeignKey("debates.id", ondelete="CASCADE"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("data", Text, nullable=False),
)  # fmt: skip


class TranscriptStore:
    """Saved debates and spar sessions at ``location``: a database URL, or the path of a SQLite file.

    ``running_for_at_most_s``: the longest a generation may run (``generation_timeout_s``). A debate
    still marked running that nothing saved for longer lost the process running it (an app replica
    killed mid-debate, which could not mark it): it is read as stopped, with its saved turns, by
    every replica and in every listing and export."""

    def __init__(self, location: str | Path, running_for_at_most_s: float | None = None) -> None:
        self._stale_after = None if running_for_at_most_s is None else timedelta(seconds=running_for_at_most_s)
        self._engine = database.engine_for(location)
        database.migrate(self._engine, "transcripts", lambda c: database.sqlite_layout(c, "debates", LEGACY_REVISIONS, "transcripts"))
        self._unfinished: set[int] = set()  # debates this store started and no status has ended yet

    @classmethod
    def from_settings(cls, settings: Settings) -> TranscriptStore:
        return cls(settings.transcripts_database, settings.generation_timeout_s)

    def _status(self, status: str, updated_at: str | None) -> str:
        """The status as saved, or stopped for a debate marked running whose process is gone."""
        if status != RUNNING or self._stale_after is None or updated_at is None:
            return status
        return STOPPED if datetime.fromisoformat(updated_at) < _now() - self._stale_after else status

    def create(self, motion: str, rounds: int, advocate: Persona, skeptic: Persona, sources: list[NumberedPassage],
               user_side: str | None = None) -> Debate:  # fmt: skip
        created = _saved_at()
        personas = json.dumps({"advocate": asdict(advocate), "skeptic": asdict(skeptic)})
        with database.writing(self._engine) as db:
            debate_id: int = db.execute(DEBATES.insert().returning(DEBATES.c.id).values(
                motion=motion, created_at=created, status=RUNNING, rounds=rounds, personas=personas,
                sources=json.dumps([s.as_dict() for s in sources]), user_side=user_side, updated_at=created,
            )).scalar_one()  # fmt: skip
        self._unfinished.add(debate_id)
        return Debate(debate_id, motion, created, RUNNING, rounds, advocate, skeptic, list(sources), [], user_side)

    def set_sources(self, debate_id: int, sources: list[NumberedPassage]) -> None:
        """Replace the numbered source list (a spar session adds the passages its claim checks cite)."""
        with database.writing(self._engine) as db:
            _save(db, debate_id, sources=json.dumps([s.as_dict() for s in sources]))

    def add_turn(self, debate_id: int, turn: DebateTurn) -> None:
        with database.writing(self._engine) as db:
            database.upsert(db, TURNS, {"debate_id": debate_id, "idx": turn.index, "data": json.dumps(asdict(turn))},
                            ["debate_id", "idx"])  # fmt: skip
            _save(db, debate_id)

    def set_status(self, debate_id: int, status: str) -> None:
        with database.writing(self._engine) as db:
            _save(db, debate_id, status=status)
        if status == RUNNING:
            self._unfinished.add(debate_id)
        else:
            self._unfinished.discard(debate_id)

    def get(self, debate_id: int) -> Debate:
        with database.reading(self._engine, consistent=True) as db:
            row = db.execute(select(DEBATES).where(DEBATES.c.id == debate_id)).mappings().first()
            turns = db.execute(select(TURNS.c.data).where(TURNS.c.debate_id == debate_id).order_by(TURNS.c.idx)).scalars().all()
        if row is None:
            raise KeyError(f"no debate with id {debate_id}")
        personas = json.loads(row["personas"])
        return Debate(
            id=row["id"], motion=row["motion"], created_at=row["created_at"], status=self._status(row["status"], row["updated_at"]),
            rounds=row["rounds"],
            advocate=Persona(**personas["advocate"]), skeptic=Persona(**personas["skeptic"]),
            sources=[NumberedPassage.from_dict(s) for s in json.loads(row["sources"])],
            turns=[_turn_from_json(t) for t in turns], user_side=row["user_side"],
        )  # fmt: skip

    def on_motion(self, motion: str) -> list[Debate]:
        """Every saved debate and spar session on ``motion``, oldest first: the same motion up to case,
        spacing and punctuation (``text_key``), so "Should X?" typed again finds "should  x"."""
        key = text_key(motion)
        with database.reading(self._engine) as db:
            rows = db.execute(select(DEBATES.c.id, DEBATES.c.motion).order_by(DEBATES.c.id)).all()
        return [self.get(debate_id) for debate_id, saved in rows if text_key(saved) == key]

    def list(self, limit: int = 50, spar: bool = False) -> list[tuple[int, str, str, str, int]]:
        """(id, motion, created_at, status, turns) of the newest debates, or of the newest spar sessions."""
        kind = DEBATES.c.user_side.is_not(None) if spar else DEBATES.c.user_side.is_(None)
        query = (
            select(DEBATES.c.id, DEBATES.c.motion, DEBATES.c.created_at, DEBATES.c.status, func.count(TURNS.c.idx),
                   DEBATES.c.updated_at)
            .outerjoin(TURNS, TURNS.c.debate_id == DEBATES.c.id).where(kind)
            .group_by(DEBATES.c.id).order_by(DEBATES.c.id.desc()).limit(limit)
        )  # fmt: skip
        with database.reading(self._engine) as db:
            rows = db.execute(query).all()
        return [(row[0], row[1], row[2], self._status(row[3], row[5]), row[4]) for row in rows]

    def close(self) -> None:
        """Mark the debates this store started and that are still running as stopped (their finished
        turns are saved already; a shutdown may end a process before their generation unwinds), then close."""
        if self._unfinished:
            with database.writing(self._engine) as db:
                db.execute(
                    update(DEBATES).where(DEBATES.c.id.in_(sorted(self._unfinished)), DEBATES.c.status == RUNNING)
                    .values(status=STOPPED, updated_at=_saved_at())
                )  # fmt: skip
            self._unfinished.clear()
        self._engine.dispose()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _saved_at() -> str:
    return _now().isoformat(timespec="seconds")


def _save(db: Connection, debate_id: int, **values: object) -> None:
    """Change a debate's row; every save stamps ``updated_at`` (what ``TranscriptStore._status`` reads)."""
    db.execute(update(DEBATES).where(DEBATES.c.id == debate_id).values(**values, updated_at=_saved_at()))


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
