"""The Word exports of cards (one debate's, and every card on a motion from all saved debates and
spar sessions): read back with python-docx, opened by a real LibreOffice Writer (headless, converted
to PDF and read with pdftotext), and served by the CLI, the REST API and the web app.

The debates are built here from passages written for these tests, with no model: the export
only reads saved debates. One test runs a debate with the extractive baseline, so that the date
travels the real way: manifest, registry, retrieval, saved debate, cite line.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest
from docx import Document
from pydantic import SecretStr
from docx.enum.text import WD_COLOR_INDEX
from typer.testing import CliRunner

from assistant.cli import app
from assistant.present.docx_export import (DOCX_MEDIA_TYPE, NO_CARDS, TRIMMED_QUOTE_NOTE, NoCardsError, file_cards, motion_docx,
                                   motion_filename, to_docx)  # fmt: skip
from assistant.core.passage import NumberedPassage, Passage
from assistant.core.personas import Persona
from assistant.server.service import Service
from assistant.core.settings import Settings
from assistant.core.debate_record import COMPLETE, Card, Debate, DebateTurn
from assistant.storage.transcripts import TranscriptStore
from assistant.present.transcript_export import to_brief
from tests.conftest import ARTICLES
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
        _passage(1, "ferry", FERRY, title="Notes from the\nharbour board", author="Mara Quell", date="2024-03",
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


# A second debate on the motion, typed differently, and a spar session on it: what a motion's file gathers.
DOCK = "Dock workers said the ferry was full every morning. " + FERRY_QUOTE + " Nobody counted the freight."
STALLED = "Talks on the harbour treaty stalled for eleven months."
CONTRACT = "The pier contract went to a firm that had never built in tidal water."
FOR, AGAINST = Persona("For", "You argue for the pier."), Persona("Against", "You argue against the pier.")


def _second_debate() -> Debate:
    """Typed in other case and spacing, without the question mark; other speakers; other source numbers.
    A1 cuts the first debate's A1 again (same document, same quote), A2 the same words from another
    document; S1 cuts the first debate's S1 again, S2 is new and answers this debate's A1."""
    dock, ferry, treaty = (replace(n, number=i) for i, n in enumerate([_passage(0, "dock", DOCK, title="Dock notes"),
                                                                      *_sources()], start=1))  # fmt: skip
    opening = DebateTurn(0, "advocate", "opening", "For", "", cards=[
        _card("A1", "advocate", "Fares fell once the pier opened", ferry, FERRY_QUOTE),
        _card("A2", "advocate", "The dock saw fares fall too", dock, FERRY_QUOTE)])  # fmt: skip
    rebuttal = DebateTurn(1, "skeptic", "rebuttal", "Against", "", cards=[
        _card("S1", "skeptic", "The pylons cracked", treaty, TREATY_QUOTE),
        _card("S2", "skeptic", "The treaty talks stalled for most of a year", treaty, STALLED, answers="A1")])  # fmt: skip
    motion = "  should the TESSALY ferry pier be rebuilt   before the harbour treaty is signed "
    return Debate(8, motion, "2026-11-03T10:00:00+00:00", COMPLETE, 1, FOR, AGAINST, [dock, ferry, treaty],
                  [opening, rebuttal])  # fmt: skip


def _spar_session() -> Debate:
    """The user argued for the motion; the assistant's card answers the user's claim U1."""
    _, treaty = _sources()
    turn = DebateTurn(1, "skeptic", "rebuttal", "Against", "", cards=[
        _card("S1", "skeptic", "The pier went to a firm new to tidal water", treaty, CONTRACT, answers="U1")])  # fmt: skip
    return Debate(9, MOTION.lower(), "2026-11-04T10:00:00+00:00", COMPLETE, 1, FOR, AGAINST, [treaty], [turn],
                  user_side="advocate")  # fmt: skip


def _save(store: TranscriptStore, debate: Debate) -> int:
    saved = store.create(debate.motion, debate.rounds, debate.advocate, debate.skeptic, debate.sources,
                         debate.user_side)  # fmt: skip
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
    assert texts[a1 + 1] == "Mara Quell, 2024-03, “Notes from the harbour board”, Tessaly Gazette, ferry-notes.txt [1]"
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


def _cite_line(debate: Debate) -> str:
    """The cite line under card A1 of ``debate``'s Word document."""
    texts = [p.text for p in Document(io.BytesIO(to_docx(debate))).paragraphs]
    return texts[texts.index("A1. The new pier made the ferry cheaper") + 1]


