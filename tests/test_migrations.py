"""Data written by the first release (tests/fixtures/v1_data, made with the code of commit e4604f5:
two fixture articles ingested, one debate with the extractive backend) opens with today's code.

Bug this guards: turns were reloaded with ``DebateTurn(**json.loads(...))``, so a field renamed
or dropped in a later version made every saved debate fail to load.
"""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from docx import Document

from assistant.present.docx_export import NO_CARDS, NoCardsError, motion_docx, to_docx
from assistant.storage.transcripts import SCHEMA_VERSION, TranscriptStore
from assistant.present.transcript_export import to_json, to_markdown
from assistant.storage.registry import Registry

V1 = Path(__file__).parent / "fixtures" / "v1_data"


@pytest.fixture
def v1_copy(tmp_path: Path) -> Path:
    for name in ("registry.sqlite3", "transcripts.sqlite3"):
        shutil.copy(V1 / name, tmp_path / name)
    return tmp_path


def test_a_first_release_registry_gains_stances_and_keeps_its_documents(v1_copy: Path) -> None:
    registry = Registry(v1_copy / "registry.sqlite3")
    documents = registry.documents()
    assert sorted(d.title for d in documents) == ["The Limits of Engagement with Arandia", "Why Talking to Arandia Works"]
    assert all(d.stance == "unknown" for d in documents)
    registry.close()
    assert sqlite3.connect(v1_copy / "registry.sqlite3").execute("PRAGMA user_version").fetchone()[0] >= 1


def test_a_first_release_debate_loads_and_exports(v1_copy: Path) -> None:
    store = TranscriptStore(v1_copy / "transcripts.sqlite3")
    (listed,) = store.list()
    debate = store.get(listed[0])
    assert debate.status == "complete" and [t.role for t in debate.turns] == ["advocate", "skeptic", "moderator"]
    assert all(t.cards == [] for t in debate.turns) and all(s.stance == "unknown" for s in debate.sources)
    assert debate.motion in to_markdown(debate) and json.loads(json.dumps(to_json(debate)))["turns"]
    store.close()
    assert sqlite3.connect(v1_copy / "transcripts.sqlite3").execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_first_release_debate_exports_its_word_document_and_files_no_cards_for_its_motion(v1_copy: Path) -> None:
    """Its sources were saved without a date (or stance, or index): the cite lines print none, and its
    motion's file says there are no cards (the first release cut none) instead of writing an empty one."""
    store = TranscriptStore(v1_copy / "transcripts.sqlite3")
    debate = store.get(store.list()[0][0])
    assert all(s.passage.date is None for s in debate.sources)
    document = Document(io.BytesIO(to_docx(debate)))
    assert [p.text for p in document.paragraphs].count(NO_CARDS) == 2
    assert [d.id for d in store.on_motion(debate.motion.upper())] == [debate.id]
    with pytest.raises(NoCardsError, match="the 1 saved debate on the motion .* has no cards"):
        motion_docx(debate.motion, store.on_motion(debate.motion))
    store.close()


def test_a_turn_with_a_field_this_version_does_not_know_still_loads(v1_copy: Path) -> None:
    conn = sqlite3.connect(v1_copy / "transcripts.sqlite3")
    data = json.loads(conn.execute("SELECT data FROM turns WHERE idx = 0").fetchone()[0])
    data["renamed_later"] = ["from a newer or older layout"]
    conn.execute("UPDATE turns SET data = ? WHERE idx = 0", (json.dumps(data),))
    conn.commit()
    conn.close()
    store = TranscriptStore(v1_copy / "transcripts.sqlite3")
    assert store.get(store.list()[0][0]).turns[0].role == "advocate"
    store.close()


def test_a_file_from_a_newer_version_is_refused_clearly(v1_copy: Path) -> None:
    conn = sqlite3.connect(v1_copy / "transcripts.sqlite3")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(RuntimeError, match="newer version"):
        TranscriptStore(v1_copy / "transcripts.sqlite3")
