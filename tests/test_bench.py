"""The benchmark scripts run end to end at toy sizes (their figures are not checked: no timing asserts).

What is checked is that they measure what they claim: the synthetic library really holds the
requested number of passages in both the registry and Chroma, and the ingest benchmark
encodes exactly the passages ingest produced.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.__main__ import main as bench_main
from bench.ingest_throughput import measure_ingest
from bench.retrieval_scale import measure_retrieval
from bench.synthetic import TextMaker, vocabulary


def test_synthetic_text_is_seeded_and_bounded() -> None:
    assert TextMaker(3).document(2) == TextMaker(3).document(2)
    assert len(set(vocabulary(2000))) == 2000
    with pytest.raises(ValueError):
        vocabulary(10**6)


def test_retrieval_benchmark_fills_registry_and_store_alike(tmp_path: Path) -> None:
    rows = measure_retrieval(tmp_path, sizes=(200, 500), queries=3, modes=("hybrid", "bm25"))
    assert [(r["passages"], r["mode"]) for r in rows] == [(200, "hybrid"), (200, "bm25"), (500, "hybrid"), (500, "bm25")]
    assert all(r["queries"] == 3 and r["p95_ms"] >= r["p50_ms"] > 0 for r in rows)


def test_ingest_benchmark_encodes_the_passages_ingest_made(tmp_path: Path) -> None:
    result = measure_ingest(tmp_path, documents=3, paragraphs=2, batch_sizes=(4, 16))
    assert result["documents"] == 3 and result["passages"] >= 6
    assert set(result["raw_passages_per_s_by_batch_size"]) == {"4", "16"}
    assert result["ingest_passages_per_s"] > 0 and result["ratio_ingest_over_raw"] > 0


def test_cli_writes_json_and_markdown(tmp_path: Path) -> None:
    assert bench_main(["--only", "retrieval", "--sizes", "100", "--out", str(tmp_path)]) == 0
    assert "## Retrieval latency" in (tmp_path / "bench.md").read_text()
    assert (tmp_path / "bench.json").stat().st_size > 0
    with pytest.raises(SystemExit):
        bench_main(["--only", "llm", "--out", str(tmp_path)])  # needs --corpus and --questions


@pytest.mark.slow
def test_check_cost_times_both_verifier_stages_on_the_same_reply(tmp_path: Path) -> None:
    """Real model, two fixture questions: every answer is checked by both stages, and the model
    stage reads prompt tokens for every sentence it judges."""
    from bench.check_cost import markdown, measure_check_cost

    fixtures = Path(__file__).parent / "fixtures"
    report = measure_check_cost(fixtures / "articles", fixtures / "questions.jsonl", limit=2, data_dir=tmp_path)
    assert report["answers"] >= 1 and report["sentences_checked"] >= 1
    for row in report["rows"]:
        assert row["verify_llm_calls"] == row["judged_sentences"]
        assert (row["verify_llm_prompt_tokens"] > 0) == (row["judged_sentences"] > 0)
        assert row["kept_llm"] <= row["kept_rules"]  # the model stage only ever removes
    assert "| verify, rules+llm |" in markdown(report)


@pytest.mark.slow
def test_spar_bench_times_marks_check_and_first_card_after_a_warm_up(tmp_path: Path) -> None:
    """Real model on the fixture articles, rules then judge, one timed turn: every sentence of the
    four-sentence turn gets a final mark, the first (provisional) mark comes before all are final,
    the marks before the check ends and the check before the first card."""
    from bench.spar_time import TURNS, measure_spar

    articles = Path(__file__).parent / "fixtures" / "articles"
    report = measure_spar(articles, runs=1, data_dir=tmp_path, verifiers=["rules+llm"])
    (run,) = report["verifiers"]["rules+llm"]["runs"]
    assert len(run["marks"]) == 4 == TURNS[1].count(". ") + 1
    assert run["first_mark_s"] <= run["final_s"] <= run["check_s"] <= run["first_card_s"] <= run["turn_s"]
    assert all(change.endswith("-> not found") for change in run["revised"])  # the judge only withdraws support
