"""The ``da`` command line never crashes on what it prints or is given (issue 32, failures 3, 4, 7, 8).

Rich markup in stored text (titles, authors, sources, passages, answers, cards) and in arguments
(ids, queries, motions, names) is printed as typed; out-of-range ids and k, unwritable output
paths and non-regular files get one clear error and a non-zero exit, never a traceback. Run in
process through Typer's runner (an uncaught exception shows as ``result.exception``) and, where
a real exit code, stderr or a blocking read matters, as a subprocess.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from assistant.cli import app
from assistant.storage.library import Library
from assistant.core.settings import Settings

runner = CliRunner()

# Every kind of Rich markup that broke or bent the old output: a bare closing tag, a style, a
# link and its end, and a trailing backslash (which escapes whatever tag a template puts after it).
MARKUP = "[/] [bold] [link=x] [/link] \\"
TITLE = f"Harlow ceasefire notes {MARKUP}"
AUTHOR = "[red]Ann Lee[/red] [/]"
FILE_NAME = "harlow [bold] notes.md"
BODY = (
    "The Harlow valley ceasefire [/] held for eight months in 2031 [bold] before it collapsed.\n\n"
    "Monitors from the Vessel Commission [link=x] counted forty-one violations in the first week [/link].\n"
)
BAD_ID = "feed[/]face[bold]"
MAX_ID = 2**63 - 1


def _run(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input, env={"COLUMNS": "250"})


def _clean(result, code: int = 0) -> str:
    """The output of a run that ended with ``code`` and no uncaught exception."""
    assert not (result.exception and not isinstance(result.exception, SystemExit)), repr(result.exception)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and "MarkupError" not in result.output
    return result.output


@pytest.fixture
def marked_library(articles: Path, tmp_path: Path) -> str:
    """The fixture articles plus one whose title, author, file name and text are full of markup; its id."""
    folder = tmp_path / "marked"
    folder.mkdir()
    front = yaml.safe_dump({"title": TITLE, "author": AUTHOR}, allow_unicode=True)
    (folder / FILE_NAME).write_text(f"---\n{front}---\n{BODY}", encoding="utf-8")
    assert _run("ingest", "-q", str(articles)).exit_code == 0
    assert _run("ingest", "-q", str(folder)).exit_code == 0
    library = Library(Settings())
    try:
        return next(d.id for d in library.documents() if d.title == TITLE)
    finally:
        library.close()


def test_documents_and_search_print_markup_as_text(marked_library: str) -> None:
    listing = _clean(_run("documents"))
    assert TITLE in listing and AUTHOR in listing and FILE_NAME in listing
    found = _clean(_run("search", f"Harlow ceasefire {MARKUP}", "-k", "2"))
    assert TITLE in found and FILE_NAME in found
    assert "held for eight months in 2031 [bold] before it collapsed" in found
    only = _clean(_run("search", "violations", "--doc", marked_library))
    assert "Vessel Commission [link=x] counted" in only


def test_markup_in_an_id_argument_is_echoed_as_text(marked_library: str) -> None:
    unknown = _clean(_run("search", "ceasefire", "--doc", BAD_ID), code=2)
    assert f"no document with id '{BAD_ID}'" in unknown
    assert BAD_ID in _clean(_run("stance", BAD_ID, "skeptic"), code=2)
    assert f"({TITLE}): stance against" in _clean(_run("stance", marked_library, "skeptic"))
    assert BAD_ID in _clean(_run("delete", BAD_ID), code=2)
    deleted = _clean(_run("delete", marked_library))
    assert f"deleted {marked_library}: {TITLE} (" in deleted


def test_ask_prints_the_answer_and_sources_with_their_markup(marked_library: str) -> None:
    answer = _clean(_run("ask", f"How many violations did the Vessel Commission {MARKUP} count?", "--backend",
                         "extractive"))  # fmt: skip
    assert "forty-one violations" in answer and "[link=x]" in answer
    assert f"{TITLE}  " in answer and FILE_NAME in answer


def test_debate_listing_and_export_keep_markup_as_text(marked_library: str) -> None:
    motion = f"Should the Harlow ceasefire {MARKUP} be renewed?"
    debate = _clean(_run("debate", motion, "--rounds", "0", "--backend", "extractive", "--skeptic", "hawk [/]",
                         "--advocate", "dove [link=x]"))  # fmt: skip
    assert "hawk [/] (opening)" in debate and "dove [link=x] (opening)" in debate and "saved as debate 1" in debate
    assert motion in _clean(_run("debates"))
    assert _clean(_run("export", "1")).startswith(f"# Debate: {motion}")


def test_spar_listing_keeps_markup_as_text(marked_library: str) -> None:
    motion = f"Harlow ceasefire {MARKUP}?"
    started = _clean(_run("spar", "--motion", motion, "--side", "skeptic", "--rounds", "0", "--backend", "extractive",
                          input="The Harlow valley ceasefire [/] held for eight months.\n"))  # fmt: skip
    assert f": {motion}\n" in started
    assert motion in _clean(_run("spar", "--list"))


@pytest.mark.parametrize("args", [
    ("export", str(2**64)), ("export", str(MAX_ID + 1)), ("export", "99999999999999999999"), ("export", "--", "-1"),
    ("export", "0"), ("spar", "--resume", str(MAX_ID + 1), "--backend", "extractive"), ("spar", "--resume", "-3"),
    ("spar", "--export", str(2**63)), ("spar", "--scorecard", str(2**70)), ("spar", "--scorecard", "-1"),
], ids=lambda a: " ".join(a)[:40])  # fmt: skip
def test_out_of_range_ids_are_refused_with_exit_2(articles: Path, args: tuple[str, ...]) -> None:
    assert _run("ingest", "-q", str(articles)).exit_code == 0
    output = _clean(_run(*args), code=2)
    assert re.search(rf"Invalid value for .*(less than or equal to {MAX_ID}|greater than or equal to 1)", output)


@pytest.mark.parametrize("command", ["search", "ask"])
@pytest.mark.parametrize("k", ["0", "-1", "51", "99999999999999999999"])
def test_k_outside_the_rest_bounds_is_refused(articles: Path, command: str, k: str) -> None:
    from assistant.core.limits import MAX_K

    assert _run("ingest", "-q", str(articles)).exit_code == 0
    extra = ("--backend", "extractive") if command == "ask" else ()
    output = _clean(_run(command, "Dunmore enrichment hall imagery?", "-k", k, *extra), code=2)
    assert re.search(rf"Invalid value for '-k'.*(less than or equal to {MAX_K}|greater than or equal to 1)", output)


def test_the_cli_and_rest_share_one_k_bound() -> None:
    from assistant.server.api import AskRequest, SearchRequest
    from assistant.core.limits import MAX_K

    for model in (AskRequest, SearchRequest):
        bounds = {type(m).__name__: getattr(m, "ge", getattr(m, "le", None)) for m in model.model_fields["k"].metadata}
        assert bounds == {"Ge": 1, "Le": MAX_K}


def _debate(articles: Path) -> None:
    assert _run("ingest", "-q", str(articles)).exit_code == 0
    assert _run("debate", "Arandia?", "--rounds", "0", "--backend", "extractive").exit_code == 0


def test_export_to_an_unwritable_path_is_one_clear_error(articles: Path, tmp_path: Path) -> None:
    _debate(articles)
    missing = _clean(_run("export", "1", "-o", "/nonexistent/dir/x.md"), code=2)
    assert "/nonexistent/dir" in missing and "does not exist" in missing
    folder = _clean(_run("export", "1", "-o", str(tmp_path)), code=2)
    assert "is a directory" in folder
    spar = _clean(_run("spar", "--export", "1", "-o", str(tmp_path / "no" / "x.md")), code=2)
    assert "does not exist" in spar
    written = _clean(_run("export", "1", "-o", str(tmp_path / "x.md")))
    assert "written to" in written and (tmp_path / "x.md").read_text().startswith("# Debate")


def test_a_debate_with_an_unwritable_export_is_refused_before_it_runs(articles: Path) -> None:
    assert _run("ingest", "-q", str(articles)).exit_code == 0
    refused = _clean(_run("debate", "Arandia?", "--rounds", "0", "--backend", "extractive", "--export",
                          "/nonexistent/dir/x.md"), code=2)  # fmt: skip
    assert "does not exist" in refused
    assert "No debates yet" in _run("debates").output


def _subprocess(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "assistant.cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, stdin=subprocess.DEVNULL)  # fmt: skip


@pytest.mark.slow  # fresh interpreters loading the embedding model: about 30 s
def test_non_regular_files_are_refused_per_item_without_reading(articles: Path, tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "250"}
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)  # opening it for reading would wait forever for a writer
    zero = _subprocess("ingest", "-q", "/dev/zero", env=env)
    assert zero.returncode == 1 and "Traceback" not in zero.stderr
    assert "not a regular file" in zero.stdout and "1 error" in zero.stdout
    batch = _subprocess("ingest", "-q", str(fifo), str(articles / "skeptic.txt"), env=env)
    assert batch.returncode == 1 and "Traceback" not in batch.stderr
    assert "not a regular file" in batch.stdout and "1 added, 1 error" in batch.stdout


@pytest.mark.slow  # fresh interpreters: about 20 s
def test_markup_and_bad_arguments_as_a_real_subprocess(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "250"}
    added = subprocess.run([sys.executable, "-m", "assistant.cli", "ingest", "-", "--title", TITLE, "-q"], input=BODY,
                           capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert added.returncode == 0 and "Traceback" not in added.stderr, added.stderr
    listing = _subprocess("documents", env=env)
    assert listing.returncode == 0 and TITLE in listing.stdout, listing.stderr
    for args in (("delete", BAD_ID), ("export", "99999999999999999999"), ("export", "1", "-o", "/nonexistent/d/x.md")):
        refused = _subprocess(*args, env=env)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr + refused.stdout, refused.stderr