FERRY_URL = "https://gazette.test/2024/03/harbour-board"


def _with_urls(debate: Debate) -> Debate:
    """``debate`` with the ferry notes filed as a manifest files an article (a stored file, its URL
    in the manifest) and the pylons page as a URL ingest files one (the URL is its source too)."""
    ferry, treaty = debate.sources
    return replace(debate, sources=[replace(ferry, passage=replace(ferry.passage, url=FERRY_URL)),
                                    replace(treaty, passage=replace(treaty.passage, url=treaty.source))])  # fmt: skip


def test_a_saved_debate_keeps_each_source_date_and_url_and_one_saved_before_them_loads_without() -> None:
    store = TranscriptStore(Settings().transcripts_database)
    debate = store.get(_save(store, _with_urls(_debate())))
    assert [(s.passage.date, s.passage.url) for s in debate.sources] == [
        ("2024-03", FERRY_URL), (None, "https://news.test/tessaly/pylons.html")]  # fmt: skip
    older = {k: v for k, v in debate.sources[0].as_dict().items() if k not in ("date", "url")}  # as saved before
    loaded = NumberedPassage.from_dict(older)
    assert loaded.passage.date is None and loaded.passage.url is None
    assert _cite_line(replace(debate, sources=[loaded, debate.sources[1]])) == (
        "Mara Quell, “Notes from the harbour board”, Tessaly Gazette, ferry-notes.txt [1]")  # no date, a file name
    store.close()


def test_a_dated_article_with_a_url_is_cited_alike_in_the_word_document_and_the_brief() -> None:
    """One cite rule (``assistant.present.cite``) for both exports: the date, and the article's URL instead of
    the stored file's name; a URL that is also the source is printed once. The brief adds the passage
    id and stance after the cite."""
    debate = _with_urls(_debate())
    ferry = f"Mara Quell, 2024-03, “Notes from the harbour board”, Tessaly Gazette, {FERRY_URL} [1]"
    pylons = "“The cracked pylons”, https://news.test/tessaly/pylons.html [2]"
    document = Document(io.BytesIO(to_docx(debate)))
    texts = [p.text for p in document.paragraphs]
    assert ferry in texts and pylons in texts
    brief = to_brief(debate).splitlines()
    assert f"{ferry}; passage ferry-0000, stance advocate." in brief
    assert f"{pylons}; passage treaty-0000, stance skeptic." in brief
    assert not any("ferry-notes.txt" in line for line in [*texts, *brief])


def test_a_card_whose_source_the_saved_debate_lost_is_still_in_the_brief_and_the_word_document() -> None:
    """A hand-edited or damaged transcript may lack a card's source: both exports still print the card,
    the brief saying which source is missing, instead of failing the whole export."""
    debate = _debate()
    debate.sources = [s for s in debate.sources if s.number != 1]
    lost = [c for t in debate.turns for c in t.cards if c.source == 1]
    assert lost
    brief = to_brief(debate)
    assert all(c.quote in brief for c in lost) and "Source [1] is missing from the saved debate" in brief
    texts = [p.text for p in Document(io.BytesIO(to_docx(debate))).paragraphs]
    assert all(c.quote in texts for c in lost)


# --- Every card on a motion -----------------------------------------------------------------------

def _labels(filed) -> list[str]:
    return [f"{f.card.label}{f' (answers {f.card.answers})' if f.card.answers else ''}{f.note}" for f in filed]


