"""Debate: the sides for and against a motion argue it with evidence cards; a moderator weighs the clashes.

Order of play: the side for the motion opens ("advocate", as roles and stances are stored; see
``assistant.sides``), then the side against ("skeptic"), ``rounds`` rebuttal rounds (each side
answers the other's cards), then the moderator's summary.

Side-aware evidence: every document has a stance (for, against or unknown). Each side
searches its own-stance documents first, then unknown ones, never the other side's, so a
side cannot argue its opponent's case with its opponent's evidence. When a side has no
documents to draw from, the debate refuses before anything is generated and says which kind
of article to add. The union of both sides' passages is the debate's one numbered source list.

A debater's turn is 2-3 evidence cards (``assistant.cards``): the best sentences of its own
passages for the motion (or for the opponent's cards, in a rebuttal) are offered with ids;
the model picks ids and writes a tag for each under a JSON-schema grammar; code builds each
card from the chosen sentence (the quote is exact by construction), checks the tag against
its quote, and never offers a quote already used in the debate. A rebuttal card names the
opponent card it answers. The moderator's summary is assembled from the cards: each clash
(a card and the card it answers), which evidence is more direct (a short constrained model
choice), and what was left open.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from assistant import prompts
from assistant.cards import (
    Candidate,
    assemble_cards,
    card_schema,
    card_text,
    finished_picks,
    text_key,
    trimmed_quote,
    verdict_schema,
)
from assistant.structured import StructuredReply, stream_structured, structured_reply
from assistant.context import ContextBuilder, content_stems
from assistant.cancel import GenerationStopped
from assistant.prompts import Persona
from assistant.side_check import SideSorter
from assistant.sides import DIRECTIONS, SIDES, opponent
from assistant.relevance import RebuttalCheck, make_rebuttal_check
from assistant.passage import NumberedPassage, Passage
from assistant.retrieval import HybridRetriever, QueryError, validate_query, validate_text
from assistant.streaming import final_item
from assistant.transcripts import COMPLETE, FAILED, STOPPED, Card, Debate, DebateTurn, TranscriptStore


# Quotes shorter than this say too little to be evidence; longer ones cost too many prompt tokens.
MIN_QUOTE_CHARS = 40
MAX_QUOTE_CHARS = 400
# Words of a quote shown to the moderator's model (the whole quote is in the transcript).
MODERATOR_QUOTE_WORDS = 30


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
    """Text of a turn as it becomes known (one card line at a time)."""

    index: int
    text: str


@dataclass(frozen=True)
class CardMade:
    """One evidence card of the turn ``index``, as soon as it is built."""

    index: int
    card: Card


@dataclass(frozen=True)
class TurnFinished:
    turn: DebateTurn


@dataclass(frozen=True)
class Opposed:
    """A point a rebuttal answers: its label ("S1", "U2"), the claim shown to the model (a card's
    tag, a user's sentence), and the text the rebuttal check reads (tag and quote)."""

    label: str
    tag: str
    text: str

    @classmethod
    def of_card(cls, card: Card) -> Opposed:
        return cls(card.label, card.tag, f"{card.tag} {card.quote}")


def _unanswered_cards(debate: Debate, role: str, most: int = 4) -> list[Opposed]:
    """The opponent's latest cards that ``role`` has not answered yet (at most ``most``)."""
    earlier = [c for t in debate.turns for c in t.cards]
    answered = {c.answers for c in earlier if c.role == role and c.answers}
    return [Opposed.of_card(c) for c in earlier if c.role != role and c.label not in answered][-most:]


DebateEvent = DebateStarted | TurnStarted | TurnText | CardMade | TurnFinished | Debate


class DebateError(ValueError):
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
        return SideSorter(self.chat_model)

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
        debate = self.store.create(motion, rounds, advocate, skeptic, self.numbered_sources(passages))
        speakers = debate.speakers()
        personas = {"advocate": advocate, "skeptic": skeptic}
        yield DebateStarted(debate, hints)
        try:
            for index, (role, kind) in enumerate(_plan(rounds)):
                yield TurnStarted(index, role, kind, speakers[role])
                started = time.perf_counter()
                if role == "moderator":
                    turn = self._moderate(index, motion, debate)
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
        opponent_role = opponent(role)
        earlier = [c for t in debate.turns for c in t.cards]
        query = " ".join([motion, *(o.tag for o in opposing)]) if opposing else f"{motion} {me.search_text}".strip()
        used_quotes = {text_key(c.quote) for c in earlier}
        limit = n_candidates or self.settings.debate_card_candidates
        side_check: dict[str, float] = {}
        if self.side_sorter is None:
            candidates = self.candidates(query, own, used_quotes, limit)
        else:  # twice as many ranked, so a turn whose best sentences argue the other side still has some
            started = time.perf_counter()
            candidates, set_aside = self.side_sorter.keep(motion, role, self.candidates(query, own, used_quotes, 2 * limit),
                                                          self.settings.debate_cards_per_turn + 1, limit)  # fmt: skip
            side_check = {"side_check_s": time.perf_counter() - started, "side_set_aside": set_aside}
        speaker = debate.speakers()[role]
        if not candidates:
            yield DebateTurn(index=index, role=role, kind=kind, speaker=speaker, text=prompts.NO_MATERIAL, no_material=True,
                             timing=side_check)  # fmt: skip
            return
        n_cards = min(self.settings.debate_cards_per_turn, len(candidates))
        labels = [o.label for o in opposing]
        values = dict(name=speaker, motion=motion, n=n_cards, candidates=prompts.numbered_lines([c.sentence.text for c in candidates]))
        if opposing:
            user = prompts.CARDS_REBUTTAL.format(
                **values, opponent=debate.speakers()[opponent_role], first_label=first_answers or labels[0],
                opposing="\n".join(f"{o.label}: {prompts.source_line(o.tag)}" for o in opposing),
            )  # fmt: skip
        else:
            user = prompts.CARDS_OPENING.format(**values)
        messages = [SystemMessage(prompts.CARDS_SYSTEM.format(name=speaker, stance=me.stance)), HumanMessage(user)]
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
                    shown.append(self._checked_answers([card], by_label)[0])
                    yield shown[-1]
        assert isinstance(reply, StructuredReply)
        cards = assemble_cards(role, reply.parsed, candidates, n_cards, first, used_tags, labels)
        cards = shown + self._checked_answers(cards[len(shown):], by_label)
        for card in cards[len(shown):]:
            yield card
        yield DebateTurn(
            index=index, role=role, kind=kind, speaker=speaker, text="\n".join(card_text(c) for c in cards),
            raw_text=reply.raw, cited=sorted({c.source for c in cards}), cards=cards,
            timing={**reply.timing.as_dict(), **side_check},
        )  # fmt: skip

    def _checked_answers(self, cards: list[Card], opposing: dict[str, Opposed]) -> list[Card]:
        """Each rebuttal card keeps the opposing point it names only if it answers it (``RebuttalCheck``);
        otherwise the link is dropped, with why, and the moderator lists that card as left open."""
        if self.rebuttals is None:
            return cards
        checked = []
        for card in cards:
            named = opposing.get(card.answers or "")
            if named is not None:
                verdict = self.rebuttals.check(named.text, f"{card.tag} {card.quote}")
                if not verdict.answers:
                    card = replace(card, answers=None, answer_note=f"does not answer {named.label}: {verdict.reason}")
            checked.append(card)
        return checked

    # -- the moderator -------------------------------------------------------------------
    def _moderate(self, index: int, motion: str, debate: Debate) -> DebateTurn:
        """Clashes (card against the card it answers), the more direct evidence of each, and what is left open."""
        cards = {c.label: c for t in debate.turns for c in t.cards}
        clashes = [(cards[c.answers], c) for c in cards.values() if c.answers in cards]
        if not clashes:  # no rebuttals: the openings' cards face each other in order
            sides = [[c for c in cards.values() if c.role == role] for role in SIDES]
            clashes = list(zip(*sides))
        speakers = debate.speakers()
        if not clashes:
            return DebateTurn(index=index, role="moderator", kind="summary", speaker=speakers["moderator"],
                              text=prompts.NO_MATERIAL, no_material=True)  # fmt: skip
        verdicts, reply = self._verdicts(motion, clashes)
        lines, records = [], []
        for number, ((first, second), verdict) in enumerate(zip(clashes, verdicts), start=1):
            winner = first if verdict == "first" else second
            lines.append(
                f"Clash {number}: {first.label} “{first.tag}” [{first.source}] against {second.label} “{second.tag}” "
                f"[{second.source}]: the {speakers[winner.role]}'s evidence ({winner.label}) is more direct."
            )
            records.append({"cards": [first.label, second.label], "more_direct": winner.label})
        in_clash = {label for record in records for label in record["cards"]}
        open_cards = [c for c in cards.values() if c.label not in in_clash]
        if open_cards:
            listed = "; ".join(f"{c.label} “{c.tag}” [{c.source}]" for c in open_cards)
            lines.append(f"Left open: no card answered {listed}; the sources do not settle {'it' if len(open_cards) == 1 else 'them'}.")
        else:
            lines.append("Left open: each clash rests on different facts, and the sources do not weigh them against each other.")
        mentioned = [c for pair in clashes for c in pair] + open_cards
        return DebateTurn(
            index=index, role="moderator", kind="summary", speaker=speakers["moderator"], text="\n".join(lines),
            raw_text=reply.raw, cited=sorted({c.source for c in mentioned}), clashes=records, timing=reply.timing.as_dict(),
        )  # fmt: skip

    def _verdicts(self, motion: str, clashes: Sequence[tuple[Card, Card]]) -> tuple[list[str], StructuredReply]:
        """"first" or "second" per clash: the model's constrained choice, else the quote sharing more words with the motion."""
        def quoted(card: Card) -> str:  # one line, the article's own markers removed (``prompts.source_line``)
            return prompts.source_line(trimmed_quote(card.quote, MODERATOR_QUOTE_WORDS))

        shown = "\n\n".join(
            f"Clash {n}:\nfirst: “{quoted(a)}”\nsecond: “{quoted(b)}”" for n, (a, b) in enumerate(clashes, start=1)
        )
        messages = [SystemMessage(prompts.MODERATOR_SYSTEM), HumanMessage(prompts.MODERATOR_CHOICE.format(motion=motion, clashes=shown))]
        reply = structured_reply(self.chat_model, messages, verdict_schema(len(clashes)), 12 + 6 * len(clashes))
        given = reply.parsed.get("verdicts") if reply.parsed else None
        motion_stems = content_stems(motion)
        verdicts = []
        for n, (a, b) in enumerate(clashes):
            if isinstance(given, list) and n < len(given) and given[n] in ("first", "second"):
                verdicts.append(given[n])
            else:
                closer = len(motion_stems & content_stems(a.quote)) >= len(motion_stems & content_stems(b.quote))
                verdicts.append("first" if closer else "second")
        return verdicts, reply


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
    terms = None if persona.search_terms is None else " ".join(persona.search_terms.split())
    if not stance or stance == default.stance:  # the default stance keeps its search words
        return Persona(name=name, stance=default.stance, search_terms=default.search_terms if terms is None else terms)
    return Persona(name=name, stance=stance, search_terms=terms or None)  # no words of its own: its stance


def numbered_source(number: int, passage: Passage, stance: str) -> NumberedPassage:
    """The debate's source ``[number]`` as a transcript saves it (no ranking, no lead-in), so that
    the debate in memory and the one loaded from the store later are the same."""
    return NumberedPassage.from_dict({**NumberedPassage(number, passage).as_dict(), "stance": stance})
