"""The relevance check: a supported sentence is not an answer unless it answers the question.

Rules with hand-written cases; the chain with a scripted model (real retrieval, real Chroma,
real embeddings); the local model's Yes/No judge on two clear cases (slow).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.core import prompts
from assistant.storage.library import Library
from assistant.chains.qa import AskChain
from assistant.checks.relevance import PARTIAL_NOTE, RELATED_HEADING, RelevanceCheck, rule_violation, rules_verdict
from assistant.core.text import strip_markers
from assistant.retrieval.retrieval import HybridRetriever
from tests.fakes import ScriptedChatModel, number_of

EVIDENCE = (
    "When envoys met in the port city of Lisk in March 2019, the two governments signed the Harbor Accord, "
    "which reopened the Tessaly rail link after eleven years and let 40,000 tonnes of grain cross the border."
)


@pytest.mark.parametrize(
    ("question", "answer", "broken"),
    [
        # A year the question asks about that neither the answer nor its evidence has.
        ("How many missile tests did Arandia conduct in 2021?", "Arandia conducted no missile tests for fourteen months.", "2021"),
        # A name the question is about (a summit the articles never describe).
        ("What did the envoys sign at the Corvel summit?", "The envoys signed the Harbor Accord in Lisk.", "Corvel"),
        # A quantity question answered without any number.
        ("How much grain crossed the border?", "The accord reopened the Tessaly rail link.", "how many"),
        # A time question answered without any date.
        ("When was the Harbor Accord signed?", "The Harbor Accord reopened the Tessaly rail link.", "when"),
        # A measure asked for by its name: the answer must give a number (seen: a named city instead).
        ("What is the population of the capital of Arandia?", "The capital of Arandia is Lisk.", "how many"),
        ("How old was the envoy who went to Lisk?", "The envoy signed the Harbor Accord in Lisk.", "how many"),
        # An amount paid asked for: where the money went, a date or an ordinal is not an amount.
        ("What were the rail workers paid?", "Most of the wages paid in 2019 went to a fourth fund.", "amount paid"),
        ("How much did Arandia pay for the grain?", "Arandia paid for the grain in March 2019.", "amount paid"),
        # A time frame the question sets that the answer does not ("final" or "last" before "year").
        ("How much grain crossed in the accord's final year?", "About 40,000 tonnes of grain crossed the border.", "final year"),
        ("Who ran the rail link during its first months?", "The Tessaly rail link reopened after eleven years.", "first months"),
        # A question about two parties jointly: an answer about one of them does not answer it.
        ("What did Arandia and Velmar agree in Lisk?", "Arandia agreed to reopen the Tessaly rail link.", "Velmar"),
    ],
)
def test_rules_reject_supported_sentences_that_do_not_answer(question: str, answer: str, broken: str) -> None:
    assert broken in rule_violation(question, answer, [EVIDENCE])


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("How much grain crossed the border?", "About 40,000 tonnes of grain crossed the border."),
        ("When was the Harbor Accord signed?", "It was signed in March 2019 in Lisk."),
        ("When does the first ferry leave on weekdays?", "The first ferry leaves at 6:40."),  # a time of day
        ("What did the envoys sign in Lisk in 2019?", "They signed the Harbor Accord."),  # year and name from the evidence
        ("What does Mira Castell say the accord reopened?", "It reopened the Tessaly rail link."),  # author: metadata
        ("What was the cost of the rail link?", "It cost 40,000 tonnes of grain."),
        ("What were the rail workers paid?", "They were paid 70 dollars a month."),
        ("How much grain crossed in the accord's final year?", "In its last full year 40,000 tonnes of grain crossed."),
        # A frame anchored to a year is the year rule's: a month of that year answers it.
        ("What did the envoys sign in the first month of 2019?", "They signed the Harbor Accord in March 2019."),
        # Not a question about pay: "What expression ... pay twice".
        ("What expression does Mira Castell use to say Arandia will not pay twice?", "She says it will not buy one horse twice."),
    ],
)
def test_rules_accept_answers(question: str, answer: str) -> None:
    assert rule_violation(question, answer, [EVIDENCE], ["Why Talking to Arandia Works Mira Castell"]) == ""


def test_a_judge_that_says_no_turns_an_answer_into_related_facts() -> None:
    class No:
        def answers(self, question: str, answer: str) -> bool:
            return False

    verdict = RelevanceCheck(No()).check("How much grain crossed?", "40,000 tonnes crossed [1].", [EVIDENCE])
    assert not verdict.answers and verdict.stage == "llm"
    assert RelevanceCheck().check("How much grain crossed?", "40,000 tonnes crossed [1].", [EVIDENCE]).answers


@pytest.fixture
def retriever(library: Library, articles: Path) -> HybridRetriever:
    library.ingest([str(articles)])
    return HybridRetriever(library)


def test_a_true_cited_sentence_that_does_not_answer_is_shown_as_related_not_as_the_answer(
    retriever: HybridRetriever,
) -> None:
    def rule(messages) -> str:
        return f"The Harbor Accord reopened the Tessaly rail link after eleven years [{number_of(messages, 'Tessaly')}]."

    chain = AskChain(retriever, ScriptedChatModel(rule=rule, calls=[]))
    answer = chain.ask("How many missile tests did Arandia carry out in 2023?")
    assert answer.declined and answer.not_an_answer and not answer.withheld
    assert answer.text.startswith(prompts.DECLINE)
    related = answer.text.split(RELATED_HEADING, 1)[1]
    assert "Tessaly rail link" in related and answer.citations  # the related fact keeps its citation
    assert "2023" in answer.relevance_reason


def test_an_answer_that_answers_is_shown_as_it_is(retriever: HybridRetriever) -> None:
    def rule(messages) -> str:
        return f"The Harbor Accord was signed in Lisk in March 2019 [{number_of(messages, 'Tessaly')}]."

    answer = AskChain(retriever, ScriptedChatModel(rule=rule, calls=[])).ask("When was the Harbor Accord signed?")
    assert not answer.declined and answer.answers_question is True and RELATED_HEADING not in answer.text


@pytest.mark.slow
def test_the_local_model_judges_relevance(settings) -> None:
    from assistant.models.judge import make_judge
    from assistant.checks.relevance import ModelAnswerJudge

    judge = ModelAnswerJudge(make_judge(settings))
    assert judge.answers("When was the Harbor Accord signed?", "The Harbor Accord was signed in March 2019.")
    assert not judge.answers(
        "How many missiles did Arandia launch in 2023?", "A hotline was used twice in 2020 to defuse naval incidents."
    )


def test_a_rebuttal_must_share_the_subject_of_the_card_it_answers() -> None:
    from assistant.checks.relevance import RebuttalCheck

    check = RebuttalCheck()
    off = check.check("Sanctions cut steel imports by seventy percent.", "A hotline was used twice in 2020.")
    assert not off.answers and off.reason == "it shares no subject with the card it names"
    assert check.check("Sanctions cut steel imports by seventy percent.", "Steel imports rose again within a year.").answers


def test_a_count_must_be_of_what_the_question_counts() -> None:
    from assistant.checks.relevance import rule_violation

    asked = "How many sailors survived the sinking of the corvette?"
    reason = rule_violation(asked, "46 sailors died when the corvette sank.", ["In March 2010 the corvette sank and 46 sailors died."])
    assert reason == "the question counts 'survived'; the answer does not"
    assert rule_violation(asked, "58 sailors survived the sinking.", ["Of its crew, 58 sailors survived the sinking."]) == ""
    # A measure the number answers without naming it is not required ("How much money" -> dollars).
    assert rule_violation("How much money did the group send?", "About 500 million dollars.", ["It sent about 500 million dollars."]) == ""


@pytest.mark.parametrize(
    ("question", "answer", "ok"),
    [
        ("How many artillery shells were fired at the island?", "Artillery shelled the island, killing two marines.", False),
        ("How many troops does the council keep in Tessaly?", "The council keeps 28,500 Arandian troops in Tessaly.", True),
        ("How many nuclear tests has Arandia carried out?", "Arandia has carried out six nuclear tests.", True),
        ("How many workers did the park employ?", "It employed tens of thousands of workers from the North.", True),
    ],
)
def test_the_number_must_count_what_the_question_counts(question: str, answer: str, ok: bool) -> None:
    assert (rule_violation(question, answer, [answer]) == "") is ok


def test_a_question_about_one_sides_article_is_not_answered_from_the_other_side() -> None:
    question = "What kind of engagement would the skeptic article accept?"
    answer = "Only genuine engagement holds out hope of settling the issue."
    assert rule_violation(question, answer, [answer], [], ["advocate"]) == (
        "the question asks about the skeptic side; the answer cites only the advocate side"
    )
    assert rule_violation(question, answer, [answer], [], ["skeptic"]) == ""
    assert rule_violation(question, answer, [answer], [], ["unknown"]) == ""


def test_a_year_the_evidence_refers_back_to_counts_as_answered() -> None:
    """Seen in the eval: "How much money did Hyundai send before the 2000 summit?" answered "... shortly
    before that summit [1]", the year in the sentence before the evidence. The relevance rules read
    the evidence as the verifier's judge did: each span with the sentence either side."""
    from assistant.checks.grounding import CheckedSentence
    from assistant.core.passage import Passage
    from assistant.chains.qa import cited_evidence
    from assistant.checks.verify import EvidenceSpan

    text = "In June 2019 the envoys met in Lisk. The Velmar group sent 40,000 tonnes of grain shortly before that summit."
    passage = Passage("t-0003", "t", 3, text, 0, len(text), title="Why Talking to Arandia Works")
    start = text.index("The Velmar")
    checked = CheckedSentence("The Velmar group sent 40,000 tonnes of grain before that summit [1].", True,
                              evidence=(EvidenceSpan("t-0003", start, len(text), text[start:], 1),))  # fmt: skip
    evidence, labels, _ = cited_evidence([checked], [passage])
    question = "How much grain did the Velmar group send before the 2019 summit?"
    assert rule_violation(question, strip_markers(checked.text), evidence, labels) == ""
    assert "2019" in rule_violation(question, strip_markers(checked.text), [text[start:]], labels)


