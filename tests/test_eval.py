"""The eval runner: metrics on hand-made cases, a whole run with comparison and report, the CLI.

Whole runs use the real embedding model and Chroma on the fixture articles, with the
extractive backend (deterministic, no LLM); ``test_real_model_run`` uses the local LLM.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.core.personas import Persona
from eval.__main__ import main as eval_main
from assistant.core.debate_record import Card
from eval.debate_eval import manifest_stances, own_evidence_share, repeated_cards
from eval.metrics import generation_fields, keyword_recall, raw_citation_validity
from eval.questions import Question
from eval.questions import load_questions
from eval.runner import ConfigError, EvalConfig, run_config
from tests.conftest import ARTICLES, FIXTURES

QUESTIONS = FIXTURES / "questions.jsonl"


class _Passage:
    def __init__(self, text: str, title: str = "A report") -> None:
        self.text, self.title, self.author, self.publisher = text, title, None, None


def test_keyword_recall_matches_whole_words_without_markers() -> None:
    assert keyword_recall("The  “Harbor Accord” reopened it", ['harbor accord', "rail|road"]) == 0.5
    assert keyword_recall("The railway reopened [1].", ["rail"]) == 0.0  # "rail" is not a word of "railway"
    assert keyword_recall("It happened in 2019 [1].", ["1"]) == 0.0  # the marker is not the answer
    assert keyword_recall("anything", []) is None  # no keywords: left out of the mean


def test_citation_validity_counts_what_the_model_wrote() -> None:
    assert raw_citation_validity("A [1]. B [7]. C [2][9].", n_sources=3) == pytest.approx(2 / 4)
    assert raw_citation_validity("No markers at all.", n_sources=3) is None


def _question(answerable: bool) -> Question:
    return Question(id="q", mode="ask", question="?", answerable=answerable, expected_sources=["a.txt"],
                    expected_quotes=["half their weight"], expected_keywords=["worms"])  # fmt: skip


def test_declined_withheld_and_rescued_are_told_apart() -> None:
    passages = [_Passage("Composting worms eat half their weight daily."), _Passage("Rail news.")]
    answered = generation_fields(_question(True), "Worms eat a lot [1].", "Worms eat a lot [1].", False, False,
                                 [1], passages, ["a.txt"])  # fmt: skip
    assert answered["abstention_correct"] and answered["evidence_holds_quote"] and answered["keyword_recall"] == 1.0
    assert answered["citation_precision"] == 1.0 and answered["rescued"] is None
    withheld = generation_fields(_question(True), "The sources don't say.", "Worms fly [2].", False, True, [], passages, [])
    assert not withheld["abstention_correct"] and withheld["evidence_holds_quote"] is False  # a failure, not a decline
    assert withheld["keyword_recall"] == 0.0
    rescued = generation_fields(_question(False), "The sources don't say.", "Worms fly [2].", False, True, [], passages, [])
    assert rescued["rescued"] and not rescued["abstention_correct"]  # rescued by the checker, not a correct decline
    declined = generation_fields(_question(False), "The sources don't say.", "The sources don't say.", True, False, [],
                                 passages, [])  # fmt: skip
    assert declined["abstention_correct"] and declined["rescued"] is False
    # Citing a passage without the quote: the evidence does not hold it, whatever the checker thought.
    wrong = generation_fields(_question(True), "Worms eat [2].", "Worms eat [2].", False, False, [2], passages, ["b.txt"])
    assert wrong["evidence_holds_quote"] is False and wrong["citation_precision"] == 0.0


def _card(label: str, role: str, source: int, quote: str, tag: str) -> Card:
    return Card(label, role, tag, quote, source, f"p{source}", f"d{source}", 0, len(quote))


def test_debate_side_checks_use_the_manifest(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(
        '[{"file": "pro.txt", "stance": "advocate"}, {"file": "con.txt", "stance": "skeptic"}, {"file": "x.txt"}]'
    )
    stances = manifest_stances([tmp_path])
    assert stances == {"pro.txt": "advocate", "con.txt": "skeptic"}
    stance_of = {1: "advocate", 2: "skeptic", 3: "unknown"}
    cards = [_card("A1", "advocate", 1, "q1", "t1"), _card("A2", "advocate", 2, "q2", "t2"),
             _card("S1", "skeptic", 3, "q3", "t3"), _card("S2", "skeptic", 2, "q1", "t4")]  # fmt: skip
    assert own_evidence_share(cards, "advocate", stance_of) == 0.5  # A2 quotes the skeptic's article
    assert own_evidence_share(cards, "skeptic", stance_of) == 1.0  # unknown counts as its own
    assert repeated_cards(cards) == 1  # S2 repeats A1's quote


def test_config_specs() -> None:
    config = EvalConfig.parse("dense:retrieval_mode=dense, retrieval_k=3")
    assert config == EvalConfig("dense", {"retrieval_mode": "dense", "retrieval_k": "3"})
    with pytest.raises(ConfigError, match="unknown setting"):
        EvalConfig.parse("x:no_such_setting=1")
    with pytest.raises(ConfigError, match="key=value"):
        EvalConfig.parse("x:retrieval_k")
    with pytest.raises(ConfigError, match="retrieval_mode"):
        EvalConfig.parse("x:retrieval_mode=telepathy").settings(Path("/tmp"))


def test_configs_that_embed_alike_share_one_ingest(tmp_path: Path) -> None:
    a = EvalConfig.parse("a:retrieval_k=3").settings(tmp_path)
    b = EvalConfig.parse("b:llm_backend=extractive").settings(tmp_path)
    c = EvalConfig.parse("c:chunk_tokens=64").settings(tmp_path)
    assert a.data_dir == b.data_dir != c.data_dir


def test_whole_run_with_the_extractive_baseline(tmp_path: Path) -> None:
    report = run_config(
        EvalConfig.parse("extractive:llm_backend=extractive"), [ARTICLES], load_questions(QUESTIONS), tmp_path
    )
    rows = {r["id"]: r for r in report["questions"]}
    assert report["ingest"]["documents"] == 4 and report["ingest"]["errors"] == 0
    assert rows["fx-01"]["retrieval"]["all_found"] and rows["fx-01"]["retrieval"]["reciprocal_rank"] == 1.0
    assert "retrieval" not in rows["fx-03"]  # unanswerable: nothing to find
    assert rows["fx-01"]["generation"]["keyword_recall"] == 1.0
    assert rows["fx-01"]["generation"]["citation_validity"] == 1.0
    debate = rows["fx-04"]["generation"]
    assert debate["side"] == "skeptic" and set(debate) >= {"sides_cite", "moderator_cites_both", "skeptic_own_evidence"}
    assert debate["quote_exact"] == 1.0 and debate["repeated_cards"] == 0 and debate["moderator_cites_both"]
    assert set(report["by_mode"]) == {"ask", "debate", "all"}
    assert report["by_mode"]["ask"]["questions"] == 3 and report["by_mode"]["debate"]["questions"] == 1
    assert report["by_mode"]["all"]["recall_at_5"] == 1.0


def test_cli_compares_configurations_and_writes_every_report_format(tmp_path: Path, capsys) -> None:
    out = tmp_path / "report"
    code = eval_main([
        "--corpus", str(ARTICLES), "--questions", str(QUESTIONS), "--retrieval-only", "--out", str(out),
        "--config", "hybrid", "--config", "bm25:retrieval_mode=bm25", "--config", "k1:retrieval_k=1",
    ])  # fmt: skip
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert [c["name"] for c in report["configs"]] == ["hybrid", "bm25", "k1"]
    assert report["configs"][2]["by_mode"]["all"]["recall_at_1"] is not None
    assert all("generation" not in row for c in report["configs"] for row in c["questions"])
    markdown = (out / "report.md").read_text()
    assert "| metric | hybrid | bm25 | k1 |" in markdown and "![quality.png](quality.png)" in markdown
    html = (out / "report.html").read_text()
    assert "<table>" in html and '<img src="cost.png"' in html
    assert (out / "quality.png").read_bytes()[:4] == b"\x89PNG" and (out / "cost.png").stat().st_size > 1000
    assert "| metric | hybrid | bm25 | k1 |" in capsys.readouterr().out


def test_baseline_check_fails_when_recall_drops(tmp_path: Path, capsys) -> None:
    questions = tmp_path / "hard.jsonl"
    questions.write_text(
        QUESTIONS.read_text()
        + json.dumps({"id": "fx-99", "question": "Who wrote about worms?", "expected_quotes": ["words in no article"]})
        + "\n"
    )
    baselines = tmp_path / "baselines.json"
    baselines.write_text(json.dumps({"hard.jsonl": {"k": 5, "recall_at_k": 1.0, "measured": "test"}}))
    args = ["--corpus", str(ARTICLES), "--questions", str(questions), "--retrieval-only", "--out", str(tmp_path / "r")]
    assert eval_main([*args, "--check-baseline", str(baselines)]) == 1
    assert "recall@5 0.750 is below the recorded 1.000" in capsys.readouterr().err
    baselines.write_text(json.dumps({"hard.jsonl": {"k": 5, "recall_at_k": 0.75}}))
    assert eval_main([*args, "--check-baseline", str(baselines)]) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", "a:retrieval_k"], "expected key=value"),
        (["--config", "a", "--config", "a"], "names must differ"),
        (["--questions", "missing.jsonl"], "No such file"),
        (["--half", "tune"], "is in half 'tune'; its halves: none"),
        (["--out", "/dev/null/report"], "cannot write the report to /dev/null/report"),
    ],
)
def test_cli_errors_are_clear(tmp_path: Path, capsys, args: list[str], message: str) -> None:
    base = ["--corpus", str(ARTICLES), "--questions", str(QUESTIONS), "--retrieval-only", "--out", str(tmp_path)]
    assert eval_main(base + args) == 2
    assert message in capsys.readouterr().err


def test_invalid_question_line_is_named(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "fine?"}\n{"id": "b", "mode": "chat", "question": "?"}\n')
    assert eval_main(["--corpus", str(ARTICLES), "--questions", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert "bad.jsonl:2: mode must be 'ask' or 'debate'" in capsys.readouterr().err


@pytest.mark.slow
def test_real_model_run(tmp_path: Path) -> None:
    """The local LLM through the runner: abstention and grounding figures come out of real answers."""
    questions = [q for q in load_questions(QUESTIONS) if q.id in ("fx-01", "fx-03", "fx-04")]
    report = run_config(
        EvalConfig.parse("local:llm_max_tokens=80,debate_turn_max_tokens=80"), [ARTICLES], questions, tmp_path
    )
    rows = {r["id"]: r["generation"] for r in report["questions"]}
    assert not rows["fx-01"]["declined"], rows["fx-01"]["text"]
    assert rows["fx-01"]["citation_validity"] == 1.0 and rows["fx-01"]["cited_expected_source"]
    assert rows["fx-03"]["no_answer_shown"], rows["fx-03"]["text"]  # declined by the model, or withheld by the checker
    assert rows["fx-04"]["first_token_ms"] > 0 and rows["fx-04"]["tokens_per_s"] > 0
    assert report["by_mode"]["all"]["first_token_ms"] > 0


def test_personas_without_search_terms_search_with_their_stance() -> None:
    assert Persona("x", "You argue about ports.").search_text == "You argue about ports."
    assert Persona("x", "stance", "ports and rails").search_text == "ports and rails"
    assert Persona("x", "stance", "").search_text == ""  # the default sides: the motion alone
