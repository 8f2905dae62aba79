"""The real local model (Qwen2.5 1.5B through llama.cpp) with short generations.

Includes LangChain's standard chat-model suites for ``LocalLlamaChatModel``. Features the
model does not have are switched off, each for a stated reason:
- tool calling and structured output: llama.cpp's generic chat template here does not
  produce tool calls; our chains never ask for them.
- JSON mode, image/audio/video/PDF inputs: not offered by this wrapper (text-only model).
- per-call model override: an instance is bound to one GGUF file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from assistant.storage.library import Library
from assistant.chains.debate import DebateChain
from assistant.models.judge import make_judge
from assistant.models.llm import LocalLlamaChatModel, make_chat_model
from assistant.models.model_files import resolve_gguf
from assistant.chains.qa import AskChain
from assistant.retrieval.retrieval import HybridRetriever
from assistant.core.settings import Settings
from assistant.storage.transcripts import TranscriptStore
from tests.conftest import ARTICLES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def model_path() -> str:
    """The packaged GGUF, assembled and verified (once per machine)."""
    return str(resolve_gguf(Settings()))


class _LocalModelSuite:
    """What both standard suites need to know about our model."""

    @property
    def chat_model_class(self) -> type[LocalLlamaChatModel]:
        return LocalLlamaChatModel

    @property
    def chat_model_params(self) -> dict:
        return {"model_path": str(resolve_gguf(Settings())), "n_ctx": 2048}

    @property
    def standard_chat_model_params(self) -> dict:
        # The suite's own max_tokens=100 would make every check a long generation on a CPU.
        return {**super().standard_chat_model_params, "max_tokens": 24}

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False

    @property
    def supports_json_mode(self) -> bool:
        return False

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def supports_model_override(self) -> bool:
        return False  # one GGUF file per instance; switching models per call would mean reloading


class TestLocalModelStandardUnit(_LocalModelSuite, ChatModelUnitTests):
    pass


class TestLocalModelStandardIntegration(_LocalModelSuite, ChatModelIntegrationTests):
    pass


@pytest.fixture(scope="module")
def local_library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    """The fixture articles, with settings for short generations on the default (local) backend."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("llm-data"), llm_max_tokens=90, debate_turn_max_tokens=110)
    library = Library(settings)
    library.ingest([str(ARTICLES)])
    return library


@pytest.fixture(scope="module")
def local_chain(local_library: Library) -> AskChain:
    return AskChain(HybridRetriever(local_library), make_chat_model(local_library.settings))


def test_answerable_question_cites_the_passage_that_holds_the_answer(local_chain: AskChain) -> None:
    answer = local_chain.ask("How much grain crossed the border under the Harbor Accord?")
    assert not answer.declined, answer.raw_text
    assert answer.invalid_citations == []
    assert any("40,000 tonnes" in c.passage.text for c in answer.citations), answer.raw_text
    assert "40,000" in answer.text
    assert answer.timing.first_token_ms is not None and answer.timing.output_tokens > 0


@pytest.mark.parametrize(
    "question", ["Who won the Arandian presidential election of 2022?", "What did the 2019 Hanoi summit produce?"]
)
def test_unanswerable_question_is_declined(local_chain: AskChain, question: str) -> None:
    answer = local_chain.ask(question)
    assert answer.declined, answer.raw_text
    # Quote-first (the default) may list the nearest sentences after the decline, marked as related only.
    rest = answer.text.removeprefix("The sources don't say.").strip()
    assert answer.text.startswith("The sources don't say.") and (not rest or rest.startswith("Related, but not an answer:"))


def test_streaming_shows_text_before_the_answer_is_complete(local_chain: AskChain) -> None:
    pieces = list(local_chain.stream("Which observatory published the satellite imagery of Dunmore?"))
    texts = [p for p in pieces if isinstance(p, str)]
    assert len(texts) > 3  # streamed token by token, not in one block
    final = pieces[-1]
    assert "Corvel" in final.text and final.citations, final.raw_text


