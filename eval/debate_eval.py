"""Debate metrics for one debate question: the question is the motion, ``side`` the speaker scored.

Besides the answer figures of the question's own side (keywords, citations, expected source),
three documented, deterministic checks of the debate as a whole:
- **sides cite**: both the advocate and the skeptic cite at least one passage.
- **stays on side**, per side: it cites at least one passage, and at least half of the passages
  it cites come from its *own* search (the debate searches once per side with the motion plus
  that side's stance; see ``DebateChain.gather_sources``). A side leaning on the material its
  opponent's search found is arguing the other case.
- **moderator covers both**: the summary cites two different passages, one belonging to each
  side (cited by that side's turns or found by its search).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from assistant.debate import DebateChain, DebateStarted
from assistant.grounding import is_decline
from assistant.streaming import final_item
from assistant.transcripts import Debate
from eval.metrics import GenerationScore, generation_fields, mean
from eval.questions import Question

SIDES = ("advocate", "skeptic")


@dataclass(frozen=True)
class DebateScore(GenerationScore):
    side: str
    sides_cite: bool
    advocate_stays_on_side: bool
    skeptic_stays_on_side: bool
    moderator_covers_both: bool
    first_token_ms: float | None
    tokens_per_s: float | None
    total_s: float
    text: str
    debate_id: int


def _cited_by(debate: Debate, role: str) -> set[int]:
    return {n for t in debate.turns if t.role == role for n in t.cited}


def stays_on_side(cited: set[int], own_search: set[int]) -> bool:
    return bool(cited) and len(cited & own_search) / len(cited) >= 0.5


def moderator_covers_both(moderator_cited: set[int], belongs: dict[str, set[int]]) -> bool:
    """True if two different cited passages belong one to each side."""
    first = moderator_cited & belongs["advocate"]
    second = moderator_cited & belongs["skeptic"]
    return any(a != s for a in first for s in second)


def score_debate(question: Question, debate: Debate, hints: dict[str, list[int]], total_s: float) -> DebateScore:
    side = question.side if question.side in SIDES else "advocate"
    turns = [t for t in debate.turns if t.role == side]
    text = "\n".join(t.text for t in turns)
    silent = all(t.no_material for t in turns)
    withheld = silent and any(t.raw_text.strip() and not is_decline(t.raw_text) for t in turns)
    cited = {role: _cited_by(debate, role) for role in (*SIDES, "moderator")}
    own_search = {role: set(hints.get(role, [])) for role in SIDES}
    sources = {s.number: Path(s.source).name for s in debate.sources}
    return DebateScore(
        **generation_fields(
            question, text, "\n".join(t.raw_text for t in turns), silent and not withheld, withheld,
            sorted(cited[side]), debate.sources, [sources[n] for n in cited[side]],
        ),  # fmt: skip
        side=side,
        sides_cite=all(cited[role] for role in SIDES),
        advocate_stays_on_side=stays_on_side(cited["advocate"], own_search["advocate"]),
        skeptic_stays_on_side=stays_on_side(cited["skeptic"], own_search["skeptic"]),
        moderator_covers_both=moderator_covers_both(
            cited["moderator"], {role: cited[role] | own_search[role] for role in SIDES}
        ),
        first_token_ms=mean(t.timing.get("first_token_ms") for t in debate.turns),
        tokens_per_s=mean(t.timing.get("tokens_per_s") or None for t in debate.turns),
        total_s=total_s,
        text="\n\n".join(f"{t.speaker}: {t.text}" for t in debate.turns),
        debate_id=debate.id,
    )


def run_debate(chain: DebateChain, question: Question, rounds: int) -> DebateScore:
    """Stage the debate on the question as motion with the default personas and score it."""
    started = time.perf_counter()
    events = list(chain.stream(question.question, rounds=rounds))
    hints = next(e.hints for e in events if isinstance(e, DebateStarted))
    return score_debate(question, final_item(events, Debate), hints, time.perf_counter() - started)
