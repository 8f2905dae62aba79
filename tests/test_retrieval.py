"""Hybrid retrieval over the fixture articles with the real model and a real Chroma store."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.storage.library import Library
from assistant.retrieval.retrieval import HybridRetriever, reciprocal_rank_fusion
from assistant.core.inputs import QueryError
from ingest.loaders import load_file
from ingest.pipeline import prepare


@pytest.fixture
def retriever(library: Library, articles: Path) -> HybridRetriever:
    library.ingest([str(articles)])
    return HybridRetriever(library)


def _titles(hits) -> list[str]:
    return [h.title for h in hits]


def test_paraphrased_question_finds_the_passage(retriever: HybridRetriever) -> None:
    hits = retriever.retrieve("How much grain crossed the border after the agreement?", 3)
    assert "40,000 tonnes" in hits[0].text
    assert hits[0].title == "Why Talking to Arandia Works"
    assert hits[0].dense_rank is not None and hits[0].lexical_rank is not None


def test_every_mode_ranks_an_exact_rare_term(retriever: HybridRetriever) -> None:
    for mode in ("hybrid", "dense", "bm25"):
        hits = retriever.retrieve("Dunmore enrichment hall", 2, mode=mode)
        assert "Dunmore" in hits[0].text, mode
    assert all(h.dense_rank is None for h in retriever.retrieve("Dunmore", 3, mode="bm25"))
    assert all(h.lexical_rank is None for h in retriever.retrieve("Dunmore", 3, mode="dense"))


def test_results_carry_source_and_offsets(retriever: HybridRetriever, library: Library) -> None:
    for hit in retriever.retrieve("salmon counted at the fish ladder", 4):
        assert library.registry.text(hit.doc_id)[hit.start : hit.end] == hit.text
        assert hit.source and hit.title
    scores = [h.score for h in retriever.retrieve("salmon", 5)]
    assert scores == sorted(scores, reverse=True)


def test_filter_by_document(retriever: HybridRetriever, library: Library) -> None:
    skeptic = next(d for d in library.documents() if d.title.startswith("The Limits"))
    for mode in ("hybrid", "dense", "bm25"):
        hits = retriever.retrieve("grain shipments and the Harbor Accord", 5, doc_ids=[skeptic.id], mode=mode)
        assert hits and {h.doc_id for h in hits} == {skeptic.id}, mode
    assert retriever.retrieve("anything", 5, doc_ids=[]) == []


def test_mmr_returns_distinct_passages(retriever: HybridRetriever) -> None:
    plain = retriever.retrieve("Arandia engagement", 4)
    diverse = retriever.retrieve("Arandia engagement", 4, use_mmr=True)
    assert len(diverse) == 4 and len({h.id for h in diverse}) == 4
    assert {h.id for h in plain} & {h.id for h in diverse}


def test_new_documents_are_visible_and_deleted_ones_vanish(retriever: HybridRetriever, library: Library,
                                                            tmp_path: Path) -> None:
    note = tmp_path / "heron.txt"
    note.write_text("Heron census\n\nThe grey heron colony at Marlow Fen grew to 84 nests this spring.")
    library.ingest([str(note)])
    hits = retriever.retrieve("how many heron nests at Marlow Fen", 1)
    assert "84 nests" in hits[0].text
    library.delete(hits[0].doc_id)
    assert all("84 nests" not in h.text for h in retriever.retrieve("heron nests Marlow Fen", 5))


def test_pending_documents_are_invisible(library: Library, articles: Path) -> None:
    settings = library.settings
    doc = prepare(load_file(articles / "skeptic.txt", settings), "x", library.splitter, settings)
    library.registry.begin(doc.record, doc.text, doc.passages)
    library.store.add([p.id for p in doc.passages], [p.text for p in doc.passages],
                      [{"doc_id": doc.record.id} for _ in doc.passages])
    retriever = HybridRetriever(library)
    assert retriever.retrieve("Copper Lake agreement inspectors", 5) == []


@pytest.mark.parametrize("query", ["", "   \n\t", "x" * 4001, "a" * 10_000_000])
def test_empty_or_huge_queries_are_refused(retriever: HybridRetriever, query: str) -> None:
    with pytest.raises(QueryError):
        retriever.retrieve(query)


def test_empty_library_returns_nothing(library: Library) -> None:
    assert HybridRetriever(library).retrieve("anything at all") == []


def test_reciprocal_rank_fusion() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a"]], k=60)
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["b"] == pytest.approx(1 / 62)
    assert sorted(fused, key=fused.get, reverse=True) == ["a", "c", "b"]