def test_prompt_prefix_is_reused_between_calls(model_path: str) -> None:
    """Same system prompt twice: llama.cpp re-evaluates only the new tail the second time."""
    model = LocalLlamaChatModel(model_path=model_path, max_tokens=4, n_ctx=2048)
    system = SystemMessage("You answer briefly. " + "Background: the river towns trade salt and wool. " * 30)
    first = model.invoke([system, HumanMessage("Name one good traded.")])
    second = model.invoke([system, HumanMessage("Name another good traded.")])
    assert first.usage_metadata["input_tokens"] > 300
    assert second.response_metadata["reused_prompt_tokens"] > 300


def test_a_system_prompt_is_read_once_per_process_even_after_other_prompts(model_path: str) -> None:
    """The state of a system message is saved when first read and put back when another prompt
    ran in between (``assistant.models.prefix_cache``); the answer is the one a fresh read gives."""
    model = LocalLlamaChatModel(model_path=model_path, max_tokens=6, n_ctx=2048)
    system = SystemMessage("You answer in three words. " + "Background: the hill towns trade copper and rye. " * 30)
    question = HumanMessage("Name one good traded.")
    first = model.invoke([system, question])
    model.invoke([SystemMessage("You are a poet."), HumanMessage("Say hello.")])  # the context now holds another prompt
    again = model.invoke([system, question])
    assert first.response_metadata["reused_prompt_tokens"] < 300 < again.response_metadata["reused_prompt_tokens"]
    assert again.content == first.content


def test_a_debate_is_argued_with_well_formed_cards_quoting_exact_sentences(local_library: Library) -> None:
    """Real model under the cards grammar: every card quotes an exact sentence of its own side's article."""
    for doc in local_library.documents():
        name = Path(doc.source).name
        local_library.set_stance(doc.id, {"pro_engagement.txt": "advocate", "skeptic.txt": "skeptic"}.get(name, "unknown"))
    settings = local_library.settings
    chain = DebateChain(HybridRetriever(local_library), make_chat_model(settings), TranscriptStore(settings.transcripts_database))
    debate = chain.run("Should the government offer Arandia a non-aggression pledge before full disarmament?", rounds=1,
                       criterion="impact on regional security")  # fmt: skip
    sources = {s.number: s for s in debate.sources}
    advocate, skeptic, *rebuttals, judge = debate.turns
    report = "\n\n".join(f"{t.speaker}: {t.raw_text}\n{t.text}" for t in debate.turns)
    for turn in (advocate, skeptic):
        assert turn.raw_text and len(turn.cards) == 2, report  # the model's JSON parsed
        for card in turn.cards:
            assert sources[card.source].text[card.start : card.end] == card.quote, report
            assert sources[card.source].stance in (turn.role, "unknown"), report
            assert card.tag and len(card.tag.split()) <= 24, report
    assert len({c.quote for t in (advocate, skeptic) for c in t.cards}) == 4, report
    # The ballot: each clash held by one of its two cards, the decisive clash one of them, a decision.
    labels = {c.label for t in debate.turns for c in t.cards}
    assert all(c["winner"] in (c["argument"], c["answer"]) and {c["argument"], c["answer"]} <= labels for c in judge.clashes)
    ballot = judge.ballot
    assert ballot["criterion"] == "impact on regional security" and ballot["decision"] in ("advocate", "skeptic"), report
    assert ballot["decisive"] is None or 1 <= ballot["decisive"] <= len(judge.clashes), report
    assert judge.text.splitlines()[-1].startswith("Decision: "), report
    assert advocate.timing["prompt_tokens"] > 0 and advocate.timing["first_token_ms"] > 0


def test_follow_up_question_is_answered_in_context(local_chain: AskChain) -> None:
    history = [("Which agreement collapsed in 2011?", "The Copper Lake agreement collapsed after eight months [1].")]
    answer = local_chain.ask("Why did it collapse?", history)
    assert "Copper Lake" in answer.standalone_question, answer.standalone_question
    assert not answer.declined, answer.raw_text
    assert any("expelled" in c.passage.text for c in answer.citations), answer.raw_text


