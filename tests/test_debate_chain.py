"""Debate logic with a deterministic chat model (real retrieval, real Chroma, real SQLite).

The scripted model answers the card prompts the chain builds: it picks evidence sentences by
the phrase they contain and writes tags, as the local model does under its JSON grammar.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
from langchain_core.messages import BaseMessage

from assistant.core import prompts
from assistant.core import personas
from assistant.chains.cards import Candidate, assemble_cards, tag_supported, trimmed_quote
from assistant.chains.debate import DebateChain, DebateError
from assistant.chains.debate_events import CardMade, TurnStarted, TurnText
from assistant.storage.library import Library
from assistant.models.llm import ExtractiveChatModel
from assistant.core.personas import Persona
from assistant.core.passage import Passage
from assistant.retrieval.retrieval import HybridRetriever
from assistant.core.inputs import QueryError
from assistant.core.text import sentence_spans, text_key
from assistant.core.debate_record import COMPLETE, FAILED, Debate
from assistant.storage.transcripts import TranscriptStore
from assistant.present.transcript_export import to_brief, to_json, to_markdown
from tests.fakes import ScriptedChatModel, evidence, evidence_id

MOTION = "Should the government offer Arandia a non-aggression pledge before full disarmament?"
# What each side would like to quote, best first.
ADVOCATE_PHRASES = ["40,000 tonnes", "no missile tests", "hotline", "security assurances work best"]
SKEPTIC_PHRASES = ["expelled the international inspectors", "a third of donated fuel", "enrichment hall", "seventy percent"]


def role_of(messages: list[BaseMessage]) -> str:
    system = messages[0].content
    if system.startswith("You are a fair debate judge"):
        return "judge"
    return "advocate" if 'the side "For"' in system or 'the side "dove"' in system else "skeptic"


def debater(messages: list[BaseMessage]) -> str:
    """Cards quoting the side's phrases with tags in its own words; the judge names the last clash as decisive."""
    role = role_of(messages)
    if role == "judge":
        return json.dumps({"clash": messages[-1].content.count("Clash ")})
    phrases = ADVOCATE_PHRASES if role == "advocate" else SKEPTIC_PHRASES
    ids = [i for i in (evidence_id(messages, p) for p in phrases) if i is not None][:2]
    labels = [line.split(":")[0] for line in messages[-1].content.splitlines() if line[:1] in "AS" and line[1:2].isdigit()]
    cards = []
    for n, i in enumerate(ids):
        words = evidence(messages)[i].rstrip(".").split()
        # The sentence's own words after its first: supported, and not a cut-off copy of its opening.
        card = {"id": i, "tag": " ".join(words[1:13])}
        if labels:
            card = {"answers": labels[n % len(labels)], **card}
        cards.append(card)
    return json.dumps({"cards": cards})


def _chain(library: Library, rule=debater, side_check: bool = False) -> DebateChain:
    """The chain over a scripted model that picks cards by phrase from everything offered: the side
    check (which offers only the first few sentences not on the opponent's side) is off unless asked
    for; its own tests script its answers."""
    chain = DebateChain(
        HybridRetriever(library), ScriptedChatModel(rule=rule, calls=[]), TranscriptStore(library.settings.transcripts_database)
    )
    # Four passages a side, as the scripted sides' phrases were chosen for (8, the default, ranks more
    # sentences, and a phrase can fall below the ones offered).
    chain.settings = chain.settings.model_copy(update={"debate_side_check": side_check, "debate_k_per_side": 4})
    return chain


def _mark_sides(library: Library) -> dict[str, str]:
    """pro_engagement.txt argues for, skeptic.txt against; the other fixture articles stay unknown."""
    stances = {}
    for doc in library.documents():
        name = Path(doc.source).name
        stance = {"pro_engagement.txt": "advocate", "skeptic.txt": "skeptic"}.get(name, "unknown")
        library.set_stance(doc.id, stance)
        stances[doc.id] = stance
    return stances


@pytest.fixture
def chain(library: Library, articles: Path) -> DebateChain:
    library.ingest([str(articles)])
    _mark_sides(library)
    return _chain(library)