def test_a_motions_cards_are_filed_by_side_each_quote_once_with_labels_unique_across_debates() -> None:
    filed = file_cards([_debate(), _second_debate(), _spar_session()])
    # Same document and quote: filed once, under the first label, with how many debates cut it. The same
    # words from another document are another card; an answer to a duplicate names the card filed.
    assert _labels(filed["advocate"]) == ["7/A1 (in 2 debates)", "8/A2"]
    assert _labels(filed["skeptic"]) == ["7/S1 (answers 7/A1) (in 2 debates)", "8/S2 (answers 7/A1)",
                                         "9/S1 (answers 9/U1)"]  # fmt: skip
    # Each card keeps its own debate's source, whatever number it had there.
    assert [f.source.passage.doc_id for f in filed["advocate"]] == ["ferry", "dock"]
    assert filed["advocate"][1].source.number == 1 and filed["advocate"][1].card.tag == "The dock saw fares fall too"


def test_a_motions_document_has_a_heading_per_side_and_each_card_as_one_debates_export_prints_it() -> None:
    document = Document(io.BytesIO(motion_docx(MOTION, [_debate(), _second_debate(), _spar_session()])))
    assert [p.text for p in _styled(document, "Title")] == [MOTION]
    assert [p.text for p in _styled(document, "Heading 1")] == ["For the motion", "Against the motion"]
    assert [p.text for p in _styled(document, "Heading 2")] == [
        "7/A1. The new pier made the ferry cheaper (in 2 debates)", "8/A2. The dock saw fares fall too",
        f"7/S1. {TREATY_QUOTE.rstrip('.')} (answers 7/A1){TRIMMED_QUOTE_NOTE} (in 2 debates)",
        "8/S2. The treaty talks stalled for most of a year (answers 7/A1)",
        "9/S1. The pier went to a firm new to tidal water (answers 9/U1)",
    ]  # fmt: skip
    texts = [p.text for p in document.paragraphs]
    at = texts.index("7/A1. The new pier made the ferry cheaper (in 2 debates)")
    assert texts[at + 1] == "Mara Quell, 2024-03, “Notes from the harbour board”, Tessaly Gazette, ferry-notes.txt [1]"
    dock = document.paragraphs[texts.index("8/A2. The dock saw fares fall too") + 2]
    assert dock.text == DOCK and _highlighted(dock) == [FERRY_QUOTE]
    assert "saved debates and spar sessions 7, 8, 9" in texts[1]


def test_a_motion_without_saved_cards_is_an_error_not_an_empty_document() -> None:
    with pytest.raises(NoCardsError, match="no saved debate or spar session has the motion “Should we\?”"):
        motion_docx("  Should   we? ", [])
    no_cards = replace(_debate(), turns=[replace(t, cards=[]) for t in _debate().turns])
    with pytest.raises(NoCardsError, match="the 1 saved debate on the motion .* has no cards"):
        motion_docx(MOTION, [no_cards])


def test_the_store_finds_a_motions_debates_and_spar_sessions_whatever_the_case_spacing_and_punctuation() -> None:
    store = TranscriptStore(Settings().transcripts_database)
    ids = [_save(store, d) for d in (_debate(), replace(_debate(), motion="Should the pier be moved?"),
                                     _second_debate(), _spar_session())]  # fmt: skip
    assert [d.id for d in store.on_motion(MOTION.upper().replace(" ", "  ").rstrip("?"))] == [ids[0], *ids[2:]]
    assert store.on_motion("Should the pier be moved") and store.on_motion("Should the pier") == []
    store.close()


def test_a_motions_file_name_is_its_words_in_ascii() -> None:
    assert motion_filename(MOTION) == "cards-should-the-tessaly-ferry-pier-be-rebuilt-before-the-harbour.docx"
    assert motion_filename("Café in Zürich: ¿sí?") == "cards-cafe-in-zurich-si.docx"
    assert motion_filename("应该重建码头吗？") == motion_filename('"../.."') == "cards.docx"


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


def _pdf_text(docx: Path, profile: Path) -> str:
    """The text of ``docx`` as LibreOffice prints it (to PDF, read back with pdftotext), whitespace flattened."""
    pdftotext = shutil.which("pdftotext")
    assert pdftotext, "pdftotext is missing: run scripts/ensure_test_tools.sh"
    pdf = _libreoffice_convert(docx, "pdf", profile)
    return _flat(subprocess.run([pdftotext, "-enc", "UTF-8", str(pdf), "-"], capture_output=True, text=True,
                                check=True, timeout=60).stdout)  # fmt: skip


