"""The REST API over real HTTP on 127.0.0.1 (extractive or scripted models: the real LLM is in
test_local_llm.py and test_browser.py)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from assistant.server.service import Service
from tests.fakes import ScriptedChatModel
from tests.servers import serve_app
from ui import create_app


# Each test runs on the default SQLite files and on PostgreSQL (tests/conftest.py, ``database``).
pytestmark = pytest.mark.usefixtures("database")


def _service(settings, **update) -> Service:
    return Service(settings.model_copy(update={"llm_backend": "extractive", **update}))


@pytest.fixture
def api(settings, articles: Path):
    service = _service(settings)
    service.library.ingest([str(articles / "skeptic.txt"), str(articles / "pro_engagement.txt")])
    with serve_app(create_app(service)) as url:
        with httpx.Client(base_url=url, timeout=60) as client:
            yield client, service
    service.close()


def _lines(response: httpx.Response) -> list[dict]:
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


def test_health_and_openapi_docs(api) -> None:
    client, _ = api
    health = client.get("/api/health").json()
    assert health == {"status": "ok", "documents": 2, "llm_backend": "extractive", "queue": {"running": False, "waiting": 0, "slots": 1, "busy_slots": 0}}
    spec = client.get("/api/openapi.json").json()
    assert {"/api/ask", "/api/debate", "/api/documents", "/api/documents/{doc_id}", "/api/health"} <= set(spec["paths"])
    assert client.get("/api/docs").status_code == 200


def test_ask_as_json_and_as_a_stream(api) -> None:
    client, _ = api
    answer = client.post("/api/ask", json={"question": "Which observatory published imagery of the Dunmore hall?"}).json()
    assert "Corvel Observatory" in answer["answer"] and not answer["declined"]
    cited = answer["citations"][0]
    assert cited["number"] == 1 or cited["number"] > 0
    assert "Corvel Observatory" in cited["text"] and cited["source"].endswith("skeptic.txt") and cited["end"] > cited["start"]
    assert answer["timing"]["retrieval_ms"] > 0

    streamed = client.post("/api/ask", json={"question": "Which observatory published imagery of the Dunmore hall?",
                                             "stream": True})  # fmt: skip
    assert streamed.headers["content-type"].startswith("application/x-ndjson")
    lines = _lines(streamed)
    assert [line["type"] for line in lines][-1] == "answer" and any(line["type"] == "token" for line in lines)
    assert "".join(line["text"] for line in lines if line["type"] == "token").startswith("Satellite imagery")
    # The sources arrive before the first token; each sentence's verdict before the final answer.
    types = [line["type"] for line in lines]
    assert types.index("sources") < types.index("token") < types.index("checked") < types.index("answer")
    sources = next(line["sources"] for line in lines if line["type"] == "sources")
    assert any("Corvel Observatory" in s["text"] for s in sources) and all(s["shown"] for s in sources)
    checked = [line for line in lines if line["type"] == "checked"]
    assert [c["text"] for c in checked] == [s["text"] for s in lines[-1]["sentences"]]
    assert all(c["supported"] and c["evidence"] for c in checked)


@pytest.mark.parametrize("question", ["", "   ", "x" * 10_000_000])
def test_bad_questions_get_a_clear_422(api, question: str) -> None:
    client, _ = api
    response = client.post("/api/ask", json={"question": question})
    assert response.status_code == 422
    assert "question" in response.json()["detail"]


def test_debate_streams_turns_and_is_saved(api) -> None:
    client, _ = api
    response = client.post("/api/debate", json={"motion": "Should Arandia get a non-aggression pledge first?", "rounds": 0,
                                                "advocate": {"name": "dove"}, "criterion": "impact on trade"})  # fmt: skip
    lines = _lines(response)
    types = [line["type"] for line in lines]
    assert types[0] == "start" and types[-1] == "debate"
    assert [line["speaker"] for line in lines if line["type"] == "turn_start"] == ["dove", "Against", "judge"]
    cards = [line for line in lines if line["type"] == "card"]
    assert len(cards) == 4 and {c["role"] for c in cards} == {"advocate", "skeptic"}
    sources = {s["number"]: s for s in lines[0]["sources"]}
    assert all(sources[c["source"]]["text"][c["start"] : c["end"]] == c["quote"] for c in cards)
    turns = [line for line in lines if line["type"] == "turn"]
    assert [c["label"] for c in turns[0]["cards"]] == [c["label"] for c in cards[:2]]
    debate_id = lines[-1]["id"]
    assert f"> “{cards[0]['quote']}”" in client.get(f"/api/debates/{debate_id}/brief").text
    exported = client.get(f"/api/debates/{debate_id}/cards").json()
    assert exported["turns"][0]["cards"][0]["document"] in ("skeptic.txt", "pro_engagement.txt")
    assert client.get("/api/debates").json()[0]["id"] == debate_id
    markdown = client.get(f"/api/debates/{debate_id}/markdown").text
    assert markdown.startswith("# Debate: Should Arandia") and "## References" in markdown
    assert client.get("/api/debates/9999").status_code == 404
    too_many = client.post("/api/debate", json={"motion": "Anything?", "rounds": 99})
    assert too_many.status_code == 422
    bad = client.post("/api/debate", json={"motion": "Anything?", "criterion": "x" * 201})
    assert bad.status_code == 422 and "criterion" in bad.json()["detail"]
    ballot = turns[-1]["ballot"]  # the judge's turn: the criterion asked for, a decision, the reason citing cards
    assert ballot["criterion"] == "impact on trade" and ballot["decision"] in ("advocate", "skeptic") and ballot["rfd"]
    spec = client.get("/api/openapi.json").json()
    assert "criterion" in spec["components"]["schemas"]["DebateRequest"]["properties"]
    assert "`decision`" in spec["paths"]["/api/debate"]["post"]["description"]  # the ballot's fields, documented


def test_documents_add_list_delete(api) -> None:
    client, _ = api
    files = {"files": ("../../etc/evil name.txt", b"Fishermen repaired the north pier after the winter storms.", "text/plain")}
    added = client.post("/api/documents", files=files, data={"text": "Pasted notes about the harbour ferry timetable.",
                                                             "title": "Ferry notes"}).json()  # fmt: skip
    assert [r["status"] for r in added] == ["added", "added"]
    assert Path(added[0]["item"]).name == "evil name.txt" and "/etc/" not in added[0]["item"]
    listing = client.get("/api/documents").json()
    assert {d["title"] for d in listing} >= {"Ferry notes"} and len(listing) == 4
    doc_id = next(d["id"] for d in listing if d["title"] == "Ferry notes")
    assert client.delete(f"/api/documents/{doc_id}").json()["deleted"] == doc_id
    assert client.delete(f"/api/documents/{doc_id}").status_code == 404
    assert client.post("/api/documents", data={}).status_code == 422


def test_document_stance_from_the_form_and_changed_by_patch(api) -> None:
    client, _ = api
    added = client.post("/api/documents", data={"text": "Talks with the harbour board failed twice.", "title": "Board",
                                                "stance": "skeptic"}).json()  # fmt: skip
    doc_id = added[0]["doc_id"]
    listing = {d["id"]: d for d in client.get("/api/documents").json()}
    assert listing[doc_id]["stance"] == "skeptic"
    assert all(d["stance"] == "unknown" for i, d in listing.items() if i != doc_id)
    assert client.patch(f"/api/documents/{doc_id}", json={"stance": "advocate"}).json()["stance"] == "advocate"
    # "for" and "against" the motion name the same stored sides, whatever the library's topic
    assert client.patch(f"/api/documents/{doc_id}", json={"stance": "Against"}).json()["stance"] == "skeptic"
    bad = client.patch(f"/api/documents/{doc_id}", json={"stance": "pro"})
    assert bad.status_code == 422 and "for, against or unknown" in bad.json()["detail"]
    assert client.patch("/api/documents/nope", json={"stance": "skeptic"}).status_code == 404
    refused = client.post("/api/documents", data={"text": "More notes.", "stance": "neutral"})
    assert refused.status_code == 422 and len(client.get("/api/documents").json()) == 3


def test_bearer_token_protects_the_api_and_basic_auth_the_ui(settings) -> None:
    service = _service(settings, api_token=SecretStr("s3cret"), ui_username="ann", ui_password=SecretStr("pw"))
    with serve_app(create_app(service)) as url, httpx.Client(base_url=url, timeout=30) as client:
        assert client.get("/api/health").status_code == 200  # liveness stays open
        assert client.get("/api/documents").status_code == 401
        assert client.get("/api/documents", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/api/documents", headers={"Authorization": "Bearer s3cret"}).json() == []
        assert client.get("/").status_code == 401
        assert client.get("/", auth=("ann", "nope")).status_code == 401
        assert client.get("/", auth=("ann", "pw")).status_code == 200
    service.close()


@pytest.mark.slow  # a few seconds: the fast lane stays under two minutes
def test_concurrent_requests_wait_their_turn_for_the_one_model(settings, articles: Path) -> None:
    service = _service(settings)
    service.library.ingest([str(articles / "skeptic.txt")])
    active, most_active = [0], [0]

    def slow(messages) -> str:
        active[0] += 1
        most_active[0] = max(most_active[0], active[0])
        time.sleep(0.8)
        active[0] -= 1
        return "Arandia expelled the international inspectors it had promised to admit [1]."

    service.chat_model = ScriptedChatModel(rule=slow, calls=[])
    results: list[list[dict]] = []
    with serve_app(create_app(service)) as url, httpx.Client(base_url=url, timeout=60) as client:
        def ask() -> None:
            response = client.post("/api/ask", json={"question": "Why did Copper Lake collapse?", "stream": True})
            results.append(_lines(response))

        threads = [threading.Thread(target=ask) for _ in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        waiting = client.get("/api/health").json()["queue"]
        for thread in threads:
            thread.join()
    assert most_active[0] == 1  # never two generations at once
    assert waiting["running"] and waiting["waiting"] >= 1
    assert sum(any(line["type"] == "queued" for line in lines) for lines in results) >= 2
    assert all(lines[-1]["type"] == "answer" and not lines[-1]["declined"] for lines in results)
    service.close()


def test_each_answer_sentence_carries_its_evidence_span(api) -> None:
    client, _ = api
    answer = client.post("/api/ask", json={"question": "Which observatory published imagery of the Dunmore hall?"}).json()
    sentence = answer["sentences"][0]
    assert sentence["supported"] and sentence["evidence"]
    span = sentence["evidence"][0]
    cited = next(c for c in answer["citations"] if c["number"] == span["number"])
    assert cited["text"][span["start"] : span["end"]] == span["text"] and "Corvel Observatory" in span["text"]
    assert [span["start"], span["end"]] in cited["evidence"]
