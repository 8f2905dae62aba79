"""Spar (issue 17) over the REST API: real HTTP on 127.0.0.1, real Chroma, the real embedding model
and the shared seed corpus (../shared/corpus: two advocate articles, one skeptic article).

The user argues the skeptic side, so the assistant argues for engagement from the advocate
articles. The claims are checked against what the skeptic article says: the first nuclear test
was in October 2006 (a turn saying 2009 is contradicted), nothing says who drafted the Sunshine
Policy (not found), and Seoul shut Kaesong down in February 2016 after a fourth nuclear test
(supported). The three-round session with the real local model is a slow test; the fast tests run
the same chain with the extractive backend (no model) to check the stream, the saved session and
every refusal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from assistant.core import personas
from assistant.server.service import Service
from tests.spar_claims import CONTRADICTED_CLAIM, CORPUS, SUPPORTED_CLAIM, UNFOUNDED_CLAIM, needs_shared_corpus
from tests.servers import serve_app
from ui import create_app

MOTION = "Should Seoul and Washington engage North Korea now?"

# Each test runs on the default SQLite files and on PostgreSQL (tests/conftest.py, ``database``).
pytestmark = [needs_shared_corpus, pytest.mark.usefixtures("database")]


def _service(settings, **update) -> Service:
    service = Service(settings.model_copy(update=update))
    if not service.library.documents():
        service.library.ingest([str(CORPUS)])  # stances from the corpus's manifest.json
    return service


@contextmanager
def _client(service: Service) -> Iterator[httpx.Client]:
    with serve_app(create_app(service)) as url, httpx.Client(base_url=url, timeout=900) as client:
        yield client


def _lines(response: httpx.Response) -> list[dict]:
    assert response.status_code == 200, response.text[:500]
    lines = [json.loads(line) for line in response.text.splitlines() if line.strip()]
    assert not [line for line in lines if line["type"] == "error"], lines
    return lines


def _play(client: httpx.Client, **body) -> list[dict]:
    return _lines(client.post("/api/spar", json=body))


def _only(lines: list[dict], kind: str) -> list[dict]:
    return [line for line in lines if line["type"] == kind]


def _marks(lines: list[dict]) -> list[dict]:
    """The final mark line of each sentence; with the local model's judge, each follows the rules'
    provisional marks of the turn ("final": false), which come first, one per sentence, in order."""
    marks = _only(lines, "mark")
    final = [line for line in marks if line["final"]]
    provisional = [line for line in marks if not line["final"]]
    if provisional:
        assert marks == provisional + final, marks
        assert [p["claim"]["label"] for p in provisional] == [f["claim"]["label"] for f in final]
    return final


def _scorecard(lines: list[dict]) -> dict:
    """The one scorecard line of a stream, without its ``type``: as GET .../scorecard returns it."""
    [line] = _only(lines, "scorecard")
    return {k: v for k, v in line.items() if k != "type"}


def _check_round(lines: list[dict], kind: str, marks: list[str], user_side: str = "skeptic") -> dict:
    """One played round: the session line first, each sentence's mark before the user's finished turn,
    then the assistant's cards; the saved session last. Returns the final ``spar`` line."""
    types = [line["type"] for line in lines if line["type"] != "queued"]
    assert types[0] == "session" and types[-1] == "spar", types
    session = lines[[line["type"] for line in lines].index("session")]
    assert session["round"] == kind and session["side"] == user_side and session["sources"]
    turns = _only(lines, "turn")
    assert [t["role"] for t in turns] == [user_side, "advocate" if user_side == "skeptic" else "skeptic"]
    assert [t["kind"] for t in turns] == [kind, kind]
    assert types.index("mark") < types.index("turn") < types.index("card") < len(types) - 1 - types[::-1].index("turn")
    got = [line["claim"]["mark"] for line in _marks(lines)]
    assert got == marks, _only(lines, "mark")
    assert turns[0]["claims"] == [line["claim"] for line in _marks(lines)]  # only the final marks are saved
    final = lines[-1]
    sources = {s["number"]: s for s in final["sources"]}
    for line in _only(lines, "mark"):  # the deciding passage is one of the session's numbered sources, quoted exactly
        claim = line["claim"]
        if claim["source"] is not None:
            assert claim["quote"] and claim["quote"] in sources[claim["source"]]["text"], claim
            assert line["source"] == sources[claim["source"]]  # sent with the mark, before the final line
        else:
            assert "source" not in line
    cards = _only(lines, "card")
    assert cards and [c["label"] for c in cards] == [c["label"] for c in turns[1]["cards"]]
    for card in cards:  # the assistant quotes its own side's articles (or unknown ones), never the user's side
        source = sources[card["source"]]
        assert source["stance"] in (card["role"], "unknown"), (card, source["stance"])
        assert source["text"][card["start"] : card["end"]] == card["quote"]
    assert final["user_side"] == user_side
    return final