@pytest.mark.parametrize(
    ("question", "answer", "unanswered"),
    [
        # The same asked of each party: the answer covers Castell, not Velmar; shown in part.
        ("Which ports do Mira Castell and Velmar each name?", "Mira Castell names the port city of Lisk.", ("Velmar",)),
        ("How do Castell and Velmar differ on the accord?", "Castell says the accord reopened the rail link.", ("Velmar",)),
        ("Which ports do Mira Castell and Velmar each name?", "Mira Castell and Velmar both name Lisk.", ()),
    ],
)
def test_a_question_asked_of_each_party_is_answered_in_part_when_the_answer_covers_some(
    question: str, answer: str, unanswered: tuple[str, ...]
) -> None:
    assert rules_verdict(question, answer, [EVIDENCE]) == ("", unanswered)


def test_a_party_question_the_answer_covers_no_party_of_is_not_answered() -> None:
    reason, unanswered = rules_verdict("What did Castell and Velmar each say about Corvel?", "Lisk hosted the envoys.", [EVIDENCE])
    assert reason and not unanswered


def test_an_answer_in_part_is_shown_with_a_note_naming_who_it_leaves_out(retriever: HybridRetriever) -> None:
    def rule(messages) -> str:
        return f"Mira Castell says the Harbor Accord reopened the Tessaly rail link [{number_of(messages, 'Tessaly')}]."

    answer = AskChain(retriever, ScriptedChatModel(rule=rule, calls=[])).ask(
        "What do Mira Castell and Oren Velmar each say the accord reopened?"
    )
    assert not answer.declined and answer.answers_question is True and answer.unanswered_parts == ["Oren Velmar"]
    body, note = answer.text.split("\n\n")
    assert "Tessaly rail link" in body and note == f"{PARTIAL_NOTE} Oren Velmar."
    from assistant.present.events import answer_dict

    assert answer_dict(answer)["unanswered_parts"] == ["Oren Velmar"]  # what API clients read
