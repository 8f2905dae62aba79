"""The OpenAI-compatible backend against a real server: llama.cpp's own, on 127.0.0.1.

``llama_cpp.server`` serves the same packaged GGUF; the assistant reaches it only through
``langchain-openai`` with base_url/model/api key from the settings, as it would reach vLLM,
Ollama or a hosted endpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.chains.stance import suggest_stances
from assistant.server.service import build
from assistant.storage.library import Library
from assistant.models.llm import make_chat_model
from assistant.chains.qa import AskChain
from assistant.retrieval.retrieval import HybridRetriever
from assistant.core.settings import Settings
from tests.conftest import ARTICLES
from tests.servers import LLM_ALIAS, LLM_API_KEY, llama_cpp_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def openai_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with llama_cpp_server(tmp_path_factory.mktemp("openai-server") / "server.log") as url:
        yield url


def test_ask_through_an_openai_compatible_server(openai_server: str, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", llm_backend="openai", openai_base_url=openai_server,
        openai_model=LLM_ALIAS, openai_api_key=LLM_API_KEY, llm_max_tokens=90,
    )  # fmt: skip
    library = Library(settings)
    library.ingest([str(ARTICLES)])
    chain = AskChain(HybridRetriever(library), make_chat_model(settings))
    streamed = [p for p in chain.stream("Which observatory published imagery of the hall at Dunmore?")]
    answer = streamed[-1]
    assert sum(isinstance(p, str) for p in streamed) > 3  # the server's stream reached us piece by piece
    assert not answer.declined, answer.raw_text
    assert any("Corvel Observatory" in c.passage.text for c in answer.citations)
    assert answer.timing.output_tokens > 0


def test_a_wrong_api_key_is_a_clear_error(openai_server: str, tmp_path: Path) -> None:
    import openai

    settings = Settings(data_dir=tmp_path / "data", llm_backend="openai", openai_base_url=openai_server,
                        openai_api_key="wrong")  # fmt: skip
    with pytest.raises(openai.AuthenticationError):
        make_chat_model(settings).invoke("Say hello.")


def test_card_replies_follow_the_schema_through_the_server(openai_server: str, tmp_path: Path) -> None:
    """llama-cpp-python's server refuses ``json_schema``; the assistant asks again with json_object + schema."""
    from langchain_core.messages import HumanMessage

    from assistant.chains.cards import card_schema
    from assistant.models.structured import structured_reply

    settings = Settings(data_dir=tmp_path / "data", llm_backend="openai", openai_base_url=openai_server,
                        openai_model=LLM_ALIAS, openai_api_key=LLM_API_KEY)  # fmt: skip
    prompt = ("Evidence sentences:\n[1] The accord let 40,000 tonnes of grain cross the border.\n"
              "[2] A hotline defused two naval incidents.\n\nChoose 1 sentence and write a short tag for it. "
              'Reply as JSON: {"cards": [{"id": <sentence id>, "tag": "<your claim>"}]}')  # fmt: skip
    reply = structured_reply(make_chat_model(settings), [HumanMessage(prompt)], card_schema(2, 1), 60)
    assert reply.parsed is not None, reply.raw
    (card,) = reply.parsed["cards"]
    assert card["id"] in (1, 2) and card["tag"][:1].isupper(), reply.raw


def test_the_yes_no_judge_runs_on_the_server_model(openai_server: str, tmp_path: Path) -> None:
    """``verifier = rules+llm`` with ``llm_backend = openai``: the server's model is the judge (the
    question as chat messages, the reply under a Yes/No schema), so the scale path checks claims too."""
    from assistant.models.judge import ChatModelJudge
    from assistant.models.yes_no import support_question
    from assistant.chains.configured_checks import make_verifier

    settings = Settings(data_dir=tmp_path / "data", llm_backend="openai", openai_base_url=openai_server,
                        openai_model=LLM_ALIAS, openai_api_key=LLM_API_KEY, verifier="rules+llm")  # fmt: skip
    verifier = make_verifier(settings)
    assert isinstance(verifier.judge, ChatModelJudge)
    text = "A hotline installed under the accord was used twice in 2020 to defuse naval incidents near the Varn Strait."
    assert verifier.judge.yes(support_question("The hotline was used twice in 2020.", text, ""))
    assert not verifier.judge.yes(support_question("The hotline was never used.", text, ""))
    library = Library(settings)
    library.ingest([str(ARTICLES)])
    claim = "A hotline installed under the accord was used twice in 2020 to defuse naval incidents."
    verdict = verifier.verify(claim, HybridRetriever(library).retrieve(claim, 3))
    assert verdict.supported and verdict.stage == "llm", verdict


def test_the_server_model_suggests_stances(openai_server: str, tmp_path: Path) -> None:
    """Stance suggestions are asked of the served model too (under the same JSON schema as locally)."""
    settings = Settings(data_dir=tmp_path / "data", llm_backend="openai", openai_base_url=openai_server,
                        openai_model=LLM_ALIAS, openai_api_key=LLM_API_KEY, stance_suggestions=True)  # fmt: skip
    library = Library(settings)
    library.ingest([str(ARTICLES / "skeptic.txt")])
    (doc,) = library.documents()
    assert library.stances_to_suggest([doc.id]) == [doc.id]
    suggested = suggest_stances(library, [doc.id], build(settings, library=library).chat_model)
    assert set(suggested) == {doc.id} and suggested[doc.id] in {"advocate", "skeptic", "unknown"}
    assert library.document(doc.id).suggested_stance == suggested[doc.id]