# --- the extractive backend (no model): fast --------------------------------------------------------


@pytest.fixture
def extractive(settings) -> Iterator[tuple[httpx.Client, Service]]:
    service = _service(settings, llm_backend="extractive")
    with _client(service) as client:
        yield client, service
    service.close()


def test_a_spar_session_is_marked_answered_scored_and_saved(extractive) -> None:
    client, service = extractive
    response = client.post("/api/spar", json={"motion": MOTION, "side": "skeptic", "rounds": 0,
                                              "text": f"{CONTRADICTED_CLAIM} {UNFOUNDED_CLAIM}"})  # fmt: skip
    opening = _lines(response)
    first = _check_round(opening, "opening", ["contradicted", "not found"])
    session_id = first["id"]
    assert response.headers["x-spar-session"] == str(session_id)
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert first["status"] == "waiting" and first["next_round"] == "closing" and "scorecard" not in first
    assert first["unanswered"] is None and first["over"] is False
    contradicted, unfounded = (line["claim"] for line in _marks(opening))
    assert all(line["final"] for line in _only(opening, "mark"))  # no local model, no judge: the rules' marks are final
    assert "October 2006" in contradicted["quote"] and "2009" in contradicted["reason"]
    assert contradicted["label"] == "U1" and unfounded["label"] == "U2"
    assert unfounded["source"] is None and unfounded["quote"] == "" and "Brazil" in unfounded["reason"]
    assert not _only(opening, "scorecard")  # only after the closing

    closing = _play(client, session_id=session_id, text=SUPPORTED_CLAIM)
    final = _check_round(closing, "closing", ["supported"])
    supported = _marks(closing)[0]["claim"]
    assert supported["label"] == "U3" and "February 2016" in supported["quote"] and supported["reason"] == ""
    assert final["status"] == "complete" and final["next_round"] is None and final["over"]

    # The scorecard counts what the marks said; the assistant's claims are its cards.
    scorecard = _scorecard(closing)
    marks = [line["claim"]["mark"] for line in _marks(opening) + _marks(closing)]
    user, assistant = scorecard["sides"]
    assert scorecard["complete"] and user["role"] == "skeptic" and assistant["role"] == "advocate"
    assert (user["claims"], user["supported"], user["contradicted"], user["not_found"]) == (
        len(marks), marks.count("supported"), marks.count("contradicted"), marks.count("not found"))
    assert (user["claims"], user["supported"], user["contradicted"], user["not_found"]) == (3, 1, 1, 1)
    assert assistant["claims"] == len(_only(opening + closing, "card")) == assistant["supported"]

    # Saved: listed among the spar sessions (not among the debates), as JSON, scorecard and Markdown.
    assert [s["id"] for s in client.get("/api/spar").json()] == [session_id]
    assert client.get("/api/spar").json()[0]["status"] == "complete"
    assert client.get("/api/debates").json() == []
    saved = client.get(f"/api/spar/{session_id}").json()
    assert saved["user_side"] == "skeptic" and saved["next_round"] is None and saved["scorecard"] == scorecard
    assert [len(t["claims"]) for t in saved["turns"]] == [2, 0, 1, 0]
    assert client.get(f"/api/spar/{session_id}/scorecard").json() == scorecard
    markdown = client.get(f"/api/spar/{session_id}/markdown")
    assert markdown.headers["content-type"].startswith("text/plain")
    text = markdown.text
    assert text.startswith(f"# Spar: {MOTION}") and "## Scorecard" in text and "## References" in text
    assert "| you (against) | 3 | 1 | 1 | 1 |" in text
    assert f"**U1** {CONTRADICTED_CLAIM} — *contradicted*" in text

    # A finished session takes no more turns, and nothing is added to it.
    over = client.post("/api/spar", json={"session_id": session_id, "text": SUPPORTED_CLAIM})
    assert over.status_code == 409 and "is over" in over.json()["detail"]
    assert client.get(f"/api/spar/{session_id}").json()["turns"] == saved["turns"]


