"""Retrieval latency p50/p95 at growing library sizes (1k, 10k, 100k passages).

Embedding 100k passages would take over an hour on a laptop CPU, and latency does not
depend on what the vectors mean, so the library is filled directly: synthetic passages go
into the registry (which BM25 indexes) and random unit vectors of the model's dimension into
Chroma, under the same ids and metadata ingest writes. Queries are real: synthetic sentences
embedded by the real model inside ``HybridRetriever.retrieve``, the call ``ask`` makes. The
first query after a library change builds the BM25 index; it is reported apart
(``first_query_ms``) and left out of the percentiles.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from assistant.storage.library import Library
from assistant.retrieval.retrieval import HybridRetriever
from assistant.core.settings import Settings
from bench.synthetic import TextMaker
from ingest.pipeline import content_hash, passage_metadata
from assistant.core.passage import Passage, passage_id
from assistant.storage.registry import COMPLETE, PENDING, DocumentRecord, now_iso

PASSAGES_PER_DOCUMENT = 10
CHROMA_BATCH = 5000


def _document(maker: TextMaker, number: int, model: str) -> tuple[DocumentRecord, str, list[Passage]]:
    texts = [maker.passage(3) for _ in range(PASSAGES_PER_DOCUMENT)]
    full = "\n\n".join(texts)
    digest = content_hash(full)
    doc_id = digest[:16]
    passages, offset = [], 0
    for index, text in enumerate(texts):
        passages.append(Passage(passage_id(doc_id, index), doc_id, index, text, offset, offset + len(text)))
        offset += len(text) + 2
    record = DocumentRecord(
        id=doc_id, hash=digest, source=f"synthetic/{number:06d}.txt", title=f"Synthetic {number}", author=None,
        date=None, url=None, publisher=None, kind="text", n_passages=len(passages), status=PENDING,
        embedding_model=model, added_at=now_iso(),
    )  # fmt: skip
    return record, full, passages


def fill_library(library: Library, target_passages: int, maker: TextMaker) -> float:
    """Top the library up to ``target_passages`` synthetic passages; returns the seconds it took."""
    started = time.perf_counter()
    dimension = len(library.embeddings.embed_query("dimension"))
    have = len(library.registry.passages())
    documents = (target_passages - have) // PASSAGES_PER_DOCUMENT
    pending: list[tuple[DocumentRecord, list[Passage]]] = []

    def flush() -> None:
        rows = [(record, p) for record, passages in pending for p in passages]
        vectors = maker.unit_vectors(len(rows), dimension)
        library.store.upsert_vectors(  # random vectors: the embedding model must not run
            [p.id for _, p in rows], vectors, [p.text for _, p in rows], [passage_metadata(r, p) for r, p in rows]
        )
        for record, _ in pending:
            library.registry.set_status(record.id, COMPLETE)
        pending.clear()

    for number in tqdm(range(have // PASSAGES_PER_DOCUMENT, have // PASSAGES_PER_DOCUMENT + documents),
                       desc=f"filling to {target_passages}", unit="doc", leave=False):  # fmt: skip
        record, text, passages = _document(maker, number, library.settings.embedding_model)
        library.registry.begin(record, text, passages)
        pending.append((record, passages))
        if len(pending) * PASSAGES_PER_DOCUMENT >= CHROMA_BATCH:
            flush()
    if pending:
        flush()
    return time.perf_counter() - started


def _latencies(retriever: HybridRetriever, queries: list[str], mode: str) -> tuple[float, list[float]]:
    started = time.perf_counter()
    retriever.retrieve(queries[0], mode=mode)
    first_ms = (time.perf_counter() - started) * 1000
    times = []
    for query in queries[1:]:
        started = time.perf_counter()
        retriever.retrieve(query, mode=mode)
        times.append((time.perf_counter() - started) * 1000)
    return first_ms, times


def measure_retrieval(
    work_dir: Path, sizes: tuple[int, ...] = (1_000, 10_000, 100_000), queries: int = 40,
    modes: tuple[str, ...] = ("hybrid", "dense", "bm25"),
) -> list[dict]:  # fmt: skip
    """One library grown through ``sizes``; latency figures per size and retrieval mode."""
    maker = TextMaker(seed=5)
    library = Library(Settings(data_dir=work_dir / "scale"))
    query_texts = [maker.sentence() for _ in range(queries + 1)]
    rows = []
    try:
        for size in sorted(sizes):
            fill_s = fill_library(library, size, maker)
            for mode in modes:
                retriever = HybridRetriever(library)  # a fresh snapshot: the first query rebuilds BM25
                first_ms, times = _latencies(retriever, query_texts, mode)
                rows.append({
                    "passages": library.store.count(), "mode": mode, "fill_s": fill_s, "first_query_ms": first_ms,
                    "p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)),
                    "max_ms": max(times), "queries": len(times),
                })  # fmt: skip
                print(f"retrieval {rows[-1]}", flush=True)
    finally:
        library.close()
    return rows
