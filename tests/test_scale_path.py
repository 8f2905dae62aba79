"""The scale path is configuration only: a Chroma server and an OpenAI-compatible LLM server.

Both servers are real processes on 127.0.0.1: ``chroma run`` from the chromadb package and
``llama_cpp.server`` serving the same packaged GGUF the embedded backend loads. The assistant
is pointed at them with settings alone (``store_mode="http"``, ``llm_backend="openai"``), then
ingests, answers and debates exactly as it does embedded. The checks look at the servers
themselves (a separate ``chromadb.HttpClient``), so a silent fallback to the embedded store
would fail them. Generations are kept short: this runs on two shared CPU cores.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import chromadb
import pytest
from chromadb.config import Settings as ChromaSettings

from assistant.chains.debate import DebateChain
from assistant.storage.library import Library
from assistant.models.llm import make_chat_model
from assistant.chains.qa import AskChain
from assistant.retrieval.retrieval import HybridRetriever
from assistant.core.settings import Settings
from assistant.core.debate_record import COMPLETE
from assistant.storage.transcripts import TranscriptStore
from ingest.pipeline import ADDED
from tests.conftest import ARTICLES
from tests.servers import LLM_ALIAS, LLM_API_KEY, ServerProcess, chroma_command, chroma_ready_url, free_port, llama_cpp_server

pytestmark = pytest.mark.slow

MOTION = "Should the government offer Arandia a non-aggression pledge before full disarmament?"
ARTICLE_TITLES = {
    "Why Talking to Arandia Works",
    "The Limits of Engagement with Arandia",
    "A Beginner's Guide to Balcony Composting",
    "How Three River Towns Brought Back the Salmon",
}


def isolated_settings(**values) -> Settings:
    """Settings from explicit values only: module fixtures run before the per-test env isolation."""
    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("DA_")]:
            patch.delenv(key)
        patch.setenv("DA_CONFIG_FILE", str(Path(values["data_dir"]) / "absent.toml"))
        return Settings(**values)


@pytest.fixture(scope="module")
def chroma_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    folder = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    server = ServerProcess(chroma_command(folder / "db", port), chroma_ready_url(port), log_path=folder / "server.log")
    print(f"\nchroma server ready in {server.start():.1f} s")
    try:
        yield port
    finally:
        server.stop()


@pytest.fixture(scope="module")
def llm_base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with llama_cpp_server(tmp_path_factory.mktemp("llm-server") / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def settings_for_servers(
    chroma_port: int, llm_base_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    return isolated_settings(
        data_dir=tmp_path_factory.mktemp("scaled") / "data",
        store_mode="http", chroma_host="127.0.0.1", chroma_port=chroma_port, chroma_retry_s=5,
        llm_backend="openai", openai_base_url=llm_base_url, openai_model=LLM_ALIAS, openai_api_key=LLM_API_KEY,
        retrieval_k=3, llm_max_tokens=80, debate_turn_max_tokens=160, debate_k_per_side=2,
    )  # fmt: skip


@pytest.fixture(scope="module")
def library(settings_for_servers: Settings) -> Iterator[Library]:
    library = Library(settings_for_servers)
    started = time.perf_counter()
    results = library.ingest([str(ARTICLES)])
    elapsed = time.perf_counter() - started
    print(f"\ningested {len(library.registry.passages())} passages into the server in {elapsed:.1f} s")
    assert [r.status for r in results] == [ADDED] * 4, [(r.item, r.message) for r in results]
    yield library
    library.close()


def server_collection(settings: Settings) -> chromadb.Collection:
    """The collection as another client of the same server sees it (not through the assistant)."""
    client = chromadb.HttpClient(
        host=settings.chroma_host, port=settings.chroma_port, settings=ChromaSettings(anonymized_telemetry=False)
    )
    return client.get_collection(settings.collection)


def test_the_passages_live_in_the_chroma_server(library: Library, settings_for_servers: Settings) -> None:
    assert {d.title for d in library.documents()} == ARTICLE_TITLES
    registry_ids = {p.id for p in library.registry.passages()}
    collection = server_collection(settings_for_servers)
    assert collection.count() == len(registry_ids) == sum(d.n_passages for d in library.documents()) > 0
    assert set(collection.get(include=[])["ids"]) == registry_ids
    assert not settings_for_servers.chroma_path.exists()  # nothing went to an embedded store in the data dir


def test_ask_through_both_servers(library: Library, settings_for_servers: Settings) -> None:
    chain = AskChain(HybridRetriever(library), make_chat_model(settings_for_servers))
    answer = chain.ask("Which observatory published imagery of the hall at Dunmore?")
    print(f"\nask: {answer.timing.output_tokens} tokens, total {answer.timing.total_s:.1f} s: {answer.text!r}")
    assert not answer.declined, answer.raw_text
    assert answer.citations
    assert any("Corvel Observatory" in c.passage.text for c in answer.citations)
    for cited in answer.citations:  # each citation is a real passage, with the registry's text and offsets
        registered = library.passage(cited.passage.id)
        assert registered is not None and registered.text == cited.passage.text
        assert library.registry.text(registered.doc_id)[registered.start : registered.end] == registered.text


def test_short_debate_through_both_servers(library: Library, settings_for_servers: Settings) -> None:
    chain = DebateChain(
        HybridRetriever(library),
        make_chat_model(settings_for_servers),
        TranscriptStore(settings_for_servers.transcripts_database),
    )
    started = time.perf_counter()
    debate = chain.run(MOTION, rounds=0)
    print(f"\ndebate: 3 turns in {time.perf_counter() - started:.1f} s")
    assert debate.status == COMPLETE
    assert [(t.role, t.kind) for t in debate.turns] == [
        ("advocate", "opening"), ("skeptic", "opening"), ("moderator", "summary"),
    ]  # fmt: skip
    assert all(t.raw_text.strip() for t in debate.turns if t.cards)  # every card turn was generated by the server
    server_ids = set(server_collection(settings_for_servers).get(include=[])["ids"])
    assert debate.sources and {s.passage.id for s in debate.sources} <= server_ids
    grounded = [t for t in debate.turns if not t.no_material]
    assert grounded, [t.raw_text for t in debate.turns]
    numbers = {s.number for s in debate.sources}
    assert all(t.cited and set(t.cited) <= numbers for t in grounded)
    saved = TranscriptStore(settings_for_servers.transcripts_database).get(debate.id)
    assert saved.status == COMPLETE and len(saved.turns) == 3


def test_the_token_limit_reaches_the_server(settings_for_servers: Settings) -> None:
    """Both the configured limit and a per-call one (debate turns) cap what the server generates."""
    limited = settings_for_servers.model_copy(update={"llm_max_tokens": 4})
    prompt = "List the seven days of the week, separated by commas."
    reply = make_chat_model(limited).invoke(prompt)
    assert reply.usage_metadata["output_tokens"] <= 4, reply.content
    reply = make_chat_model(settings_for_servers).invoke(prompt, max_tokens=6)
    assert reply.usage_metadata["output_tokens"] <= 6, reply.content
