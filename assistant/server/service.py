"""The composition root, and what one server process shares between the UI and the REST API.

``build(settings)`` is the one place that wires the library, retriever, model and chains together.

The server (``Service``), the CLI, the eval runner and the benchmarks each used to build their
own chains from parts, so a change to how a chain is made (a new dependency, a verifier) had to
be repeated in nine places and could be forgotten in one. Now each asks ``build(settings)`` for
a ``Components`` and takes its chains from it; a test holds that no other module constructs a
chain.

What is made once and what per use:
- the library, the retriever, the transcript store and the chat model are made once (the model
  on first use, under a lock: loading it twice would hold its weights twice);
- an ask or a debate chain is made per use (``ask_chain()``, ``debate_chain()``): they are cheap,
  and what they remember (the verifier they built, the side check's answers per motion) then
  lives as long as one request, as it always has;
- a spar chain is per use too, but a server keeps one (``Service.spar_chain``): it holds the
  claim verifier and, with ``spar_verifier = rules+llm``, its judge loaded between turns.

``Service`` is what one server process shares: the components, and the ``GenerationQueue``
(``assistant.server.generation_queue``) that every generation goes through.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from functools import cached_property

from langchain_core.language_models import BaseChatModel

from assistant.core.cancel import SHUTTING_DOWN, GenerationStopped
from assistant.chains.debate import DebateChain
from assistant.storage.library import Library
from assistant.chains.qa import AskChain
from assistant.retrieval.retrieval import HybridRetriever
from assistant.core.settings import Settings
from assistant.chains.spar import SparChain
from assistant.server.generation_queue import GenerationQueue, ShuttingDown
from assistant.storage.transcripts import TranscriptStore
from assistant.checks.verify import Verifier


class Components:
    """The wired objects of one configuration. Build it with ``build``."""

    def __init__(self, settings: Settings, library: Library | None = None, chat_model: BaseChatModel | None = None) -> None:
        self.settings = settings
        if library is not None:
            self.__dict__["library"] = library
        self._chat_model = chat_model
        self._model_lock = threading.Lock()

    @cached_property
    def library(self) -> Library:
        """The library, opened on first use: listing saved debates needs no vector store."""
        return Library(self.settings)

    @cached_property
    def retriever(self) -> HybridRetriever:
        return HybridRetriever(self.library, self.settings)

    @cached_property
    def transcripts(self) -> TranscriptStore:
        return TranscriptStore.from_settings(self.settings)

    @property
    def chat_model(self) -> BaseChatModel:
        """The configured chat model (``llm_backend``), loaded on first use."""
        with self._model_lock:
            if self._chat_model is None:
                from assistant.models.llm import make_chat_model

                self._chat_model = make_chat_model(self.settings)
            return self._chat_model

    @chat_model.setter
    def chat_model(self, model: BaseChatModel) -> None:
        """Use ``model`` from now on (a test's scripted model, a benchmark's shared one)."""
        with self._model_lock:
            self._chat_model = model

    def ask_chain(self) -> AskChain:
        return AskChain(self.retriever, self.chat_model)

    def debate_chain(self) -> DebateChain:
        return DebateChain(self.retriever, self.chat_model, self.transcripts)

    def spar_chain(self, verifier: Verifier | None = None) -> SparChain:
        """A spar chain; ``verifier`` in place of the one ``spar_verifier`` configures (a benchmark's)."""
        return SparChain(self.debate_chain(), verifier)

    def close(self) -> None:
        """Close the stores opened so far: the transcripts are flushed (a debate still unfinished is
        saved as stopped), then the library."""
        if "transcripts" in self.__dict__:
            self.transcripts.close()
        if "library" in self.__dict__:
            self.library.close()


def build(settings: Settings, *, library: Library | None = None, chat_model: BaseChatModel | None = None) -> Components:
    """The components of ``settings``.

    ``library``: one already opened (the CLI's, checked to be non-empty); ``chat_model``: one
    already loaded, shared by several configurations (the benchmarks), or a model that needs no
    weights (the CLI's extractive model for listing spar sessions).
    """
    return Components(settings, library, chat_model)


class Service:
    """The shared objects of one server process, from the composition root (the model loads on first use)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.components = build(self.settings)
        self.library = self.components.library
        self.queue = GenerationQueue(self.settings.queue_timeout_s, self.settings.generation_timeout_s,
                                     self.settings.generation_slots)
        self._stop_deadline: float | None = None

    @property
    def retriever(self) -> HybridRetriever:
        return self.components.retriever

    @property
    def transcripts(self) -> TranscriptStore:
        return self.components.transcripts

    @property
    def chat_model(self) -> BaseChatModel:
        return self.components.chat_model

    @chat_model.setter
    def chat_model(self, model: BaseChatModel) -> None:
        self.components.chat_model = model

    @property
    def ask_chain(self) -> AskChain:
        return self.components.ask_chain()

    @property
    def debate_chain(self) -> DebateChain:
        return self.components.debate_chain()

    @cached_property
    def spar_chain(self) -> SparChain:
        """One per process: it keeps the claim verifier (and its judge model, if configured) loaded."""
        return self.components.spar_chain()

    def suggest_stances_later(self, doc_ids: list[str]) -> threading.Thread | None:
        """Have the model suggest a stance for the documents just added, after the ingest has returned.

        An upload must never wait on the model (a debate holds it for minutes), so each suggestion
        is a job in the queue like any other, taking the model in its turn; it shows in the
        document list (``suggested_stance``) once it has run. Returns the thread that queues the
        jobs, or None when there is nothing to ask.
        """
        pending = self.library.stances_to_suggest(doc_ids)
        if not pending:
            return None
        thread = threading.Thread(target=self._suggest_in_turn, args=(pending,), name="stance-suggestions", daemon=True)
        thread.start()
        return thread

    def _suggest_in_turn(self, doc_ids: list[str]) -> None:
        """One job per document, each queued once the last has run: a folder of fifty articles does
        not keep the model from the people who asked after it. Nobody waits for these jobs, so an
        error is reported here, on the server's log, and the documents simply stay unsuggested."""
        for doc_id in doc_ids:
            try:
                for _ in self.queue.submit(lambda d=doc_id: self._suggest_stance(d)).events():
                    pass
            except (ShuttingDown, GenerationStopped):
                return
            except Exception as exc:
                print(f"stance suggestions stopped ({type(exc).__name__}: {exc}); the documents stay without one",
                      file=sys.stderr, flush=True)  # fmt: skip
                return

    def _suggest_stance(self, doc_id: str) -> Iterator[dict[str, str]]:
        from assistant.chains.stance import suggest_stances

        yield suggest_stances(self.library, [doc_id], self.chat_model)

    def stop_generations(self) -> bool:
        """Shutdown, first step: refuse new generations, stop the running and queued ones, and wait
        until they have saved what they had, at most ``shutdown_grace_s`` after the first call.
        False if one is still inside a step that cannot be interrupted (a llama.cpp call)."""
        if self._stop_deadline is None:
            self._stop_deadline = time.monotonic() + self.settings.shutdown_grace_s
        self.queue.close(SHUTTING_DOWN)
        return self.queue.drain(max(0.0, self._stop_deadline - time.monotonic()))

    def close(self) -> bool:
        """Stop generations, then close the stores: the transcripts are flushed, and a debate still
        unfinished is saved as stopped. False if a generation had not ended by the deadline."""
        stopped = self.stop_generations()
        self.components.close()
        return stopped
