"""Debate: the sides for and against a motion argue it with evidence cards; a judge writes the ballot.

Order of play: the side for the motion opens ("advocate", as roles and stances are stored; see
``assistant.core.sides``), then the side against ("skeptic"), ``rounds`` rebuttal rounds (each side
answers the other's cards), then the judge's ballot (stored with the role "moderator").

Side-aware evidence: every document has a stance (for, against or unknown). Each side
searches its own-stance documents first, then unknown ones, never the other side's, so a
side cannot argue its opponent's case with its opponent's evidence. When a side has no
documents to draw from, the debate refuses before anything is generated and says which kind
of article to add. The union of both sides' passages is the debate's one numbered source list.

A debater's turn is 2-3 evidence cards (``assistant.chains.cards``): the best sentences of its own
passages for the motion (or for the opponent's cards, in a rebuttal) are offered with ids;
the model picks ids and writes a tag for each under a JSON-schema grammar; code builds each
card from the chosen sentence (the quote is exact by construction), checks the tag against
its quote, and never offers a quote already used in the debate. A rebuttal card names the
opponent card it answers. The judge's ballot (``assistant.chains.ballot``) decides each clash (a card and
the card it answers) by the flow, with a reason made of the two cards' checked tags, lists the
dropped arguments, and gives a decision whose reason cites only cards; the model names the clash
that matters most on a criterion the user may choose.
"""

from __future__ import annotations

import re
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from assistant.core.errors import UserError
from assistant.core import prompts
from assistant.chains.debate_events import CardMade, DebateStarted, TurnFinished, TurnStarted, TurnText
from assistant.chains.ballot import DEFAULT_CRITERION, ballot_lines, judge_ballot
from assistant.chains.cards import Candidate, assemble_cards, card_schema, card_text, finished_picks
from assistant.models.structured import StructuredReply, stream_structured
from assistant.retrieval.context import ContextBuilder
from assistant.core.cancel import GenerationStopped
from assistant.core.personas import ADVOCATE, SKEPTIC, Persona
from assistant.models.judge import LlamaJudge, make_judge
from assistant.models.llm import LocalLlamaChatModel
from assistant.chains.side_check import SideSorter
from assistant.core.sides import DIRECTIONS, opponent
from assistant.checks.relevance import RebuttalCheck
from assistant.chains.configured_checks import make_rebuttal_check
from assistant.core.passage import NumberedPassage, Passage
from assistant.core.inputs import QueryError, validate_query, validate_text
from assistant.chains.streaming import final_item
from assistant.core.text import text_key
from assistant.core.debate_record import COMPLETE, FAILED, STOPPED, Card, Debate, DebateTurn
from assistant.storage.transcripts import TranscriptStore

if TYPE_CHECKING:  # annotations only: a chain is given its retriever (``assistant.server.service.build``)
    from assistant.retrieval.retrieval import HybridRetriever


# Quotes shorter than this say too little to be evidence; longer ones cost too many prompt tokens.
MIN_QUOTE_CHARS = 40
MAX_QUOTE_CHARS = 400
# A judging criterion is a short phrase ("impact on regional security").
MAX_CRITERION_CHARS = 200


@dataclass(frozen=True)
class Opposed:
    """A point a rebuttal answers: its label ("S1", "U2"), the claim shown to the model (a card's
    tag, a user's sentence), the text the rebuttal check reads (tag and quote), whether it is an
    opponent's card (else a spar user's claim), and the card's quote."""

    label: str
    tag: str
    text: str
    is_card: bool = False
    quote: str = ""

    @classmethod
    def of_card(cls, card: Card) -> Opposed:
        return cls(card.label, card.tag, f"{card.tag} {card.quote}", is_card=True, quote=card.quote)


def _unanswered_cards(debate: Debate, role: str, most: int = 4) -> list[Opposed]:
    """The opponent's latest cards that ``role`` has not answered yet (at most ``most``)."""
    earlier = [c for t in debate.turns for c in t.cards]
    answered = {c.answers for c in earlier if c.role == role and c.answers}
    return [Opposed.of_card(c) for c in earlier if c.role != role and c.label not in answered][-most:]


DebateEvent = DebateStarted | TurnStarted | TurnText | CardMade | TurnFinished | Debate


class DebateError(UserError, ValueError):
    """A debate request that cannot be run (bad rounds, empty persona name, a side with no
    documents of its own); the message says why."""


