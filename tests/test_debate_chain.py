"""Debate logic with a deterministic chat model (real retrieval, real Chroma, real SQLite)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from langchain_core.messages import BaseMessage

from assistant import prompts
from assistant.debate import DebateChain, DebateError, TurnStarted, TurnText
from assistant.library import Library
from assistant.prompts import Persona
from assistant.retrieval import HybridRetriever, QueryError
from assistant.transcripts import COMPLETE, FAILED, Debate, TranscriptStore, to_markdown
from tests.fakes import ScriptedChatModel, number_of

MOTION = "Should the government offer Arandia a non-aggression pledge before full disarmament?"


def speaker_of(messages: list[BaseMessage]) -> str:
    instruction = messages[-1].content.rsplit("\n\n", 1)[-1]
    if instruction.startswith("You are the neutral moderator"):
        return "moderator"
    return re.match(r"You are the (.+?)\. ", instruction).group(1)


def debater(messages: list[BaseMessage]) -> str:
    """Cites the pro article for the advocate, the con article for the skeptic, both for the moderator."""
    who = speaker_of(messages)
    pro = f"The Harbor Accord let 40,000 tonnes of grain cross the border [{number_of(messages, '40,000 tonnes')}]."
    con = f"The Copper Lake agreement collapsed after Arandia expelled the inspectors [{number_of(messages, 'expelled')}]."
    if who == "moderator":
        return f"Clash: {pro} {con}"
    said = pro if "advocate" in who or who == "dove" else con
    if "last statement" in messages[-1].content.rsplit("\n\n", 1)[-1]:  # a rebuttal says it anew
        said = "In answer, the record shows it again: " + said[0].lower() + said[1:]
    return said


@pytest.fixture
def chain(library: Library, articles: Path) -> DebateChain:
    library.ingest([str(articles)])
    return DebateChain(
        HybridRetriever(library), ScriptedChatModel(rule=debater, calls=[]), TranscriptStore(library.settings.transcripts_path)
    )


def test_turn_order_streaming_and_a_shared_numbered_source_list(chain: DebateChain) -> None:
    events = list(chain.stream(MOTION, rounds=1))
    started = [(e.role, e.kind, e.speaker) for e in events if isinstance(e, TurnStarted)]
    assert started == [
        ("advocate", "opening", "engagement advocate"),
        ("skeptic", "opening", "skeptic"),
        ("advocate", "rebuttal", "engagement advocate"),
        ("skeptic", "rebuttal", "skeptic"),
        ("moderator", "summary", "moderator"),
    ]
    assert sum(isinstance(e, TurnText) for e in events) > 10  # streamed in pieces
    debate = events[-1]
    assert isinstance(debate, Debate) and debate.status == COMPLETE
    sources = {s.number: s for s in debate.sources}
    assert {Path(s.source).name for s in debate.sources} >= {"pro_engagement.txt", "skeptic.txt"}
    advocate, skeptic, *_, moderator = debate.turns
    assert all(Path(sources[n].source).name == "pro_engagement.txt" for n in advocate.cited)
    assert all(Path(sources[n].source).name == "skeptic.txt" for n in skeptic.cited)
    assert len(moderator.cited) == 2
    # One numbering for the whole debate: the same passage carries the same [n] in every turn.
    assert debate.turns[0].cited == debate.turns[2].cited and debate.turns[1].cited == debate.turns[3].cited


def test_every_turn_shares_the_system_prompt_and_extends_the_transcript(chain: DebateChain) -> None:
    chain.run(MOTION, rounds=1)
    calls = chain.chat_model.calls
    assert len(calls) == 5
    assert len({c[0].content for c in calls}) == 1  # sources + rules identical: llama.cpp reuses them
    users = [c[1].content for c in calls]
    for earlier, later in zip(users, users[1:]):
        transcript_part = earlier.rsplit("You are the", 1)[0]
        assert later.startswith(transcript_part)  # each prompt extends the previous one; role comes last
    assert "engagement advocate: The Harbor Accord" in users[1]


def test_renamed_personas_with_their_own_stances(chain: DebateChain) -> None:
    dove = Persona("dove", "You argue that talks with Arandia pay off.")
    hawk = Persona("hawk", "You argue that pressure on Arandia works better than talks.")
    debate = chain.run(MOTION, rounds=0, advocate=dove, skeptic=hawk)
    assert [t.speaker for t in debate.turns] == ["dove", "hawk", "moderator"]
    first_prompt = chain.chat_model.calls[0][1].content
    assert "You are the dove. You argue that talks with Arandia pay off." in first_prompt


def test_invalid_citations_are_removed_and_a_side_without_support_says_so(library: Library, articles: Path) -> None:
    library.ingest([str(articles)])

    def rule(messages: list[BaseMessage]) -> str:
        if speaker_of(messages) == "skeptic":
            return "Dragons guard the northern border and eat all the grain [2]."
        return f"The Harbor Accord reopened the Tessaly rail link after eleven years [{number_of(messages, 'Tessaly rail')}][42]."

    chain = DebateChain(HybridRetriever(library), ScriptedChatModel(rule=rule, calls=[]),
                        TranscriptStore(library.settings.transcripts_path))  # fmt: skip
    debate = chain.run(MOTION, rounds=0)
    advocate, skeptic, _ = debate.turns
    assert advocate.invalid_citations == ["[42]"] and "[42]" not in advocate.text and advocate.cited
    assert skeptic.no_material and skeptic.text == prompts.NO_MATERIAL and skeptic.cited == []
    assert "Dragons" in skeptic.raw_text


def test_transcript_is_saved_after_every_turn_and_exports_markdown(chain: DebateChain) -> None:
    debate = chain.run(MOTION, rounds=0)
    saved = chain.store.get(debate.id)
    assert saved.turns == debate.turns and saved.sources == debate.sources and saved.status == COMPLETE
    markdown = to_markdown(saved)
    assert markdown.startswith(f"# Debate: {MOTION}")
    assert "## Opening: engagement advocate" in markdown and "## Summary: moderator" in markdown
    references = markdown.split("## References", 1)[1]
    for source in saved.sources:
        assert f"\n{source.number}. {source.title}" in references
    assert chain.store.list()[0][:2] == (debate.id, MOTION)


def test_a_failure_mid_debate_keeps_the_finished_turns(library: Library, articles: Path) -> None:
    library.ingest([str(articles)])

    def rule(messages: list[BaseMessage]) -> str:
        if speaker_of(messages) == "skeptic":
            raise RuntimeError("model crashed")
        return debater(messages)

    store = TranscriptStore(library.settings.transcripts_path)
    chain = DebateChain(HybridRetriever(library), ScriptedChatModel(rule=rule, calls=[]), store)
    with pytest.raises(RuntimeError):
        chain.run(MOTION, rounds=1)
    debate_id, _, _, status, n_turns = store.list()[0]
    assert status == FAILED and n_turns == 1
    assert store.get(debate_id).turns[0].speaker == "engagement advocate"


def test_empty_library_gives_honest_turns_without_calling_the_model(library: Library) -> None:
    chain = DebateChain(HybridRetriever(library), ScriptedChatModel(rule=debater, calls=[]),
                        TranscriptStore(library.settings.transcripts_path))  # fmt: skip
    debate = chain.run(MOTION, rounds=0)
    assert [t.text for t in debate.turns] == [prompts.NO_MATERIAL] * 3
    assert chain.chat_model.calls == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"rounds": -1}, DebateError),
        ({"rounds": 99}, DebateError),
        ({"advocate": Persona("  ", "x")}, DebateError),
        ({"skeptic": Persona("Engagement Advocate", "x")}, DebateError),
        ({"motion": "   "}, QueryError),
    ],
)
def test_bad_requests_are_refused_before_any_work(chain: DebateChain, kwargs: dict, error: type) -> None:
    motion = kwargs.pop("motion", MOTION)
    with pytest.raises(error):
        chain.run(motion, **kwargs)
    assert chain.chat_model.calls == [] and chain.store.list() == []


def test_prompts_put_role_last() -> None:
    prompt = prompts.debate_turn_prompt("M?", [("a", "x [1].")], "You are the b. Argue.")
    assert prompt.index("Motion: M?") < prompt.index("Debate so far") < prompt.index("a: x [1].") < prompt.index("You are the b")
    assert prompts.debate_turn_prompt("M?", [], "Go.") == "Motion: M?\n\nGo."


def test_a_renamed_side_without_a_stance_keeps_its_default_stance(chain: DebateChain) -> None:
    """...and its search words; a side given its own stance searches with that stance."""
    debate = chain.run(MOTION, rounds=0, advocate=Persona("dove", "  "))
    assert debate.advocate == Persona("dove", prompts.ADVOCATE.stance, prompts.ADVOCATE.search_terms)
    assert f"You are the dove. {prompts.ADVOCATE.stance}" in chain.chat_model.calls[0][1].content


def test_each_side_searches_with_its_own_words(chain: DebateChain, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default personas search with short topic words, a custom stance with itself."""
    queries: list[str] = []
    retrieve = chain.retriever.retrieve
    monkeypatch.setattr(chain.retriever, "retrieve", lambda q, *a, **kw: queries.append(q) or retrieve(q, *a, **kw))
    chain.gather_sources(MOTION, prompts.ADVOCATE, Persona("hawk", "Sanctions first."))
    assert queries == [f"{MOTION} {prompts.ADVOCATE.search_terms}", f"{MOTION} Sanctions first."]