def _cards(debate: Debate):
    return [c for t in debate.turns for c in t.cards]


def test_turns_are_cards_with_exact_quotes_from_their_own_side(chain: DebateChain) -> None:
    events = list(chain.stream(MOTION, rounds=1))
    started = [(e.role, e.kind) for e in events if isinstance(e, TurnStarted)]
    assert started == [("advocate", "opening"), ("skeptic", "opening"), ("advocate", "rebuttal"),
                       ("skeptic", "rebuttal"), ("moderator", "summary")]  # fmt: skip
    debate = events[-1]
    assert isinstance(debate, Debate) and debate.status == COMPLETE
    made = [e.card for e in events if isinstance(e, CardMade)]
    assert made == _cards(debate) and len(made) == 8
    assert sum(isinstance(e, TurnText) for e in events) >= 9
    sources = {s.number: s for s in debate.sources}
    for turn in debate.turns[:4]:
        assert len(turn.cards) == 2 and turn.cited == sorted({c.source for c in turn.cards})
        for card in turn.cards:
            source = sources[card.source]
            assert source.text[card.start : card.end] == card.quote  # exact by construction
            assert (card.passage_id, card.doc_id) == (source.passage.id, source.passage.doc_id)
            assert source.stance in (card.role, "unknown")  # own side (or unknown) only
            # The model's tag, supported by its quote, or the trimmed quote with why the model's was not shown.
            own = card.tag_from == "model" and tag_supported(card.tag, card.quote)
            assert own or (card.tag_from == "quote" and card.tag == trimmed_quote(card.quote) and card.tag_note), card
            assert card.label[0] == card.role[0].upper()
    # The scripted tags are twelve words of the quote: those that stop mid-clause are not shown as claims.
    assert all(c.tag_note == "ends mid-clause" for c in made if c.tag_from == "quote"), made
    advocate_quotes = " ".join(c.quote for c in debate.turns[0].cards)
    assert "40,000 tonnes" in advocate_quotes and "no missile tests" in advocate_quotes
    assert "expelled the international inspectors" in " ".join(c.quote for c in debate.turns[1].cards)


def test_no_quote_or_tag_is_used_twice_and_rebuttals_name_what_they_answer(chain: DebateChain) -> None:
    debate = chain.run(MOTION, rounds=2)
    cards = _cards(debate)
    assert len({text_key(c.quote) for c in cards}) == len(cards)
    assert len({text_key(c.tag) for c in cards}) == len(cards)
    labels = {c.label: c for c in cards}
    assert len(labels) == len(cards)
    for turn in debate.turns:
        for card in turn.cards:
            if turn.kind == "rebuttal":  # it answers an opponent card, or says which one it named but did not answer
                assert (card.answers in labels and labels[card.answers].role != card.role) or (
                    card.answers is None and card.answer_note.startswith("does not answer ")
                ), card
            else:
                assert card.answers is None and not card.answer_note
    assert any(c.answers for c in cards) and any(c.answer_note for c in cards)  # the scripted sides do both


def test_a_rebuttal_card_that_does_not_answer_the_card_it_names_loses_the_link(chain: DebateChain) -> None:
    debate = chain.run(MOTION, rounds=1)
    dropped = [c for c in _cards(debate) if c.answer_note]
    assert dropped, "the scripted sides pick evidence by phrase, whatever the card they name says"
    named = {c.answer_note.split(":")[0].removeprefix("does not answer ") for c in dropped}
    ballot = debate.turns[-1]
    assert all((clash["argument"], clash["answer"]) != (name, c.label) for clash in ballot.clashes
               for c in dropped for name in named)  # a dropped link is no clash  # fmt: skip
    answered = {c.answers for c in _cards(debate) if c.answers}
    for label in named - answered:  # named but answered by no card: dropped, and said so
        assert label in ballot.ballot["dropped"] and f"Dropped: {label} " in ballot.text, ballot.text
    assert "does not answer" in to_markdown(debate)


