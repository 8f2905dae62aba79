"""The flow sheet (issue 29): debates and spar sessions built by hand, laid out one column per speech
and one row per argument, with dropped arguments marked; its Markdown, HTML, CLI and API forms."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from assistant.core import personas

from assistant.present import render
from assistant.cli import app
from assistant.chains.flow import ANSWERED, DROPPED, LAST_SPEECH, NEW_IN_REBUTTAL, UNLINKED, flow_dict, flow_of, to_flow_markdown
from assistant.core.passage import NumberedPassage, Passage
from assistant.server.service import Service
from assistant.core.settings import Settings
from assistant.chains.debate_events import Scorecard
from assistant.present.transcript_export import to_spar_markdown
from assistant.core.debate_record import COMPLETE, CONTRADICTED, NOT_FOUND, SUPPORTED, Card, ClaimCheck, Debate, DebateTurn
from assistant.storage.transcripts import TranscriptStore
from assistant.present.transcript_export import to_json, to_markdown
from tests.servers import serve_app
from ui import create_app

SOURCES = [
    NumberedPassage(n, Passage(f"p{n}", f"d{n}", 0, text, 0, len(text), title=f"Note {n}", source=f"note{n}.txt"))
    for n, text in enumerate(["Talks reopened the Tessaly rail link.", "Trade across the border rose twice.",
                              "Arandia expelled the inspectors in 2019."], start=1)
]  # fmt: skip


def _card(label: str, role: str, tag: str, source: int, answers: str | None = None) -> Card:
    quote = SOURCES[source - 1].text
    return Card(label, role, tag, quote, source, f"p{source}", f"d{source}", 0, len(quote), answers=answers)


def _turn(index: int, role: str, kind: str, cards=(), claims=()) -> DebateTurn:
    speaker = {"advocate": "dove", "skeptic": "hawk", "moderator": "moderator"}[role]
    return DebateTurn(index, role, kind, speaker, text="", cards=list(cards), claims=list(claims))


def _debate() -> Debate:
    """One rebuttal round. The skeptic answers A1 and A3, not A2; the advocate answers S1, not S2,
    and opens a new argument (A4) the skeptic never answers: new in a rebuttal, so not dropped. The
    skeptic's rebuttal is the last speech."""
    turns = [
        _turn(0, "advocate", "opening", [_card("A1", "advocate", "Talks reopened the rail link", 1),
                                         _card("A2", "advocate", "Trade | rose\ntwice", 2)]),
        _turn(1, "skeptic", "opening", [_card("S1", "skeptic", "Inspectors were expelled", 3),
                                        _card("S2", "skeptic", "Sanctions <b>held</b>", 3)]),
        _turn(2, "advocate", "rebuttal", [_card("A3", "advocate", "The inspectors came back", 1, answers="S1"),
                                          _card("A4", "advocate", "A hotline defused incidents", 2)]),
        _turn(3, "skeptic", "rebuttal", [_card("S3", "skeptic", "The rail link closed again", 3, answers="A1"),
                                         _card("S4", "skeptic", "Only for a month", 3, answers="A3")]),
        _turn(4, "moderator", "summary"),
    ]  # fmt: skip
    return Debate(1, "Should Arandia get a pledge first?", "2026-12-01T10:00:00+00:00", COMPLETE, 1,
                  personas.Persona("dove", "for"), personas.Persona("hawk", "against"), SOURCES, turns)  # fmt: skip


def _spar() -> Debate:
    """The user argues the skeptic side, no rebuttal rounds: an opening and a closing each."""
    turns = [
        DebateTurn(0, "skeptic", "opening", "you", "", claims=[
            ClaimCheck("U1", "Arandia expelled the inspectors in 2019.", SUPPORTED, source=3, quote=SOURCES[2].text),
            ClaimCheck("U2", "Talks always fail.", NOT_FOUND)]),
        _turn(1, "advocate", "opening", [_card("A1", "advocate", "Talks reopened the rail link", 1, answers="U2")]),
        DebateTurn(2, "skeptic", "closing", "you", "", claims=[
            ClaimCheck("U3", "Trade fell by half.", CONTRADICTED, source=2, quote=SOURCES[1].text)]),
        _turn(3, "advocate", "closing", [_card("A2", "advocate", "Trade rose twice", 2, answers="U3")]),
    ]  # fmt: skip
    return Debate(2, "Should Arandia get a pledge first?", "2026-12-01T11:00:00+00:00", COMPLETE, 0,
                  personas.Persona("dove", "for"), personas.Persona("you", "against"), SOURCES, turns,
                  user_side="skeptic")  # fmt: skip