def _yellow_spans(docx: Path, profile: Path) -> list[str]:
    """What Writer made of the highlight: the text of every span its own flat XML gives a yellow background."""
    fodt = ElementTree.parse(_libreoffice_convert(docx, "fodt", profile))
    ns = {"style": "urn:oasis:names:tc:opendocument:xmlns:style:1.0",
          "fo": "urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0",
          "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0"}  # fmt: skip
    yellow = {style.get(f"{{{ns['style']}}}name") for style in fodt.iterfind(".//style:style", ns)
              if any(props.get(f"{{{ns['fo']}}}background-color") == "#ffff00"
                     for props in style.iterfind("style:text-properties", ns))}  # fmt: skip
    return ["".join(span.itertext()) for span in fodt.iterfind(".//text:span", ns)
            if span.get(f"{{{ns['text']}}}style-name") in yellow]  # fmt: skip


@pytest.mark.slow  # starts LibreOffice twice (about 3 s)
def test_libreoffice_opens_the_document_prints_tag_cite_and_quote_and_highlights_the_quote(tmp_path: Path) -> None:
    docx = tmp_path / "debate-7.docx"
    docx.write_bytes(to_docx(_debate()))
    flat = _pdf_text(docx, tmp_path / "lo-profile")
    for expected in (MOTION, "Pier advocate", "A1. The new pier made the ferry cheaper", "(answers A1)",
                     "Mara Quell, 2024-03, “Notes from the harbour board”, Tessaly Gazette, ferry-notes.txt [1]",
                     "“The cracked pylons”, https://news.test/tessaly/pylons.html [2]", FERRY, TREATY):  # fmt: skip
        assert _flat(expected) in flat, (expected, flat)
    assert _yellow_spans(docx, tmp_path / "lo-profile") == [FERRY_QUOTE, TREATY_QUOTE]


@pytest.mark.slow  # starts LibreOffice twice (about 3 s)
def test_libreoffice_opens_a_motions_document_with_dated_cite_lines_and_every_quote_highlighted(tmp_path: Path) -> None:
    docx = tmp_path / motion_filename(MOTION)
    docx.write_bytes(motion_docx(MOTION, [_debate(), _second_debate(), _spar_session()]))
    flat = _pdf_text(docx, tmp_path / "lo-profile")
    for expected in ("For the motion", "Against the motion", "7/A1. The new pier made the ferry cheaper (in 2 debates)",
                     "8/A2. The dock saw fares fall too", "8/S2. The treaty talks stalled for most of a year (answers 7/A1)",
                     "Mara Quell, 2024-03, “Notes from the harbour board”, Tessaly Gazette, ferry-notes.txt [1]",
                     "“Dock notes” [1]", FERRY, DOCK, TREATY):  # fmt: skip
        assert _flat(expected) in flat, (expected, flat)
    # The date is in the cite line (its hyphen aside: see ``_flat``), once: the card cut twice is filed once.
    assert flat.count("Mara Quell, 202403, “Notes") == 1
    assert _yellow_spans(docx, tmp_path / "lo-profile") == [FERRY_QUOTE, FERRY_QUOTE, TREATY_QUOTE, STALLED, CONTRACT]


# --- The CLI and the REST API ---------------------------------------------------------------------

def _run(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})


def test_cli_writes_docx_only_to_a_file(tmp_path: Path) -> None:
    store = TranscriptStore(Settings().transcripts_database)
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


def test_cli_writes_a_motions_cards_to_a_file_and_says_when_there_are_none(tmp_path: Path) -> None:
    store = TranscriptStore(Settings().transcripts_database)
    for debate in (_debate(), _second_debate(), _spar_session()):
        _save(store, debate)
    store.close()
    to_stdout = _run("cards", MOTION)
    assert to_stdout.exit_code == 2 and "-o FILE.docx" in to_stdout.output and "PK" not in to_stdout.output
    out_file = tmp_path / "all.docx"
    written = _run("cards", MOTION.lower().rstrip("?"), "-o", str(out_file))
    assert written.exit_code == 0 and f"written to {out_file}" in written.output, written.output
    headings = [p.text for p in _styled(Document(str(out_file)), "Heading 2")]
    assert len(headings) == 5 and headings[0] == "1/A1. The new pier made the ferry cheaper (in 2 debates)"
    unknown = _run("cards", "Should the lighthouse close?", "-o", str(tmp_path / "none.docx"))
    assert unknown.exit_code == 2 and "no saved debate or spar session has the motion" in unknown.output
    assert "da debates" in unknown.output and not (tmp_path / "none.docx").exists()
    empty = _run("cards", " \u200b ", "-o", str(tmp_path / "none.docx"))
    assert empty.exit_code == 2 and "the motion is empty" in empty.output