class _OddsScorer:
    """Next-word log-probabilities for the side check (no lean: nothing set aside, every sentence named
    "for") and, for the rebuttal question, the same odds of Yes for every pair."""

    def __init__(self, yes_odds: float) -> None:
        self.yes_odds = yes_odds

    def first_word_logprobs(self, question, reply_start: str, words) -> list[float]:
        return [self.yes_odds, 0.0] if tuple(words) == ("Yes", "No") else [0.0] * len(words)


@pytest.mark.parametrize("disputes", [True, False])
def test_with_the_dispute_check_the_judges_odds_decide_every_rebuttal_link(library: Library, articles: Path,
                                                                           disputes: bool) -> None:  # fmt: skip
    """``debate_dispute_check``: odds of Yes past the margin keep every link a rebuttal card makes;
    odds under it drop each, with why, whatever the side rule would have said."""
    from assistant.chains.side_check import REJECT_MARGIN, SideSorter

    library.ingest([str(articles)])
    _mark_sides(library)
    chain = _chain(library, side_check=True)
    chain.settings = chain.settings.model_copy(update={"debate_dispute_check": True})
    chain.__dict__["side_sorter"] = SideSorter(chain.chat_model, _OddsScorer(REJECT_MARGIN + 1 if disputes else 0.0))
    rebuttals = [c for t in chain.run(MOTION, rounds=1).turns if t.kind == "rebuttal" for c in t.cards]
    assert rebuttals
    if disputes:
        assert all(c.answers and not c.answer_note for c in rebuttals), rebuttals
    else:
        assert all(c.answers is None and c.answer_note.endswith(": the judge does not read its quote as disputing it")
                   for c in rebuttals), rebuttals  # fmt: skip


def test_a_side_never_sees_the_other_sides_documents(chain: DebateChain) -> None:
    chain.run(MOTION, rounds=1)
    for call in chain.chat_model.calls:
        role = role_of(call)
        offered = " ".join(evidence(call).values())
        if role == "advocate":
            assert not any(p in offered for p in SKEPTIC_PHRASES)
        elif role == "skeptic":
            assert not any(p in offered for p in ADVOCATE_PHRASES)


def test_a_side_without_documents_of_its_own_is_told_before_anything_runs(library: Library, articles: Path) -> None:
    library.ingest([str(articles / "pro_engagement.txt")])
    (doc,) = library.documents()
    library.set_stance(doc.id, "advocate")
    chain = _chain(library)
    with pytest.raises(DebateError, match='"Against" has nothing of its own') as caught:
        chain.run(MOTION, rounds=1)
    assert "--stance against" in str(caught.value) and "against the motion" in str(caught.value)
    assert chain.chat_model.calls == [] and chain.store.list() == []
    library.set_stance(doc.id, "unknown")  # unknown documents serve both sides
    assert chain.run(MOTION, rounds=0).status == COMPLETE


def test_repeated_unsupported_or_missing_tags_fall_back_to_the_trimmed_quote(chain: DebateChain) -> None:
    def sloppy(messages: list[BaseMessage]) -> str:
        if role_of(messages) == "judge":
            return "no json here"
        ids = list(evidence(messages))
        return json.dumps({"cards": [{"id": ids[0], "tag": "Dragons never guard the northern border"},
                                     {"id": ids[0], "tag": "Same id twice"}, {"id": 99, "tag": "Out of range"}]})  # fmt: skip

    chain.chat_model.rule = sloppy
    debate = chain.run(MOTION, rounds=1)
    cards = _cards(debate)
    assert len(cards) == 8 and len({text_key(c.quote) for c in cards}) == 8
    first = debate.turns[0].cards[0]
    assert first.tag_from == "quote" and first.model_tag == "Dragons never guard the northern border"
    assert first.tag_note == "not supported by its quote" and first.tag == trimmed_quote(first.quote)
    filled = debate.turns[0].cards[1]
    assert filled.tag_from == "quote" and filled.tag_note == "no tag from the model"
    judge = debate.turns[-1]
    # One clash per rebuttal card that answers the card it names; an unusable reply names no decisive clash.
    assert len(judge.clashes) == sum(1 for c in cards if c.answers) >= 1
    assert {c["winner"] for c in judge.clashes} <= {c.label for c in cards}
    assert judge.ballot["decisive"] is None and judge.ballot["decision"] in ("advocate", "skeptic")


