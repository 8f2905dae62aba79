"""Debate: advocate and skeptic argue a motion from one shared, numbered source list.

Order of play: advocate opening, skeptic opening, ``rounds`` rebuttal rounds (each side
answers the other's last turn), then the moderator's summary (agreement, clash, what the
sources leave open).

Side-aware retrieval: each side searches with the motion plus its own stance, so it gets
passages that support its case; the union (interleaved, duplicates once) becomes the one
source list of the whole debate, numbered once, so ``[n]`` means the same passage in every
turn and both sides may cite the same passage. The list is fixed before the first turn: the
system prompt (rules + sources) is then identical for every turn and llama.cpp evaluates it
only once; each turn adds only the transcript and its speaker's instruction, which come last.

Each side's instruction names the numbers its own search found ("the sources that help your
side most are [2], [4]"): a small model otherwise cites whatever comes first.

Every turn is checked like an answer (``assistant.grounding``). A turn with no supported
citation is replaced by the honest ``NO_MATERIAL`` sentence instead of unsupported claims.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from assistant import prompts
from assistant.cancel import GenerationStopped
from assistant.text import split_sentences
from assistant.grounding import check_grounding
from assistant.verify import Verifier, make_verifier
from assistant.prompts import Persona
from assistant.retrieval import HybridRetriever, QueryError, RetrievedPassage, validate_query, validate_text
from assistant.streaming import Generated, Timing, final_item, stream_filtered
from assistant.transcripts import COMPLETE, FAILED, STOPPED, Debate, DebateTurn, SourcePassage, TranscriptStore


@dataclass(frozen=True)
class DebateStarted:
    """The debate is saved and its numbered sources are fixed; turns follow.

    ``hints``: for each side, the source numbers its own search found, best first.
    """

    debate: Debate
    hints: dict[str, list[int]] = field(default_factory=dict)


@dataclass(frozen=True)
class TurnStarted:
    index: int
    role: str
    kind: str
    speaker: str


@dataclass(frozen=True)
class TurnText:
    index: int
    text: str


@dataclass(frozen=True)
class TurnFinished:
    turn: DebateTurn


DebateEvent = DebateStarted | TurnStarted | TurnText | TurnFinished | Debate


class DebateError(ValueError):
    """A debate request that cannot be run (bad rounds, empty persona name); the message says why."""


def _plan(rounds: int) -> list[tuple[str, str]]:
    """(role, kind) of every turn, in order."""
    turns = [("advocate", "opening"), ("skeptic", "opening")]
    for _ in range(rounds):
        turns += [("advocate", "rebuttal"), ("skeptic", "rebuttal")]
    return turns + [("moderator", "summary")]


def interleave_sources(per_side: Sequence[Sequence[RetrievedPassage]]) -> list[RetrievedPassage]:
    """A1, S1, A2, S2, ...: each side's best passages near the top; a passage shared by both once."""
    merged: dict[str, RetrievedPassage] = {}
    for rank in range(max((len(s) for s in per_side), default=0)):
        for side in per_side:
            if rank < len(side):
                merged.setdefault(side[rank].id, side[rank])
    return list(merged.values())


def gather_sources(
    retriever: HybridRetriever,
    motion: str,
    advocate: Persona,
    skeptic: Persona,
    k_per_side: int,
    doc_ids: Sequence[str] | None = None,
) -> tuple[list[RetrievedPassage], dict[str, list[int]]]:
    """The shared numbered list, and for each side the numbers its own search found (best first)."""
    per_side = {
        role: retriever.retrieve(prompts.SIDE_QUERY.format(motion=motion, search=p.search_text), k_per_side, doc_ids=doc_ids)
        for role, p in (("advocate", advocate), ("skeptic", skeptic))
    }
    passages = interleave_sources(list(per_side.values()))
    number = {p.id: n for n, p in enumerate(passages, start=1)}
    return passages, {role: [number[p.id] for p in found] for role, found in per_side.items()}