def _rows(flow) -> list[list[tuple[int, str, str]]]:
    return [[(c.column, c.label, c.status) for c in row.cells] for row in flow.rows]


def test_rows_follow_each_argument_across_the_speeches() -> None:
    flow = flow_of(_debate())
    assert [(c.turn, c.role, c.kind, c.speaker) for c in flow.columns] == [
        (0, "advocate", "opening", "dove"), (1, "skeptic", "opening", "hawk"),
        (2, "advocate", "rebuttal", "dove"), (3, "skeptic", "rebuttal", "hawk"),
    ]  # fmt: skip  # the moderator put no argument down: no column
    assert _rows(flow) == [
        [(0, "A1", ANSWERED), (3, "S3", LAST_SPEECH)],
        [(0, "A2", DROPPED)],
        [(1, "S1", ANSWERED), (2, "A3", ANSWERED), (3, "S4", LAST_SPEECH)],  # an answer to an answer stays in the row
        [(1, "S2", DROPPED)],
        [(2, "A4", NEW_IN_REBUTTAL)],  # a rebuttal card that answers nothing starts its own row
    ]
    assert flow.dropped == ["A2", "S2"]
    a1 = flow.rows[0].cells[0]
    assert (a1.text, a1.source, a1.mark, a1.answers) == ("Talks reopened the rail link", 1, None, None)


def test_two_answers_in_one_speech_share_the_row_and_the_column() -> None:
    debate = _debate()
    debate.turns[3].cards.append(_card("S5", "skeptic", "Freight stayed low", 2, answers="A1"))
    flow = flow_of(debate)
    assert _rows(flow)[0] == [(0, "A1", ANSWERED), (3, "S3", LAST_SPEECH), (3, "S5", LAST_SPEECH)]
    assert "| S3: The rail link closed again [3] *(last speech)*<br>S5: Freight stayed low [2] *(last speech)* |" in (
        to_flow_markdown(debate))


def test_nothing_answers_a_debate_opening_so_without_rebuttals_nothing_is_dropped() -> None:
    """Openings name no opposing card: the advocate's opening cards are unlinked, not dropped, and
    the skeptic's (the last speech) are new in the last speech."""
    debate = _debate()
    debate.turns = debate.turns[:2]
    flow = flow_of(debate)
    assert [c.status for row in flow.rows for c in row.cells] == [UNLINKED, UNLINKED, LAST_SPEECH, LAST_SPEECH]
    assert flow.dropped == []


def test_spar_claims_are_flowed_with_their_marks() -> None:
    flow = flow_of(_spar())
    assert [(c.role, c.kind, c.speaker) for c in flow.columns] == [
        ("skeptic", "opening", "you"), ("advocate", "opening", "dove"),
        ("skeptic", "closing", "you"), ("advocate", "closing", "dove"),
    ]  # fmt: skip
    # U1: the assistant answered U2 instead, so U1 is dropped. A1: the user's claims cannot name a card,
    # so the flow cannot tell whether the closing answered it. A2 answers the last claim in the last speech.
    assert _rows(flow) == [[(0, "U1", DROPPED)], [(0, "U2", ANSWERED), (1, "A1", UNLINKED)],
                           [(2, "U3", ANSWERED), (3, "A2", LAST_SPEECH)]]  # fmt: skip
    assert flow.dropped == ["U1"]
    u1, u2 = flow.rows[0].cells[0], flow.rows[1].cells[0]
    assert (u1.mark, u1.source, u1.text) == (SUPPORTED, 3, "Arandia expelled the inspectors in 2019.")
    assert (u2.mark, u2.source) == (NOT_FOUND, None)
    table = to_flow_markdown(_spar())
    assert "| U1: Arandia expelled the inspectors in 2019. [3] *(supported)* **dropped** |  |  |  |" in table
    assert "| U2: Talks always fail. *(not found)* | A1: Talks reopened the rail link [1] |  |  |" in table


def test_markdown_is_one_table_with_bars_and_newlines_escaped() -> None:
    table = to_flow_markdown(_debate()).splitlines()
    assert table[0] == "| dove (opening) | hawk (opening) | dove (rebuttal) | hawk (rebuttal) |"
    assert table[1] == "| --- | --- | --- | --- |"
    assert table[3] == r"| A2: Trade \| rose twice [2] **dropped** |  |  |  |"
    assert all(len(re.split(r"(?<!\\)\|", line)) == 6 for line in table)  # four cells a row, escaped bars inside one
    assert to_flow_markdown(Debate(3, "m", "t", COMPLETE, 0, personas.ADVOCATE, personas.SKEPTIC, [])).startswith("No ")