def test_assemble_cards_rules() -> None:
    passage = Passage(id="d-0000", doc_id="d", index=0, text="", start=0, end=0, title="t", source="s", score=1)
    text = "Arandia expelled the inspectors in 2011. Imports of steel fell by seventy percent. Talks resumed in 2019."
    sentences = sentence_spans(text)
    candidates = [Candidate(3, passage, s) for s in sentences]
    used = {text_key("Talks resumed in 2019")}
    reply = {"cards": [
        {"id": 2, "tag": "Steel imports fell by fifty percent"},  # wrong number
        {"id": 3, "tag": "Talks resumed in 2019"},  # used before
    ]}  # fmt: skip
    cards = assemble_cards("skeptic", reply, candidates, 3, 4, used, ["A1", "A2"])
    assert [c.label for c in cards] == ["S4", "S5", "S6"]
    assert [c.tag_note for c in cards] == ["not supported by its quote", "repeats an earlier tag", "no tag from the model"]
    assert [c.quote for c in cards] == [sentences[1].text, sentences[2].text, sentences[0].text]
    assert [c.answers for c in cards] == ["A1", "A2", "A1"]  # unnamed answers go to unanswered cards first
    assert all(text[c.start : c.end] == c.quote for c in cards)


def test_a_tag_that_copies_the_quote_and_stops_mid_clause_is_not_shown_as_a_claim() -> None:
    """Seen in debates: the model's tag was the quote's first words, "... easing tensions that could",
    shown with a full stop. It becomes the trimmed quote (marked "…"); a copy that stops where the
    quote's clause does reads as a claim and stays the model's."""
    passage = Passage(id="d-0000", doc_id="d", index=0, text="", start=0, end=0, title="t", source="s", score=1)
    text = ("Only talks hold out hope of easing tensions that could again close the Varn Strait. "
            "Engagement should be conditional and reversible: aid tied to monitoring.")  # fmt: skip
    candidates = [Candidate(1, passage, s) for s in sentence_spans(text)]
    reply = {"cards": [
        {"id": 1, "tag": "Only talks hold out hope of easing tensions that could."},
        {"id": 2, "tag": "Engagement should be conditional and reversible"},
    ]}  # fmt: skip
    cut, clause = assemble_cards("advocate", reply, candidates, 2, 1, set())
    assert cut.tag_note == "the quote's opening, cut mid-sentence" and cut.tag == trimmed_quote(cut.quote)
    assert clause.tag_from == "model" and clause.tag == "Engagement should be conditional and reversible"


@pytest.mark.parametrize("tag", [
    "Officials insisted that if Varn drops its hostile policy, the dispute and",  # a conjunction
    "The ministry secretly arranged grain worth 1.7 billion, according to",  # a preposition
    "Talks resumed, since the strait isn't a -",  # a dash
    "With the council's security assurances,",  # a comma
    "The strait reopens whenever pressure has.",  # an auxiliary, before the full stop the model added
])
def test_a_tag_that_stops_mid_clause_anywhere_in_the_quote_is_not_shown_as_a_claim(tag: str) -> None:
    """Seen in debates on the dev and third-party articles (5 of 34 model tags read): the model copies a
    stretch from inside the quote and stops on a comma, a dash or a word no sentence ends on."""
    passage = Passage(id="d-0000", doc_id="d", index=0, text="", start=0, end=0, title="t", source="s", score=1)
    text = f"As the envoy wrote, {tag.rstrip(' .,-')} peace holds. Engagement should be conditional and reversible: aid tied to monitoring."
    candidates = [Candidate(1, passage, s) for s in sentence_spans(text)]
    reply = {"cards": [{"id": 1, "tag": tag}, {"id": 2, "tag": "Engagement should be conditional and reversible"}]}
    cut, clause = assemble_cards("advocate", reply, candidates, 2, 1, set())
    assert cut.tag_note == "ends mid-clause" and cut.tag == trimmed_quote(cut.quote) and cut.model_tag == tag
    assert clause.tag_from == "model"