# The fixture articles with dates, stances and (one) a URL from a manifest, as a library of real articles has them.
PRO_URL = "https://arandia.test/2023/06/why-talking-works"
MANIFEST = [{"file": "pro_engagement.txt", "date": "2023-06-14", "url": PRO_URL, "stance": "advocate"},
            {"file": "skeptic.txt", "date": "2024-02", "url": None, "stance": "skeptic"}]  # fmt: skip
ARANDIA = "Should the government offer Arandia a non-aggression pledge first?"


def test_api_serves_a_motions_cards_with_the_manifest_dates_behind_the_token(settings, tmp_path: Path) -> None:
    """The date and URL the real way: manifest, registry, retrieval, a debate saved by the chain, the
    cite line of the Word document and of the brief."""
    folder = tmp_path / "dated"
    folder.mkdir()
    for name in ("pro_engagement.txt", "skeptic.txt"):
        shutil.copy(ARTICLES / name, folder / name)
    (folder / "manifest.json").write_text(json.dumps(MANIFEST), encoding="utf-8")
    service = Service(settings.model_copy(update={"llm_backend": "extractive", "api_token": SecretStr("cards-token")}))
    service.library.ingest([str(folder)])
    list(service.debate_chain.stream(ARANDIA, 0))
    try:
        with serve_app(create_app(service)) as url, httpx.Client(base_url=url, timeout=60) as client:
            asked = {"motion": ARANDIA.upper().rstrip("?")}
            assert client.get("/api/cards/docx", params=asked).status_code == 401
            auth = {"Authorization": "Bearer cards-token"}
            response = client.get("/api/cards/docx", params=asked, headers=auth)
            assert response.status_code == 200 and response.headers["content-type"] == DOCX_MEDIA_TYPE
            assert response.headers["content-disposition"] == (
                'attachment; filename="cards-should-the-government-offer-arandia-a-non-aggression-pledge.docx"')
            document = Document(io.BytesIO(response.content))
            assert [p.text for p in _styled(document, "Heading 1")] == ["For the motion", "Against the motion"]
            cites = [p.text for p in document.paragraphs if p.text.endswith("]") and ", “" in p.text]
            pro = "Mira Castell, 2023-06-14, “Why Talking to Arandia Works”"
            assert any(c.startswith(pro) and f", {PRO_URL} [" in c for c in cites), cites
            assert any(c.startswith("Tomas Reyne, 2024-02, “The Limits of Engagement with Arandia”")
                       and ", skeptic.txt [" in c for c in cites), cites  # fmt: skip
            brief = client.get(f"/api/debates/{service.transcripts.list()[0][0]}/brief", headers=auth).text
            assert any(line.startswith(pro) and f", {PRO_URL} [" in line and line.endswith(", stance advocate.")
                       for line in brief.splitlines()), brief  # fmt: skip
            assert "pro_engagement.txt" not in brief and "pro_engagement.txt" not in "".join(cites)
            missing = client.get("/api/cards/docx", params={"motion": "Should the lighthouse close?"}, headers=auth)
            assert missing.status_code == 404 and "Should the lighthouse close?" in missing.json()["detail"]
            for params, detail in (({}, "motion"), ({"motion": "  "}, "the motion is empty")):
                refused = client.get("/api/cards/docx", params=params, headers=auth)
                assert refused.status_code == 422 and detail in refused.json()["detail"]
            operation = client.get("/api/openapi.json", headers=auth).json()["paths"]["/api/cards/docx"]["get"]
            assert DOCX_MEDIA_TYPE in operation["responses"]["200"]["content"] and operation["summary"]
            assert {"401", "404", "422"} <= set(operation["responses"])
    finally:
        service.close()


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
