"""The web app served for real (FastAPI + Gradio on 127.0.0.1), driven through gradio_client."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from assistant.server.service import Service
from tests.servers import serve_app
from ui import create_app


@pytest.fixture
def running_app(settings, articles: Path):
    service = Service(settings.model_copy(update={"llm_backend": "extractive"}))
    service.library.ingest([str(articles / "skeptic.txt")])
    with serve_app(create_app(service)) as url:
        yield url, service
    service.close()


def test_app_serves_and_searches(running_app) -> None:
    url, _ = running_app
    assert httpx.get(url, timeout=30).status_code == 200
    client = Client(url, verbose=False)
    table, note = client.predict("Who expelled the inspectors?", 2, api_name="/do_search")
    rows = table["data"]
    assert len(rows) == 2 and note == ""
    assert rows[0][2] == "The Limits of Engagement with Arandia"
    assert any("inspectors" in row[3] for row in rows)


def test_ask_through_the_ui_api_returns_a_cited_answer_with_its_sources(running_app) -> None:
    url, _ = running_app
    client = Client(url, verbose=False)
    _, chat = client.predict("Which observatory published imagery of the Dunmore hall?", [], api_name="/do_ask")
    content = chat[-1]["content"]
    answer = content if isinstance(content, str) else "".join(block.get("text", "") for block in content)
    assert "Corvel Observatory" in answer
    assert 'class="cite"' in answer and '<details class="source"' in answer


def test_app_adds_pasted_text_and_deletes(running_app) -> None:
    url, service = running_app
    client = Client(url, verbose=False)
    status, table, *_ = client.predict(None, "", "The lighthouse keeper logged every passing ship for forty years.",
                                       "Lighthouse log", api_name="/do_ingest")  # fmt: skip
    assert status.startswith("added: Lighthouse log")
    doc_id = next(row[0] for row in table["data"] if row[1] == "Lighthouse log")
    status, table, _ = client.predict(doc_id, api_name="/do_delete")
    assert status == "deleted Lighthouse log"
    assert all(row[1] != "Lighthouse log" for row in table["data"])
    assert [d.title for d in service.library.documents()] == ["The Limits of Engagement with Arandia"]


def test_article_markup_reaches_the_table_verbatim_as_plain_text(running_app) -> None:
    url, _ = running_app
    client = Client(url, verbose=False)
    hostile = '<img src=x onerror="alert(1)"> <script>alert(2)</script> Harbour fees rose twice in one season.'
    _, table, *_ = client.predict(None, "", hostile, "<b>Bold title</b>", api_name="/do_ingest")
    titles = [row[1] for row in table["data"]]
    assert "<b>Bold title</b>" in titles  # kept as text; the browser test checks it is not rendered


def _file(download) -> str:
    """The local path of a downloaded file output (gradio_client returns the update as a dict)."""
    return download["value"] if isinstance(download, dict) else download


def test_library_tab_sets_stances_and_the_debate_tab_shows_cards(running_app) -> None:
    url, service = running_app
    client = Client(url, verbose=False)
    status, table, *_ = client.predict(None, "", "Talks with Arandia reopened the Tessaly rail link after eleven years.",
                                       "Rail notes", "advocate", api_name="/do_ingest")  # fmt: skip
    rows = {row[1]: row for row in table["data"]}
    assert rows["Rail notes"][-1] == "for" and rows["The Limits of Engagement with Arandia"][-1] == "unknown"
    skeptic_id = rows["The Limits of Engagement with Arandia"][0]
    status, table = client.predict(skeptic_id, "skeptic", api_name="/do_set_stance")
    assert status.endswith("stance against") and service.library.document(skeptic_id).stance == "skeptic"
    status, html, markdown, cards, flow = client.predict("Should Arandia get a non-aggression pledge first?", 0,
                                                         "For", "", "Against", "", "impact on trade", api_name="/do_debate")  # fmt: skip
    assert status.startswith("Debate ") and html.count('class="card"') == 3 and "<mark>" in html  # the advocate's note holds one sentence
    assert "Judged on impact on trade." in html and "Decision: " in html  # the ballot, on the criterion typed
    assert flow.startswith('<table class="flow">') and flow.count('class="flow-cell') == 3  # the flow sheet, after the debate
    # Both downloads: the transcript as Markdown, the cards as a Word document beside it.
    assert Path(_file(markdown)).read_text(encoding="utf-8").startswith("# Debate: Should Arandia")
    from docx import Document

    headings = [p.text for p in Document(_file(cards)).paragraphs if p.style.name == "Heading 1"]
    assert Path(_file(cards)).name.endswith(".docx") and headings == ["For", "Against"]
    # Every saved card on the motion typed (in other case), as one Word file beside them.
    everything = client.predict("should arandia get a NON-AGGRESSION pledge first", api_name="/do_motion_cards")
    assert Path(_file(everything)).name == "cards-should-arandia-get-a-non-aggression-pledge-first.docx"
    filed = Document(_file(everything)).paragraphs
    assert [p.text for p in filed if p.style.name == "Heading 1"] == ["For the motion", "Against the motion"]
    assert len([p for p in filed if p.style.name == "Heading 2"]) == 3
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="no saved debate or spar session has the motion"):
        client.predict("Should the lighthouse close?", api_name="/do_motion_cards")
    with pytest.raises(AppError, match="the motion is empty"):
        client.predict("  ", api_name="/do_motion_cards")


def test_debate_downloads_share_one_folder_that_is_not_one_per_debate(running_app) -> None:
    """Bug: every debate in the UI made a temporary folder that was never removed."""
    import tempfile

    url, _ = running_app
    before = set(Path(tempfile.gettempdir()).glob("da-debate-*"))
    client = Client(url, verbose=False)
    for motion in ("Should Arandia get a pledge first?", "Should inspectors return to Arandia first?"):
        status, *_ = client.predict(motion, 0, "For", "", "Against", "", "", api_name="/do_debate")
        assert status.startswith("Debate ")
    assert set(Path(tempfile.gettempdir()).glob("da-debate-*")) == before
    folders = {p.parent for p in Path(tempfile.gettempdir()).glob("da-exports-*/debate-*.md")}
    assert len([f for f in folders if len(list(f.glob("debate-*.md"))) >= 2]) >= 1  # both in one folder


def test_spar_tab_marks_each_sentence_then_answers_scores_resumes_and_exports(running_app) -> None:
    from gradio_client.exceptions import AppError

    url, service = running_app
    client = Client(url, verbose=False)
    with pytest.raises(AppError, match="Start a session"):
        client.predict("Talks fail.", "", api_name="/do_spar_turn")
    with pytest.raises(AppError, match="the motion is empty"):
        client.predict(" ", "skeptic", 0, api_name="/do_spar_start")
    status, note, html, _, download, sessions, flow = client.predict("Should Arandia get a non-aggression pledge first?",
                                                                     "skeptic", 0, api_name="/do_spar_start")  # fmt: skip
    session_id = sessions["value"]
    assert status.startswith(f"Session {session_id}, “Should Arandia get a non\\-aggression pledge first?” started")
    assert "Your opening" in note and "round 1 of 2" in note and flow == ""  # nothing to flow yet
    too_long = " ".join(["word"] * (service.settings.spar_max_words + 1))
    for bad, message in (("  ", "the turn is empty"), (too_long, "the limit is")):
        with pytest.raises(AppError, match=message):
            client.predict(bad, "", api_name="/do_spar_turn")
    assert service.spar_chain.session(session_id).turns == []  # nothing saved for a refused turn

    status, note, html, box, _, download, _, flow = client.predict(
        "Arandia expelled the inspectors in 2019. Talks <b>always</b> fail.", "", api_name="/do_spar_turn")
    assert "Your closing" in note and box == ""
    assert '<li class="claim claim-contradicted" data-mark="contradicted" data-label="U1"' in html
    assert 'data-mark="not found" data-label="U2"' in html and "Talks &lt;b&gt;always&lt;/b&gt; fail." in html
    assert "<b>always" not in html and html.index('data-label="U1"') < html.index('class="card"')
    assert 'data-stance="unknown"' in html  # the one article has no stance: both sides may quote it
    assert "## Opening: you" in Path(download["value"]).read_text(encoding="utf-8")
    assert 'data-label="U1"' in flow and "Talks &lt;b&gt;always&lt;/b&gt; fail." in flow  # flowed after the turn

    card = client.predict(api_name="/do_spar_scorecard")  # on request, mid-session
    assert 'data-complete="false"' in card and 'data-role="skeptic" data-count="contradicted">1<' in card

    status, note, html, box, card, download, sessions, _ = client.predict(
        "Sanctions cut steel imports by seventy percent.", "", api_name="/do_spar_turn")
    assert "Session over" in note and 'data-complete="true"' in card
    label = f"#{session_id} Should Arandia get a non-aggression pledge first? (complete, 4 turns)"
    assert sessions["choices"][0] == [label, session_id]
    with pytest.raises(AppError, match="is over"):
        client.predict("One more.", "", api_name="/do_spar_turn")
    exported = Path(download["value"]).read_text(encoding="utf-8")
    assert exported.startswith("# Spar: Should Arandia") and "## Scorecard" in exported

    # Another tab (a new client) resumes the saved session.
    other = Client(url, verbose=False)
    status, note, html, card, _, motion, side, rounds, flow = other.predict(session_id, api_name="/do_spar_resume")
    assert "resumed (complete)" in status and "Session over" in note and (motion, side, rounds) == (
        "Should Arandia get a non-aggression pledge first?", "skeptic", 0)
    assert html.count("<li class=\"claim") == 3 and 'data-complete="true"' in card
    assert flow.count('data-label="U') == 3  # the session's flow sheet comes back with it


def test_error_messages_echo_what_was_typed_as_text_never_as_markup(running_app) -> None:
    """Gradio renders an error's message as HTML: a typed session id must come back escaped."""
    from gradio_client.exceptions import AppError

    url, _ = running_app
    client = Client(url, verbose=False)
    with pytest.raises(AppError) as refused:
        client.predict("<img src=x onerror=alert(1)>", api_name="/do_spar_resume")
    message = str(refused.value)
    assert "&lt;img src=x onerror=alert(1)&gt;" in message and "<img" not in message