def test_transcript_exports_carry_the_flow_before_the_references() -> None:
    markdown = to_markdown(_debate())
    assert markdown.index("## Flow") < markdown.index("## References")
    row = "| A1: Talks reopened the rail link [1] |  |  | S3: The rail link closed again [3] *(last speech)* |"
    assert row in markdown
    spar = to_spar_markdown(_spar(), Scorecard([]))
    assert spar.index("## Scorecard") < spar.index("## Flow") < spar.index("## References")
    assert json.loads(json.dumps(to_json(_debate())))["flow"]["dropped"] == ["A2", "S2"]
    assert "## Flow" not in to_markdown(Debate(3, "m", "t", COMPLETE, 0, personas.ADVOCATE, personas.SKEPTIC, []))


def test_flow_html_escapes_and_marks_dropped_cells() -> None:
    html = render.flow_html(flow_of(_debate()))
    assert html.startswith('<table class="flow">') and html.count("<th ") == 4 and html.count("<tr>") == 6
    assert "Sanctions &lt;b&gt;held&lt;/b&gt;" in html and "<b>held" not in html
    assert html.count('class="flow-cell dropped"') == 2 and html.count(">dropped</span>") == 2
    assert html.count('class="flow-cell new-in-rebuttal"') == 1 and html.count(">new in a rebuttal</span>") == 1
    assert '<div class="flow-cell last-speech" data-label="S3" data-status="last_speech">' in html
    spar = render.flow_html(flow_of(_spar()))
    assert '<span class="mark mark-not-found">? not found</span>' in spar
    assert render.flow_html(flow_of(Debate(3, "m", "t", COMPLETE, 0, personas.ADVOCATE, personas.SKEPTIC, []))) == ""


def _save(store: TranscriptStore, debate: Debate) -> int:
    saved = store.create(debate.motion, debate.rounds, debate.advocate, debate.skeptic, debate.sources,
                         user_side=debate.user_side)
    for turn in debate.turns:
        store.add_turn(saved.id, turn)
    store.set_status(saved.id, COMPLETE)
    return saved.id


def test_cli_exports_the_flow_table() -> None:
    store = TranscriptStore(Settings().transcripts_database)
    debate_id = _save(store, _debate())
    store.close()
    runner = CliRunner()
    result = runner.invoke(app, ["export", str(debate_id), "--format", "flow"])
    assert result.exit_code == 0, result.output
    assert result.output == to_flow_markdown(_debate())
    as_json = json.loads(runner.invoke(app, ["export", str(debate_id), "--format", "json"]).output)
    assert as_json["flow"]["dropped"] == ["A2", "S2"]


@pytest.fixture
def api(settings):
    service = Service(settings.model_copy(update={"llm_backend": "extractive"}))
    with serve_app(create_app(service)) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client, service
    service.close()


@pytest.mark.slow  # the spar route builds the spar chain (the embedding model): seconds, so the slow lane
def test_api_serves_the_flow_of_a_debate_and_of_a_spar_session(api) -> None:
    client, service = api
    debate_id, spar_id = _save(service.transcripts, _debate()), _save(service.transcripts, _spar())
    response = client.get(f"/api/debates/{debate_id}/flow")
    assert response.status_code == 200 and response.json() == flow_dict(_debate())
    assert response.json()["rows"][1]["cells"][0] == {
        "column": 0, "label": "A2", "role": "advocate", "text": "Trade | rose\ntwice", "source": 2, "mark": None,
        "answers": None, "status": "dropped",
    }  # fmt: skip
    spar = client.get(f"/api/spar/{spar_id}/flow")
    assert spar.status_code == 200 and spar.json()["dropped"] == ["U1"]
    assert client.get("/api/debates/9999/flow").status_code == 404
    assert client.get(f"/api/spar/{debate_id}/flow").status_code == 404  # a debate is not a spar session
    assert client.get("/api/debates/0/flow").status_code == 422
    paths = client.get("/api/openapi.json").json()["paths"]
    for path in ("/api/debates/{debate_id}/flow", "/api/spar/{session_id}/flow"):
        assert paths[path]["get"]["summary"] and {"404", "422"} <= set(paths[path]["get"]["responses"])


def test_saved_turns_load_back_into_the_same_flow(tmp_path: Path) -> None:
    store = TranscriptStore(tmp_path / "t.sqlite3")
    spar_id = _save(store, _spar())
    assert flow_dict(store.get(spar_id)) == flow_dict(_spar())
    store.close()
