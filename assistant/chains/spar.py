"""Spar: the user argues one side of a motion, the assistant the other, and every claim is checked.

A session is a saved debate (``TranscriptStore``) with ``user_side`` set. Rounds are an
opening, ``rounds`` rebuttals and a closing; in each the user speaks first. Each sentence of
the user's turn is checked against the library before the assistant says anything: the
claim verifier (``assistant.checks.verify``, the configured mode) decides against the best passages
of the whole library whether a passage supports it, contradicts it (same subject, another
number or the opposite polarity) or whether nothing speaks to it. The marks come first,
sentence by sentence: the rules' mark of each at once (provisional), then, with the local
model as judge (``spar_verifier``), a final mark for each once the judge has confirmed or
revised every supported one. Then the assistant answers with evidence cards cut from passages of
its own stance only (side-aware retrieval, as in a debate), answering the user's weakest
claim first: contradicted, then unfounded, then the least covered.

The scorecard is computed from the saved turns, so it is the same in the UI, the CLI, the
API and the Markdown export, and a session resumes after a restart from what was saved.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

from assistant.chains.debate_events import CardMade, ClaimMarked, DebateStarted, Scorecard, SideScore, TurnFinished, TurnStarted, TurnText, UnusedCard
from assistant.chains.ballot import ballot_lines, judge_ballot
from assistant.chains.debate import DebateChain, DebateError, Opposed, numbered_source
from assistant.core.cancel import GenerationStopped
from assistant.core.passage import Passage
from assistant.core.personas import ADVOCATE, Persona, SKEPTIC
from assistant.core.sides import StanceError, opponent, validate_side
from assistant.core.inputs import validate_query, validate_text
from assistant.core.text import split_sentences, text_key
from assistant.core.debate_record import COMPLETE, CONTRADICTED, FAILED, NOT_FOUND, RUNNING, STOPPED, SUPPORTED, WAITING, ClaimCheck, Debate, DebateTurn
from assistant.core.settings import Settings
from assistant.checks.verify import CONFLICTS, Verdict, Verifier
from assistant.chains.configured_checks import make_verifier

USER_NAME = "you"
# A contradiction needs a passage that says nearly the same thing: most of the claim's words in its
# closest sentence. Below this a polarity or number difference is a different statement, not a denial.
CONTRADICTION_COVERAGE = 0.75
# How many unused cards of the user's own side the scorecard offers.
UNUSED_CARDS = 3
_WEAKNESS = {CONTRADICTED: 0, NOT_FOUND: 1, SUPPORTED: 2}


class SparError(DebateError):
    """A spar request that cannot be played (unknown side, a finished session, a turn too long)."""


@dataclass(frozen=True)
class _RulesCheck:
    """A sentence as the rules marked it, with what the judge needs to confirm the mark."""

    claim: ClaimCheck
    verdict: Verdict
    passages: list[Passage]


SparEvent = DebateStarted | ClaimMarked | TurnStarted | TurnText | CardMade | TurnFinished | Scorecard | Debate


def spar_check_settings(settings: Settings) -> Settings:
    """The settings a spar turn's sentences are checked with: ``verifier`` is ``spar_verifier``, and
    "rules" for the extractive baseline, which has no model to judge with (the local GGUF and an
    OpenAI-compatible server each judge with their own model: ``judge.make_judge``)."""
    judged = settings.spar_verifier == "rules+llm" and settings.llm_backend != "extractive"
    return settings.model_copy(update={"verifier": "rules+llm" if judged else "rules"})


def rounds_of(rounds: int) -> list[str]:
    """The kind of each round: opening, rebuttals, closing."""
    return ["opening", *["rebuttal"] * rounds, "closing"]


def weakest_first(claims: Sequence[ClaimCheck]) -> list[ClaimCheck]:
    """Contradicted claims, then those nothing supports, then supported ones by how little the evidence covers."""
    return sorted(claims, key=lambda c: (_WEAKNESS.get(c.mark, 1), c.coverage))


def claim_mark(verdict: Verdict) -> str:
    """SUPPORTED, CONTRADICTED (the closest sentence covers the claim but gives another number or
    the other polarity) or NOT_FOUND (nothing close, or close but not saying it)."""
    if verdict.supported:
        return SUPPORTED
    if verdict.evidence and verdict.coverage >= CONTRADICTION_COVERAGE and verdict.rule in CONFLICTS:
        return CONTRADICTED
    return NOT_FOUND


class SparChain:
    """Starts, plays, scores and saves spar sessions; the assistant's turns reuse the debate's cards."""

    def __init__(self, debates: DebateChain, verifier: Verifier | None = None) -> None:
        self.debates = debates
        self.retriever = debates.retriever
        self.store = debates.store
        self.settings = debates.settings
        self._verifier = verifier

    @cached_property
    def verifier(self) -> Verifier:
        """The claim verifier ``spar_verifier`` asks for (rules, or rules then the local model), built on first use."""
        return self._verifier or make_verifier(spar_check_settings(self.settings))

    # -- a session -----------------------------------------------------------------------
    def start(self, motion: str, side: str, rounds: int | None = None, doc_ids: Sequence[str] | None = None) -> Debate:
        """A new saved session: the user argues ``side``; both sides' own passages are gathered
        now (no model), so a side with nothing to argue from is refused before the user types."""
        motion = validate_query(motion, self.settings.max_question_chars)
        try:
            side = validate_side(side)
        except StanceError as exc:
            raise SparError(str(exc)) from exc
        rounds = self.settings.spar_rounds if rounds is None else rounds
        if not 0 <= rounds <= self.settings.debate_max_rounds:
            raise SparError(f"rounds must be between 0 and {self.settings.debate_max_rounds}, not {rounds}")
        personas = {role: Persona(USER_NAME, p.stance, p.search_terms) if role == side else p
                    for role, p in (("advocate", ADVOCATE), ("skeptic", SKEPTIC))}  # fmt: skip
        passages, _ = self.debates.gather_sources(motion, personas["advocate"], personas["skeptic"], doc_ids)
        sources = self.debates.numbered_sources(passages)
        debate = self.store.create(motion, rounds, personas["advocate"], personas["skeptic"], sources, user_side=side)
        self.store.set_status(debate.id, WAITING)  # the user plays first, now or after a restart
        debate.status = WAITING
        return debate

    def session(self, session_id: int) -> Debate:
        """A saved spar session (KeyError if there is none with this id)."""
        debate = self.store.get(session_id)
        if not debate.is_spar:
            raise KeyError(f"no spar session with id {session_id} (it is a debate)")
        return debate

    @staticmethod
    def rounds_played(debate: Debate) -> int:
        """How many of the session's rounds the user has played (answered or not)."""
        return sum(1 for t in debate.turns if t.role == debate.user_side)

    @staticmethod
    def next_round(debate: Debate) -> str | None:
        """The kind of round the user plays next, or None when all the user's rounds are played."""
        played = SparChain.rounds_played(debate)
        kinds = rounds_of(debate.rounds)
        return kinds[played] if played < len(kinds) else None

    @staticmethod
    def unanswered(debate: Debate) -> DebateTurn | None:
        """The user's last turn if the assistant has not answered it (a play stopped or failed in between):
        the next ``play`` answers it first."""
        return debate.turns[-1] if debate.turns and debate.turns[-1].role == debate.user_side else None

    @staticmethod
    def is_over(debate: Debate) -> bool:
        return SparChain.next_round(debate) is None and SparChain.unanswered(debate) is None

    def check_play(self, session_id: int, text: str) -> None:
        """What ``play`` would refuse (KeyError, SparError, QueryError), without running anything."""
        self.play(session_id, text).close()

    def check_turn_text(self, text: str) -> str:
        """The cleaned turn, or SparError/QueryError saying what is wrong (nothing is saved before this passes)."""
        text = validate_text(text, self.settings.max_question_chars, what="turn")
        n_words = len(text.split())
        if n_words > self.settings.spar_max_words:
            raise SparError(f"the turn has {n_words} words; the limit is {self.settings.spar_max_words}")
        return text

    def play(self, session_id: int, text: str) -> Generator[SparEvent, None, None]:
        """The user's turn: each sentence's mark as it is checked, then the assistant's cards;
        after the closing round, the scorecard and the finished session.

        Checked now, before anything runs (errors raise here, not from the iterator): the session,
        the round and the text. An unanswered last turn is answered first; ``text`` may then be
        empty ("answer my last turn")."""
        debate = self.session(session_id)
        waiting = self.unanswered(debate)
        kind = self.next_round(debate)
        if kind is None and waiting is None:
            raise SparError(f"spar session {session_id} is over; start a new one")
        if waiting is not None and not (text or "").strip():
            return self._play(debate, waiting, None, "")
        if kind is None:
            raise SparError(f"all rounds of spar session {session_id} are played; send an empty turn to get "
                            "the answer to your closing")  # fmt: skip
        return self._play(debate, waiting, kind, self.check_turn_text(text))

    def _play(
        self, debate: Debate, waiting: DebateTurn | None, kind: str | None, text: str
    ) -> Generator[SparEvent, None, None]:
        yield DebateStarted(debate)
        self.store.set_status(debate.id, RUNNING)
        try:
            if waiting is not None:
                yield from self._reply(debate, waiting)
            if kind is not None:
                turn = yield from self._user_turn(debate, kind, text)
                yield from self._reply(debate, turn)
        except (GenerationStopped, GeneratorExit, KeyboardInterrupt):  # the finished turns stay
            self.store.set_status(debate.id, STOPPED)
            raise
        except BaseException:
            self.store.set_status(debate.id, FAILED)
            raise
        if self.is_over(debate):
            self.store.set_status(debate.id, COMPLETE)
            debate.status = COMPLETE
            yield self.scorecard(debate)
        else:
            self.store.set_status(debate.id, WAITING)  # the user plays next, now or after a restart
            debate.status = WAITING
        yield debate

    def _user_turn(self, debate: Debate, kind: str, text: str) -> Generator[SparEvent, None, DebateTurn]:
        """The user's turn, each sentence marked as soon as it is checked; saved with its final marks
        and the sources they cite."""
        user = debate.user_side
        assert user is not None  # a spar session (SparChain.session refuses a debate without user_side)
        index = len(debate.turns)
        yield TurnStarted(index, user, kind, debate.speakers()[user])
        started = time.perf_counter()
        claims: list[ClaimCheck] = []
        for marked in self._marks(debate, index, text):
            if marked.final:
                claims.append(marked.claim)
            yield marked
        turn = DebateTurn(index=index, role=user, kind=kind, speaker=debate.speakers()[user], text=text, claims=claims,
                          cited=sorted({c.source for c in claims if c.source}),
                          timing={"check_s": time.perf_counter() - started})  # fmt: skip
        self.store.set_sources(debate.id, debate.sources)
        self._save(debate, turn)
        yield TurnFinished(turn)
        return turn

    def _reply(self, debate: Debate, turn: DebateTurn) -> Iterator[SparEvent]:
        """The assistant's cards for the user's ``turn``, the first answering its weakest claim."""
        assert debate.user_side is not None  # a spar session (SparChain.session refuses a debate without it)
        assistant = opponent(debate.user_side)
        index = len(debate.turns)
        yield TurnStarted(index, assistant, turn.kind, debate.speakers()[assistant])
        started = time.perf_counter()
        # Each claim on its one prompt line: the user's text stays data, it cannot open a line of its own.
        opposing = [Opposed(c.label, " ".join(c.text.split()), c.text) for c in weakest_first(turn.claims)][:4]
        personas = {"advocate": debate.advocate, "skeptic": debate.skeptic}
        cards = self.debates.card_turn(index, assistant, turn.kind, personas, debate.motion, debate,
                                       self._own(debate, assistant), opposing,
                                       first_answers=opposing[0].label if opposing else None,
                                       n_candidates=self.settings.spar_card_candidates)  # fmt: skip
        reply = yield from self.debates.cards_as_made(index, cards)
        reply.timing["total_s"] = time.perf_counter() - started
        self._save(debate, reply)
        yield TurnFinished(reply)

    def _save(self, debate: Debate, turn: DebateTurn) -> None:
        debate.turns.append(turn)
        self.store.add_turn(debate.id, turn)

    # -- checking the user's claims ------------------------------------------------------
    def _marks(self, debate: Debate, index: int, text: str) -> Iterator[ClaimMarked]:
        """Each sentence's rules mark as soon as it is checked; with a judge these are provisional, and
        once all are out the judge confirms or revises each
        SUPPORTED one and decides each the rules left undecided, in order, each sentence's final mark following."""
        judged = self.verifier.judge is not None
        checked: list[_RulesCheck] = []
        for check in self._rules_checks(debate, text):
            checked.append(check)
            yield ClaimMarked(index, check.claim, final=not judged)
        if judged:
            for check in checked:
                yield ClaimMarked(index, self._confirmed(check))

    def _rules_checks(self, debate: Debate, text: str) -> Iterator[_RulesCheck]:
        """Each sentence against the library's best passages (every stance: a fact is a fact), by the
        rules; a passage that decides a mark joins the session's numbered sources."""
        first = 1 + sum(len(t.claims) for t in debate.turns)
        for offset, sentence in enumerate(split_sentences(text)):
            found = self.retriever.retrieve(sentence, self.settings.spar_claim_passages)
            verdict = self.verifier.rules(sentence, found)
            yield _RulesCheck(self._claim(debate, f"U{first + offset}", sentence, verdict, found), verdict, found)

    def _confirmed(self, check: _RulesCheck) -> ClaimCheck:
        """The final mark: the judge's No turns SUPPORTED into NOT_FOUND (the closest passage stays
        named), its Yes turns a mark the rules left undecided into SUPPORTED; other marks stand."""
        verdict = self.verifier.confirm(check.verdict, check.claim.text, check.passages)
        if verdict.supported == check.verdict.supported:
            return check.claim
        return replace(check.claim, mark=claim_mark(verdict), reason=verdict.reason)

    def _claim(self, debate: Debate, label: str, sentence: str, verdict: Verdict,
               found: Sequence[Passage]) -> ClaimCheck:  # fmt: skip
        """The mark of ``verdict`` and the passage sentence that decided it (none when nothing came close)."""
        mark = claim_mark(verdict)
        if mark == NOT_FOUND and verdict.coverage < self.verifier.min_coverage:  # nothing came close
            return ClaimCheck(label, sentence, mark, verdict.reason, coverage=verdict.coverage)
        span = verdict.evidence[0]
        passage = next(p for p in found if p.id == span.passage_id)
        source = self._numbered(debate, passage)
        return ClaimCheck(label, sentence, mark, verdict.reason, source, span.text, passage.id, verdict.coverage)

    def _numbered(self, debate: Debate, passage: Passage) -> int:
        """The session's source number of ``passage``, added to the list if it is new."""
        for source in debate.sources:
            if source.passage.id == passage.id:
                return source.number
        stance = self.retriever.library.registry.stances().get(passage.doc_id, "unknown")
        debate.sources.append(numbered_source(len(debate.sources) + 1, passage, stance))
        return len(debate.sources)

    def _own(self, debate: Debate, role: str) -> list[tuple[int, Passage]]:
        """The passages ``role`` may quote: its own stance's, then unknown ones, never the other side's;
        with the sentences set aside at ingest as the registry has them now (a saved session's
        sources do not carry them)."""
        ranked = sorted(debate.sources, key=lambda s: (s.stance != role, s.number))
        ranked = [s for s in ranked if s.stance in (role, "unknown")]
        passages = self.retriever.library.registry.with_set_aside(s.passage for s in ranked)
        return [(s.number, passage) for s, passage in zip(ranked, passages)]

    # -- the scorecard -------------------------------------------------------------------
    def scorecard(self, debate: Debate) -> Scorecard:
        """Counts per side from the saved turns; the user's strongest unused evidence."""
        user = debate.user_side
        assert user is not None  # a spar session (SparChain.session refuses a debate without user_side)
        speakers = debate.speakers()
        claims = [c for t in debate.turns if t.role == user for c in t.claims]
        cards = [c for t in debate.turns if t.role != user for c in t.cards]
        count = lambda mark: sum(1 for c in claims if c.mark == mark)  # noqa: E731
        sides = [
            SideScore(user, speakers[user], len(claims), count(SUPPORTED), count(CONTRADICTED), count(NOT_FOUND)),
            # A card's quote is an exact sentence of its source and its tag passed the tag check (or is the quote).
            SideScore(opponent(user), speakers[opponent(user)], len(cards), len(cards), 0, 0),
        ]
        used = {text_key(c.quote) for c in claims if c.quote} | {text_key(c.quote) for c in cards}
        own = self._own(debate, user)
        query = f"{debate.motion} {(debate.advocate if user == 'advocate' else debate.skeptic).search_text}".strip()
        unused = [UnusedCard(c.source, c.sentence.text) for c in self.debates.candidates(query, own, used)][:UNUSED_CARDS]
        complete = self.is_over(debate)
        if not complete:
            return Scorecard(sides, unused, complete=False)
        # Decided from the saved turns alone (no model call, so every view of it is the same): the
        # default criterion, no decisive clash.
        ballot, _ = judge_ballot(None, debate.motion, debate)
        return Scorecard(sides, unused, True, ballot, "\n".join(ballot_lines(ballot, debate)))
