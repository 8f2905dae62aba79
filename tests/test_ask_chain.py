"""Ask-chain logic with deterministic chat models (real retrieval, real Chroma, real embeddings).

``ScriptedChatModel`` (tests/fakes.py) answers by a rule that reads the prompt the chain
built. The real local model is exercised in test_local_llm.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from assistant.core import prompts
from assistant.storage.library import Library
from assistant.models.llm import ExtractiveChatModel
from assistant.chains.qa import AskChain
from assistant.chains.ask_events import Answer, SentenceChecked
from assistant.retrieval.retrieval import HybridRetriever
from assistant.core.inputs import QueryError
from tests.fakes import ScriptedChatModel, number_of


def is_condense(messages: list[BaseMessage]) -> bool:
    return isinstance(messages[0], SystemMessage) and messages[0].content == prompts.CONDENSE_SYSTEM


@pytest.fixture
def retriever(library: Library, articles: Path) -> HybridRetriever:
    library.ingest([str(articles)])
    return HybridRetriever(library)


def run(chain: AskChain, question: str, history=()) -> tuple[str, Answer]:
    shown, answer = [], None
    for item in chain.stream(question, history):
        if isinstance(item, Answer):
            answer = item
        elif isinstance(item, str):
            shown.append(item)
    assert answer is not None
    return "".join(shown), answer


def test_sources_come_before_the_first_token_and_each_verdict_before_the_answer(retriever: HybridRetriever) -> None:
    model = ScriptedChatModel(
        rule=lambda m: f"The accord let 40,000 tonnes of grain cross the border [{number_of(m, '40,000 tonnes')}]. "
        "It also made the moon of green cheese [1]."
    )
    events = list(AskChain(retriever, model).stream("How much grain crossed the border?"))
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "SourcesFound" and kinds[-1] == "Answer"
    assert kinds.index("SourcesFound") < kinds.index("str") < kinds.index("SentenceChecked")
    sources, answer = events[0], events[-1]
    assert sources.passages == answer.passages and len(sources.texts) == len(sources.passages)
    checked = [e for e in events if isinstance(e, SentenceChecked)]
    assert [c.sentence for c in checked] == answer.sentences
    assert [c.sentence.supported for c in checked] == [True, False]  # the cheese is withdrawn, and marked so


def test_valid_citation_points_at_the_passage_that_holds_the_answer(retriever: HybridRetriever) -> None:
    model = ScriptedChatModel(
        rule=lambda m: f"The accord let 40,000 tonnes of grain cross the border [{number_of(m, '40,000 tonnes')}]."
    )
    shown, answer = run(AskChain(retriever, model), "How much grain crossed the border?")
    assert not answer.declined and not answer.withheld
    assert [c.passage.text for c in answer.citations][0].count("40,000 tonnes") == 1
    cited = answer.citations[0]
    assert cited.title == "Why Talking to Arandia Works"
    assert cited.source.endswith("pro_engagement.txt")
    assert cited.passage.end > cited.passage.start
    assert shown == answer.text
    assert answer.timing.retrieval_ms > 0 and answer.timing.first_token_ms is not None
    assert answer.invalid_citations == [] and answer.uncited_sentences == [] and answer.unsupported_sentences == []


def test_invented_citations_are_removed_while_streaming_and_reported(retriever: HybridRetriever) -> None:
    model = ScriptedChatModel(
        rule=lambda m: (
            f"Arandia expelled the international inspectors [{number_of(m, 'expelled')}][12]. "
            "The agreement then collapsed after eight months [0]."
        )
    )
    shown, answer = run(AskChain(retriever, model), "Why did the Copper Lake agreement collapse?")
    assert "[12]" not in shown and "[0]" not in shown
    assert answer.invalid_citations == ["[12]", "[0]"]
    # Its invented marker gone, the second sentence is given the passage that says it, and is not flagged as uncited.
    assert answer.uncited_sentences == []
    assert [c for c in answer.corrected_citations if c.startswith("added [") and "eight months" in c]
    assert "expelled" in answer.citations[0].passage.text


def test_a_real_number_cited_for_a_claim_its_passage_does_not_make_is_withheld(retriever: HybridRetriever) -> None:
    model = ScriptedChatModel(rule=lambda m: "The Hanoi summit of 2019 ended with a signed peace treaty [1].")
    shown, answer = run(AskChain(retriever, model), "What did the summit produce?")
    assert answer.withheld and answer.declined
    assert answer.text == prompts.DECLINE and answer.citations == []
    assert answer.raw_text.startswith("The Hanoi summit")


def test_decline_with_a_stray_marker_is_a_decline(retriever: HybridRetriever) -> None:
    model = ScriptedChatModel(rule=lambda m: "The sources don't say. [1]")
    _, answer = run(AskChain(retriever, model), "Who won the 1998 football cup?")
    assert answer.declined and not answer.withheld and answer.text == prompts.DECLINE


def test_follow_up_is_condensed_with_the_conversation(retriever: HybridRetriever) -> None:
    def rule(messages: list[BaseMessage]) -> str:
        if is_condense(messages):
            assert "Copper Lake" in messages[-1].content  # the history reached the rewrite prompt
            return "Why did the Copper Lake agreement collapse?"
        return f"Arandia expelled the inspectors it had promised to admit [{number_of(messages, 'expelled')}]."

    model = ScriptedChatModel(rule=rule, calls=[])
    history = [("What was the Copper Lake agreement?", "An agreement from 2011 [1].")]
    _, answer = run(AskChain(retriever, model), "Why did it fail?", history)
    assert answer.standalone_question == "Why did the Copper Lake agreement collapse?"
    assert answer.citations and "expelled" in answer.citations[0].passage.text
    assert len(model.calls) == 2


def test_a_useless_rewrite_falls_back_to_the_previous_question(retriever: HybridRetriever) -> None:
    model = ScriptedChatModel(rule=lambda m: "" if is_condense(m) else prompts.DECLINE, calls=[])
    _, answer = run(AskChain(retriever, model), "And the fuel?", [("Was aid diverted?", "Yes [1].")])
    assert answer.standalone_question == "Was aid diverted? And the fuel?"


def test_empty_library_declines_without_calling_the_model(library: Library) -> None:
    model = ScriptedChatModel(rule=lambda m: "should not be called", calls=[])
    shown, answer = run(AskChain(HybridRetriever(library), model), "Anything at all?")
    assert answer.declined and shown == prompts.DECLINE and model.calls == []


@pytest.mark.parametrize("question", ["", "  \n ", "x" * 4001])
def test_bad_questions_are_refused_before_any_work(retriever: HybridRetriever, question: str) -> None:
    model = ScriptedChatModel(rule=lambda m: "unused", calls=[])
    with pytest.raises(QueryError):
        AskChain(retriever, model).ask(question)
    assert model.calls == []


def test_prompt_numbers_sources_and_fences_them_as_data(retriever: HybridRetriever) -> None:
    model = ScriptedChatModel(rule=lambda m: prompts.DECLINE, calls=[])
    answer = AskChain(retriever, model).ask("What did the hotline do?")
    system, user = model.calls[0]
    assert isinstance(system, SystemMessage) and isinstance(user, HumanMessage)
    assert [int(n) for n in re.findall(r"^\[(\d+)\]", user.content, re.MULTILINE)] == list(
        range(1, len(answer.passages) + 1)
    )
    # The system message is the same for every question (it is read once per process); the
    # sources come before the question, which comes last.
    assert system.content == prompts.answer_system_prompt() and "hotline" not in system.content
    assert user.content.index("Question: What did the hotline do?") > user.content.index("[1]")


def test_extractive_baseline_quotes_and_cites_or_declines(retriever: HybridRetriever) -> None:
    chain = AskChain(retriever, ExtractiveChatModel())
    answer = chain.ask("Which observatory published imagery of the enrichment hall at Dunmore?")
    assert not answer.declined and "Corvel Observatory" in answer.text
    assert "Corvel Observatory" in answer.citations[0].passage.text
    assert chain.ask("What is the capital of Peru?").declined


def test_a_claim_cited_to_the_wrong_shown_passage_is_repointed_and_reported(retriever: HybridRetriever) -> None:
    def rule(messages: list[BaseMessage]) -> str:
        right = number_of(messages, "Dunmore")
        wrong = 1 if right != 1 else 2
        return f"The Corvel Observatory published satellite imagery of a new enrichment hall at Dunmore [{wrong}]."

    _, answer = run(AskChain(retriever, ScriptedChatModel(rule=rule, calls=[])), "Who published imagery of Dunmore?")
    assert not answer.declined
    assert len(answer.citations) == 1 and "Dunmore" in answer.citations[0].passage.text
    assert len(answer.corrected_citations) == 1 and "->" in answer.corrected_citations[0]
    assert answer.unsupported_sentences == []


def test_a_reply_cut_off_by_the_token_limit_loses_its_half_sentence(retriever: HybridRetriever) -> None:
    def rule(messages: list[BaseMessage]) -> str:
        return f"The hotline defused naval incidents near the Varn Strait [{number_of(messages, 'Varn Strait')}]. It was also used to"

    cut = ScriptedChatModel(rule=rule, calls=[], finish_reason="length")
    answer = AskChain(retriever, cut).ask("What did the hotline do?")
    assert answer.text.endswith("Varn Strait [%d]." % answer.citations[0].number)
    assert answer.uncited_sentences == []
    complete = AskChain(retriever, ScriptedChatModel(rule=rule, calls=[])).ask("What did the hotline do?")
    # A finished reply is not trimmed: the fragment reaches the citation check, which removes it
    # as a sentence without a source (and says so), instead of dropping it silently.
    assert complete.uncited_sentences == ["It was also used to"]
    assert complete.unsupported_sentences == ["It was also used to"]


def test_a_source_header_the_model_copies_is_not_part_of_the_answer(retriever: HybridRetriever) -> None:
    """The small model copies the prompt's layout: "From (<title, by author>) [n] sentence". The
    header is prompt structure, not a claim: a title's "Limits" or "Not" must not become the sentence's."""

    def copies_the_layout(messages: list[BaseMessage]) -> str:
        prompt = str(messages[-1].content)
        n = number_of(messages, "40,000 tonnes")
        header = next(line for line in prompt.splitlines()[: prompt.splitlines().index(next(
            line for line in prompt.splitlines() if line.startswith(f"[{n}]")))][::-1] if line.startswith("From ("))  # fmt: skip
        return f"{header.rstrip(':')} [{n}] The accord let 40,000 tonnes of grain cross the border."

    shown, answer = run(AskChain(retriever, ScriptedChatModel(rule=copies_the_layout)), "How much grain crossed the border?")
    assert not answer.declined and not answer.withheld, answer.unsupported_sentences
    assert "From (" not in answer.text and "Why Talking to Arandia Works" not in answer.text
    assert answer.text.startswith("The accord let 40,000 tonnes")
