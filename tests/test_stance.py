"""Stance is part of a document: registry migration, manifest, --stance, API, changing it."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.chains.stance import suggest_stances
from assistant.server.service import build
from assistant.storage.library import Library
from assistant.core.sides import StanceError, validate_side, validate_stance
from assistant.storage.database import HANDED_TO_ALEMBIC
from tests.conftest import FIXTURES
from assistant.storage.registry import Registry


def _by_file(library: Library) -> dict[str, str]:
    return {Path(d.source).name: d.stance for d in library.documents()}


def test_stance_values_are_validated_with_the_allowed_ones_named() -> None:
    assert validate_stance(" Skeptic ") == "skeptic"
    assert validate_stance(None) == "unknown"
    # A stance is a side of the motion, whatever the topic: "for" and "against" are the stored sides.
    assert (validate_stance("For"), validate_stance(" against ")) == ("advocate", "skeptic")
    assert (validate_side("for"), validate_side("Skeptic")) == ("advocate", "skeptic")
    with pytest.raises(StanceError, match="side must be for or against"):
        validate_side("unknown")  # a document may be of unknown stance; a debater may not
    with pytest.raises(StanceError, match="for, against or unknown"):
        validate_stance("pro")


def test_an_old_registry_gains_the_stance_columns_and_keeps_its_documents(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite3"
    shutil.copy(FIXTURES / "v1_data" / "registry.sqlite3", path)  # the first release: no stance columns
    registry = Registry(path)
    documents = registry.documents()
    assert len(documents) == 2 and {(d.stance, d.suggested_stance) for d in documents} == {("unknown", None)}
    registry.set_stance(documents[0].id, "skeptic")
    registry.close()
    again = Registry(path)  # a second open migrates nothing and loses nothing
    assert again.get(documents[0].id).stance == "skeptic" and len(again.documents()) == 2
    again.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == HANDED_TO_ALEMBIC


def test_manifest_gives_the_stance_and_ingest_option_overrides_it(library: Library, articles: Path) -> None:
    (articles / "manifest.json").write_text(
        json.dumps([{"file": "pro_engagement.txt", "stance": "advocate"}, {"file": "skeptic.txt", "stance": "skeptic"}])
    )
    library.ingest([str(articles)])
    stances = _by_file(library)
    assert stances["pro_engagement.txt"] == "advocate" and stances["skeptic.txt"] == "skeptic"
    assert stances["composting.md"] == "unknown"
    # Re-adding the unchanged file with --stance sets it without re-embedding anything.
    before = library.store.count() if hasattr(library.store, "count") else None
    (result,) = library.ingest([str(articles / "composting.md")], stance="skeptic")
    assert result.status == "unchanged" and "stance set to skeptic" in result.message
    assert _by_file(library)["composting.md"] == "skeptic"
    if before is not None:
        assert library.store.count() == before


def test_a_bad_stance_is_refused_before_anything_is_read(library: Library, articles: Path) -> None:
    with pytest.raises(StanceError, match="for, against or unknown"):
        library.ingest([str(articles)], stance="neutral")
    assert library.documents() == []


def test_a_bad_manifest_stance_fails_only_that_file(library: Library, articles: Path) -> None:
    (articles / "manifest.json").write_text(json.dumps([{"file": "skeptic.txt", "stance": "opposed"}]))
    results = {Path(r.item).name: r for r in library.ingest([str(articles)])}
    assert results["skeptic.txt"].status == "error" and "for, against or unknown" in results["skeptic.txt"].message
    assert results["pro_engagement.txt"].status == "added"


def test_changing_a_stance_keeps_text_and_passages(library: Library, articles: Path) -> None:
    library.ingest([str(articles / "skeptic.txt")])
    (doc,) = library.documents()
    generation = library.registry.generation()
    passages = library.registry.passages([doc.id])
    assert library.set_stance(doc.id, "skeptic").stance == "skeptic"
    assert library.registry.passages([doc.id]) == passages
    assert library.registry.generation() == generation  # no search index is rebuilt
    with pytest.raises(StanceError):
        library.set_stance(doc.id, "maybe")


def test_cli_stance_and_documents(library: Library, articles: Path) -> None:
    library.ingest([str(articles / "skeptic.txt")])
    (doc,) = library.documents()
    runner = CliRunner()
    result = runner.invoke(app, ["stance", doc.id, "against"])
    assert result.exit_code == 0, result.output
    assert library.document(doc.id).stance == "skeptic"  # stored as the first corpus's label
    listing = runner.invoke(app, ["documents"])
    assert "against" in listing.output and "stance" in listing.output
    bad = runner.invoke(app, ["stance", doc.id, "pro"])
    assert bad.exit_code == 2 and "for, against or unknown" in bad.output


def test_a_suggested_stance_is_stored_as_a_suggestion_only(library: Library, articles: Path) -> None:
    from langchain_core.messages import BaseMessage

    from assistant.chains.stance import excerpt
    from tests.fakes import ScriptedChatModel

    library.ingest([str(articles / "skeptic.txt"), str(articles / "pro_engagement.txt")])
    docs = {Path(d.source).name: d for d in library.documents()}
    library.set_stance(docs["pro_engagement.txt"].id, "advocate")

    def rule(messages: list[BaseMessage]) -> str:
        return '{"stance": "against"}' if "Limits of Engagement" in messages[-1].content else "not json"

    model = ScriptedChatModel(rule=rule, calls=[])
    assert suggest_stances(library, [d.id for d in docs.values()], model) == {docs["skeptic.txt"].id: "skeptic"}
    assert len(model.calls) == 1  # a confirmed stance is never second-guessed
    record = library.document(docs["skeptic.txt"].id)
    assert (record.stance, record.suggested_stance, record.stance_shown) == ("unknown", "skeptic", "unknown (suggested: against)")
    assert suggest_stances(library, [record.id], model) == {}  # computed once
    text = library.registry.text(record.id)
    shown = excerpt(text)
    assert shown.startswith("The Limits of Engagement") and "Corvel Review" in shown and len(shown) < len(text) + 10


def test_the_suggestion_is_off_without_a_model(library: Library, articles: Path) -> None:
    library.ingest([str(articles / "skeptic.txt")])
    (doc,) = library.documents()
    library.settings = library.settings.model_copy(update={"stance_suggestions": True, "llm_backend": "extractive"})
    assert library.stances_to_suggest([doc.id]) == []


@pytest.mark.slow
def test_the_local_model_suggests_a_stance(library: Library, articles: Path) -> None:
    """Real model, two tiny constrained classifications: always one of the allowed values."""
    library.settings = library.settings.model_copy(update={"stance_suggestions": True, "llm_backend": "llamacpp"})
    library.ingest([str(articles / "skeptic.txt"), str(articles / "pro_engagement.txt")])
    suggested = suggest_stances(library, [d.id for d in library.documents()], build(library.settings, library=library).chat_model)
    assert len(suggested) == 2 and set(suggested.values()) <= {"advocate", "skeptic", "unknown"}
    by_file = {Path(d.source).name: d for d in library.documents()}
    assert by_file["skeptic.txt"].suggested_stance == suggested[by_file["skeptic.txt"].id]
    assert all(d.stance == "unknown" for d in by_file.values())
