"""The ``da`` command line, run for real: in-process through Typer's runner and as a subprocess."""

from __future__ import annotations

import json

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app

runner = CliRunner()


def _run(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input, env={"COLUMNS": "250"})


def test_ingest_list_search_delete(articles: Path) -> None:
    result = _run("ingest", "--quiet", str(articles))
    assert result.exit_code == 0, result.output
    assert "4 added" in result.output

    again = _run("ingest", "--quiet", str(articles))
    assert again.exit_code == 0 and "4 unchanged" in again.output

    listing = _run("documents")
    assert listing.exit_code == 0
    assert "The Limits of Engagement with Arandia" in listing.output and "Tomas Reyne" in listing.output

    found = _run("search", "Which agreement collapsed after eight months?", "-k", "2")
    assert found.exit_code == 0, found.output
    assert "[1]" in found.output and "Copper Lake" in found.output and "skeptic.txt" in found.output
    assert re.search(r"score 0\.\d+ \(dense #\d+", found.output)

    doc_id = re.search(r"([0-9a-f]{16})\s+│?\s*The Limits", listing.output).group(1)
    deleted = _run("delete", doc_id)
    assert deleted.exit_code == 0 and "deleted" in deleted.output
    assert "The Limits" not in _run("documents").output


def test_user_errors_are_one_line_with_nonzero_exit(tmp_path: Path) -> None:
    unknown = _run("delete", "feedfacefeedface")
    assert unknown.exit_code == 2 and "no document with id" in unknown.output
    empty = _run("search", "   ")
    assert empty.exit_code == 2 and "empty" in empty.output
    bad_mode = _run("search", "x", "--mode", "telepathy")
    assert bad_mode.exit_code == 2
    (tmp_path / "empty.txt").write_text("")
    failed = _run("ingest", "-q", str(tmp_path / "empty.txt"))
    assert failed.exit_code == 1 and "empty" in failed.output and "Traceback" not in failed.output


def test_empty_library_message() -> None:
    assert "The library is empty" in _run("documents").output