def test_a_tag_written_under_the_wrong_id_goes_with_the_sentence_it_describes() -> None:
    passage = Passage(id="d-0000", doc_id="d", index=0, text="", start=0, end=0, title="t", source="s", score=1)
    text = "Arandia expelled the inspectors in 2011. Imports of steel fell by seventy percent. Talks resumed in 2019."
    candidates = [Candidate(1, passage, s) for s in sentence_spans(text)]
    reply = {"cards": [{"id": 1, "tag": "Steel imports fell by seventy percent"}, {"id": 2, "tag": "Talks resumed in 2019"}]}
    cards = assemble_cards("advocate", reply, candidates, 2, 1, set())
    assert [(c.quote, c.tag_from) for c in cards] == [
        ("Imports of steel fell by seventy percent.", "model"), ("Talks resumed in 2019.", "model"),
    ]  # fmt: skip
    long_quote = "It does show that concessions given first are pocketed, and that the North returns whenever it likes."
    assert tag_supported(trimmed_quote(long_quote), long_quote)  # the fallback tag passes its own check


@pytest.mark.parametrize(
    ("tag", "quote", "ok"),
    [
        ("Wages were diverted to weapons programs", "Most of the wages had been diverted to its weapons programs.", True),
        ("Wages were not diverted to weapons", "Most of the wages had been diverted to its weapons programs.", False),
        ("Five inspectors were expelled", "Three inspectors were expelled in 2011.", False),
        ("The accord offered sticks and carrots", "The accord offered not engagement but sticks and carrots.", True),
        ("The accord offered engagement", "The accord offered not engagement but sticks and carrots.", False),
        ("Engagement catalyzes new directions", "Development aid reached the northern provinces in 2005.", False),
        ("After the summit the two Koreas signed a军事", "After the summit the two Koreas signed a military pact.", False),
        # The verifier's negation cue rule holds for tags too (one lexicon): "ended up" and "No. 2" deny nothing.
        ("The aid landed in the hands of the ruling leadership", "The aid ended up in the hands of the ruling leadership.",
         True),
        ("The regime's second official led the delegation", "The regime's No. 2 official led the delegation.", True),
        ("The aid never reached the ruling leadership", "The aid ended up in the hands of the ruling leadership.", False),
    ],
)
def test_tag_check(tag: str, quote: str, ok: bool) -> None:
    assert tag_supported(tag, quote) is ok


def test_the_ballot_decides_each_clash_by_the_flow_and_cites_only_cards(chain: DebateChain) -> None:
    debate = chain.run(MOTION, rounds=1)
    judge = debate.turns[-1]
    cards = {c.label: c for c in _cards(debate)}
    ballot = judge.ballot
    assert judge.role == "moderator" and judge.speaker == "judge" and judge.clashes == ballot["clashes"]
    assert judge.clashes and ballot["criterion"] == "the most direct evidence on the motion"
    for clash in judge.clashes:
        argument, answer = cards[clash["argument"]], cards[clash["answer"]]
        assert answer.answers == argument.label and argument.role != answer.role
        # The answer holds unless the argument's side answered it back.
        answered_back = any(c.answers == answer.label and c.role == argument.role for c in cards.values())
        assert clash["winner"] == (argument.label if answered_back else answer.label)
        assert f"“{answer.tag}”" in clash["reason"]  # the reason is the cards' own checked claims
    assert ballot["decisive"] == len(judge.clashes)  # the scripted judge names the last clash
    score = {"advocate": 0, "skeptic": 0}
    for clash in judge.clashes:
        if clash["winner"] == clash["answer"]:  # a thread scores once, in its last clash
            score[cards[clash["winner"]].role] += 1
    for label in ballot["dropped"]:
        score[cards[label].role] += 1
    score[cards[judge.clashes[-1]["winner"]].role] += 1  # the decisive clash counts twice
    assert ballot["score"] == score
    assert ballot["decision"] == max(score, key=lambda role: (score[role], role == "skeptic"))
    decision = judge.text.splitlines()[-1]
    assert decision.startswith(f"Decision: {debate.speakers()[ballot['decision']]}. Reason for decision:")
    assert set(re.findall(r"\b[AS]\d+\b", decision)) <= set(cards)  # cites cards, and nothing else
    assert set(judge.cited) >= {cards[label].source for clash in judge.clashes for label in (clash["argument"], clash["answer"])}
    assert judge.text.count("Clash ") == len(judge.clashes) and judge.text.startswith("Judged on the most direct evidence")


