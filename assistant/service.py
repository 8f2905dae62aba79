"""What one server process shares between the UI and the REST API: library, chains, one LLM.

There is one chat model per process (a llama.cpp context generates one reply at a time and
already uses every core), so generations go through ``GenerationQueue``: concurrent users
wait their turn instead of crashing or oversubscribing the CPU, and can be told how many
requests are ahead of them. Retrieval, listing and ingest do not wait for the queue.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

from assistant.debate import DebateChain
from assistant.library import Library
from assistant.qa import AskChain
from assistant.retrieval import HybridRetriever
from assistant.settings import Settings
from assistant.transcripts import TranscriptStore

T = TypeVar("T")


@dataclass(frozen=True)
class Queued:
    """Yielded before a queued generation starts: how many requests are ahead."""

    ahead: int


class GenerationQueue:
    """First come, first served access to the one shared model."""

    def __init__(self) -> None:
        self._turn = threading.Lock()
        self._count = threading.Lock()
        self._waiting = 0
        self._running = False

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def running(self) -> bool:
        return self._running

    def run(self, make_stream: Callable[[], Iterator[T]]) -> Iterator[T | Queued]:
        """Yield ``Queued`` if others are ahead, then the items of ``make_stream()`` once it is our turn."""
        with self._count:
            ahead = self._waiting + (1 if self._running else 0)
            self._waiting += 1
        entered = False
        try:
            if ahead:
                yield Queued(ahead)
            self._turn.acquire()
            entered = True
            with self._count:
                self._waiting -= 1
                self._running = True
            yield from make_stream()
        finally:
            if entered:
                self._running = False
                self._turn.release()
            else:
                with self._count:
                    self._waiting -= 1


class Service:
    """The shared objects of one server process, created lazily (the model loads on first use)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.library = Library(self.settings)
        self.queue = GenerationQueue()
        self._lock = threading.Lock()

    @cached_property
    def retriever(self) -> HybridRetriever:
        return HybridRetriever(self.library)

    @cached_property
    def transcripts(self) -> TranscriptStore:
        return TranscriptStore(self.settings.transcripts_path)

    @cached_property
    def chat_model(self):
        from assistant.llm import make_chat_model

        with self._lock:
            return make_chat_model(self.settings)

    @property
    def ask_chain(self) -> AskChain:
        return AskChain(self.retriever, self.chat_model)

    @property
    def debate_chain(self) -> DebateChain:
        return DebateChain(self.retriever, self.chat_model, self.transcripts)

    def close(self) -> None:
        self.library.close()