def test_the_side_check_reads_the_real_models_lean_once_per_sentence_and_offers_what_it_does_not_place_opposite() -> None:
    """The real model's lean on two fixture sentences, remembered, and what ``SideSorter.keep`` then
    offers each side. The plainly pro-talks sentence is never placed against talks, nor the plainly
    anti-talks one for them: decoded, the model answered "against" to both (and to three more of
    either kind on this motion); read as a lean beyond the motion's baseline it places the first
    for talks and the second nowhere."""
    from assistant.chains.cards import Candidate
    from assistant.core.passage import Passage
    from assistant.chains.side_check import ANSWERS, SideSorter
    from assistant.core.text import sentence_spans

    motion = "Should the government offer Arandia a non-aggression pledge before full disarmament?"
    text = ("Every serious attempt to talk with Arandia has produced something concrete. "
            "Talks have repeatedly bought time for weapons work.")  # fmt: skip
    settings = Settings()
    sorter = SideSorter(make_chat_model(settings), make_judge(settings))
    talks_work, talks_fail = (s.text for s in sentence_spans(text))
    answers = {sentence: sorter.side_of(motion, sentence) for sentence in (talks_work, talks_fail)}
    assert set(answers.values()) <= set(ANSWERS) and answers[talks_fail] != "for" and answers[talks_work] != "against", answers
    assert sorter.knows(motion, talks_work) and sorter.knows(motion, talks_fail)
    passage = Passage(id="d-0000", doc_id="d", index=0, text=text, start=0, end=len(text), title="t", source="s")
    candidates = [Candidate(1, passage, s) for s in sentence_spans(text)]
    for role, opposite in (("advocate", "against"), ("skeptic", "for")):
        kept, set_aside = sorter.keep(motion, role, candidates, 2, 0)  # every answer remembered: no new question
        assert [c.sentence.text for c in kept] == [t for t, side in answers.items() if side != opposite]
        assert set_aside == sum(side == opposite for side in answers.values())


def test_the_judge_reads_next_word_probabilities_from_the_real_model() -> None:
    """``LlamaJudge.first_word_logprobs``: log-probabilities over the words asked (they sum to 1),
    higher for Yes where the statement repeats the text and for No where it denies it; words
    sharing a first token are refused."""
    import math

    from assistant.models.yes_no import JUDGE_SYSTEM, YesNo

    judge = make_judge(Settings())

    def question(statement: str) -> YesNo:
        return YesNo(JUDGE_SYSTEM, f'Text: "The harbour froze in 1911."\nStatement: "{statement}"\n'
                                   "Is the statement true according to the text? Answer Yes or No.")  # fmt: skip

    yes, no = judge.first_word_logprobs(question("The harbour froze in 1911."), "", ("Yes", "No"))
    assert math.isclose(math.exp(yes) + math.exp(no), 1.0, rel_tol=1e-6) and yes > no
    yes, no = judge.first_word_logprobs(question("The harbour never froze."), "", ("Yes", "No"))
    assert no > yes
    with pytest.raises(ValueError, match="different tokens"):
        judge.first_word_logprobs(question("x"), "", ("against", "against"))


def test_the_real_judge_accepts_an_answer_the_text_gives_and_refuses_one_about_someone_else() -> None:
    """``YesNoJudge.answers`` on the local model, by the odds of Yes: the text's answer to the
    question stands; a true phrase from the same text that answers about another person, and a
    sentence of the text that does not say what was asked, fall below ``ANSWER_ODDS``."""
    from assistant.models.yes_no import ANSWER_ODDS, answer_question

    judge = make_judge(Settings())
    text = ("Mira Castell, a senior fellow at the Institute for Northern Affairs, wrote the essay. "
            "The envoy Tomas Brel had studied at Varn University before joining the talks.")  # fmt: skip
    question = "At which institute does Mira Castell work?"
    assert judge.answers(question, "the Institute for Northern Affairs", text)
    odds = {a: judge.yes_odds(answer_question(question, a, text)) for a in
            ("the Institute for Northern Affairs", "Varn University")}  # fmt: skip
    assert odds["the Institute for Northern Affairs"] > ANSWER_ODDS > odds["Varn University"], odds