def test_a_criterion_is_given_to_the_judge_and_shown(chain: DebateChain) -> None:
    debate = chain.run(MOTION, rounds=1, criterion="  impact on regional security. ")
    assert debate.turns[-1].ballot["criterion"] == "impact on regional security"
    asked = [call for call in chain.chat_model.calls if role_of(call) == "judge"]
    assert all("Judge by: impact on regional security" in call[-1].content for call in asked)
    assert len(asked) == (len(debate.turns[-1].clashes) > 1)  # one question, when there is a clash to choose
    assert debate.turns[-1].text.startswith("Judged on impact on regional security.")
    with pytest.raises(DebateError, match="criterion"):
        chain.run(MOTION, rounds=1, criterion="x" * 201)


def test_without_rebuttals_no_card_answers_another_and_a_tie_goes_against_the_motion(chain: DebateChain) -> None:
    debate = chain.run(MOTION, rounds=0)
    judge = debate.turns[-1]
    assert judge.clashes == [] and judge.ballot["dropped"] == [] and judge.ballot["decision"] == "skeptic"
    assert "No card answered another" in judge.text and "A tie goes against the motion" in judge.text
    assert not any(role_of(call) == "judge" for call in chain.chat_model.calls)  # nothing to weigh: no call


def test_the_extractive_baseline_debates_with_quoted_tags(library: Library, articles: Path) -> None:
    library.ingest([str(articles)])
    _mark_sides(library)
    chain = DebateChain(HybridRetriever(library), ExtractiveChatModel(), TranscriptStore(library.settings.transcripts_database))
    debate = chain.run(MOTION, rounds=1)
    cards = _cards(debate)
    assert len(cards) == 8 and all(c.tag_from == "quote" for c in cards)
    assert debate.turns[-1].ballot["decision"] in ("advocate", "skeptic")


def test_saved_debates_load_with_their_cards_and_old_turns_without(chain: DebateChain, library: Library) -> None:
    debate = chain.run(MOTION, rounds=1)
    saved = chain.store.get(debate.id)
    assert saved.turns == debate.turns and saved.sources == debate.sources and saved.status == COMPLETE
    # A debate saved before cards and stances existed.
    db = sqlite3.connect(library.settings.transcripts_database)
    old_turn = {"index": 0, "role": "advocate", "kind": "opening", "speaker": "engagement advocate", "text": "Old [1].",
                "raw_text": "Old [1].", "cited": [1], "timing": {}}  # fmt: skip
    old_source = {k: v for k, v in json.loads(db.execute("SELECT sources FROM debates").fetchone()[0])[0].items() if k != "stance"}
    cursor = db.execute("INSERT INTO debates(motion, created_at, status, rounds, personas, sources) SELECT motion, "
                        "created_at, status, 0, personas, ? FROM debates LIMIT 1", (json.dumps([old_source]),))  # fmt: skip
    db.execute("INSERT INTO turns VALUES (?, 0, ?)", (cursor.lastrowid, json.dumps(old_turn)))
    db.commit()
    db.close()
    old = chain.store.get(cursor.lastrowid)
    assert old.turns[0].cards == [] and old.sources[0].stance == "unknown"
    assert "Old [1]." in to_markdown(old) and to_json(old)["turns"][0]["cards"] == []


