"""CI check on the seed corpus: every answerable dev question finds its expected quotes in the top 5.

The corpus and question set live in ../shared (third-party text, never copied here).
"""

from __future__ import annotations

import pytest

from assistant.library import Library
from assistant.retrieval import HybridRetriever
from eval.questions import load_questions
from eval.retrieval_eval import evaluate_retrieval

from tests.conftest import shared_dir

CORPUS = shared_dir() / "corpus"
QUESTIONS = shared_dir() / "eval" / "dev.jsonl"

pytestmark = pytest.mark.skipif(
    not QUESTIONS.is_file() and not __import__("os").environ.get("CI"),
    reason="../shared (seed corpus and dev set) is not present beside this checkout",
)


def test_every_answerable_question_finds_its_quotes_in_the_top_5(library: Library) -> None:
    results = library.ingest([str(CORPUS)])
    assert {r.status for r in results} == {"added"}
    report = evaluate_retrieval(HybridRetriever(library), load_questions(QUESTIONS), k=5)
    missed = [q for q in report["per_question"] if not q["all_found"]]
    assert report["questions"] >= 10
    assert missed == [], f"expected quotes not in the top 5: {missed}"
