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
from assistant.server.service import Service
from assistant.server.generation_queue import GenerationQueue, Queued, QueueTimeout, ShuttingDown
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


# --- generation slots (issue 31) -------------------------------------------------------------

def test_with_two_slots_two_jobs_run_at_once_and_the_third_waits_its_turn() -> None:
    queue, log = GenerationQueue(slots=2), []
    first, second = (queue.submit(lambda name=name: _ticker(log, name)) for name in "ab")
    assert next(first.events(timeout_s=10)) == "a0" and next(second.events(timeout_s=10)) == "b0"  # both running
    assert (queue.running_count, queue.waiting) == (2, 0)
    third = queue.submit(lambda: _ticker(log, "c", n=2))
    fourth = queue.submit(lambda: _ticker(log, "d", n=2))
    third_events, fourth_events = third.events(timeout_s=10), fourth.events(timeout_s=10)
    assert next(third_events) == Queued(1) and next(fourth_events) == Queued(2)  # both slots taken
    second.cancel(CLIENT_GONE)
    assert list(third_events) == ["c0", "c1"]  # the first in line takes the freed slot
    first.cancel(CLIENT_GONE)
    assert list(fourth_events) == ["d0", "d1"]
    assert queue.drain(5) and (queue.running, queue.waiting) == (False, 0)


def test_a_free_slot_means_no_wait_and_no_slot_count_below_one() -> None:
    queue, log = GenerationQueue(slots=3), []
    busy = queue.submit(lambda: _ticker(log, "a"))
    next(busy.events(timeout_s=10))
    assert list(queue.submit(lambda: _ticker(log, "b", n=1)).events(timeout_s=10)) == ["b0"]  # no "queued" line
    busy.cancel()
    with pytest.raises(ValueError, match="at least one slot"):
        GenerationQueue(slots=0)


def test_more_than_one_slot_needs_a_server_backend() -> None:
    from pydantic import ValidationError

    from assistant.core.settings import Settings

    with pytest.raises(ValidationError, match="generation_slots = 2 needs llm_backend = 'openai'"):
        Settings(generation_slots=2)
    assert Settings(generation_slots=4, llm_backend="openai").generation_slots == 4


@pytest.mark.slow  # a real app and a real OpenAI-compatible server that takes a second per reply
@pytest.mark.parametrize("slots", [1, 2])
def test_over_http_asks_run_in_as_many_slots_as_set_behind_a_concurrent_server(settings, articles: Path, slots: int) -> None:
    """Two asks at once through the REST API, with the chat model and the judge on an OpenAI-compatible
    server that really runs requests at the same time: the server sees at most ``slots`` at once."""
    from bench.concurrent_server import concurrent_server

    with concurrent_server(seconds_per_reply=1.0) as (base_url, in_flight):
        service = Service(settings.model_copy(update={
            "llm_backend": "openai", "openai_base_url": base_url, "openai_model": "concurrent", "generation_slots": slots,
            "stance_suggestions": False}))  # fmt: skip
        service.library.ingest([str(articles / "skeptic.txt")])
        with serve_app(create_app(service)) as url, httpx.Client(base_url=url, timeout=120) as client:
            asked = ["Who expelled the inspectors?", "What did Arandia promise?"]
            replies: list[httpx.Response] = []
            threads = [threading.Thread(target=lambda q=q: replies.append(client.post("/api/ask", json={"question": q})))
                       for q in asked]  # fmt: skip
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            health = client.get("/api/health").json()["queue"]
        service.close()
    assert [r.status_code for r in replies] == [200, 200], [r.text for r in replies]
    assert all(r.json()["answer"] for r in replies)  # whole answers (the server's replies make declines)
    assert in_flight.most == slots and in_flight.served >= 2
    assert health == {"running": False, "waiting": 0, "slots": slots, "busy_slots": 0}