def test_exports_markdown_brief_and_json(chain: DebateChain) -> None:
    debate = chain.run(MOTION, rounds=1)
    markdown = to_markdown(debate)
    first = debate.turns[0].cards[0]
    assert f"**{first.label}. {first.tag}**" in markdown and f"> “{first.quote}” [{first.source}]" in markdown
    assert "## Ballot: judge" in markdown and "## References" in markdown
    brief = to_brief(debate)
    advocate_part, skeptic_part = brief.split("## Against")
    assert all(c.quote in advocate_part for c in _cards(debate) if c.role == "advocate")
    assert all(c.quote in skeptic_part for c in _cards(debate) if c.role == "skeptic")
    exported = to_json(debate)
    cards = [c for t in exported["turns"] for c in t["cards"]]
    assert len(cards) == 8
    assert {c["document"] for c in cards} == {"pro_engagement.txt", "skeptic.txt"}
    assert all(c["stance"] == c["role"] for c in cards)
    assert set(cards[0]) >= {"role", "tag", "quote", "passage_id", "doc_id", "document", "stance"}


def test_a_failure_mid_debate_keeps_the_finished_turns(chain: DebateChain) -> None:
    def rule(messages: list[BaseMessage]) -> str:
        if role_of(messages) == "skeptic":
            raise RuntimeError("model crashed")
        return debater(messages)

    chain.chat_model.rule = rule
    with pytest.raises(RuntimeError):
        chain.run(MOTION, rounds=1)
    debate_id, _, _, status, n_turns = chain.store.list()[0]
    assert status == FAILED and n_turns == 1
    assert chain.store.get(debate_id).turns[0].cards


def test_empty_library_is_refused_without_calling_the_model(library: Library) -> None:
    chain = _chain(library)
    with pytest.raises(DebateError, match="nothing of its own"):
        chain.run(MOTION, rounds=0)
    assert chain.chat_model.calls == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"rounds": -1}, DebateError),
        ({"rounds": 99}, DebateError),
        ({"advocate": Persona("  ", "x")}, DebateError),
        ({"skeptic": Persona("for", "x")}, DebateError),  # the same name as the other side
        ({"motion": "   "}, QueryError),
    ],
)
def test_bad_requests_are_refused_before_any_work(chain: DebateChain, kwargs: dict, error: type) -> None:
    motion = kwargs.pop("motion", MOTION)
    with pytest.raises(error):
        chain.run(motion, **kwargs)
    assert chain.chat_model.calls == [] and chain.store.list() == []


def test_renamed_personas_with_their_own_stances(chain: DebateChain) -> None:
    dove = Persona("dove", "You argue that talks with Arandia pay off.")
    hawk = Persona("hawk", "You argue that pressure on Arandia works better than talks.")
    debate = chain.run(MOTION, rounds=0, advocate=dove, skeptic=hawk)
    assert [t.speaker for t in debate.turns] == ["dove", "hawk", "judge"]
    assert 'You debate on the side "dove". You argue that talks with Arandia pay off.' in chain.chat_model.calls[0][0].content


def test_a_renamed_side_without_a_stance_keeps_its_default_stance(chain: DebateChain) -> None:
    debate = chain.run(MOTION, rounds=0, advocate=Persona("dove", "  "))
    assert debate.advocate == Persona("dove", personas.ADVOCATE.stance, personas.ADVOCATE.search_terms)


def test_each_side_searches_its_own_documents_with_its_own_words(chain: DebateChain, monkeypatch: pytest.MonkeyPatch) -> None:
    stances = chain.retriever.library.registry.stances()
    searches: list[tuple[str, list[str]]] = []
    retrieve = chain.retriever.retrieve

    def spy(query, *args, **kwargs):
        searches.append((query, sorted(stances[d] for d in kwargs["doc_ids"])))
        return retrieve(query, *args, **kwargs)

    monkeypatch.setattr(chain.retriever, "retrieve", spy)
    chain.gather_sources(MOTION, personas.ADVOCATE, Persona("hawk", "Sanctions first."))
    assert searches[0] == (f"{MOTION} {personas.ADVOCATE.search_terms}".strip(), ["advocate"])
    assert all(query == f"{MOTION} Sanctions first." and set(kinds) <= {"skeptic", "unknown"}
               for query, kinds in searches if query.endswith("Sanctions first."))  # fmt: skip
    assert (f"{MOTION} Sanctions first.", ["skeptic"]) in searches