def _plan(rounds: int) -> list[tuple[str, str]]:
    """(role, kind) of every turn, in order."""
    turns = [("advocate", "opening"), ("skeptic", "opening")]
    for _ in range(rounds):
        turns += [("advocate", "rebuttal"), ("skeptic", "rebuttal")]
    return turns + [("moderator", "summary")]


def interleave_sources(per_side: Sequence[Sequence[Passage]]) -> list[Passage]:
    """A1, S1, A2, S2, ...: each side's best passages near the top; a passage shared by both once."""
    merged: dict[str, Passage] = {}
    for rank in range(max((len(s) for s in per_side), default=0)):
        for side in per_side:
            if rank < len(side):
                merged.setdefault(side[rank].id, side[rank])
    return list(merged.values())


def side_documents(stances: dict[str, str], role: str, doc_ids: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """(documents of ``role``'s own stance, documents of unknown stance), within ``doc_ids`` if given."""
    allowed = set(doc_ids) if doc_ids is not None else None
    pool = {d: s for d, s in stances.items() if allowed is None or d in allowed}
    return sorted(d for d, s in pool.items() if s == role), sorted(d for d, s in pool.items() if s == "unknown")


def _no_material(role: str, persona: Persona, doc_ids: Sequence[str] | None) -> str:
    return prompts.NO_SIDE_MATERIAL.format(
        name=persona.name, scope=" among the chosen documents" if doc_ids else " in the library",
        direction=DIRECTIONS[role],
    )  # fmt: skip


def gather_sources(
    retriever: HybridRetriever,
    motion: str,
    advocate: Persona,
    skeptic: Persona,
    k_per_side: int,
    doc_ids: Sequence[str] | None = None,
) -> tuple[list[Passage], dict[str, list[int]]]:
    """The shared numbered list, and for each side the numbers of its own passages (best first).

    Each side searches the documents of its own stance first and fills up to ``k_per_side``
    from documents of unknown stance; it never draws on the other side's documents. A side
    with no such documents raises DebateError naming the kind of article to add.
    """
    stances = retriever.library.registry.stances()
    per_side: dict[str, list[Passage]] = {}
    for role, persona in (("advocate", advocate), ("skeptic", skeptic)):
        own, unknown = side_documents(stances, role, doc_ids)
        if not own and not unknown:
            raise DebateError(_no_material(role, persona, doc_ids))
        query = prompts.SIDE_QUERY.format(motion=motion, search=persona.search_text).strip()
        found = retriever.retrieve(query, k_per_side, doc_ids=own) if own else []
        if unknown and len(found) < k_per_side:
            found += retriever.retrieve(query, k_per_side - len(found), doc_ids=unknown)
        per_side[role] = found
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
        embeddings = retriever.library.embeddings
        self.ranker = ContextBuilder(embeddings.embed_documents, embeddings.embed_query, retriever.next_passage, 0)

    @cached_property
    def side_sorter(self) -> SideSorter | None:
        """The check that a sentence offered to a side does not argue the other side's case (None when
        off, and for the extractive baseline, which has no model to ask)."""
        if not self.settings.debate_side_check or self.settings.llm_backend == "extractive":
            return None
        judge = make_judge(self.settings) if isinstance(self.chat_model, LocalLlamaChatModel) else None
        return SideSorter(self.chat_model, judge if isinstance(judge, LlamaJudge) else None)

    @cached_property
    def rebuttals(self) -> RebuttalCheck | None:
        """The configured check that a rebuttal card answers the card it names, built on first use."""
        return make_rebuttal_check(self.settings)

    def gather_sources(
        self, motion: str, advocate: Persona, skeptic: Persona, doc_ids: Sequence[str] | None = None
    ) -> tuple[list[Passage], dict[str, list[int]]]:
        return gather_sources(self.retriever, motion, advocate, skeptic, self.settings.debate_k_per_side, doc_ids)

    def numbered_sources(self, passages: Sequence[Passage]) -> list[NumberedPassage]:
        """``passages`` as the debate's numbered source list [1], [2], ..., each with its document's stance."""
        stances = self.retriever.library.registry.stances()
        return [numbered_source(n, p, stances.get(p.doc_id, "unknown")) for n, p in enumerate(passages, start=1)]

    def stream(
        self,
        motion: str,
        rounds: int | None = None,
        advocate: Persona = ADVOCATE,
        skeptic: Persona = SKEPTIC,
        doc_ids: Sequence[str] | None = None,
        criterion: str | None = None,
    ) -> Iterator[DebateEvent]:
        """Yield turn events as the debate is generated, and finally the saved ``Debate``.
        ``criterion``: what the judge's ballot weighs the clashes by (default ``ballot.DEFAULT_CRITERION``)."""
        motion = validate_query(motion, self.settings.max_question_chars)
        criterion = check_criterion(criterion)
        rounds = self.settings.debate_rounds if rounds is None else rounds
        if not 0 <= rounds <= self.settings.debate_max_rounds:
            raise DebateError(f"rounds must be between 0 and {self.settings.debate_max_rounds}, not {rounds}")
        advocate, skeptic = check_personas(advocate, skeptic)

        passages, hints = self.gather_sources(motion, advocate, skeptic, doc_ids)
        debate = self.store.create(motion, rounds, advocate, skeptic, self.numbered_sources(passages))
        speakers = debate.speakers()
        personas = {"advocate": advocate, "skeptic": skeptic}
        yield DebateStarted(debate, hints)
        try:
            for index, (role, kind) in enumerate(_plan(rounds)):
                yield TurnStarted(index, role, kind, speakers[role])
                started = time.perf_counter()
                if role == "moderator":
                    turn = self._judge(index, motion, debate, criterion)
                    yield TurnText(index, turn.text)
                else:
                    own = [(n, passages[n - 1]) for n in hints[role]]
                    opposing = _unanswered_cards(debate, role) if kind == "rebuttal" else []
                    turn = yield from self.cards_as_made(
                        index, self.card_turn(index, role, kind, personas, motion, debate, own, opposing)
                    )
                turn.timing["total_s"] = time.perf_counter() - started
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

    # -- a debater's turn ----------------------------------------------------------------
    @staticmethod
    def cards_as_made(index: int, turn: Iterator[Card | DebateTurn]) -> Generator[CardMade | TurnText, None, DebateTurn]:
        """Each card of the ``card_turn`` ``index`` as CardMade and its TurnText line; returns the finished turn."""
        for item in turn:
            if isinstance(item, DebateTurn):
                if not item.cards:
                    yield TurnText(index, item.text)
                return item
            yield CardMade(index, item)
            yield TurnText(index, card_text(item) + "\n")
        raise RuntimeError("a card turn ended without its turn")

    def candidates(
        self, query: str, own: Sequence[tuple[int, Passage]], used_quotes: set[str], limit: int | None = None
    ) -> list[Candidate]:
        """The side's best ``limit`` sentences for ``query`` (default: the setting), none quoted earlier in the debate."""
        limit = limit or self.settings.debate_card_candidates
        ranked = self.ranker.rank_sentences(query, [p for _, p in own])
        chosen: list[Candidate] = []
        for origin, sentence, _ in ranked:
            key = text_key(sentence.text)
            if key in used_quotes or not MIN_QUOTE_CHARS <= len(sentence.text) <= MAX_QUOTE_CHARS:
                continue
            if sentence.text.rstrip().endswith(":"):  # announces a list: says nothing by itself
                continue
            if names_its_source(sentence.text, own[origin][1]):  # a byline or credit line: who wrote it, not evidence
                continue
            if any(text_key(c.sentence.text) == key for c in chosen):
                continue
            number, passage = own[origin]
            chosen.append(Candidate(number, passage, sentence))
            if len(chosen) == limit:
                break
        return chosen

    def card_turn(
        self,
        index: int,
        role: str,
        kind: str,
        personas: dict[str, Persona],
        motion: str,
        debate: Debate,
        own: Sequence[tuple[int, Passage]],
        opposing: Sequence[Opposed] = (),
        first_answers: str | None = None,
        n_candidates: int | None = None,
    ) -> Iterator[Card | DebateTurn]:
        """2-3 cards from the side's own passages, each yielded as soon as the model has written
        it, then the finished turn. With ``opposing``, each card answers one of those points (an
        opponent card, or a user's claim in a spar); ``first_answers``: the one the first must answer."""
        me = personas[role]
        earlier = [c for t in debate.turns for c in t.cards]
        query = " ".join([motion, *(o.tag for o in opposing)]) if opposing else f"{motion} {me.search_text}".strip()
        candidates, side_check = self._turn_candidates(motion, role, query, own, {text_key(c.quote) for c in earlier},
                                                       n_candidates or self.settings.debate_card_candidates)  # fmt: skip
        speaker = debate.speakers()[role]
        if not candidates:
            yield DebateTurn(index=index, role=role, kind=kind, speaker=speaker, text=prompts.NO_MATERIAL, no_material=True,
                             timing=side_check)  # fmt: skip
            return
        n_cards = min(self.settings.debate_cards_per_turn, len(candidates))
        labels = [o.label for o in opposing]
        messages = _card_messages(speaker, me.stance, motion, n_cards, candidates, debate.speakers()[opponent(role)],
                                  opposing, first_answers)  # fmt: skip
        schema = card_schema(len(candidates), n_cards, labels, first_answers if first_answers in labels else None)
        used_tags = {text_key(c.tag) for c in earlier}
        first = sum(1 for c in earlier if c.role == role) + 1
        by_label = {o.label: o for o in opposing}
        shown: list[Card] = []
        reply = None
        for reply in stream_structured(self.chat_model, messages, schema, self.settings.debate_turn_max_tokens):
            if not isinstance(reply, str):
                break
            # A card is shown once the model has finished it: assembled from the picks so far exactly as the
            # whole reply's are (the same sentence, tag check and label), unless a pick had to be filled in.
            picks = finished_picks(reply)[:n_cards]
            if len(picks) > len(shown):
                so_far = assemble_cards(role, {"cards": picks}, candidates, len(picks), first, set(used_tags), labels)
                for card in so_far[len(shown):]:
                    if not card.model_tag:  # filled in for an unusable pick: wait for the whole reply
                        break
                    shown.append(self._checked_answers(motion, [card], by_label)[0])
                    yield shown[-1]
        assert isinstance(reply, StructuredReply)
        cards = assemble_cards(role, reply.parsed, candidates, n_cards, first, used_tags, labels)
        cards = shown + self._checked_answers(motion, cards[len(shown):], by_label)
        for card in cards[len(shown):]:
            yield card
        yield DebateTurn(
            index=index, role=role, kind=kind, speaker=speaker, text="\n".join(card_text(c) for c in cards),
            raw_text=reply.raw, cited=sorted({c.source for c in cards}), cards=cards,
            timing={**reply.timing.as_dict(), **side_check},
        )  # fmt: skip

    def _turn_candidates(self, motion: str, role: str, query: str, own: Sequence[tuple[int, Passage]],
                         used_quotes: set[str], limit: int) -> tuple[list[Candidate], dict[str, float]]:  # fmt: skip
        """The sentences a turn may cut its cards from, and what the side check cost (empty without one)."""
        if self.side_sorter is None:
            return self.candidates(query, own, used_quotes, limit), {}
        # Twice as many ranked, so a turn whose best sentences argue the other side still has some.
        started = time.perf_counter()
        candidates, set_aside = self.side_sorter.keep(motion, role, self.candidates(query, own, used_quotes, 2 * limit),
                                                      self.settings.debate_cards_per_turn + 1, limit)  # fmt: skip
        return candidates, {"side_check_s": time.perf_counter() - started, "side_set_aside": set_aside}

    def _checked_answers(self, motion: str, cards: list[Card], opposing: dict[str, Opposed]) -> list[Card]:
        """Each rebuttal card keeps the opposing point it names only if it answers it (``_answer_problem``);
        otherwise the link is dropped, with why, and the ballot lists the opposing card as dropped."""
        checked = []
        for card in cards:
            named = opposing.get(card.answers or "")
            problem = self._answer_problem(motion, card, named) if named is not None else ""
            if problem:
                assert named is not None  # problem is "" when named is None
                card = replace(card, answers=None, answer_note=f"does not answer {named.label}: {problem}")
            checked.append(card)
        return checked

    def _answer_problem(self, motion: str, card: Card, named: Opposed) -> str:
        """Why ``card`` does not answer ``named`` ("" if it does).

        An opponent's card, with the side check: with ``debate_dispute_check`` (the default) and the
        local model, the judge's odds that a debater who believes the card's quote would reject the
        named card's quote (``SideSorter.rejects``): on 32 links of 8 debates labelled by hand (8
        dispute the card they name), that kept 6 of the 8 and 3 of the 24 others, for either side
        alike; it costs about 2 s a rebuttal card. Otherwise (the check off, or a server, which gives
        no odds) the card's quote must be named its own side (``SideSorter.named_side``).
        Without the side check (off, or the extractive baseline), and for a spar user's claims, the
        shared-word rule with the Yes/No judge (``RebuttalCheck``): replies that answer in other words
        share no word with the card, and the judge says Yes to every pair, but the others were
        measured on debate links only.
        """
        if self.side_sorter is not None and named.is_card:
            rejects = self.side_sorter.rejects(motion, named.quote, card.quote) if self.settings.debate_dispute_check else None
            if rejects is not None:
                return "" if rejects else "the judge does not read its quote as disputing it"
            direction = DIRECTIONS[card.role]
            side = self.side_sorter.named_side(motion, card.quote)
            return "" if side == direction else f"its quote does not argue {direction} the motion"
        if self.rebuttals is None:
            return ""
        verdict = self.rebuttals.check(named.text, f"{card.tag} {card.quote}")
        return "" if verdict.answers else verdict.reason

    # -- the judge's ballot ---------------------------------------------------------------
    def _judge(self, index: int, motion: str, debate: Debate, criterion: str) -> DebateTurn:
        """The ballot (``assistant.chains.ballot``): each clash and why, the drops, the decision and its reason."""
        model = None if self.settings.llm_backend == "extractive" else self.chat_model
        ballot, reply = judge_ballot(model, motion, debate, criterion)
        speakers = debate.speakers()
        if ballot.decision is None:
            return DebateTurn(index=index, role="moderator", kind="summary", speaker=speakers["moderator"],
                              text=prompts.NO_MATERIAL, no_material=True)  # fmt: skip
        by_label = {c.label: c for t in debate.turns for c in t.cards}
        mentioned = [label for c in ballot.clashes for label in (c.argument, c.answer)]
        mentioned += ballot.dropped + ballot.unweighed + ballot.new_in_rebuttal
        return DebateTurn(
            index=index, role="moderator", kind="summary", speaker=speakers["moderator"],
            text="\n".join(ballot_lines(ballot, debate)), raw_text=reply.raw if reply else "",
            cited=sorted({by_label[label].source for label in mentioned}),
            clashes=[asdict(c) for c in ballot.clashes], ballot=ballot.as_dict(),
            timing=reply.timing.as_dict() if reply else {},
        )  # fmt: skip


def _card_messages(speaker: str, stance: str, motion: str, n_cards: int, candidates: Sequence[Candidate],
                   opponent_name: str, opposing: Sequence[Opposed], first_answers: str | None) -> list[BaseMessage]:  # fmt: skip
    """The prompt of a card turn: the numbered candidate sentences, and for a rebuttal the opposing
    points to answer (the first card answers ``first_answers``, else the first point)."""
    values = dict(name=speaker, motion=motion, n=n_cards, candidates=prompts.numbered_lines([c.sentence.text for c in candidates]))
    if opposing:
        user = prompts.CARDS_REBUTTAL.format(
            **values, opponent=opponent_name, first_label=first_answers or opposing[0].label,
            opposing="\n".join(f"{o.label}: {prompts.source_line(o.tag)}" for o in opposing),
        )  # fmt: skip
    else:
        user = prompts.CARDS_OPENING.format(**values)
    return [SystemMessage(prompts.CARDS_SYSTEM.format(name=speaker, stance=stance)), HumanMessage(user)]


def names_its_source(text: str, passage: Passage) -> bool:
    """Whether the sentence names its own document's author or publisher (of two words or more): a
    byline or a credit line ("An op-ed by Prof. Mark Paul, first published in The American
    Prospect."), which says who wrote the article and nothing about the motion, yet ranked high
    for the motion's words in the title beside it and became a card in 2 of 8 debates."""
    key = f" {text_key(text)} "
    publisher = re.sub(r"\s*\([^)]*\)\s*$", "", passage.publisher or "")  # "Medium (excerpt)": Medium
    names = [text_key(name) for name in (passage.author or "", publisher)]
    return any(len(name.split()) >= 2 and f" {name} " in key for name in names)


def check_criterion(criterion: str | None) -> str:
    """The judging criterion as one clean line (checked like a question), or the default when none is given."""
    try:
        text = " ".join(validate_text(criterion or "", MAX_CRITERION_CHARS, "judging criterion", allow_empty=True).split())
    except QueryError as exc:
        raise DebateError(str(exc)) from exc
    return text.rstrip(" .") or DEFAULT_CRITERION


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
    default = ADVOCATE if role == "advocate" else SKEPTIC
    terms = None if persona.search_terms is None else " ".join(persona.search_terms.split())
    if not stance or stance == default.stance:  # the default stance keeps its search words
        return Persona(name=name, stance=default.stance, search_terms=default.search_terms if terms is None else terms)
    return Persona(name=name, stance=stance, search_terms=terms or None)  # no words of its own: its stance


def numbered_source(number: int, passage: Passage, stance: str) -> NumberedPassage:
    """The debate's source ``[number]`` as a transcript saves it (no ranking, no lead-in), so that
    the debate in memory and the one loaded from the store later are the same."""
    return NumberedPassage.from_dict({**NumberedPassage(number, passage).as_dict(), "stance": stance})
