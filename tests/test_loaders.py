from pathlib import Path

import pytest

from assistant.core.settings import Settings
from ingest.loaders import LoadError, decode_text, load_file, load_pasted

from tests.conftest import ARTICLES
from tests.pdfs import write_pdf


def test_text_file(settings: Settings) -> None:
    doc = load_file(ARTICLES / "skeptic.txt", settings)
    assert doc.kind == "text"
    assert "Copper Lake" in doc.text
    assert doc.source == str((ARTICLES / "skeptic.txt").resolve())


def test_markdown_front_matter_becomes_metadata(settings: Settings) -> None:
    doc = load_file(ARTICLES / "composting.md", settings)
    assert doc.metadata["title"] == "A Beginner's Guide to Balcony Composting"
    assert doc.metadata["author"] == "Ines Duval"
    assert doc.metadata["date"] == "2025-05-02"
    assert "---" not in doc.text and "# " not in doc.text


def test_html_main_text_and_metadata(settings: Settings) -> None:
    doc = load_file(ARTICLES / "river_towns.html", settings)
    assert doc.kind == "html"
    assert "Kettle Weir" in doc.text and "312 adult salmon" in doc.text
    for chrome in ("Subscribe", "Weekend weather", "All rights reserved", "Privacy"):
        assert chrome not in doc.text
    assert doc.metadata["title"] == "How Three River Towns Brought Back the Salmon"
    assert doc.metadata["author"] == "Petra Lind"
    assert doc.metadata["date"].startswith("2024-09-14")


def test_pdf_with_text(tmp_path: Path, settings: Settings) -> None:
    pdf = write_pdf(tmp_path / "memo.pdf", ["The lighthouse at Cape Orrin was automated in 1987.",
                                              "Its keeper moved to the harbour office."], title="Cape Orrin memo")
    doc = load_file(pdf, settings)
    assert doc.kind == "pdf"
    assert "automated in 1987" in doc.text
    assert doc.metadata["title"] == "Cape Orrin memo"


def test_pdf_without_text_is_refused_with_advice(tmp_path: Path, settings: Settings) -> None:
    pdf = write_pdf(tmp_path / "scan.pdf", [])
    with pytest.raises(LoadError, match="no extractable text"):
        load_file(pdf, settings)


def test_corrupt_pdf(tmp_path: Path, settings: Settings) -> None:
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4\nthis is not really a pdf\n")
    with pytest.raises(LoadError):
        load_file(bad, settings)


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("empty.txt", b"", "empty"),
        ("blank.txt", b"   \n\n\t ", "empty"),
        ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        ("table.csv", b"a,b\n1,2\n", "unsupported file type"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path: Path, settings: Settings, name: str, data: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(LoadError, match=message):
        load_file(path, settings)


def test_file_over_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("word " * 1000)
    with pytest.raises(LoadError, match="limit"):
        load_file(path, Settings(max_file_bytes=100))


def test_unreadable_file(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(LoadError, match="cannot read"):
        load_file(tmp_path / "missing.txt", settings)


def test_legacy_encoding_is_detected() -> None:
    text = "Le café de la gare ouvre à sept heures, près du marché. " * 4
    assert decode_text(text.encode("latin-1"), "x.txt") == text


def test_manifest_beside_files_supplies_metadata(tmp_path: Path, settings: Settings) -> None:
    (tmp_path / "a.txt").write_text("Some article text about tides and harbours.")
    (tmp_path / "manifest.json").write_text(
        '[{"file": "a.txt", "title": "Tides", "author": "R. Moss", "date": "2020", "url": null}]'
    )
    doc = load_file(tmp_path / "a.txt", settings)
    assert doc.metadata == {"title": "Tides", "author": "R. Moss", "date": "2020"}


def test_pasted_text_gets_a_stable_source() -> None:
    a = load_pasted("Pasted words about kites.", title="Kites")
    b = load_pasted("Pasted words about kites.")
    assert a.source == b.source and a.source.startswith("pasted:")
    assert a.metadata == {"title": "Kites"}
    with pytest.raises(LoadError, match="empty"):
        load_pasted("   ")