def test_persona_names_and_stances_lose_control_characters_on_every_surface(chain: DebateChain) -> None:
    debate = chain.run(MOTION, rounds=0, advocate=Persona("\x1b[31mdove\x00", "Talks\x07 work.\x1b]0;x\x07"))
    assert debate.advocate.name == "dove" and debate.advocate.stance == "Talks work."
    assert chain.store.get(debate.id).advocate.name == "dove"
    with pytest.raises(DebateError, match="needs a name"):
        chain.run(MOTION, rounds=0, advocate=Persona("\x00\x1b[2J", ""))


def test_a_tag_that_drops_the_quotes_abandoning_is_not_supported() -> None:
    """Seen in a real debate: the tag "Engagement strengthens North Korea's leadership" for a quote
    saying that *abandoning* engagement strengthens the hardliners."""
    quote = ("Second, by abandoning engagement, the council strengthens the hand of those in Arandia's "
             "leadership who doubt the usefulness of negotiations.")
    assert not tag_supported("Engagement strengthens Arandia's leadership", quote)
    assert tag_supported("Abandoning engagement strengthens Arandia's hardliners who doubt negotiations", quote)


def test_a_sentence_the_model_places_on_the_other_side_is_never_offered(library: Library, articles: Path) -> None:
    """A side's own article may state the other side's case before answering it; the side check
    asks the model which side quoting each sentence argues, and one on the opponent's side is not
    offered. Each sentence is asked about once per motion, in rank order, only until the turn has
    its cards plus one."""
    library.ingest([str(articles)])
    _mark_sides(library)

    def rule(messages: list[BaseMessage]) -> str:
        if messages[0].content == prompts.SIDE_SYSTEM:
            return json.dumps({"side": "against" if "40,000 tonnes" in messages[-1].content else "neither"})
        return debater(messages)

    chain = _chain(library, rule, side_check=True)
    debate = chain.run(MOTION, rounds=1)
    asked = [m[-1].content for m in chain.chat_model.calls if m[0].content == prompts.SIDE_SYSTEM]
    card_prompts = [m[-1].content for m in chain.chat_model.calls if m[0].content.startswith("You debate on the side")]
    assert any("40,000 tonnes" in q for q in asked) and len(asked) == len(set(asked))  # asked, and once only
    assert not any("40,000 tonnes" in c.quote for c in _cards(debate) if c.role == "advocate")
    assert all(p.count("\n[") <= chain.settings.debate_cards_per_turn + 1 for p in card_prompts)
    advocate_turns = [t for t in debate.turns if t.role == "advocate"]
    assert sum(t.timing["side_set_aside"] for t in advocate_turns) == 1  # set aside where it came up, not asked again
    assert all(t.timing["side_check_s"] >= 0 for t in debate.turns[:4])
    assert all(len(t.cards) == 2 for t in debate.turns[:4])  # the other sentences still make full turns


@pytest.mark.parametrize(
    ("sentence", "names"),
    [
        ("An op-ed by Prof. Mark Paul, first published in The American Prospect.", True),
        ("Mark Paul is an assistant professor of economics.", True),
        ("The Prospect's readers wrote in to disagree.", False),  # not the publisher's whole name
        ("Rent control keeps tenants in their homes, Paul argues.", False),  # one word of the author's name
    ],
)
def test_a_sentence_naming_its_own_author_or_publisher_is_no_evidence(sentence: str, names: bool) -> None:
    from assistant.chains.debate import names_its_source

    passage = Passage(id="d-0000", doc_id="d", index=0, text=sentence, start=0, end=len(sentence), title="t", source="s",
                      author="Mark Paul", publisher="The American Prospect (excerpt)")  # fmt: skip
    assert names_its_source(sentence, passage) is names