@pytest.mark.slow  # a fresh interpreter (or a 20-client load run): about 15 s
def test_stdin_ingest_as_a_real_subprocess(tmp_path: Path) -> None:
    env = {**os.environ, "DA_DATA_DIR": str(tmp_path / "sub"), "COLUMNS": "250"}
    text = "Orchard report\n\nThe Kestrel Hill orchard harvested 12 tonnes of quince in its first year."
    proc = subprocess.run(
        [sys.executable, "-m", "assistant.cli", "ingest", "-", "--title", "Orchard report", "-q"],
        input=text, capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "1 added" in proc.stdout
    search = subprocess.run(
        [sys.executable, "-m", "assistant.cli", "search", "quince harvest", "-k", "1"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert search.returncode == 0 and "12 tonnes of quince" in search.stdout


def test_ask_streams_an_answer_and_lists_its_sources(articles: Path) -> None:
    assert _run("ingest", "--quiet", str(articles)).exit_code == 0
    result = _run("ask", "Which observatory published imagery of the enrichment hall at Dunmore?", "--backend", "extractive")
    assert result.exit_code == 0, result.output
    assert "Corvel Observatory" in result.output
    assert "Sources" in result.output and "skeptic.txt" in result.output and "chars " in result.output
    assert "first token" in result.output


def test_ask_chat_mode_keeps_the_conversation_and_declines_honestly(articles: Path) -> None:
    assert _run("ingest", "--quiet", str(articles)).exit_code == 0
    result = _run("ask", "--backend", "extractive", input="What is the capital of Peru?\n\nDunmore enrichment hall imagery?\n")
    assert result.exit_code == 0, result.output
    assert result.output.count("question>") == 4  # two questions, one empty line, then end of input
    assert "The sources don't say." in result.output and "Corvel" in result.output


def test_ask_refuses_bad_input_with_one_clear_line(articles: Path) -> None:
    empty_library = _run("ask", "Anything?", "--backend", "extractive")
    assert empty_library.exit_code == 2 and "library is empty" in empty_library.output
    assert _run("ingest", "--quiet", str(articles)).exit_code == 0
    blank = _run("ask", "   ", "--backend", "extractive")
    assert blank.exit_code == 2 and "question is empty" in blank.output and "Traceback" not in blank.output
    bad_backend = _run("ask", "Anything?", "--backend", "gpt9")
    assert bad_backend.exit_code == 2 and "unknown backend" in bad_backend.output


def test_debate_streams_turns_saves_and_exports(articles: Path, tmp_path: Path) -> None:
    assert _run("ingest", "--quiet", str(articles)).exit_code == 0
    out_file = tmp_path / "debate.md"
    result = _run("debate", "Should Arandia get a non-aggression pledge first?", "--rounds", "0", "--backend",
                  "extractive", "--skeptic", "hawk", "--export", str(out_file), "--criterion", "impact on [bold]trade")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "For (opening)" in result.output and "hawk (opening)" in result.output
    assert "judge (summary)" in result.output and "saved as debate 1" in result.output
    assert "Judged on impact on [bold]trade." in result.output and "Decision: hawk." in result.output  # markup shown as typed
    assert out_file.read_text().startswith("# Debate: Should Arandia") and "## Ballot: judge" in out_file.read_text()
    listing = _run("debates")
    assert "Should Arandia get a non-aggression pledge first?" in listing.output and "complete" in listing.output
    exported = _run("export", "1")
    assert exported.exit_code == 0 and "## References" in exported.output
    as_json = json.loads(_run("export", "1", "--format", "json").output)
    card = as_json["turns"][0]["cards"][0]
    assert card["role"] == "advocate" and card["quote"] and card["document"].endswith((".txt", ".md", ".html"))
    assert set(card) >= {"tag", "passage_id", "doc_id", "stance"}
    assert _run("export", "1", "--format", "brief").output.startswith("# Brief: Should Arandia")
    assert _run("export", "1", "--format", "pdf").exit_code == 2
    assert _run("export", "42").exit_code == 2
    assert _run("debate", "Anything?", "--rounds", "99", "--backend", "extractive").exit_code == 2


@pytest.mark.slow  # the real model writes the quote-first reply
def test_ask_in_quote_first_mode_prints_the_short_answer_and_its_exact_quotes(
    articles: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DA_ANSWER_MODE", "quotes")  # the product default (the test environment pins free)
    assert _run("ingest", "--quiet", str(articles)).exit_code == 0
    result = _run("ask", "How much grain crossed the border under the Harbor Accord?")
    assert result.exit_code == 0, result.output
    answer = result.output.split("Answer:", 1)[1]
    assert "“" in answer and "[1]" in answer or "The sources don't say." in answer, result.output
    assert "40,000 tonnes" in answer, result.output


@pytest.mark.slow  # a few seconds: the fast lane stays under two minutes
def test_an_unreachable_model_server_costs_the_stance_suggestions_not_the_ingest(
    articles: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the OpenAI-compatible backend the server is asked for stance suggestions after the ingest;
    when nothing answers there, the documents are stored and listed, and one line says what was skipped."""
    from tests.servers import free_port

    monkeypatch.setenv("DA_LLM_BACKEND", "openai")
    monkeypatch.setenv("DA_OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    monkeypatch.setenv("DA_OPENAI_TIMEOUT_S", "2")
    monkeypatch.setenv("DA_STANCE_SUGGESTIONS", "true")
    result = _run("ingest", "--quiet", str(articles / "skeptic.txt"))
    assert result.exit_code == 0, result.output
    assert "1 added" in result.output and "stance suggestions skipped (" in result.output
    assert "Connection error" in result.output
    assert "skeptic.txt" in _run("documents").output
