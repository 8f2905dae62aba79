"""The composition root: ``assistant.server.service.build`` is the one place that makes chains, and the
server, the CLI and the eval runner take theirs from it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.server.service import Components, Service, build
from assistant.core import personas
from assistant.core.settings import Settings
from assistant.core.debate_record import STOPPED
from assistant.storage.transcripts import TranscriptStore
from eval.questions import load_questions
from eval.runner import EvalConfig, run_config
from tests.conftest import ARTICLES, FIXTURES

ROOT = Path(__file__).resolve().parents[1]
CHAINS = {"AskChain", "DebateChain", "SparChain"}
ROOT_MODULE = "assistant/server/service.py"


def _chains_constructed(path: Path) -> set[str]:
    """The chain classes ``path`` calls by name (``AskChain(...)``, ``qa.AskChain(...)``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if called in CHAINS:
                names.add(called)
    return names


def test_no_module_but_the_composition_root_constructs_a_chain() -> None:
    sources = [ROOT / "ui.py", *(p for folder in ("assistant", "eval", "bench", "ingest") for p in (ROOT / folder).rglob("*.py"))]
    found = {str(p.relative_to(ROOT)): names for p in sources if (names := _chains_constructed(p))}
    assert found.pop(ROOT_MODULE) == CHAINS  # the scan does see constructions
    assert found == {}, f"chains made outside {ROOT_MODULE}: {found}"


@pytest.fixture
def chains_made(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the ``Components`` chain factories called during a test, in order."""
    made: list[str] = []
    for name in ("ask_chain", "debate_chain", "spar_chain"):
        original = getattr(Components, name)

        def recorded(self, *args, _original=original, _name=name, **kwargs):
            made.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Components, name, recorded)
    return made


def test_the_service_takes_its_chains_from_the_composition_root(settings: Settings, chains_made: list[str]) -> None:
    service = Service(settings.model_copy(update={"llm_backend": "extractive"}))
    assert service.library is service.components.library
    _ = service.ask_chain, service.spar_chain
    assert chains_made == ["ask_chain", "spar_chain", "debate_chain"]  # a spar chain holds a debate chain
    assert service.spar_chain is service.spar_chain  # one per process


def test_closing_the_service_saves_an_unfinished_debate_as_stopped(settings: Settings) -> None:
    """What a shutdown relies on: the stores the components opened are closed with the service."""
    service = Service(settings.model_copy(update={"llm_backend": "extractive"}))
    debate = service.transcripts.create("An unfinished debate", 1, personas.ADVOCATE, personas.SKEPTIC, [])
    service.close()
    store = TranscriptStore(settings.transcripts_database)
    try:
        assert store.get(debate.id).status == STOPPED
    finally:
        store.close()


def test_given_parts_are_used_and_the_settings_reach_the_chains(library, settings: Settings) -> None:
    quotes = settings.model_copy(update={"answer_mode": "free", "llm_backend": "extractive"})
    components = build(quotes, library=library)
    chain = components.ask_chain()
    assert chain.retriever.library is library and chain.settings.answer_mode == "free"
    assert components.chat_model is components.chat_model  # loaded once


@pytest.mark.slow  # an ingest, a CLI answer and an eval run with the extractive model: about 10 s
def test_the_cli_and_eval_take_their_chains_from_the_composition_root(articles: Path, tmp_path: Path,
                                                                      chains_made: list[str]) -> None:  # fmt: skip
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", "--quiet", str(articles)]).exit_code == 0
    asked = runner.invoke(app, ["ask", "Which agreement collapsed after eight months?", "--backend", "extractive"])
    assert asked.exit_code == 0, asked.output
    assert chains_made == ["ask_chain"]

    chains_made.clear()
    run_config(EvalConfig.parse("x:llm_backend=extractive"), [ARTICLES], load_questions(FIXTURES / "questions.jsonl"),
               tmp_path / "eval")  # fmt: skip
    assert chains_made == ["ask_chain", "debate_chain"]


def test_the_cli_lists_saved_debates_through_the_composition_root_without_opening_the_library(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    store = TranscriptStore.from_settings(settings)
    store.create("Should the test pass?", 0, personas.ADVOCATE, personas.SKEPTIC, [])
    store.close()
    opened: list[str] = []
    monkeypatch.setattr("assistant.server.service.Library", lambda s: opened.append("library"))
    built: list[Components] = []
    monkeypatch.setattr("assistant.server.service.build", lambda s: built.append(build(s)) or built[-1])
    listed = CliRunner().invoke(app, ["debates"])
    assert listed.exit_code == 0, listed.output
    assert "Should the test pass?" in listed.output
    assert len(built) == 1 and opened == []
    components = build(settings)
    assert components.library is None and opened == ["library"]  # the patch is what build would have used
