"""Data written by earlier releases opens with today's code, which hands it to Alembic in place:
- tests/fixtures/v1_data, the first release (commit e4604f5): two fixture articles ingested, one
  debate with the extractive backend (registry and transcripts at PRAGMA user_version 0);
- tests/fixtures/v2_data, the last layout kept in PRAGMA user_version (commit 046a3d7: registry 2,
  transcripts 1): three articles, one with sentences set aside, a confirmed stance, one debate
  with a card and one spar session (its user side in the personas JSON).

Bug this guards: turns were reloaded with ``DebateTurn(**json.loads(...))``, so a field renamed
or dropped in a later version made every saved debate fail to load.
"""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from docx import Document

from assistant.present.docx_export import NO_CARDS, NoCardsError, motion_docx, to_docx
from assistant.storage.database import HANDED_TO_ALEMBIC
from assistant.storage.transcripts import LEGACY_REVISIONS, TranscriptStore
from assistant.present.transcript_export import to_json, to_markdown
from assistant.storage.registry import Registry

V1 = Path(__file__).parent / "fixtures" / "v1_data"
V2 = Path(__file__).parent / "fixtures" / "v2_data"


def _copy(release: Path, target: Path) -> Path:
    for name in ("registry.sqlite3", "transcripts.sqlite3"):
        shutil.copy(release / name, target / name)
    return target


@pytest.fixture
def v1_copy(tmp_path: Path) -> Path:
    return _copy(V1, tmp_path)


def _versions(path: Path, branch: str) -> tuple[int, list[str]]:
    """The file's PRAGMA user_version and the revisions in its Alembic version table."""
    with closing(sqlite3.connect(path)) as conn:
        return (conn.execute("PRAGMA user_version").fetchone()[0],
                [row[0] for row in conn.execute(f"SELECT version_num FROM {branch}_version")])  # fmt: skip


def test_a_first_release_registry_gains_stances_and_keeps_its_documents(v1_copy: Path) -> None:
    registry = Registry(v1_copy / "registry.sqlite3")
    documents = registry.documents()
    assert sorted(d.title for d in documents) == ["The Limits of Engagement with Arandia", "Why Talking to Arandia Works"]
    assert all(d.stance == "unknown" for d in documents)
    registry.close()
    assert _versions(v1_copy / "registry.sqlite3", "registry") == (HANDED_TO_ALEMBIC, ["registry_0003"])


def test_a_first_release_debate_loads_and_exports(v1_copy: Path) -> None:
    store = TranscriptStore(v1_copy / "transcripts.sqlite3")
    (listed,) = store.list()
    debate = store.get(listed[0])
    assert debate.status == "complete" and [t.role for t in debate.turns] == ["advocate", "skeptic", "moderator"]
    assert all(t.cards == [] for t in debate.turns) and all(s.stance == "unknown" for s in debate.sources)
    assert debate.motion in to_markdown(debate) and json.loads(json.dumps(to_json(debate)))["turns"]
    store.close()
    assert _versions(v1_copy / "transcripts.sqlite3", "transcripts") == (HANDED_TO_ALEMBIC, ["transcripts_0003"])


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
    conn.execute(f"PRAGMA user_version = {len(LEGACY_REVISIONS)}")
    conn.commit()
    conn.close()
    with pytest.raises(RuntimeError, match="newer version"):
        TranscriptStore(v1_copy / "transcripts.sqlite3")


def test_the_last_pragma_layout_keeps_stances_flags_cards_and_its_spar_session(tmp_path: Path) -> None:
    """The spar session's user side moves from the personas JSON into its own column, so the list
    of debates and the list of spar sessions still tell them apart, on any database."""
    data = _copy(V2, tmp_path)
    registry = Registry(data / "registry.sqlite3")
    documents = {d.title: d for d in registry.documents()}
    assert documents["Why Talking to Arandia Works"].stance == "advocate"
    assert len(documents["The Grain Corridor Audit"].flagged_sentences) == 2
    assert any(p.set_aside for p in registry.passages()) and registry.generation() == 4
    registry.close()
    store = TranscriptStore(data / "transcripts.sqlite3")
    [debate_row], [spar_row] = store.list(), store.list(spar=True)
    debate, spar = store.get(debate_row[0]), store.get(spar_row[0])
    assert debate.user_side is None and debate.turns[0].cards[0].label == "A1"
    assert spar.user_side == "skeptic" and spar.turns[0].claims[0].mark == "unsupported"
    store.close()
    assert _versions(data / "registry.sqlite3", "registry") == (HANDED_TO_ALEMBIC, ["registry_0003"])
    assert _versions(data / "transcripts.sqlite3", "transcripts") == (HANDED_TO_ALEMBIC, ["transcripts_0003"])


def test_opening_twice_migrates_once_and_changes_nothing(tmp_path: Path) -> None:
    data = _copy(V2, tmp_path)
    for _ in range(2):
        Registry(data / "registry.sqlite3").close()
        TranscriptStore(data / "transcripts.sqlite3").close()
    assert len(Registry(data / "registry.sqlite3").documents()) == 3
