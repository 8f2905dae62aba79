"""Quote-first answers (``answer_mode = "quotes"``, assistant/chains/quote_answer.py).

Chain logic with the scripted model (tests/fakes.py: it reads the numbered evidence sentences
of the prompt and picks ids by phrase), real retrieval, Chroma and embeddings; one real-model test.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest
from langchain_core.messages import BaseMessage

from assistant.core import prompts
from assistant.storage.library import Library
from assistant.chains.qa import AskChain
from assistant.chains.ask_events import Answer, SourcesFound
from assistant.core.passage import Passage
from assistant.chains.quote_answer import (
    QuoteFound, answer_so_far, check_short_answer, evidence_sentences, finished_ids, quotes_schema, sentence_holding,
)
from assistant.models.yes_no import ANSWER_ODDS, YesNo, YesNoJudge
from assistant.checks.verify import Verifier
from assistant.checks.relevance import RELATED_HEADING
from assistant.retrieval.retrieval import HybridRetriever
from assistant.server.service import Service
from assistant.core.settings import Settings
from tests.conftest import ARTICLES, shared_dir
from tests.fakes import ScriptedChatModel, evidence, evidence_id
from tests.servers import serve_app
from ui import create_app

needs_corpus_more = pytest.mark.skipif(not (shared_dir() / "corpus_more").is_dir(), reason="../shared/corpus_more not found")

QUESTION = "How much grain crossed the border under the Harbor Accord?"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("DA_ANSWER_MODE", "quotes")
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def retriever(library: Library, articles: Path) -> HybridRetriever:
    library.ingest([str(articles)])
    return HybridRetriever(library)


def replying(quotes: object, answer: str):
    """A scripted rule: ``quotes`` is a phrase (its sentence's id), a list of raw ids, or []."""

    def rule(messages: list[BaseMessage]) -> str:
        ids = [evidence_id(messages, quotes)] if isinstance(quotes, str) else quotes
        return json.dumps({"quotes": ids, "answer": answer})

    return rule


def events(retriever: HybridRetriever, rule, question: str = QUESTION) -> list[object]:
    return list(AskChain(retriever, ScriptedChatModel(rule=rule, calls=[])).stream(question))


def article_sentences_hold(quote: str) -> bool:
    return any(" ".join(quote.split()) in " ".join(p.read_text().split()) for p in ARTICLES.iterdir())


def test_the_quote_is_the_exact_sentence_and_streams_before_the_answer_words(retriever: HybridRetriever) -> None:
    items = events(retriever, replying("40,000 tonnes", "40,000 tonnes of grain"))
    kinds = [type(e).__name__ for e in items]
    assert kinds[0] == "SourcesFound" and kinds[-1] == "Answer"
    assert kinds.index("QuoteFound") < kinds.index("str")
    answer: Answer = items[-1]
    assert not answer.declined and answer.answer == "40,000 tonnes of grain"
    [quote] = answer.quotes
    passage = next(p for p in answer.passages if p.id == quote["passage_id"])
    assert passage.text[quote["start"] : quote["end"]] == quote["sentence"] and "40,000 tonnes" in quote["sentence"]
    assert article_sentences_hold(quote["sentence"])
    assert answer.text == f"40,000 tonnes of grain\n\n“{quote['sentence']}” [{quote['number']}]"
    assert [c.number for c in answer.citations] == [quote["number"]]
    assert answer.answers_question is True
    found = next(e for e in items if isinstance(e, QuoteFound))
    assert found.quote.as_dict() == quote
    assert "".join(e for e in items if isinstance(e, str)) == "40,000 tonnes of grain"
    # The evidence span of the quote (for highlighting) is the quote itself.
    spans = [e for s in answer.sentences for e in s.evidence]
    assert all(passage.text[e.start : e.end] == e.text for e in spans if e.passage_id == passage.id)


def test_ids_outside_the_offered_ones_cannot_be_written_and_are_refused(retriever: HybridRetriever) -> None:
    prompt_ids: list[int] = []

    def rule(messages: list[BaseMessage]) -> str:
        prompt_ids.extend(evidence(messages))
        return json.dumps({"quotes": [0, 999, "2", True], "answer": "Grain crossed"})

    answer = events(retriever, rule)[-1]
    schema = quotes_schema(len(prompt_ids))
    assert schema["properties"]["quotes"]["items"]["enum"] == sorted(prompt_ids) == list(range(1, len(prompt_ids) + 1))
    assert schema["properties"]["quotes"]["maxItems"] == 3
    assert answer.declined and answer.answer == "" and answer.invalid_citations == ["0", "999", "2", "True"]


def test_no_quotes_is_the_decline(retriever: HybridRetriever) -> None:
    answer = events(retriever, replying([], ""))[-1]
    assert answer.declined and answer.text == prompts.DECLINE and answer.answer == "" and answer.citations == []


def test_a_short_answer_nothing_holds_is_declined_with_its_quotes_as_related(retriever: HybridRetriever) -> None:
    answer = events(retriever, replying("40,000 tonnes", "90,000 tonnes of steel"))[-1]
    assert answer.declined and answer.answer == "" and "90,000" not in answer.text
    assert answer.text.startswith(f"{prompts.DECLINE}\n\n{RELATED_HEADING}") and "40,000 tonnes" in answer.text
    assert answer.unsupported_sentences == ["90,000 tonnes of steel"]


def test_a_right_short_answer_with_the_id_of_another_sentence_is_quoted_from_the_sentence_that_holds_it(
    retriever: HybridRetriever,
) -> None:
    # The model's ids miss (a neighbouring sentence, a byline) while its short answer is right.
    for wrong in ("By Mira Castell", "fourteen months"):
        answer = events(retriever, replying(wrong, "40,000 tonnes of grain"))[-1]
        assert not answer.declined and answer.answer == "40,000 tonnes of grain", answer.text
        [quote] = answer.quotes
        assert "40,000 tonnes" in quote["sentence"] and wrong not in quote["sentence"]
        assert answer.text.endswith(f"“{quote['sentence']}” [{quote['number']}]")
    # No id at all: the sentence holding the answer is found the same way.
    assert events(retriever, replying([], "40,000 tonnes"))[-1].answer == "40,000 tonnes"
    # An answer no sentence holds stays declined, with the model's picks as related.
    wrong = events(retriever, replying("By Mira Castell", "12,000 tonnes of grain"))[-1]
    assert wrong.declined and "Mira Castell" in wrong.text and wrong.unsupported_sentences == ["12,000 tonnes of grain"]


def test_sentence_holding_needs_every_number_and_half_the_words_of_the_answer() -> None:
    text = "In March 2019 the accord was signed. It held for fourteen months. Grain fell in 2020."
    passage = Passage("p-1", "d", 0, text, 0, len(text), title="T")
    sentences = evidence_sentences([passage])
    by_text = {s.quote: s for s in sentences}
    signed = by_text["In March 2019 the accord was signed."]
    assert sentence_holding("March 2019", sentences, [by_text["Grain fell in 2020."]]) == signed
    assert sentence_holding("14 months", sentences, []) == by_text["It held for fourteen months."]
    assert sentence_holding("March 2020", sentences, []) is None  # no sentence has both
    assert sentence_holding("the accord was signed", sentences, [signed]) is None  # already picked
    assert sentence_holding("bread and circuses", sentences, []) is None
    assert sentence_holding("", sentences, []) is None


@needs_corpus_more
def test_third_party_dates_the_model_answers_rightly_are_anchored_to_their_sentences() -> None:
    """Run-time sentences of ../shared/corpus_more: for each "Month YYYY" an article states, a short
    answer naming it, picked with the id of a sentence without that year, is anchored to a sentence
    holding the month and the year, and the rules verifier accepts it there."""
    month = r"(January|February|March|April|May|June|July|August|September|October|November|December) (\d{4})"
    verifier, checked, files = Verifier(), 0, set()
    for f in sorted((shared_dir() / "corpus_more").glob("*.txt")):
        text = " ".join(f.read_text().split())
        sentences = evidence_sentences([Passage(f.stem, f.stem, 0, text, 0, len(text), title=f.stem)])
        for found in list(re.finditer(month, text))[:2]:
            short = f"{found.group(1)} {found.group(2)}"
            wrong = next(s for s in sentences if found.group(2) not in s.quote)
            holding = sentence_holding(short, sentences, [wrong])
            assert holding is not None and found.group(1) in holding.quote and found.group(2) in holding.quote, short
            assert not check_short_answer(verifier, short, [wrong], "When did it happen?").supported
            assert check_short_answer(verifier, short, [holding], "When did it happen?").supported, (short, holding.quote)
            checked, files = checked + 1, files | {f.name}
    assert checked >= 3 and len(files) >= 2


class OddsJudge(YesNoJudge):
    """A judge whose log-odds of Yes are scripted (None: a backend without log-probabilities, decoded as ``decoded``)."""

    def __init__(self, odds: float | None, decoded: bool = True) -> None:
        self.odds, self.decoded, self.asked = odds, decoded, []

    def yes(self, question: YesNo) -> bool:
        self.asked.append(question.user)
        return self.decoded

    def yes_odds(self, question: YesNo) -> float | None:
        self.asked.append(question.user)
        return self.odds


def test_a_short_answer_is_judged_as_an_answer_to_its_question_by_the_odds_of_yes(retriever: HybridRetriever) -> None:
    for odds, shown in ((ANSWER_ODDS + 0.5, True), (ANSWER_ODDS - 0.5, False)):
        judge = OddsJudge(odds)
        chain = AskChain(retriever, ScriptedChatModel(rule=replying("40,000 tonnes", "40,000 tonnes of grain"), calls=[]))
        chain._verifier = Verifier(judge)
        answer = list(chain.stream(QUESTION))[-1]
        assert (not answer.declined) is shown, answer.text
        [asked] = judge.asked
        assert f"Question: {QUESTION}\nAnswer: 40,000 tonnes of grain\n" in asked and "40,000 tonnes of grain cross" in asked
        assert "Is this answer to the question correct according to the text?" in asked
    # A sentence of a free answer, checked with its question given, is still asked whether it is true.
    judge = OddsJudge(ANSWER_ODDS - 0.5, decoded=True)
    text = "Under the Harbor Accord, 40,000 tonnes of grain crossed the border before winter."
    passage = Passage("p-1", "d", 0, text, 0, len(text), title="T")
    assert Verifier(judge).verify(text, [passage], given=QUESTION).supported
    assert [q for q in judge.asked if "Is the statement true according to the text?" in q] == judge.asked != []
    # Without log-probabilities (an OpenAI-compatible server) the decoded Yes or No decides.
    assert OddsJudge(None, decoded=True).answers("Q?", "A", "text") is True
    assert OddsJudge(None, decoded=False).answers("Q?", "A", "text") is False


def test_an_answer_that_only_restates_the_question_is_declined(retriever: HybridRetriever) -> None:
    answer = events(retriever, replying("40,000 tonnes", "the grain that crossed the border"),
                    "How much of the grain that crossed the border was there?")[-1]  # fmt: skip
    question = "Which governments signed the Harbor Accord?"
    restated = events(retriever, replying("Harbor Accord", "the governments that signed the Harbor Accord"), question)[-1]
    assert restated.declined and restated.relevance_reason == "the answer only restates the question"
    assert answer.declined


def test_quotes_that_do_not_hold_what_was_asked_are_shown_as_related_under_the_decline(
    retriever: HybridRetriever,
) -> None:
    question = "How much grain crossed the border in 1987?"
    answer = events(retriever, replying("40,000 tonnes", "40,000 tonnes"), question)[-1]
    assert answer.declined and answer.answers_question is not True and answer.answer == ""
    assert answer.text.startswith(f"{prompts.DECLINE}\n\n{RELATED_HEADING}") and "40,000 tonnes" in answer.text


def test_the_partial_reply_is_read_as_it_grows() -> None:
    assert finished_ids('{"quotes": [3') == [] and finished_ids('{"quotes": [3, 1') == [3]
    assert finished_ids('{"quotes": [3, 12]') == [3, 12] and finished_ids('{"quo') == []
    assert answer_so_far('{"quotes": [3], "answer": "40,0') == "40,0" and answer_so_far('{"quotes": [3]') == ""


def test_api_streams_quotes_and_sends_the_short_answer_and_quotes(settings: Settings, articles: Path) -> None:
    service = Service(settings)
    service.library.ingest([str(articles / "pro_engagement.txt")])
    service.chat_model = ScriptedChatModel(rule=replying("40,000 tonnes", "40,000 tonnes"), calls=[])
    with serve_app(create_app(service)) as url, httpx.Client(base_url=url, timeout=60) as client:
        response = client.post("/api/ask", json={"question": QUESTION, "stream": True})
        lines = [json.loads(line) for line in response.text.splitlines() if line.strip()]
        whole = client.post("/api/ask", json={"question": QUESTION}).json()
    service.close()
    kinds = [line["type"] for line in lines]
    assert kinds[0] == "sources" and kinds[-1] == "answer" and kinds.index("quote") < kinds.index("token")
    final = lines[-1]
    streamed_quote = {k: v for k, v in lines[kinds.index("quote")].items() if k not in ("type", "index")}
    assert final["short_answer"] == "40,000 tonnes" and final["quotes"][0] == streamed_quote
    assert whole["short_answer"] == "40,000 tonnes" and "40,000 tonnes" in whole["quotes"][0]["sentence"]
    quote = whole["quotes"][0]
    assert whole["citations"][0]["evidence"][0] == [quote["start"], quote["end"]]  # highlighted when opened


@pytest.mark.slow
def test_real_model_quotes_an_exact_sentence_and_answers(tmp_path: Path) -> None:
    from assistant.models.llm import make_chat_model

    settings = Settings(data_dir=tmp_path / "data", answer_mode="quotes")
    library = Library(settings)
    library.ingest([str(ARTICLES)])
    chain = AskChain(HybridRetriever(library), make_chat_model(settings))
    started, first_quote = time.perf_counter(), None
    for item in chain.stream(QUESTION):
        if isinstance(item, QuoteFound) and first_quote is None:
            first_quote = time.perf_counter() - started
        if isinstance(item, SourcesFound):
            started = time.perf_counter()
        answer = item
    whole = time.perf_counter() - started
    library.close()
    print(f"\nfirst quote {first_quote} s after the sources, whole {whole:.1f} s\n{answer.raw_text}\n{answer.text}")
    assert isinstance(answer, Answer) and answer.quotes, answer.raw_text
    for quote in answer.quotes:
        passage = next(p for p in answer.passages if p.id == quote["passage_id"])
        assert passage.text[quote["start"] : quote["end"]] == quote["sentence"]
        assert article_sentences_hold(quote["sentence"])
    assert answer.answer or answer.text.startswith(f"{prompts.DECLINE}\n\n{RELATED_HEADING}"), answer.raw_text
    assert any("40,000 tonnes" in q["sentence"] for q in answer.quotes), answer.raw_text


def test_quote_first_answers_are_the_default_and_the_extractive_baseline_keeps_free_mode(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DA_ANSWER_MODE", raising=False)  # the test environment pins free mode (conftest)
    assert Settings(data_dir=tmp_path).answer_mode == "quotes" and Settings(data_dir=tmp_path).quote_answers
    assert not Settings(data_dir=tmp_path, llm_backend="extractive").quote_answers  # no model to pick ids
    assert not Settings(data_dir=tmp_path, answer_mode="free").quote_answers
