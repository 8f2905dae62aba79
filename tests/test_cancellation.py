"""A client that leaves must not stall everyone (issue 12), through the real app process
(``da app`` on 127.0.0.1, real local model with short generations).

Each test reproduces the report: a client reads the first tokens and goes away; the model must
be free again at once and the next request must complete. Before the fix the queue stayed
``running`` forever after the first disconnect, and ``kill -TERM`` did not stop the server.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.app_process import AppProcess
from tests.conftest import ARTICLES

pytestmark = pytest.mark.slow

# Short generations: the tests are about who owns the model, not about the answers.
SETTINGS = {"llm_max_tokens": 48, "debate_turn_max_tokens": 40, "debate_rounds": 0, "shutdown_grace_s": 5}
QUESTION = "How much grain crossed the border under the Harbor Accord?"
MOTION = "Should the government offer Arandia a non-aggression pledge first?"


def _add_articles(base_url: str) -> None:
    files = [("files", (name, (ARTICLES / name).read_bytes(), "text/plain")) for name in ("pro_engagement.txt", "skeptic.txt")]
    response = httpx.post(f"{base_url}/api/documents", files=files, timeout=600)
    response.raise_for_status()
    assert all(r["status"] == "added" for r in response.json())


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("cancel-app")
    server = AppProcess(folder / "data", folder / "server.log", SETTINGS)
    server.start()
    try:
        _add_articles(server.base_url)
        yield server
    finally:
        server.stop()


def _queue(base_url: str) -> dict:
    """Whether the model is running and how many wait (the app runs one slot: ``slots`` and ``busy_slots`` add nothing)."""
    queue = httpx.get(f"{base_url}/api/health", timeout=10).json()["queue"]
    assert queue["slots"] == 1 and queue["busy_slots"] == int(queue["running"])
    return {"running": queue["running"], "waiting": queue["waiting"]}


def _wait_queue(base_url: str, want: dict, within_s: float) -> dict:
    """Poll /api/health until the queue looks like ``want`` (a bound on the wait, not a benchmark)."""
    deadline = time.monotonic() + within_s
    while True:
        queue = _queue(base_url)
        if all(queue[k] == v for k, v in want.items()) or time.monotonic() > deadline:
            return queue
        time.sleep(0.1)


def _read_until(lines_of: Iterator[str], stop) -> list[dict]:
    """NDJSON lines up to and including the first one for which ``stop(line)`` holds. Pass the same
    ``response.iter_lines()`` iterator to read on: dropping it makes httpx close the connection."""
    lines = []
    for raw in lines_of:
        if raw.strip():
            lines.append(json.loads(raw))
            if stop(lines[-1]):
                break
    return lines


def _ask(base_url: str) -> dict:
    """A second request that must get the model and finish (it waited forever before the fix)."""
    response = httpx.post(f"{base_url}/api/ask", json={"question": QUESTION}, timeout=300)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_streamed_ask_abandoned_mid_answer_frees_the_model_for_the_next_request(app: AppProcess) -> None:
    with httpx.stream("POST", f"{app.base_url}/api/ask", json={"question": QUESTION, "stream": True}, timeout=300) as r:
        lines = _read_until(r.iter_lines(), lambda line: line["type"] == "token")
    assert lines[-1]["type"] == "token"  # we left mid-answer, like `curl ... | head -c 150`
    assert _wait_queue(app.base_url, {"running": False, "waiting": 0}, 10) == {"running": False, "waiting": 0}
    answer = _ask(app.base_url)
    assert answer["answer"] and answer["timing"]["output_tokens"] > 0
    assert _queue(app.base_url) == {"running": False, "waiting": 0}


def test_a_debate_abandoned_mid_turn_is_saved_as_stopped_and_frees_the_model(app: AppProcess) -> None:
    with httpx.stream("POST", f"{app.base_url}/api/debate", json={"motion": MOTION}, timeout=600) as r:
        # The first turn finishes, the second one starts (its cards are being chosen), and then the client leaves.
        lines = _read_until(r.iter_lines(), lambda line: line["type"] == "turn_start" and line["index"] == 1)
    debate_id = next(line["id"] for line in lines if line["type"] == "start")
    assert [line["index"] for line in lines if line["type"] == "turn"] == [0]
    assert _wait_queue(app.base_url, {"running": False, "waiting": 0}, 10) == {"running": False, "waiting": 0}
    saved = httpx.get(f"{app.base_url}/api/debates/{debate_id}", timeout=10).json()
    assert saved["status"] == "stopped"
    assert [t["index"] for t in saved["turns"]] == [0]  # the finished turn is kept, the half one is not
    assert _ask(app.base_url)["answer"]


def test_a_non_streamed_ask_whose_client_left_is_cancelled_not_run(app: AppProcess) -> None:
    """One client holds the model (a debate); a second, non-streamed one gives up while queued; it
    must leave the queue at once instead of running to the end for nobody."""
    with httpx.stream("POST", f"{app.base_url}/api/debate", json={"motion": MOTION}, timeout=600) as r:
        holder = r.iter_lines()  # kept, so that this client stays connected
        _read_until(holder, lambda line: line["type"] == "token")
        gave_up: list[BaseException] = []

        def impatient() -> None:
            try:
                httpx.post(f"{app.base_url}/api/ask", json={"question": "Who expelled the inspectors?"},
                           timeout=httpx.Timeout(30, read=2))  # fmt: skip
            except httpx.ReadTimeout as exc:
                gave_up.append(exc)

        client = threading.Thread(target=impatient)
        client.start()
        assert _wait_queue(app.base_url, {"waiting": 1}, 10)["waiting"] == 1
        client.join()
        assert gave_up  # the client left without an answer...
        assert _wait_queue(app.base_url, {"waiting": 0}, 10) == {"running": True, "waiting": 0}  # ...and so did its request
    assert _wait_queue(app.base_url, {"running": False}, 10) == {"running": False, "waiting": 0}
    assert _ask(app.base_url)["answer"]


@pytest.mark.parametrize("moment", ["generating", "reading_the_prompt"])
def test_sigterm_during_a_generation_stops_the_server_with_exit_code_0(tmp_path: Path, moment: str) -> None:
    """While the second turn is generated (a stop lands at the next token), or while the first turn's
    prompt is still being read (one llama.cpp call that cannot be interrupted: the process saves
    everything and exits without waiting for it)."""
    if moment == "generating":
        signal_at, kept = (lambda line: line["type"] == "turn_start" and line["index"] == 1), [0]
    else:
        signal_at, kept = (lambda line: line["type"] == "turn_start" and line["index"] == 0), []
    server = AppProcess(tmp_path / "data", tmp_path / "server.log", SETTINGS)
    server.start()
    try:
        _add_articles(server.base_url)
        with httpx.stream("POST", f"{server.base_url}/api/debate", json={"motion": MOTION}, timeout=600) as r:
            stream = r.iter_lines()
            lines = _read_until(stream, signal_at)
            code, seconds = server.terminate(timeout_s=10)
            lines += [json.loads(raw) for raw in stream if raw.strip()]
    finally:
        server.stop()
    assert code == 0, (server.log_path.read_text(errors="replace")[-3000:], seconds)
    error = lines[-1]
    assert error["type"] == "error" and error["status"] == 503 and "shutting down" in error["detail"]
    # The transcript was flushed: the finished turn is saved, the debate marked stopped.
    from assistant.storage.transcripts import TranscriptStore

    store = TranscriptStore(tmp_path / "data" / "transcripts.sqlite3")
    debate_id = next(line["id"] for line in lines if line["type"] == "start")
    saved = store.get(debate_id)
    store.close()
    assert saved.status == "stopped" and [t.index for t in saved.turns] == kept


def test_closing_the_browser_tab_mid_answer_frees_the_model_within_2_s(settings) -> None:
    """The web app: Gradio closes the abandoned event's generator; that must reach the token loop."""
    from playwright.sync_api import sync_playwright

    from assistant.server.service import Service
    from tests.servers import serve_app
    from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, _open
    from ui import create_app

    # A long answer, so that an abandoned one would keep the model for many seconds more.
    service = Service(settings.model_copy(update={"llm_max_tokens": 200}))
    service.library.ingest([str(ARTICLES / "pro_engagement.txt"), str(ARTICLES / "skeptic.txt")])
    with serve_app(create_app(service)) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page, _ = _open(browser, url)
            page.locator("#question textarea").fill("Summarise what the articles say about the Harbor Accord and the inspectors.")
            page.locator("#ask-button").click()
            # Mid-answer: some generated words are on screen (not the placeholder, a queue note, or
            # the sources panel that is shown while the model still reads them).
            page.wait_for_function(
                """() => {
                    const bots = document.querySelectorAll('[data-testid="bot"]');
                    const text = bots.length ? bots[bots.length - 1].innerText.trim() : '';
                    const answer = text.split('Sources found')[0].trim();
                    return !answer.startsWith('Queued') && !answer.startsWith('Reading the sources')
                        && answer.split(/\\s+/).length >= 3;
                }""",
                timeout=300_000,
            )
            assert _queue(url)["running"]
            page.close()
            closed = time.monotonic()
            queue = _wait_queue(url, {"running": False}, 2.0)
            freed_after_s = time.monotonic() - closed
        finally:
            browser.close()
        assert not queue["running"], f"the model was still busy {freed_after_s:.1f} s after the tab closed"
        assert httpx.post(f"{url}/api/ask", json={"question": QUESTION}, timeout=300).status_code == 200
    service.close()


