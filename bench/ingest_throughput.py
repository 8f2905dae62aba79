"""Ingest throughput against raw sentence-transformers encoding of the same passages.

One run: a synthetic corpus is ingested through ``Library.ingest`` (read, clean, split,
register, embed, write to Chroma); then the very passages it produced are encoded by a bare
``SentenceTransformer.encode`` at several batch sizes, once in one call and once document by
document (the way ingest calls the model). The ratio ingest / raw says what the pipeline
costs beyond the model; the batch-size sweep says which ``embedding_batch_size`` is fastest.
"""

from __future__ import annotations

import time
from pathlib import Path

from assistant.storage.embeddings import apply_thread_limit
from assistant.storage.library import Library
from assistant.core.settings import Settings
from bench.synthetic import TextMaker


def write_corpus(folder: Path, documents: int, paragraphs: int, seed: int = 11) -> Path:
    maker = TextMaker(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(documents):
        (folder / f"doc{i:04d}.txt").write_text(f"Report number {i}\n\n{maker.document(paragraphs)}\n", encoding="utf-8")
    return folder


def _rate(passages: int, seconds: float) -> float:
    return passages / seconds if seconds > 0 else 0.0


def measure_ingest(
    work_dir: Path, documents: int = 60, paragraphs: int = 3, batch_sizes: tuple[int, ...] = (8, 16, 32, 64, 128)
) -> dict:
    from sentence_transformers import SentenceTransformer

    corpus = write_corpus(work_dir / "corpus", documents, paragraphs)
    settings = Settings(data_dir=work_dir / "data")
    library = Library(settings)
    library.embeddings.embed_query("warm-up")  # model load is not throughput
    started = time.perf_counter()
    results = library.ingest([str(corpus)])
    ingest_s = time.perf_counter() - started
    passages = library.registry.passages()
    library.close()
    by_document: dict[str, list[str]] = {}
    for p in passages:
        by_document.setdefault(p.doc_id, []).append(p.text)
    texts = [p.text for p in passages]

    apply_thread_limit(settings.threads)
    model = SentenceTransformer(str(settings.resolved_embedding_model_path()), device="cpu", local_files_only=True)
    model.encode(texts[:8])
    raw: dict[str, float] = {}
    for size in batch_sizes:
        started = time.perf_counter()
        model.encode(texts, batch_size=size, normalize_embeddings=True)
        raw[str(size)] = _rate(len(texts), time.perf_counter() - started)
    started = time.perf_counter()
    for group in by_document.values():
        model.encode(group, batch_size=settings.embedding_batch_size, normalize_embeddings=True)
    per_document = _rate(len(texts), time.perf_counter() - started)

    ingest_rate = _rate(len(texts), ingest_s)
    configured = raw.get(str(settings.embedding_batch_size)) or max(raw.values())
    return {
        "documents": sum(r.status == "added" for r in results),
        "passages": len(texts),
        "mean_passage_chars": sum(map(len, texts)) / len(texts),
        "threads": settings.threads,
        "embedding_batch_size": settings.embedding_batch_size,
        "ingest_s": ingest_s,
        "ingest_passages_per_s": ingest_rate,
        "raw_passages_per_s_by_batch_size": raw,
        "raw_per_document_passages_per_s": per_document,
        "best_batch_size": max(raw, key=raw.get),
        "ratio_ingest_over_raw": ingest_rate / configured if configured else None,
    }
