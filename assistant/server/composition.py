"""The composition root: the one place that wires the library, retriever, model and chains together.

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
"""

from __future__ import annotations

import threading
from functools import cached_property

from langchain_core.language_models import BaseChatModel

from assistant.chains.debate import DebateChain
from assistant.storage.library import Library
from assistant.chains.qa import AskChain
from assistant.retrieval.retrieval import HybridRetriever
from assistant.core.settings import Settings
from assistant.chains.spar import SparChain
from assistant.storage.transcripts import TranscriptStore
from assistant.checks.verify import Verifier


class Components:
    """The wired objects of one configuration. Build it with ``build``."""

    def __init__(self, settings: Settings, library: Library | None = None, chat_model: BaseChatModel | None = None) -> None:
        self.settings = settings
        self.library = library if library is not None else Library(settings)
        self._chat_model = chat_model
        self._model_lock = threading.Lock()

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
        self.library.close()


def build(settings: Settings, *, library: Library | None = None, chat_model: BaseChatModel | None = None) -> Components:
    """The components of ``settings``.

    ``library``: one already opened (the CLI's, checked to be non-empty); ``chat_model``: one
    already loaded, shared by several configurations (the benchmarks), or a model that needs no
    weights (the CLI's extractive model for listing spar sessions).
    """
    return Components(settings, library, chat_model)