def test_closing_the_tab_mid_debate_stops_it_saved_as_stopped(settings) -> None:
    from playwright.sync_api import sync_playwright

    from assistant.server.service import Service
    from tests.servers import serve_app
    from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, _open
    from ui import create_app

    service = Service(settings.model_copy(update={"debate_turn_max_tokens": 120, "debate_rounds": 0}))
    service.library.ingest([str(ARTICLES / "pro_engagement.txt"), str(ARTICLES / "skeptic.txt")])
    with serve_app(create_app(service)) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page, _ = _open(browser, url)
            page.get_by_role("tab", name="Debate").click()
            page.locator("#motion textarea").fill(MOTION)
            page.locator("#start-debate").click()
            # The first speaker's cards are on screen: the debate is under way.
            page.wait_for_function(
                "(document.querySelector('#transcript .turn .turn-body')?.innerText || '').trim().split(/\\s+/).length >= 3",
                timeout=300_000,
            )
            page.close()
            # A card turn may be reading its prompt (one llama.cpp call): the stop lands at its first token.
            queue = _wait_queue(url, {"running": False}, 60.0)
        finally:
            browser.close()
        assert not queue["running"]
        [(debate_id, _, _, status, _)] = service.transcripts.list()
    assert status == "stopped"  # not "failed", and not left "running"
    service.close()


