"""Ingest with the real embedding model and a real Chroma store in a temporary data dir."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assistant.present.cite import cite_line
from assistant.storage.library import Library, UnknownDocumentError
from assistant.core.passage import NumberedPassage
from assistant.retrieval.retrieval import HybridRetriever
from assistant.core.settings import Settings
from assistant.storage.store import EmbeddingMismatchError, PassageStore
from ingest.pipeline import ADDED, DUPLICATE, ERROR, REPLACED, SKIPPED, UNCHANGED, prepare
from ingest.loaders import load_file
from assistant.storage.registry import PENDING

from tests.conftest import ARTICLES
from tests.pdfs import write_pdf
from tests.servers import serve


def _store_ids(library: Library) -> set[str]:
    return set(library.store._collection.get(include=[])["ids"])


def _registry_ids(library: Library) -> set[str]:
    return {p.id for p in library.registry.passages()}


def test_folder_ingest_adds_every_article_with_metadata(library: Library, articles: Path) -> None:
    results = library.ingest([str(articles)])
    assert sorted(r.status for r in results) == [ADDED] * 4
    docs = {d.title: d for d in library.documents()}
    assert set(docs) == {
        "Why Talking to Arandia Works",
        "The Limits of Engagement with Arandia",
        "A Beginner's Guide to Balcony Composting",
        "How Three River Towns Brought Back the Salmon",
    }
    assert docs["The Limits of Engagement with Arandia"].author == "Tomas Reyne"
    assert docs["How Three River Towns Brought Back the Salmon"].date.startswith("2024-09-14")
    assert _store_ids(library) == _registry_ids(library)
    assert sum(d.n_passages for d in docs.values()) == len(_store_ids(library))
    # Offsets point into the cleaned text that the registry keeps.
    for passage in library.registry.passages():
        assert library.registry.text(passage.doc_id)[passage.start : passage.end] == passage.text
    meta = library.store._collection.get(ids=[next(iter(_store_ids(library)))], include=["metadatas"])["metadatas"][0]
    assert {"doc_id", "index", "start", "end", "title", "source"} <= set(meta)


def test_reingest_changes_nothing(library: Library, articles: Path) -> None:
    library.ingest([str(articles)])
    before_ids, generation = _store_ids(library), library.registry.generation()
    results = library.ingest([str(articles)])
    assert [r.status for r in results] == [UNCHANGED] * 4
    assert _store_ids(library) == before_ids
    assert library.registry.generation() == generation


def test_same_article_under_another_name_is_reported_as_duplicate(library: Library, articles: Path) -> None:
    library.ingest([str(articles / "skeptic.txt")])
    shutil.copy(articles / "skeptic.txt", articles / "copy-of-skeptic.txt")
    [result] = library.ingest([str(articles / "copy-of-skeptic.txt")])
    assert result.status == DUPLICATE
    assert "The Limits of Engagement with Arandia" in result.message
    assert len(library.documents()) == 1


def test_small_documents_share_embedding_batches_and_keep_their_order(library: Library, articles: Path) -> None:
    """Passages of several documents are embedded together; every document still ends complete,
    the same text twice in one ingest is still one document, and results follow the input order."""
    shutil.copy(articles / "skeptic.txt", articles / "zz-copy-of-skeptic.txt")
    items = sorted(str(p) for p in articles.iterdir())
    results = library.ingest(items)
    assert [r.item for r in results] == items
    assert [r.status for r in results].count(DUPLICATE) == 1
    assert results[-1].status == DUPLICATE and results[-1].item.endswith("zz-copy-of-skeptic.txt")
    documents = library.documents(include_unfinished=True)
    assert len(documents) == 4 and {d.status for d in documents} == {"complete"}
    assert sorted(library.store.all_ids()) == sorted(p.id for p in library.registry.passages())


def test_changed_article_replaces_its_old_passages(library: Library, articles: Path) -> None:
    path = articles / "skeptic.txt"
    library.ingest([str(path)])
    [old] = library.documents()
    path.write_text(path.read_text().replace("seventy percent", "sixty-five percent"))
    [result] = library.ingest([str(path)])
    assert result.status == REPLACED
    [new] = library.documents()
    assert new.id != old.id and new.source == old.source
    assert not any(pid.startswith(old.id) for pid in _store_ids(library))
    assert _store_ids(library) == _registry_ids(library)
    assert "sixty-five percent" in library.registry.text(new.id)


def test_bad_items_are_reported_and_the_rest_is_ingested(library: Library, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(ARTICLES / "skeptic.txt", folder / "good.txt")
    (folder / "empty.txt").write_text("")
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02\x03" * 50)
    (folder / "notes.csv").write_text("a,b\n")
    write_pdf(folder / "scan.pdf", [])
    (folder / "only-nav.txt").write_text("Next\n\nShare on Twitter\n")
    results = {Path(r.item).name: r for r in library.ingest([str(folder), str(tmp_path / "missing.txt")])}
    assert results["good.txt"].status == ADDED
    assert results["notes.csv"].status == SKIPPED
    for name in ("empty.txt", "binary.txt", "scan.pdf", "only-nav.txt", "missing.txt"):
        assert results[name].status == ERROR, name
        assert results[name].message
    assert [d.title for d in library.documents()] == ["The Limits of Engagement with Arandia"]
    assert library.documents(include_unfinished=True) == library.documents()
    assert _store_ids(library) == _registry_ids(library)


def test_delete_by_id(library: Library, articles: Path) -> None:
    library.ingest([str(articles)])
    doomed = next(d for d in library.documents() if d.title.startswith("A Beginner"))
    library.delete(doomed.id)
    assert doomed.id not in {d.id for d in library.documents()}
    assert not any(pid.startswith(doomed.id) for pid in _store_ids(library))
    assert _store_ids(library) == _registry_ids(library)
    with pytest.raises(UnknownDocumentError, match="no document"):
        library.delete(doomed.id)


def test_interrupted_ingest_is_completed_on_next_run(settings: Settings, articles: Path) -> None:
    first = Library(settings)
    doc = prepare(load_file(articles / "pro_engagement.txt", settings), "x", first.splitter, settings)
    # Simulate a crash after the registry entry and two passages reached the store.
    first.registry.begin(doc.record, doc.text, doc.passages)
    first.store.add([p.id for p in doc.passages[:2]], [p.text for p in doc.passages[:2]],
                    [{"doc_id": doc.record.id} for _ in doc.passages[:2]])
    assert first.documents() == []  # pending documents are not searchable
    first.close()

    second = Library(settings)
    assert [d.status for d in second.documents(include_unfinished=True)] == [PENDING]
    assert second.finish_interrupted() == [f"completed {doc.record.title}"]
    assert [d.id for d in second.documents()] == [doc.record.id]
    assert _store_ids(second) == _registry_ids(second)
    assert len(_store_ids(second)) == doc.record.n_passages
    [again] = second.ingest([str(articles / "pro_engagement.txt")])
    assert again.status == UNCHANGED
    second.close()


def test_interrupted_delete_is_finished(library: Library, articles: Path) -> None:
    library.ingest([str(articles / "skeptic.txt")])
    [doc] = library.documents()
    library.registry.set_status(doc.id, "deleting")  # crash right after the first step
    assert library.finish_interrupted() == [f"deleted {doc.title}"]
    assert library.documents(include_unfinished=True) == []
    assert _store_ids(library) == set()


def test_other_embedding_model_is_refused_and_reindex_recovers(settings: Settings, articles: Path) -> None:
    library = Library(settings)
    library.ingest([str(articles / "skeptic.txt")])
    library.close()
    other = Settings(data_dir=settings.data_dir, embedding_model="someone/another-model", chunk_tokens=48,
                     chunk_overlap_tokens=8)
    renamed = Library(other)
    with pytest.raises(EmbeddingMismatchError, match="da reindex"):
        renamed.store
    n = renamed.reindex()
    [doc] = renamed.documents()
    assert doc.embedding_model == "someone/another-model"
    assert n == doc.n_passages == len(_store_ids(renamed)) > 0
    assert _store_ids(renamed) == _registry_ids(renamed)
    assert PassageStore(other, renamed.embeddings, 384).count() == n


def test_pasted_text_and_progress_callback(library: Library) -> None:
    calls: list[tuple[int, int, str]] = []
    text = "Harbour Notes\n\n" + " ".join(f"Pier {n} was rebuilt in stone after the storm of year {n}." for n in range(60))
    [result] = library.ingest(texts=[(text, "Harbour notes")], progress=lambda *a: calls.append(a))
    assert result.status == ADDED
    [doc] = library.documents()
    assert doc.title == "Harbour notes" and doc.source.startswith("pasted:") and doc.kind == "pasted"
    assert calls and calls[-1][0] == calls[-1][1] == doc.n_passages > 1
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)


def test_url_ingest_from_a_real_local_server(tmp_path: Path) -> None:
    html = (ARTICLES / "river_towns.html").read_bytes()
    routes = {
        "/story": (200, {"Content-Type": "text/html; charset=utf-8"}, html),
        "/moved": (302, {"Location": "/story"}, b""),
        "/gone": (404, {"Content-Type": "text/plain"}, b"no"),
    }
    library = Library(Settings(data_dir=tmp_path / "d", allow_private_urls=True))
    with serve(routes) as base:
        results = library.ingest([f"{base}/moved", f"{base}/gone"])
    assert results[0].status == ERROR and "404" in results[0].message
    assert results[1].status == ADDED
    [doc] = library.documents()
    assert doc.title == "How Three River Towns Brought Back the Salmon"
    assert doc.url.endswith("/story") and doc.kind == "html"
    # Retrieval carries the address fetched; a card's cite line prints it once, not the address typed beside it.
    hit = HybridRetriever(library).retrieve("salmon", k=1)[0]
    assert hit.source == f"{base}/moved" and hit.url == f"{base}/story"
    cite = cite_line(NumberedPassage(1, hit))
    assert cite.endswith(f", {base}/story [1]") and cite.count(base) == 1


def test_private_addresses_and_other_schemes_are_refused_by_default(library: Library) -> None:
    with serve({"/a": (200, {"Content-Type": "text/plain"}, b"secret internal page " * 10)}) as base:
        results = library.ingest([f"{base}/a", "ftp://127.0.0.1/x", "file:///etc/passwd"])
    assert [r.status for r in results] == [ERROR] * 3
    assert "loopback, private or link-local" in results[0].message
    assert "only http and https" in results[1].message and "only http and https" in results[2].message
    assert library.documents() == []


def test_url_size_cap(tmp_path: Path) -> None:
    library = Library(Settings(data_dir=tmp_path / "d", allow_private_urls=True, url_max_bytes=1000))
    with serve({"/big": (200, {"Content-Type": "text/plain"}, b"x" * 5000)}) as base:
        [result] = library.ingest([f"{base}/big"])
    assert result.status == ERROR and "limit" in result.message


@pytest.mark.slow
def test_a_thousand_files_in_nested_folders(library: Library, tmp_path: Path) -> None:
    root = tmp_path / "many"
    for n in range(1000):
        folder = root / f"batch{n // 100}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"note{n}.txt").write_text(f"Field note {n}\n\nObservation {n}: the tide gauge read {n % 97} cm.")
    (root / "batch3" / "broken.txt").write_bytes(b"\x00" * 100)
    results = library.ingest([str(root)])
    assert sum(r.status == ADDED for r in results) == 1000
    assert [r.status for r in results if r.status != ADDED] == [ERROR]
    assert len(library.documents()) == 1000
    assert _store_ids(library) == _registry_ids(library)