def test_a_side_that_copies_its_opponent_is_not_shown_the_copy(library: Library, articles: Path) -> None:
    """The skeptic repeating the advocate's sentence word for word: removed and reported; with
    nothing of its own left, the skeptic's turn says honestly that it has no material."""
    library.ingest([str(articles)])

    def parrot(messages: list[BaseMessage]) -> str:
        said = f"The Harbor Accord let 40,000 tonnes of grain cross the border [{number_of(messages, '40,000 tonnes')}]."
        return said if speaker_of(messages) != "moderator" else f"Both sides spoke. {said}"

    chain = DebateChain(HybridRetriever(library), ScriptedChatModel(rule=parrot, calls=[]),
                        TranscriptStore(library.settings.transcripts_path))  # fmt: skip
    debate = chain.run(MOTION, rounds=0)
    advocate, skeptic, moderator = debate.turns
    assert advocate.cited and not advocate.repeated_sentences
    assert skeptic.no_material and skeptic.text == prompts.NO_MATERIAL
    assert skeptic.repeated_sentences == [advocate.raw_text]
    assert moderator.cited and not moderator.repeated_sentences  # quoting the sides is the moderator's job
    assert chain.store.get(debate.id).turns[1].repeated_sentences == skeptic.repeated_sentences


def test_persona_names_and_stances_lose_control_characters_on_every_surface(chain: DebateChain) -> None:
    """The debate cleans personas itself, so CLI, API and UI all store what the UI can show."""
    debate = chain.run(MOTION, rounds=0, advocate=Persona("\x1b[31mdove\x00", "Talks\x07 work.\x1b]0;x\x07"))
    assert debate.advocate.name == "dove" and debate.advocate.stance == "Talks work."
    assert chain.store.get(debate.id).advocate.name == "dove"
    with pytest.raises(DebateError, match="needs a name"):
        chain.run(MOTION, rounds=0, advocate=Persona("\x00\x1b[2J", ""))
