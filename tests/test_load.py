"""The retrieval-only endpoint and a small, bounded run of the load test (bench/load_test.py).

The load test starts the real app (uvicorn subprocess, fixture articles added through the
API) and drives it with concurrent clients while polling /api/health; here with 5 search
clients for 5 s and one ask client on the extractive backend. No timing is asserted: only
that nothing failed and that every health poll was answered.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from assistant.server.service import Service
from assistant.core.settings import Settings
from bench import load_test
from tests.conftest import ARTICLES
from tests.servers import serve_app
from ui import create_app


@pytest.fixture(scope="module")
def search_api(tmp_path_factory: pytest.TempPathFactory):
    service = Service(Settings(data_dir=tmp_path_factory.mktemp("search"), llm_backend="extractive"))
    service.library.ingest([str(ARTICLES)])
    with serve_app(create_app(service)) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client, service
    service.close()


def test_search_returns_ranked_passages_without_the_model(search_api) -> None:
    client, service = search_api
    hits = client.post("/api/search", json={"query": "Why did the Copper Lake agreement collapse?", "k": 3}).json()
    assert [h["number"] for h in hits] == [1, 2, 3]
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    top = hits[0]
    assert "Copper Lake" in top["text"] and top["source"].endswith("skeptic.txt")
    assert service.library.registry.text(top["doc_id"])[top["start"] : top["end"]] == top["text"]
    assert {"passage_id", "title", "author", "dense_similarity", "lexical_score"} <= set(top)
    assert "chat_model" not in service.__dict__  # the model was never needed (cached_property not filled)


def test_search_options_filter_and_bounds(search_api) -> None:
    client, service = search_api
    compost = next(d.id for d in service.library.documents() if "Composting" in d.title)
    only = client.post("/api/search", json={"query": "Copper Lake agreement", "doc_ids": [compost], "k": 4}).json()
    assert only and {h["doc_id"] for h in only} == {compost}
    for mode in ("bm25", "dense", "hybrid"):
        hits = client.post("/api/search", json={"query": "Corvel Observatory imagery", "mode": mode, "k": 2}).json()
        assert len(hits) == 2 and "Corvel" in hits[0]["text"], mode
    assert client.post("/api/search", json={"query": "x", "k": 0}).status_code == 422
    assert client.post("/api/search", json={"query": "x", "k": 51}).status_code == 422
    assert client.post("/api/search", json={"query": "x", "mode": "telepathy"}).status_code == 422
    assert "/api/search" in client.get("/api/openapi.json").json()["paths"]


def test_search_needs_the_bearer_token_when_one_is_set(settings: Settings) -> None:
    service = Service(settings.model_copy(update={"llm_backend": "extractive", "api_token": SecretStr("t0ken")}))
    with serve_app(create_app(service)) as url:
        assert httpx.post(f"{url}/api/search", json={"query": "x"}).status_code == 401
        ok = httpx.post(f"{url}/api/search", json={"query": "x"}, headers={"Authorization": "Bearer t0ken"})
    service.close()
    assert ok.status_code == 200 and ok.json() == []  # an empty library has nothing to find


def test_percentiles_of_nothing_and_of_something() -> None:
    assert load_test.percentiles([]) == {"p50": None, "p95": None, "max": None, "mean": None}
    figures = load_test.percentiles([float(n) for n in range(1, 101)])
    assert figures["p50"] == 50.5 and figures["max"] == 100.0 and 95 <= figures["p95"] <= 96


@pytest.mark.slow  # a fresh interpreter (or a 20-client load run): about 15 s
def test_a_bounded_load_run_has_no_errors_and_every_health_poll_answered(tmp_path: Path, capsys) -> None:
    output = tmp_path / "report.json"
    code = load_test.main(["--clients", "5", "--seconds", "5", "--ask-clients", "1", "--backend", "extractive",
                           "--output", str(output)])  # fmt: skip
    printed = capsys.readouterr().out
    report = json.loads(output.read_text())
    assert code == 0, printed
    assert report["errors"] == 0, report["search"]["error_samples"] + report["ask"]["error_samples"]
    assert report["search"]["requests"] > 0 and report["ask"]["requests"] > 0
    assert report["health"]["failures"] == 0 and report["health"]["answered"] == report["health"]["polls"] >= 5
    assert report["warmup"]["documents"] == 4
    assert "req/s" in printed and f"report: {output}" in printed
