"""Two app replicas behind HAProxy, sharing PostgreSQL, the Chroma server and llama.cpp's
OpenAI-compatible server, all real processes on 127.0.0.1 (``bench.cluster``). Nothing a user
does depends on which replica answers, and killing one mid-debate loses no saved turn.

Each replica has its own data folder, so what one replica shows of another's work can only have
come through the shared servers. Generations are short: this runs on two shared CPU cores.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from bench.cluster import Cluster
from tests.conftest import ARTICLES

pytestmark = pytest.mark.slow
MOTION = "Should the government offer Arandia a non-aggression pledge before full disarmament?"
SETTINGS = {"DA_PRESET": "fast", "DA_LLM_MAX_TOKENS": "60", "DA_DEBATE_TURN_MAX_TOKENS": "120",
            "DA_DEBATE_K_PER_SIDE": "2", "DA_RETRIEVAL_K": "3", "DA_DEBATE_ROUNDS": "1"}  # fmt: skip


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with Cluster(tmp_path_factory.mktemp("cluster"), replicas=2, llm="server", settings=SETTINGS) as running:
        yield running


def _client(url: str) -> httpx.Client:
    # Origin: the app takes writes from its own pages (or with a token); the balancer keeps Host.
    return httpx.Client(base_url=url, timeout=600, headers={"Origin": url})


def _lines(response: httpx.Response) -> Iterator[dict]:
    for line in response.iter_lines():
        if line.strip():
            yield json.loads(line)


def test_work_on_one_replica_is_seen_on_the_other_and_a_killed_replica_loses_no_saved_turn(cluster: Cluster) -> None:
    first, second = cluster.replica_urls
    with _client(first) as one, _client(second) as two, _client(cluster.balancer_url) as balancer:
        files = [("files", (p.name, p.read_bytes(), "text/plain")) for p in (ARTICLES / "skeptic.txt", ARTICLES / "pro_engagement.txt")]
        added = one.post("/api/documents", files=files)
        assert added.status_code == 200 and [r["status"] for r in added.json()] == ["added", "added"], added.text

        # Ingested on the first, searched on the second.
        hits = two.post("/api/search", json={"query": "Which observatory published imagery of the Dunmore hall?"}).json()
        assert hits and "Corvel Observatory" in " ".join(h["text"] for h in hits)
        assert {d["title"] for d in two.get("/api/documents").json()} == {d["title"] for d in one.get("/api/documents").json()}

        # Asked through the balancer: either replica answers from the same library.
        answer = balancer.post("/api/ask", json={"question": "Which observatory published imagery of the Dunmore hall?"})
        assert answer.status_code == 200 and answer.json()["citations"], answer.text

        # A spar session played on the second is listed and exported on the first.
        with two.stream("POST", "/api/spar", json={"motion": MOTION, "side": "against", "rounds": 0,
                                                   "text": "Pledges to Arandia were broken before."}) as spar:  # fmt: skip
            assert spar.status_code == 200
            session_id = int(spar.headers["X-Spar-Session"])
            assert not [line for line in _lines(spar) if line["type"] == "error"]
        assert session_id in [s["id"] for s in one.get("/api/spar").json()]
        assert MOTION in one.get(f"/api/spar/{session_id}/markdown").text

        # A debate on the first; the first is killed once a turn is saved.
        streamed: list[dict] = []
        with one.stream("POST", "/api/debate", json={"motion": MOTION, "rounds": 1}) as debate:
            assert debate.status_code == 200
            for line in _lines(debate):
                streamed.append(line)
                if line["type"] == "turn":
                    break
            cluster.kill_replica(1)
        debate_id = next(line["id"] for line in streamed if line["type"] == "start")
        saved_turn = next(line for line in streamed if line["type"] == "turn")

        # The saved turn is intact on the second, and exports there.
        assert debate_id in [d["id"] for d in two.get("/api/debates").json()]
        kept = two.get(f"/api/debates/{debate_id}").json()
        assert len(kept["turns"]) < 5  # killed mid-debate: two openings, two rebuttals and the judge make 5
        assert kept["turns"][0]["text"] == saved_turn["text"] and kept["turns"][0]["cards"] == saved_turn["cards"]
        assert saved_turn["text"].split("[")[0].strip()[:40] in two.get(f"/api/debates/{debate_id}/markdown").text

        # The balancer sends every request to the replica still up, at once for a refused
        # connection, and its health checks take the dead one out.
        deadline = time.monotonic() + 30
        for _ in range(6):
            balancer.cookies.clear()
            response = balancer.get("/api/debates")
            assert response.status_code == 200 and debate_id in [d["id"] for d in response.json()]
            assert time.monotonic() < deadline

        # The killed replica restarts (as a supervisor would) and sees everything.
        cluster.start_replica(1)
        assert debate_id in [d["id"] for d in one.get("/api/debates").json()]
        assert session_id in [s["id"] for s in one.get("/api/spar").json()]