def test_with_prefill_steps_a_stop_lands_while_the_prompt_is_still_read(settings) -> None:
    """``llm_prefill_step_tokens``: the prompt is read in steps with a stop check between them, and
    the answer is the same as when it is read in one step."""
    from langchain_core.messages import HumanMessage, SystemMessage

    from assistant.core.cancel import GenerationStopped, StopSignal, stop_signal_installed
    from assistant.models.llm import make_chat_model

    text = (ARTICLES / "pro_engagement.txt").read_text()[:2500]
    messages = [SystemMessage(f"Sources:\n{text}"), HumanMessage("What crossed the border? Answer in one sentence.")]
    stepped = make_chat_model(settings.model_copy(update={"llm_prefill_step_tokens": 16, "llm_max_tokens": 12}))
    _reset(stepped)
    signal = StopSignal()
    threading.Timer(1.0, signal.stop, ["the client went away"]).start()
    pieces: list[str] = []
    with stop_signal_installed(signal), pytest.raises(GenerationStopped):
        for chunk in stepped.stream(messages):
            pieces.append(chunk.content)
    assert pieces == []  # stopped before the first token: the prompt was still being read
    whole = make_chat_model(settings.model_copy(update={"llm_max_tokens": 12}))
    _reset(whole)
    assert stepped.invoke(messages).content == whole.invoke(messages).content


def _reset(chat_model) -> None:
    """Empty the shared model's context, under its lock: a generation an earlier test abandoned may
    still be unwinding on a worker thread (it stops at its next token), and llama.cpp must not be
    reset under it."""
    llama, lock = chat_model._llama()
    with lock:
        llama.reset()