def test_bad_spar_requests_are_refused_before_anything_is_saved(extractive) -> None:
    client, service = extractive
    limit = service.settings.spar_max_words
    start = {"motion": MOTION, "side": "skeptic", "text": SUPPORTED_CLAIM}
    refused = [
        ({**start, "side": "maybe"}, 422, "side must be for or against (or advocate, skeptic), not 'maybe'"),
        ({**start, "text": " ".join(["sanctions"] * (limit + 1))}, 422, f"has {limit + 1} words; the limit is {limit}"),
        ({**start, "text": " \u200b "}, 422, "the turn is empty"),
        ({**start, "motion": "   "}, 422, "empty"),
        ({"side": "skeptic", "text": SUPPORTED_CLAIM}, 422, "motion is required to start a spar session"),
        ({"motion": MOTION, "text": SUPPORTED_CLAIM}, 422, "side is required"),
        ({**start, "rounds": 99}, 422, "rounds must be between 0 and"),
        ({**start, "rounds": -1}, 422, ""),
        ({**start, "doc_ids": ["feedfacefeedface"]}, 404, "no document with id 'feedfacefeedface'"),
        ({"session_id": 4242, "text": SUPPORTED_CLAIM}, 404, "no spar session with id 4242"),
        ({"session_id": 0, "text": SUPPORTED_CLAIM}, 422, ""),
        ({"motion": MOTION, "side": "skeptic"}, 422, ""),  # no turn
    ]
    for body, status, detail in refused:
        response = client.post("/api/spar", json=body)
        assert response.status_code == status, (body, response.text[:300])
        assert detail in json.dumps(response.json()["detail"]), (body, response.json())
    assert client.get("/api/spar").json() == [] and client.get("/api/debates").json() == []

    # A saved debate is not a spar session.
    debate = service.transcripts.create("A debate, not a spar", 0, personas.ADVOCATE, personas.SKEPTIC, [])
    for path in ("", "/scorecard", "/markdown"):
        assert client.get(f"/api/spar/{debate.id}{path}").status_code == 404
        assert client.get(f"/api/spar/4242{path}").status_code == 404
        assert client.get(f"/api/spar/0{path}").status_code == 422
    assert client.post("/api/spar", json={"session_id": debate.id, "text": SUPPORTED_CLAIM}).status_code == 404

    # In a session under way, a refused turn leaves it as it was: same turns, same round to play.
    session_id = _play(client, **start, rounds=0)[-1]["id"]
    before = client.get(f"/api/spar/{session_id}").json()
    assert before["next_round"] == "closing" and before["status"] == "waiting"
    for body, status in [({"text": " ".join(["sanctions"] * (limit + 1))}, 422), ({"text": ""}, 422),
                         ({"text": UNFOUNDED_CLAIM, "side": "advocate"}, 422)]:  # fmt: skip
        response = client.post("/api/spar", json={"session_id": session_id, **body})
        assert response.status_code == status, response.text[:300]
    assert client.get(f"/api/spar/{session_id}").json() == before
    assert [s["id"] for s in client.get("/api/spar").json()] == [session_id]


def test_a_turn_left_unanswered_is_answered_first(extractive) -> None:
    """A client that went away after its marks (the assistant had not answered): the session says so,
    and the next request gets the answer first, with or without a turn of its own."""
    from assistant.chains.debate_events import TurnFinished

    client, service = extractive
    session_id = _play(client, motion=MOTION, side="skeptic", rounds=1, text=CONTRADICTED_CLAIM)[-1]["id"]

    def stop_after_the_marks(text: str) -> None:
        events = service.spar_chain.play(session_id, text)
        next(e for e in events if isinstance(e, TurnFinished))  # the user's turn, marked and saved
        events.close()  # as when the client goes away: the assistant's answer is never made

    stop_after_the_marks(UNFOUNDED_CLAIM)
    saved = client.get(f"/api/spar/{session_id}").json()
    assert saved["status"] == "stopped" and saved["unanswered"] == 2 and not saved["over"]
    assert saved["next_round"] == "closing" and [t["role"] for t in saved["turns"]] == ["skeptic", "advocate", "skeptic"]

    # A new turn: the answer to the old one comes first, then the new turn is marked and answered.
    lines = _play(client, session_id=session_id, text=SUPPORTED_CLAIM)
    session_line = _only(lines, "session")[0]
    assert session_line["round"] == "closing" and session_line["answers_first"] == 2
    turns = _only(lines, "turn")
    assert [(t["role"], t["kind"]) for t in turns] == [("advocate", "rebuttal"), ("skeptic", "closing"), ("advocate", "closing")]
    assert [c["answers"] for c in turns[0]["cards"] if c["answers"]] in ([], ["U2"])
    types = [line["type"] for line in lines]
    assert types.index("card") < types.index("mark")
    final = lines[-1]
    assert final["status"] == "complete" and final["over"] and final["unanswered"] is None and _only(lines, "scorecard")

    # The closing left unanswered: only an empty turn (get the answer) is taken, and it finishes the session.
    session_id = _play(client, motion=MOTION, side="skeptic", rounds=0, text=CONTRADICTED_CLAIM)[-1]["id"]
    stop_after_the_marks(SUPPORTED_CLAIM)
    waiting = client.get(f"/api/spar/{session_id}").json()
    assert waiting["next_round"] is None and waiting["unanswered"] == 2 and not waiting["over"]
    refused = client.post("/api/spar", json={"session_id": session_id, "text": UNFOUNDED_CLAIM})
    assert refused.status_code == 422 and "empty turn" in refused.json()["detail"]
    assert client.get(f"/api/spar/{session_id}").json() == waiting
    lines = _play(client, session_id=session_id, text="")
    assert _only(lines, "session")[0]["round"] is None and not _only(lines, "mark")
    assert [(t["role"], t["kind"]) for t in _only(lines, "turn")] == [("advocate", "closing")]
    assert lines[-1]["status"] == "complete" and lines[-1]["over"]
    user = _scorecard(lines)["sides"][0]
    assert (user["claims"], user["supported"], user["contradicted"]) == (2, 1, 1)
    assert client.post("/api/spar", json={"session_id": session_id, "text": ""}).status_code == 409