class DebateChain:
    """Stages, checks, streams and saves debates over the library."""

    def __init__(self, retriever: HybridRetriever, chat_model: BaseChatModel, store: TranscriptStore) -> None:
        self.retriever = retriever
        self.chat_model = chat_model
        self.store = store
        self.settings = retriever.settings
        self._verifier: Verifier | None = None

    @property
    def verifier(self) -> Verifier:
        """The configured verifier, built on first use (``rules+llm`` loads the local model)."""
        if self._verifier is None:
            self._verifier = make_verifier(self.settings)
        return self._verifier

    def gather_sources(
        self, motion: str, advocate: Persona, skeptic: Persona, doc_ids: Sequence[str] | None = None
    ) -> tuple[list[RetrievedPassage], dict[str, list[int]]]:
        return gather_sources(self.retriever, motion, advocate, skeptic, self.settings.debate_k_per_side, doc_ids)

    def _instruction(self, role: str, kind: str, advocate: Persona, skeptic: Persona, hints: dict[str, list[int]]) -> str:
        sentences = self.settings.debate_turn_sentences
        if role == "moderator":
            return prompts.MODERATOR_INSTRUCTION.format(first=advocate.name, second=skeptic.name, max_sentences=sentences)
        me, other = (advocate, skeptic) if role == "advocate" else (skeptic, advocate)
        template = prompts.OPENING_INSTRUCTION if kind == "opening" else prompts.REBUTTAL_INSTRUCTION
        hint = ", ".join(f"[{n}]" for n in hints[role][:3])
        return template.format(name=me.name, stance=me.stance, opponent=other.name, max_sentences=sentences, hint=hint)

    def turn_messages(self, system: str, motion: str, turns: Sequence[DebateTurn], instruction: str) -> list[BaseMessage]:
        history = [(t.speaker, t.text) for t in turns]
        return [SystemMessage(system), HumanMessage(prompts.debate_turn_prompt(motion, history, instruction))]

    def stream(
        self,
        motion: str,
        rounds: int | None = None,
        advocate: Persona = prompts.ADVOCATE,
        skeptic: Persona = prompts.SKEPTIC,
        doc_ids: Sequence[str] | None = None,
    ) -> Iterator[DebateEvent]:
        """Yield turn events as the debate is generated, and finally the saved ``Debate``."""
        motion = validate_query(motion, self.settings.max_question_chars)
        rounds = self.settings.debate_rounds if rounds is None else rounds
        if not 0 <= rounds <= self.settings.debate_max_rounds:
            raise DebateError(f"rounds must be between 0 and {self.settings.debate_max_rounds}, not {rounds}")
        advocate, skeptic = check_personas(advocate, skeptic)

        passages, hints = self.gather_sources(motion, advocate, skeptic, doc_ids)
        sources = [_source(n, p) for n, p in enumerate(passages, start=1)]
        debate = self.store.create(motion, rounds, advocate, skeptic, sources)
        speakers = debate.speakers()
        system = prompts.debate_system_prompt(passages)
        yield DebateStarted(debate, hints)
        try:
            for index, (role, kind) in enumerate(_plan(rounds)):
                yield TurnStarted(index, role, kind, speakers[role])
                if not passages:
                    turn = _turn(index, role, kind, speakers[role], prompts.NO_MATERIAL, passages, Timing())
                else:
                    instruction = self._instruction(role, kind, advocate, skeptic, hints)
                    messages = self.turn_messages(system, motion, debate.turns, instruction)
                    timing, raw = Timing(), ""
                    started = time.perf_counter()
                    for item in stream_filtered(self.chat_model, messages, len(passages), timing,
                                                max_tokens=self.settings.debate_turn_max_tokens):  # fmt: skip
                        if isinstance(item, Generated):
                            raw = item.text
                        else:
                            yield TurnText(index, item)
                    earlier = debate.turns if role != "moderator" else ()
                    turn = _turn(index, role, kind, speakers[role], raw, passages, timing, earlier, self.verifier)
                    timing.total_s = time.perf_counter() - started
                    turn.timing = timing.as_dict()
                debate.turns.append(turn)
                self.store.add_turn(debate.id, turn)
                yield TurnFinished(turn)
        except (GenerationStopped, GeneratorExit, KeyboardInterrupt):  # stopped from outside (client, server, Ctrl-C):
            # the finished turns stay, the debate is marked stopped
            self.store.set_status(debate.id, STOPPED)
            raise
        except BaseException:
            self.store.set_status(debate.id, FAILED)
            raise
        self.store.set_status(debate.id, COMPLETE)
        debate.status = COMPLETE
        yield debate

    def run(self, motion: str, rounds: int | None = None, **options) -> Debate:
        """The whole debate, without streaming."""
        return final_item(self.stream(motion, rounds, **options), Debate)


