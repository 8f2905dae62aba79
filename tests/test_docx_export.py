"""The Word export of a debate's cards: read back with python-docx, opened by a real LibreOffice
Writer (headless, converted to PDF and read with pdftotext), and served by the CLI and the REST API.

The debates are built here from passages written for these tests, with no model: the export
only reads a saved debate.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest
from docx import Document
from docx.enum.text import WD_COLOR_INDEX
from typer.testing import CliRunner

from assistant.cli import app
from assistant.docx_export import DOCX_MEDIA_TYPE, NO_CARDS, TRIMMED_QUOTE_NOTE, to_docx
from assistant.passage import NumberedPassage, Passage
from assistant.prompts import Persona
from assistant.service import Service
from assistant.settings import Settings
from assistant.transcripts import COMPLETE, Card, Debate, DebateTurn, TranscriptStore
from tests.servers import serve_app
from ui import create_app

MOTION = "Should the Tessaly ferry pier be rebuilt before the harbour treaty is signed?"
FERRY = (
    "The harbour board met twice in March. Ferry fares on the Tessaly line fell by a third after the "
    "new pier opened. Critics said the savings would not outlast the winter."
)
FERRY_QUOTE = "Ferry fares on the Tessaly line fell by a third after the new pier opened."
TREATY = (
    "Talks on the harbour treaty stalled for eleven months. The pier contract went to a firm that "
    "had never built in tidal water. Two of its pylons cracked before the first storm."
)
TREATY_QUOTE = "Two of its pylons cracked before the first storm."
ADVOCATE = Persona("pier advocate", "You argue for the pier.")
SKEPTIC = Persona("treaty first", "You argue against the pier.")


def _passage(number: int, doc_id: str, text: str, **meta) -> NumberedPassage:
    return NumberedPassage(number, Passage(id=f"{doc_id}-0000", doc_id=doc_id, index=0, text=text, start=0,
                                           end=len(text), **meta))  # fmt: skip


def _card(label: str, role: str, tag: str, source: NumberedPassage, quote: str, **extra) -> Card:
    start = source.text.index(quote)
    return Card(label=label, role=role, tag=tag, quote=quote, source=source.number, passage_id=source.passage.id,
                doc_id=source.passage.doc_id, start=start, end=start + len(quote), **extra)  # fmt: skip


def _sources() -> list[NumberedPassage]:
    return [
        _passage(1, "ferry", FERRY, title="Notes from the\nharbour board", author="Mara Quell",
                 publisher="Tessaly Gazette", source="/home/someone/articles/ferry-notes.txt", stance="advocate"),
        _passage(2, "treaty", TREATY, title="The cracked pylons", source="https://news.test/tessaly/pylons.html",
                 stance="skeptic"),
    ]  # fmt: skip


def _debate(skeptic_cards: bool = True) -> Debate:
    ferry, treaty = _sources()
    opening = DebateTurn(0, "advocate", "opening", ADVOCATE.name, "", cards=[
        _card("A1", "advocate", "The new pier made the ferry cheaper", ferry, FERRY_QUOTE)])  # fmt: skip
    rebuttal = DebateTurn(1, "skeptic", "rebuttal", SKEPTIC.name, "", cards=[
        _card("S1", "skeptic", TREATY_QUOTE.rstrip("."), treaty, TREATY_QUOTE, tag_from="quote", answers="A1")])  # fmt: skip
    turns = [opening, rebuttal] if skeptic_cards else [opening]
    return Debate(7, MOTION, "2026-11-02T10:00:00+00:00", COMPLETE, 1, ADVOCATE, SKEPTIC, [ferry, treaty], turns)


def _save(store: TranscriptStore, debate: Debate) -> int:
    saved = store.create(debate.motion, debate.rounds, debate.advocate, debate.skeptic, debate.sources)
    for turn in debate.turns:
        store.add_turn(saved.id, turn)
    store.set_status(saved.id, COMPLETE)
    return saved.id


def _styled(document, style: str) -> list:
    return [p for p in document.paragraphs if p.style.name == style]


def _highlighted(paragraph) -> list[str]:
    return [run.text for run in paragraph.runs if run.font.highlight_color == WD_COLOR_INDEX.YELLOW]


# --- The document ---------------------------------------------------------------------------------

def test_cards_by_side_with_tag_cite_and_the_quote_highlighted_inside_its_passage() -> None:
    document = Document(io.BytesIO(to_docx(_debate())))
    assert [p.text for p in _styled(document, "Title")] == [MOTION]
    assert document.core_properties.title == MOTION
    assert [p.text for p in _styled(document, "Heading 1")] == ["Pier advocate", "Treaty first"]
    assert [p.text for p in _styled(document, "Heading 2")] == [
        "A1. The new pier made the ferry cheaper",
        f"S1. {TREATY_QUOTE.rstrip('.')} (answers A1){TRIMMED_QUOTE_NOTE}",
    ]
    paragraphs = document.paragraphs
    texts = [p.text for p in paragraphs]
    a1 = texts.index("A1. The new pier made the ferry cheaper")
    # The cite line: what each passage has, nothing for what it lacks, the file's name not its folder.
    assert texts[a1 + 1] == "Mara Quell, “Notes from the harbour board”, Tessaly Gazette, ferry-notes.txt [1]"
    assert paragraphs[a1 + 1].runs[0].text == "Mara Quell" and paragraphs[a1 + 1].runs[0].bold
    s1 = texts.index(f"S1. {TREATY_QUOTE.rstrip('.')} (answers A1){TRIMMED_QUOTE_NOTE}")
    assert texts[s1 + 1] == "“The cracked pylons”, https://news.test/tessaly/pylons.html [2]"
    # The card text: the whole passage in one paragraph, exactly the quote highlighted, in place.
    for at, passage, quote in ((a1, FERRY, FERRY_QUOTE), (s1, TREATY, TREATY_QUOTE)):
        card_text = paragraphs[at + 2]
        assert card_text.text == passage
        assert _highlighted(card_text) == [quote]
        runs = [run.text for run in card_text.runs]
        before = "".join(runs[: runs.index(quote)])
        assert before == passage[: passage.index(quote)]
        assert all(run.bold for run in card_text.runs if run.text == quote)
        assert not any(run.font.highlight_color for run in card_text.runs if run.text != quote)


def test_a_side_without_cards_says_so() -> None:
    document = Document(io.BytesIO(to_docx(_debate(skeptic_cards=False))))
    texts = [p.text for p in document.paragraphs]
    assert texts[texts.index("Treaty first") + 1] == NO_CARDS
    assert NO_CARDS not in texts[: texts.index("Treaty first")]


def test_characters_xml_cannot_hold_are_dropped_not_raised() -> None:
    """An article with NUL, other control characters or a lone surrogate made python-docx raise."""
    hostile = "Before\x00 the\x0b vote\x1b[2J \ud800the board\x7f met. " + FERRY_QUOTE + " After\x0c it."
    source = _passage(1, "ferry", hostile, title="Title\x00 with NUL", author="Ann\x08 Lee", source="pasted:abc123")
    card = _card("A1", "advocate", "Fares\x01 fell", source, FERRY_QUOTE)
    debate = Debate(3, "Motion\x02 with a control", "2026-11-02", COMPLETE, 0, ADVOCATE, SKEPTIC, [source],
                    [DebateTurn(0, "advocate", "opening", ADVOCATE.name, "", cards=[card])])  # fmt: skip
    document = Document(io.BytesIO(to_docx(debate)))
    texts = [p.text for p in document.paragraphs]
    assert "Motion with a control" in texts and "A1. Fares fell" in texts
    assert "Ann Lee, “Title with NUL”, pasted text [1]" in texts
    card_text = next(p for p in document.paragraphs if FERRY_QUOTE in p.text)
    assert card_text.text == "Before the vote[2J the board\x7f met. " + FERRY_QUOTE + " After it."
    assert _highlighted(card_text) == [FERRY_QUOTE]


def test_a_card_whose_offsets_do_not_hold_its_quote_is_found_by_its_text() -> None:
    debate = _debate(skeptic_cards=False)
    debate.turns[0].cards[0].start, debate.turns[0].cards[0].end = 0, 5  # as saved by hand or by an old version
    card_text = next(p for p in Document(io.BytesIO(to_docx(debate))).paragraphs if p.text == FERRY)
    assert _highlighted(card_text) == [FERRY_QUOTE]


# --- A real word processor ------------------------------------------------------------------------

def _libreoffice_convert(docx: Path, fmt: str, profile: Path) -> Path:
    """``docx`` converted by LibreOffice, headless, with its own profile (parallel runs share none)."""
    libreoffice = shutil.which("libreoffice")
    # Like Chromium for the browser tests, LibreOffice is installed by ./test.sh (scripts/ensure_test_tools.sh):
    # when it is missing the test fails rather than skips, so CI cannot pass without opening the document.
    assert libreoffice, "libreoffice is missing: run scripts/ensure_test_tools.sh"
    out_dir = docx.parent / fmt
    converted = subprocess.run(
        [libreoffice, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore", "--convert-to", fmt,
         "--outdir", str(out_dir), str(docx)],
        check=False, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    result = out_dir / f"{docx.stem}.{fmt}"
    assert converted.returncode == 0 and result.is_file(), (converted.stdout, converted.stderr)
    return result


def _flat(text: str) -> str:
    """Whitespace collapsed (lines wrap in a PDF) and hyphens dropped: with the fonts LibreOffice embeds
    (WinAnsi encoding), pdftotext reads the hyphen glyph as a soft hyphen and leaves it out."""
    return " ".join(text.replace("-", "").replace("\u00ad", "").split())


@pytest.mark.slow  # starts LibreOffice twice (about 3 s)
def test_libreoffice_opens_the_document_prints_tag_cite_and_quote_and_highlights_the_quote(tmp_path: Path) -> None:
    pdftotext = shutil.which("pdftotext")
    assert pdftotext, "pdftotext is missing: run scripts/ensure_test_tools.sh"
    docx = tmp_path / "debate-7.docx"
    docx.write_bytes(to_docx(_debate()))
    pdf = _libreoffice_convert(docx, "pdf", tmp_path / "lo-profile")
    text = subprocess.run([pdftotext, "-enc", "UTF-8", str(pdf), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout  # fmt: skip
    flat = _flat(text)
    for expected in (MOTION, "Pier advocate", "A1. The new pier made the ferry cheaper", "(answers A1)",
                     "Mara Quell, “Notes from the harbour board”, Tessaly Gazette, ferry-notes.txt [1]",
                     "“The cracked pylons”, https://news.test/tessaly/pylons.html [2]", FERRY, TREATY):  # fmt: skip
        assert _flat(expected) in flat, (expected, text)
    # What Writer made of the highlight: its own flat XML names a yellow background on exactly the quotes.
    fodt = ElementTree.parse(_libreoffice_convert(docx, "fodt", tmp_path / "lo-profile"))
    ns = {"style": "urn:oasis:names:tc:opendocument:xmlns:style:1.0",
          "fo": "urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0",
          "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0"}  # fmt: skip
    yellow = {style.get(f"{{{ns['style']}}}name") for style in fodt.iterfind(".//style:style", ns)
              if any(props.get(f"{{{ns['fo']}}}background-color") == "#ffff00"
                     for props in style.iterfind("style:text-properties", ns))}  # fmt: skip
    marked = ["".join(span.itertext()) for span in fodt.iterfind(".//text:span", ns)
              if span.get(f"{{{ns['text']}}}style-name") in yellow]  # fmt: skip
    assert marked == [FERRY_QUOTE, TREATY_QUOTE]


# --- The CLI and the REST API ---------------------------------------------------------------------

def _run(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})


def test_cli_writes_docx_only_to_a_file(tmp_path: Path) -> None:
    store = TranscriptStore(Settings().transcripts_path)
    debate_id = _save(store, _debate())
    store.close()
    to_stdout = _run("export", str(debate_id), "--format", "docx")
    assert to_stdout.exit_code == 2 and "binary" in to_stdout.output and "-o" in to_stdout.output
    assert "PK" not in to_stdout.output  # nothing of the zip reached the terminal
    out_file = tmp_path / "cards.docx"
    written = _run("export", str(debate_id), "--format", "docx", "-o", str(out_file))
    assert written.exit_code == 0, written.output
    assert f"written to {out_file}" in written.output
    document = Document(str(out_file))
    assert [p.text for p in _styled(document, "Title")] == [MOTION]
    assert _highlighted(next(p for p in document.paragraphs if p.text == FERRY)) == [FERRY_QUOTE]
    unknown = _run("export", str(debate_id), "--format", "odt")
    assert unknown.exit_code == 2 and "markdown, brief, docx, json or flow" in unknown.output
    assert _run("export", "42", "--format", "docx", "-o", str(tmp_path / "none.docx")).exit_code == 2
    assert not (tmp_path / "none.docx").exists()


def test_api_serves_the_docx_as_a_named_download(settings) -> None:
    service = Service(settings.model_copy(update={"llm_backend": "extractive"}))
    debate_id = _save(service.transcripts, _debate())
    try:
        with serve_app(create_app(service)) as url, httpx.Client(base_url=url, timeout=60) as client:
            response = client.get(f"/api/debates/{debate_id}/docx")
            assert response.status_code == 200
            assert response.headers["content-type"] == DOCX_MEDIA_TYPE
            assert response.headers["content-disposition"] == f'attachment; filename="debate-{debate_id}.docx"'
            document = Document(io.BytesIO(response.content))
            assert [p.text for p in _styled(document, "Heading 1")] == ["Pier advocate", "Treaty first"]
            missing = client.get("/api/debates/9999/docx")
            assert missing.status_code == 404 and isinstance(missing.json()["detail"], str)
            assert client.get("/api/debates/0/docx").status_code == 422
            operation = client.get("/api/openapi.json").json()["paths"]["/api/debates/{debate_id}/docx"]["get"]
            assert DOCX_MEDIA_TYPE in operation["responses"]["200"]["content"]
            assert {"404", "422"} <= set(operation["responses"])
    finally:
        service.close()