# --- the real local model: slow ---------------------------------------------------------------------


@pytest.mark.slow  # three assistant turns of the real 1.5B model (about 8 s each on two free cores)
def test_three_rounds_with_the_real_model_resume_after_a_restart(settings) -> None:
    # The product's verifiers (rules, then the local model as judge; spar marks too); short card replies.
    options = {"llm_backend": "llamacpp", "verifier": "rules+llm", "debate_turn_max_tokens": 110}
    service = _service(settings, **options)
    with _client(service) as client:
        opening = _play(client, motion=MOTION, side="skeptic", rounds=1, text=CONTRADICTED_CLAIM)
        session_id = _check_round(opening, "opening", ["contradicted"])["id"]
        assert "October 2006" in _marks(opening)[0]["claim"]["quote"]
        # The assistant answers the user's claim: its first card names U1 (or says why the link was dropped).
        first_card = _only(opening, "card")[0]
        assert first_card["answers"] == "U1" or "U1" in first_card["answer_note"], first_card
        rebuttal = _play(client, session_id=session_id, text=UNFOUNDED_CLAIM)
        after = _check_round(rebuttal, "rebuttal", ["not found"])
        assert after["status"] == "waiting" and after["next_round"] == "closing"
    assert service.close()

    # A new process over the same data dir: the session is where it was left.
    service = _service(settings, **options)
    with _client(service) as client:
        saved = client.get(f"/api/spar/{session_id}").json()
        assert saved["status"] == "waiting" and saved["next_round"] == "closing" and len(saved["turns"]) == 4
        assert not saved["scorecard"]["complete"] and saved["scorecard"]["sides"][0]["claims"] == 2
        closing = _play(client, session_id=session_id, text=SUPPORTED_CLAIM)
        final = _check_round(closing, "closing", ["supported"])
        assert final["status"] == "complete" and final["next_round"] is None
        assert "February 2016" in _marks(closing)[0]["claim"]["quote"]

        scorecard = _scorecard(closing)
        marks = [line["claim"]["mark"] for lines in (opening, rebuttal, closing) for line in _marks(lines)]
        assert marks == ["contradicted", "not found", "supported"]
        user, assistant = scorecard["sides"]
        assert (user["claims"], user["supported"], user["contradicted"], user["not_found"]) == (3, 1, 1, 1)
        assert assistant["claims"] == len(_only(opening + rebuttal + closing, "card"))
        assert client.get(f"/api/spar/{session_id}/scorecard").json() == scorecard
        markdown = client.get(f"/api/spar/{session_id}/markdown").text
        assert "## Scorecard" in markdown and "| you (against) | 3 | 1 | 1 | 1 |" in markdown
        assert markdown.count("## Rebuttal") == 2 and markdown.count("## Closing") == 2

        over = client.post("/api/spar", json={"session_id": session_id, "text": SUPPORTED_CLAIM})
        assert over.status_code == 409
        assert len(client.get(f"/api/spar/{session_id}").json()["turns"]) == 6
    service.close()
