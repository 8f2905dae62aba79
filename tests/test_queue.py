"""The generation queue: server-owned jobs, cancellation within one item, bounded waits (issue 12).

Unit tests with plain generators and the scripted model over real HTTP on 127.0.0.1; the real
model and the real app process are in test_cancellation.py."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from assistant.core.cancel import CLIENT_GONE, GenerationStopped
from assistant.server.service import GenerationQueue, Queued, QueueTimeout, Service, ShuttingDown
from tests.fakes import ScriptedChatModel
from tests.servers import serve_app
from ui import create_app


def _ticker(log: list[str], name: str, n: int = 10_000, pause: float = 0.01):
    """A generation of ``n`` items that records whether its finally ran (the model lock's release)."""
    try:
        for i in range(n):
            time.sleep(pause)
            yield f"{name}{i}"
        log.append(f"{name} finished")
    finally:
        log.append(f"{name} closed")


def test_a_cancelled_running_job_closes_its_generation_and_the_next_one_runs() -> None:
    queue, log = GenerationQueue(), []
    first = queue.submit(lambda: _ticker(log, "a"))
    events = first.events(timeout_s=10)
    assert next(events) == "a0"
    second = queue.submit(lambda: _ticker(log, "b", n=3))
    assert next(second.events(timeout_s=10)) == Queued(1)
    first.cancel(CLIENT_GONE)
    with pytest.raises(GenerationStopped, match=CLIENT_GONE):
        list(events)
    assert [item for item in second.events(timeout_s=10)] == ["b0", "b1", "b2"]
    assert log == ["a closed", "b finished", "b closed"]
    assert (queue.running, queue.waiting) == (False, 0)


def test_a_job_cancelled_while_queued_leaves_the_line_without_running() -> None:
    queue, log = GenerationQueue(), []
    first = queue.submit(lambda: _ticker(log, "a"))
    next(first.events(timeout_s=10))
    queued = queue.submit(lambda: _ticker(log, "never"))
    assert queue.waiting == 1
    queued.cancel(CLIENT_GONE)
    assert queued.done.wait(5) and queue.waiting == 0
    first.cancel()
    assert first.done.wait(5)
    assert "never closed" not in log and (queue.running, queue.waiting) == (False, 0)


def test_a_queued_job_gives_up_after_the_queue_timeout_with_a_retry_hint() -> None:
    queue, log = GenerationQueue(queue_timeout_s=0.3), []
    first = queue.submit(lambda: _ticker(log, "a"))
    next(first.events(timeout_s=10))
    late = queue.submit(lambda: _ticker(log, "late"))
    with pytest.raises(QueueTimeout) as caught:
        list(late.events(timeout_s=10))
    assert caught.value.retry_after_s >= 1 and "busy" in str(caught.value)
    first.cancel()


def test_a_generation_over_its_time_budget_is_stopped() -> None:
    queue, log = GenerationQueue(generation_timeout_s=0.2), []
    job = queue.submit(lambda: _ticker(log, "slow"))
    with pytest.raises(GenerationStopped) as caught:
        list(job.events(timeout_s=10))
    assert caught.value.over_budget and "time budget of 0.2 s" in caught.value.reason
    assert log == ["slow closed"]


def test_close_stops_everything_and_refuses_new_jobs() -> None:
    queue, log = GenerationQueue(), []
    jobs = [queue.submit(lambda name=name: _ticker(log, name)) for name in "abc"]
    next(jobs[0].events(timeout_s=10))
    queue.close()
    assert queue.drain(5)
    assert all(job.done.is_set() for job in jobs) and log == ["a closed"]
    with pytest.raises(ShuttingDown):
        queue.submit(lambda: _ticker(log, "d"))


# --- over HTTP, with the scripted model ------------------------------------------------------

def _slow_service(settings, articles: Path, delay_s: float, **update) -> Service:
    service = Service(settings.model_copy(update={"llm_backend": "extractive", **update}))
    service.library.ingest([str(articles / "skeptic.txt")])

    def slow(messages) -> str:
        time.sleep(delay_s)
        return "Arandia expelled the international inspectors it had promised to admit [1]."

    service.chat_model = ScriptedChatModel(rule=slow, calls=[])
    return service


@pytest.mark.slow  # a real server and a model that sleeps on purpose: seconds of waiting
def test_over_http_a_full_queue_is_a_503_with_retry_after(settings, articles: Path) -> None:
    service = _slow_service(settings, articles, 3.0, queue_timeout_s=0.5)
    question = {"question": "Who expelled the inspectors?"}
    with serve_app(create_app(service)) as url, httpx.Client(base_url=url, timeout=60) as client:
        holder = threading.Thread(target=lambda: client.post("/api/ask", json=question))
        holder.start()
        while not client.get("/api/health").json()["queue"]["running"]:
            time.sleep(0.05)
        refused = client.post("/api/ask", json=question)
        streamed = [json.loads(line) for line in client.post("/api/ask", json={**question, "stream": True}).text.splitlines()]
        holder.join()
    assert refused.status_code == 503 and int(refused.headers["retry-after"]) >= 1
    assert "busy" in refused.json()["detail"]
    assert streamed[0]["type"] == "queued"
    assert streamed[-1]["type"] == "error" and streamed[-1]["status"] == 503 and streamed[-1]["retry_after"] >= 1
    service.close()


@pytest.mark.slow  # a real server and a model that sleeps on purpose: seconds of waiting
def test_over_http_a_generation_over_budget_is_a_504_and_a_debate_is_saved_stopped(settings, articles: Path) -> None:
    service = _slow_service(settings, articles, 1.0, generation_timeout_s=2.5, debate_rounds=0)
    with serve_app(create_app(service)) as url, httpx.Client(base_url=url, timeout=60) as client:
        answer = client.post("/api/ask", json={"question": "Who expelled the inspectors?"})
        # Each of the four card turns takes ~1 s (the ballot asks no model without a clash to weigh):
        # the debate runs over its 2.5 s after one or two.
        lines = [json.loads(line) for line in
                 client.post("/api/debate", json={"motion": "Should inspectors return?", "rounds": 1}).text.splitlines()]
        debate_id = lines[0]["id"]
        saved = client.get(f"/api/debates/{debate_id}").json()
    assert answer.status_code == 200  # 1 s: inside the budget
    assert lines[-1]["type"] == "error" and lines[-1]["status"] == 504 and "time budget" in lines[-1]["detail"]
    kept = [t["index"] for t in saved["turns"]]
    assert saved["status"] == "stopped" and kept in ([0], [0, 1])  # finished turns kept, the cut one not
    service.close()
