"""Uploads and ingest never wait on the model (issue 32, failure 9).

An upload took 12 s during a debate against 2.2 s idle: after storing the documents it asked the
model for a stance suggestion, outside the queue, and so waited on the model's lock for the
debate's turn to end. Here a scripted model plays llama.cpp (one generation at a time, under the
model's own lock) and a job in the queue holds it, the way a debate does; the upload must
return while that job is still running, through each door, and the suggestion still comes later,
as a queued job of its own. Only the order of events is asserted, never a duration.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import BaseMessage, HumanMessage

from assistant.server.service import Service
from assistant.core.settings import Settings
from tests.conftest import ARTICLES
from tests.fakes import ScriptedChatModel
from tests.servers import serve_app

FALLBACK_S = 60.0  # only so that a broken build fails instead of hanging: never reached when it works
DEBATE_TURN = "DEBATE TURN"


class LockedModel(ScriptedChatModel):
    """The scripted model behind one lock, as ``LocalLlamaChatModel`` is behind its llama.cpp context's."""

    lock: Any

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any):
        with self.lock:
            return super()._generate(messages, *args, **kwargs)

    def _stream(self, messages: list[BaseMessage], *args: Any, **kwargs: Any):
        with self.lock:
            yield from super()._stream(messages, *args, **kwargs)


class BusyModel:
    """A scripted model and a queued job that holds it until the test lets go; ``events`` is the
    order in which things ended, ``asked`` what the model was asked, in order."""

    def __init__(self) -> None:
        self.inside = threading.Event()
        self.release = threading.Event()
        self.events: list[str] = []
        self.asked: list[str] = []
        self.model = LockedModel(rule=self._reply, calls=[], lock=threading.Lock())

    def _reply(self, messages: list[BaseMessage]) -> str:
        prompt = str(messages[-1].content)
        if DEBATE_TURN in prompt:
            self.asked.append("debate")
            self.inside.set()
            self.release.wait(FALLBACK_S)
            return "A turn."
        self.asked.append("stance")
        return '{"stance": "against"}'

    def debate(self) -> Iterator[str]:
        yield str(self.model.invoke([HumanMessage(DEBATE_TURN)]).content)
        self.events.append("model job finished")

    def hold(self, service: Service) -> None:
        """Queue the job that takes the model, and return once it is generating."""
        service.queue.submit(self.debate)
        assert self.inside.wait(FALLBACK_S), "the model job never started"


@pytest.fixture
def busy(monkeypatch: pytest.MonkeyPatch) -> BusyModel:
    busy = BusyModel()
    monkeypatch.setattr("assistant.models.llm.make_chat_model", lambda settings: busy.model)  # every door's model
    return busy


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    settings = Settings(data_dir=tmp_path / "data", llm_backend="llamacpp", stance_suggestions=True)
    service = Service(settings)
    yield service
    service.close()


def _eventually(check: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + FALLBACK_S
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _rest_upload(url: str) -> None:
    files = {"files": ("skeptic.txt", (ARTICLES / "skeptic.txt").read_bytes(), "text/plain")}
    response = httpx.post(f"{url}/api/documents", files=files, timeout=FALLBACK_S * 2)
    [result] = response.json()
    assert result["status"] == "added", result


def _ui_upload(url: str) -> None:
    text = (ARTICLES / "skeptic.txt").read_text()
    with httpx.Client(base_url=url, timeout=FALLBACK_S * 2) as client:
        started = client.post("/gradio_api/call/do_ingest", json={"data": [None, "", text, "Limits", "unknown"]})
        assert started.status_code == 200, started.text
        result = client.get(f"/gradio_api/call/do_ingest/{started.json()['event_id']}").text
    assert "event: complete" in result and "added" in result, result


@pytest.mark.parametrize("upload", [_rest_upload, _ui_upload], ids=["rest", "web-ui"])
def test_an_upload_returns_while_the_model_is_busy_and_the_suggestion_follows(
    service: Service, busy: BusyModel, upload: Callable[[str], None]
) -> None:
    from ui import create_app

    with serve_app(create_app(service)) as url:
        busy.hold(service)
        returned = threading.Event()

        def add() -> None:
            upload(url)
            busy.events.append("upload returned")
            returned.set()

        adding = threading.Thread(target=add)
        adding.start()
        returned.wait(FALLBACK_S)  # set at once when uploads do not wait; otherwise the job ends first
        busy.release.set()
        adding.join(FALLBACK_S * 2)
        assert _eventually(lambda: len(busy.events) == 2)
        assert busy.events == ["upload returned", "model job finished"]

        (doc,) = service.library.documents()
        assert _eventually(lambda: service.library.document(doc.id).suggested_stance == "skeptic")
        assert busy.asked == ["debate", "stance"]  # the suggestion waited for its turn
        assert service.library.document(doc.id).stance == "unknown"  # a suggestion only


def test_the_library_ingest_never_asks_the_model(service: Service, busy: BusyModel) -> None:
    busy.hold(service)
    [result] = service.library.ingest([str(ARTICLES / "skeptic.txt")])
    busy.events.append("ingest returned")
    busy.release.set()
    assert result.status == "added"
    assert _eventually(lambda: busy.events == ["ingest returned", "model job finished"])
    assert busy.asked == ["debate"]


def test_each_suggestion_is_its_own_job_so_later_requests_are_not_kept_waiting(
    service: Service, busy: BusyModel
) -> None:
    """Two documents: a request that arrives while the first is being classified runs before the second."""
    results = service.library.ingest([str(ARTICLES / "skeptic.txt"), str(ARTICLES / "pro_engagement.txt")])
    doc_ids = [r.doc_id for r in results]
    busy.hold(service)
    thread = service.suggest_stances_later(doc_ids)
    assert thread is not None
    assert _eventually(lambda: service.queue.waiting == 1)  # the first suggestion, behind the model job

    def answer() -> Iterator[str]:  # a request arriving meanwhile
        busy.asked.append("user")
        yield "an answer"

    user = service.queue.submit(answer)
    busy.release.set()
    assert list(user.events(timeout_s=FALLBACK_S))[-1] == "an answer"
    thread.join(FALLBACK_S)
    assert busy.asked == ["debate", "stance", "user", "stance"]
    assert all(service.library.document(d).suggested_stance == "skeptic" for d in doc_ids)


def test_nothing_is_queued_without_a_model_or_with_suggestions_off(tmp_path: Path) -> None:
    for n, update in enumerate(({"llm_backend": "extractive"}, {"stance_suggestions": False})):
        settings = Settings(data_dir=tmp_path / str(n), llm_backend="llamacpp", stance_suggestions=True)
        service = Service(settings.model_copy(update=update))
        try:
            [result] = service.library.ingest([str(ARTICLES / "skeptic.txt")])
            assert service.suggest_stances_later([result.doc_id]) is None
            assert (service.queue.running, service.queue.waiting) == (False, 0)
        finally:
            service.close()
