"""Debate metrics for one debate question: the question is the motion, ``side`` the speaker scored.

Besides the answer figures of the question's own side (keywords, citations, expected source),
documented, deterministic checks of the debate as a whole. Which side a document argues comes
from the corpus's ``manifest.json`` (``manifest_stances``), not from the debate's own search,
so a side that quotes its opponent's articles is caught whatever its search found.
- **sides cite**: both the advocate and the skeptic made at least one card.
- **own-side evidence**, per side: the share of its cards quoting a document whose manifest
  stance is that side's (or that has none, i.e. unknown).
- **quote exactness**: the share of cards whose quote is exactly ``source.text[start:end]``.
- **tag support**: the share of cards whose shown tag the verifier's rules accept against its
  quote (not the card builder's own ``tag_supported``); **model tags** is the share of those tags the model wrote (the rest are
  trimmed quotes, used when the model's tag failed).
- **repeated cards**: cards whose quote or tag an earlier card of the debate already used.
- **moderator cites both**: the moderator's clashes (or cited cards) include cards of both sides.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from assistant.chains.cards import text_key
from assistant.chains.debate import DebateChain
from assistant.core.passage import Passage
from assistant.core.debate_record import Card, Debate
from assistant.checks.verify import Verifier
from eval.metrics import GenerationScore, generation_fields, mean
from eval.questions import Question

SIDES = ("advocate", "skeptic")


@dataclass(frozen=True)
class DebateScore(GenerationScore):
    side: str
    sides_cite: bool
    advocate_own_evidence: float | None
    skeptic_own_evidence: float | None
    quote_exact: float | None
    tag_support: float | None
    model_tags: float | None
    repeated_cards: int
    moderator_cites_both: bool
    cards: int
    prompt_tokens_per_turn: float | None
    first_token_ms: float | None
    tokens_per_s: float | None
    total_s: float
    text: str
    debate_id: int


def manifest_stances(corpus: Iterable[Path]) -> dict[str, str]:
    """File name -> stance from the ``manifest.json`` of each corpus folder (or of a file's folder)."""
    stances: dict[str, str] = {}
    for root in corpus:
        folder = root if root.is_dir() else root.parent
        for manifest in [folder / "manifest.json", *folder.rglob("*/manifest.json")]:
            if manifest.is_file():
                for entry in json.loads(manifest.read_text(encoding="utf-8")):
                    if isinstance(entry, dict) and entry.get("file") and entry.get("stance"):
                        stances[str(entry["file"])] = str(entry["stance"])
    return stances


def own_evidence_share(cards: list[Card], role: str, stance_of: dict[int, str]) -> float | None:
    """Share of ``role``'s cards quoting a document of its own stance or of none (unknown)."""
    mine = [c for c in cards if c.role == role]
    return mean(stance_of.get(c.source, "unknown") in (role, "unknown") for c in mine) if mine else None


def repeated_cards(cards: list[Card]) -> int:
    """Cards whose quote or tag an earlier card already used."""
    quotes: set[str] = set()
    tags: set[str] = set()
    repeats = 0
    for card in cards:
        quote, tag = text_key(card.quote), text_key(card.tag)
        repeats += quote in quotes or tag in tags
        quotes.add(quote)
        tags.add(tag)
    return repeats


def moderator_cites_both(debate: Debate) -> bool:
    """The judge's clashes (or, without clashes, its citations) reach cards of both sides (ballots name a clash's
    cards ``argument`` and ``answer``; summaries saved before ballots, ``cards``)."""
    cards = {c.label: c for t in debate.turns for c in t.cards}
    moderator = [t for t in debate.turns if t.role == "moderator"]
    if not moderator:
        return False
    labels = {label for clash in moderator[-1].clashes
              for label in [*clash.get("cards", []), clash.get("argument"), clash.get("answer")] if label}  # fmt: skip
    roles = {cards[label].role for label in labels if label in cards}
    if not labels:
        roles = {c.role for c in cards.values() if c.source in moderator[-1].cited}
    return set(SIDES) <= roles


_TAG_CHECK = Verifier()  # rules only: deterministic and independent of the card builder's tag check


def _quote_passage(card: Card) -> Passage:
    """A card's quote as the one passage the verifier checks its tag against."""
    return Passage(f"card-{card.label}", card.doc_id, 0, card.quote, card.start, card.end)


def score_debate(question: Question, debate: Debate, stances: dict[str, str], total_s: float) -> DebateScore:
    side = question.side if question.side in SIDES else "advocate"
    turns = [t for t in debate.turns if t.role == side]
    text = "\n".join(t.text for t in turns)
    declined = all(t.no_material for t in turns)
    sources = {s.number: s for s in debate.sources}
    files = {n: Path(s.source).name for n, s in sources.items()}
    stance_of = {n: stances.get(name, "unknown") for n, name in files.items()}
    cards = [c for t in debate.turns for c in t.cards]
    cited = sorted({n for t in turns for n in t.cited})
    return DebateScore(
        **generation_fields(
            question, text, "\n".join(t.raw_text for t in turns), declined, False, cited, [s.passage for s in debate.sources],
            [files[n] for n in cited],
        ),  # fmt: skip
        side=side,
        sides_cite=all(any(c.role == role for c in cards) for role in SIDES),
        advocate_own_evidence=own_evidence_share(cards, "advocate", stance_of),
        skeptic_own_evidence=own_evidence_share(cards, "skeptic", stance_of),
        quote_exact=mean(sources[c.source].text[c.start : c.end] == c.quote for c in cards) if cards else None,
        # Not the cards' own tag filter (that would grade the product by its own rule): the claim
        # verifier's rules, tag against its quote.
        tag_support=mean(_TAG_CHECK.rules(c.tag, [_quote_passage(c)]).supported for c in cards) if cards else None,
        model_tags=mean(c.tag_from == "model" for c in cards) if cards else None,
        repeated_cards=repeated_cards(cards),
        moderator_cites_both=moderator_cites_both(debate),
        cards=len(cards),
        prompt_tokens_per_turn=mean(t.timing.get("prompt_tokens") for t in debate.turns if t.timing.get("prompt_tokens")),
        first_token_ms=mean(t.timing.get("first_token_ms") for t in debate.turns),
        tokens_per_s=mean(t.timing.get("tokens_per_s") or None for t in debate.turns),
        total_s=total_s,
        text="\n\n".join(f"{t.speaker}: {t.text}" for t in debate.turns),
        debate_id=debate.id,
    )


def run_debate(chain: DebateChain, question: Question, rounds: int, stances: dict[str, str] | None = None) -> DebateScore:
    """Stage the debate on the question as motion with the default personas and score it."""
    started = time.perf_counter()
    debate = chain.run(question.question, rounds=rounds)
    return score_debate(question, debate, stances or {}, time.perf_counter() - started)
