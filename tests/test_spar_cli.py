"""``da spar`` run for real: in-process through Typer's runner with piped stdin, and as a subprocess.

Over the shared seed corpus (two advocate articles, one skeptic), with real Chroma and the real
embedding model; the user argues the skeptic side. The fast tests use the extractive backend (no
model); the subprocess test with the real local model is slow.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from tests.spar_claims import CONTRADICTED_CLAIM, CORPUS, SUPPORTED_CLAIM, UNFOUNDED_CLAIM, needs_shared_corpus

MOTION = "Should Seoul and Washington engage North Korea now?"

pytestmark = needs_shared_corpus
runner = CliRunner()


def _run(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input, env={"COLUMNS": "250"})


@pytest.fixture
def corpus() -> None:
    result = _run("ingest", "--quiet", str(CORPUS))
    assert result.exit_code == 0 and "3 added" in result.output, result.output


def _new(*turns: str, rounds: int = 0):
    """A new session as the skeptic (extractive backend), its turns piped in, separated by empty lines."""
    return _run("spar", "--motion", MOTION, "--side", "skeptic", "--rounds", str(rounds), "--backend", "extractive",
                input="\n\n".join(turns) + "\n")  # fmt: skip


def test_a_piped_session_marks_each_sentence_answers_and_scores(corpus, tmp_path: Path) -> None:
    too_long = " ".join(["sanctions"] * 151)
    # The opening spans two lines; a too-long closing is refused and asked for again, then given.
    result = _new(f"{CONTRADICTED_CLAIM}\n{UNFOUNDED_CLAIM}", too_long, SUPPORTED_CLAIM)
    assert result.exit_code == 0, result.output
    output = result.output
    assert "you argue against the motion, the assistant for it" in output
    assert re.search(rf"U1 contradicted \[\d+\]: {re.escape(CONTRADICTED_CLAIM)}", output)
    assert "“The decade of sunshine ended with the North's first nuclear test still on the record, carried out in " \
           "October 2006 while aid was flowing.”" in output
    assert f"U2 not found: {UNFOUNDED_CLAIM}" in output and "name 'Brazil'" in output
    assert re.search(rf"U3 supported \[\d+\]: {re.escape(SUPPORTED_CLAIM)}", output)
    assert "“Seoul shut it down in February 2016" in output
    # The assistant's cards come after the marks, each with its source number.
    assert output.index("U1 contradicted") < output.index("For (opening)") < output.index("A1 ")
    assert re.search(r"A1 .*\n +“.*” \[\d+\]", output)
    # Nothing lost: the too-long closing was refused with the count and the limit, then asked for again.
    assert "the turn has 151 words; the limit is 150; please give your closing again" in " ".join(output.split())
    assert output.count("your closing (at most 150 words") == 2 and output.count("your opening (") == 1
    assert "Scorecard" in output and "| you (against) | 3 | 1 | 1 | 1 |" in output
    assert "saved as spar session 1 (da spar --export 1)" in output

    listing = _run("spar", "--list")
    assert listing.exit_code == 0 and MOTION in listing.output and "complete" in listing.output
    assert "against" in listing.output
    assert "No debates yet" in _run("debates").output  # spar sessions are not listed as debates

    exported = _run("spar", "--export", "1")
    assert exported.exit_code == 0 and exported.output.startswith(f"# Spar: {MOTION}")
    assert "## Scorecard" in exported.output and "| you (against) | 3 | 1 | 1 | 1 |" in exported.output
    out_file = tmp_path / "spar.md"
    assert _run("spar", "--export", "1", "--out", str(out_file)).exit_code == 0
    assert out_file.read_text(encoding="utf-8") == exported.output
    card = _run("spar", "--scorecard", "1")
    assert card.exit_code == 0 and "| you (against) | 3 | 1 | 1 | 1 |" in card.output and "so far" not in card.output

    over = _run("spar", "--resume", "1", "--backend", "extractive", input=f"{SUPPORTED_CLAIM}\n")
    assert over.exit_code == 2 and "spar session 1 is over" in over.output


def test_the_end_of_input_saves_the_session_and_resume_goes_on_from_there(corpus) -> None:
    started = _new(CONTRADICTED_CLAIM, rounds=1)
    assert started.exit_code == 0, started.output
    assert "U1 contradicted" in started.output and "your rebuttal" in started.output
    assert "spar session 1 is saved; continue it with: da spar --resume 1" in started.output
    listing = _run("spar", "--list")
    assert re.search(r"│ 1 .*│ against .*│ waiting .*│ 2 .*│ your rebuttal", listing.output), listing.output
    mid = _run("spar", "--scorecard", "1")  # on request, mid-session
    assert mid.exit_code == 0 and "so far" in mid.output and "| you (against) | 1 | 0 | 1 | 0 |" in mid.output

    # Blank lines before a turn are not a turn.
    resumed = _run("spar", "--resume", "1", "--backend", "extractive",
                   input=f"\n\n{UNFOUNDED_CLAIM}\n\n{SUPPORTED_CLAIM}\n")  # fmt: skip
    assert resumed.exit_code == 0, resumed.output
    assert "your opening" not in resumed.output and "your rebuttal" in resumed.output
    assert "U2 not found" in resumed.output and "U3 supported" in resumed.output
    assert "| you (against) | 3 | 1 | 1 | 1 |" in resumed.output


def test_resume_answers_a_turn_left_unanswered_first(corpus) -> None:
    from assistant.chains.debate_events import TurnFinished

    assert _new(CONTRADICTED_CLAIM, rounds=1).exit_code == 0
    chain = _spar_chain_of_the_cli()
    events = chain.play(1, UNFOUNDED_CLAIM)
    next(e for e in events if isinstance(e, TurnFinished))  # the user's rebuttal is marked and saved ...
    events.close()  # ... and the process stops before the assistant answers
    assert "the assistant's answer to your last turn" in _run("spar", "--list").output

    resumed = _run("spar", "--resume", "1", "--backend", "extractive", input=f"{SUPPORTED_CLAIM}\n")
    assert resumed.exit_code == 0, resumed.output
    output = resumed.output
    assert output.index("For (rebuttal)") < output.index("your closing") < output.index("U3 supported")
    assert "your rebuttal" not in output and "| you (against) | 3 | 1 | 1 | 1 |" in output


def _spar_chain_of_the_cli():
    from assistant.cli import _spar_chain
    from assistant.core.settings import Settings

    return _spar_chain(Settings())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--motion", MOTION, "--side", "maybe"], "side must be for or against (or advocate, skeptic), not 'maybe'"),
        (["--motion", MOTION], "--side is missing"),
        (["--side", "skeptic"], "--motion is missing"),
        (["--motion", MOTION, "--side", "skeptic", "--rounds", "99"], "rounds must be between 0 and 5"),
        (["--motion", "   ", "--side", "skeptic"], "empty"),
        (["--motion", MOTION, "--side", "skeptic", "--doc", "feedfacefeedface"], "no document with id"),
        (["--motion", MOTION, "--side", "skeptic", "--backend", "gpt9"], "unknown backend"),
        ([], "start a session with --motion and --side"),
        (["--list", "--export", "1"], "not --list and --export together"),
        (["--list", "--out", "x.md"], "--out goes with --export"),
        (["--resume", "1", "--rounds", "2"], "--rounds goes with --motion"),
        (["--resume", "42"], "no spar session with id 42"),
        (["--export", "42"], "no spar session with id 42"),
        (["--scorecard", "42"], "no spar session with id 42"),
    ],
)
def test_bad_input_is_one_clear_line_exit_2_and_saves_nothing(corpus, args: list[str], message: str) -> None:
    result = _run("spar", *args, input=f"{SUPPORTED_CLAIM}\n")
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output
    assert "No spar sessions yet" in _run("spar", "--list").output


def test_a_debate_is_not_a_spar_session(corpus) -> None:
    debate = _run("debate", "Should Seoul engage Pyongyang?", "--rounds", "0", "--backend", "extractive")
    assert debate.exit_code == 0 and "saved as debate 1" in debate.output
    for args in (["--resume", "1", "--backend", "extractive"], ["--export", "1"], ["--scorecard", "1"]):
        result = _run("spar", *args)
        assert result.exit_code == 2 and "no spar session with id 1" in result.output


@pytest.mark.slow  # a fresh interpreter and two assistant turns of the real 1.5B model
def test_piped_stdin_to_a_real_process_with_the_real_model(tmp_path: Path) -> None:
    env = {**os.environ, "DA_DATA_DIR": str(tmp_path / "sub"), "COLUMNS": "250", "DA_DEBATE_TURN_MAX_TOKENS": "110"}
    env.pop("DA_LLM_BACKEND", None)  # the default: the local model

    def da(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "assistant.cli", *args], input=stdin, capture_output=True,
                              text=True, env=env, timeout=1800)  # fmt: skip

    assert da("ingest", "--quiet", str(CORPUS)).returncode == 0
    # The opening only: the input ends, the session is saved.
    first = da("spar", "--motion", MOTION, "--side", "skeptic", "--rounds", "0", stdin=f"{CONTRADICTED_CLAIM}\n")
    assert first.returncode == 0, first.stderr
    assert re.search(r"U1 contradicted \[\d+\]", first.stdout) and "October 2006" in first.stdout
    assert "For (opening)" in first.stdout and re.search(r"A1 .*\n +“.*” \[\d+\]", first.stdout)
    assert "continue it with: da spar --resume 1" in first.stdout
    # Another process resumes it at the closing.
    second = da("spar", "--resume", "1", stdin=f"{SUPPORTED_CLAIM} {UNFOUNDED_CLAIM}\n")
    assert second.returncode == 0, second.stderr
    assert "your closing" in second.stdout and "your opening" not in second.stdout
    assert re.search(r"U2 supported \[\d+\]", second.stdout) and "U3 not found" in second.stdout
    assert "For (closing)" in second.stdout
    assert "| you (against) | 3 | 1 | 1 | 1 |" in second.stdout
    exported = da("spar", "--export", "1")
    assert exported.returncode == 0 and "## Scorecard" in exported.stdout
    assert "## Closing: For" in exported.stdout