def check_personas(advocate: Persona, skeptic: Persona) -> tuple[Persona, Persona]:
    """Both sides cleaned (see ``_clean_persona``), or DebateError; the API calls this before it
    starts a stream, so a bad name is a 422 up front rather than an error line after the queue."""
    advocate, skeptic = _clean_persona(advocate, "advocate"), _clean_persona(skeptic, "skeptic")
    if advocate.name.casefold() == skeptic.name.casefold():
        raise DebateError("the two sides need different names")
    return advocate, skeptic


def _clean_persona(persona: Persona, role: str) -> Persona:
    """One line each, checked like a question (``validate_text``: no control characters, escapes,
    invalid Unicode or invisible-only names) for CLI, API and UI alike; defaults filled."""
    try:
        name = " ".join(validate_text(persona.name, 60, f"{role}'s name").split())
        stance = " ".join(validate_text(persona.stance, 600, f"{role}'s stance", allow_empty=True).split())
    except QueryError as exc:
        message = str(exc)
        raise DebateError(f"the {role} needs a name" if message.endswith("is empty") else message) from exc
    default = prompts.ADVOCATE if role == "advocate" else prompts.SKEPTIC
    if not stance or stance == default.stance:  # the default stance keeps its search words
        return Persona(name=name, stance=default.stance, search_terms=persona.search_terms or default.search_terms)
    return Persona(name=name, stance=stance, search_terms=" ".join(persona.search_terms.split()))


def _source(number: int, passage: RetrievedPassage) -> SourcePassage:
    return SourcePassage(
        number=number, passage_id=passage.id, doc_id=passage.doc_id, title=passage.title, author=passage.author,
        publisher=passage.publisher, source=passage.source, start=passage.start, end=passage.end, text=passage.text,
    )  # fmt: skip


def _sentence_key(sentence: str) -> str:
    """A sentence without markers, case and punctuation: two turns saying it alike get one key."""
    return " ".join(re.findall(r"[a-z0-9]+", re.sub(r"\[[^\]]*\]", " ", sentence.lower())))


def drop_repeated_sentences(raw: str, earlier: Sequence[DebateTurn]) -> tuple[str, list[str]]:
    """``raw`` without the sentences an earlier turn already said, and those sentences.

    The small model sometimes answers its opponent by copying the opponent's turn word for
    word; a side repeating the other side is not arguing its own case, so the copy is removed
    (and reported) before the citation check. The moderator is exempt: quoting the sides'
    strongest facts is its job.
    """
    said = {_sentence_key(s) for turn in earlier for s in split_sentences(turn.text)}
    said.discard("")
    repeated = [s for s in split_sentences(raw) if _sentence_key(s) in said]
    for sentence in repeated:
        raw = raw.replace(sentence, "", 1)
    return raw, repeated


def _turn(
    index: int,
    role: str,
    kind: str,
    speaker: str,
    raw: str,
    passages: Sequence[RetrievedPassage],
    timing: Timing,
    earlier: Sequence[DebateTurn] = (),
    verifier: Verifier | None = None,
) -> DebateTurn:
    """Check ``raw`` against the sources; a turn without one supported citation says so honestly."""
    fresh, repeated = drop_repeated_sentences(raw, earlier)
    started = time.perf_counter()
    checked = check_grounding(fresh, passages, verifier)
    timing.verify_ms = (time.perf_counter() - started) * 1000
    shown = checked.shown(prompts.NO_MATERIAL)
    return DebateTurn(
        index=index,
        role=role,
        kind=kind,
        speaker=speaker,
        text=shown.text,
        raw_text=raw,
        cited=shown.cited,
        no_material=not checked.grounded,
        invalid_citations=shown.invalid_citations,
        corrected_citations=shown.corrected_citations,
        uncited_sentences=shown.uncited_sentences,
        unsupported_sentences=shown.unsupported_sentences,
        repeated_sentences=repeated,
        timing=timing.as_dict(),
        sentences=[s.as_dict() for s in shown.sentences],
    )
