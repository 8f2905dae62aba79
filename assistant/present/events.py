"""Events and results as the JSON the REST API sends: one home for each stream's NDJSON lines
(``/api/ask``, ``/api/debate``, ``/api/spar``) and for the saved objects it returns.

The server adds only what is its own (a ``Queued`` line while a request waits for the model);
every event a chain yields is turned into its line here, beside the HTML (``render``) and the
exports (``transcript_export``, ``docx_export``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING

from assistant.chains.ask_events import Answer, QuoteFound, SentenceChecked, SourcesFound
from assistant.chains.debate_events import CardMade, ClaimMarked, DebateStarted, Scorecard, TurnFinished, TurnStarted, TurnText
from assistant.core.debate_record import Debate
from assistant.core.passage import NumberedPassage
from assistant.present import render

if TYPE_CHECKING:  # annotations only: a session's state is read from the chain the route holds
    from assistant.chains.spar import SparChain


def answer_dict(answer: Answer) -> dict:
    return {
        "question": answer.question,
        "standalone_question": answer.standalone_question,
        "answer": answer.text,
        "declined": answer.declined,
        "withheld": answer.withheld,
        "answers_question": answer.answers_question,
        "relevance_reason": answer.relevance_reason,
        "unanswered_parts": answer.unanswered_parts,
        # Quote-first answers (answer_mode "quotes"): the short answer ("answer" above is the whole
        # text shown) and the quoted sentences with their offsets; "" and [] in free mode.
        "short_answer": answer.answer,
        "quotes": answer.quotes,
        "citations": [
            {**c.as_dict(), "evidence": render.evidence_spans(answer.sentences).get(c.number, [])}
            for c in answer.citations
        ],
        # Every checked sentence: shown as supported or withdrawn, why, and the evidence span(s)
        # (passage id, source number, character offsets into the passage text, the text itself).
        "sentences": [s.as_dict() for s in answer.sentences],
        "invalid_citations": answer.invalid_citations,
        "corrected_citations": answer.corrected_citations,
        "uncited_sentences": answer.uncited_sentences,
        "unsupported_sentences": answer.unsupported_sentences,
        "timing": answer.timing.as_dict(),
    }


def debate_dict(debate: Debate) -> dict:
    return {
        "id": debate.id, "motion": debate.motion, "created_at": debate.created_at, "status": debate.status,
        "rounds": debate.rounds, "advocate": asdict(debate.advocate), "skeptic": asdict(debate.skeptic),
        "sources": [s.as_dict() for s in debate.sources], "turns": [asdict(t) for t in debate.turns],
    }  # fmt: skip


def spar_dict(chain: SparChain, debate: Debate, scorecard: bool = False) -> dict:
    """A spar session: the saved debate, the side the user argues, the round they play next (None when
    all are played), whether a turn of theirs still waits for the assistant's answer (a play stopped in
    between: the next request answers it first, and may then have an empty ``text``), whether the
    session is over and, with ``scorecard``, the scorecard so far."""
    unanswered = chain.unanswered(debate)
    data = {**debate_dict(debate), "user_side": debate.user_side, "next_round": chain.next_round(debate),
            "unanswered": unanswered.index if unanswered is not None else None, "over": chain.is_over(debate)}  # fmt: skip
    if scorecard:
        data["scorecard"] = asdict(chain.scorecard(debate))
    return data


def ask_event(item: object) -> dict:
    """One ask stream item as its NDJSON line."""
    if isinstance(item, SourcesFound):  # before the model reads them: the user can start reading
        return {"type": "sources", "sources": [
            {**NumberedPassage(n, p).as_dict(), "shown": text} for n, (p, text) in enumerate(zip(item.passages, item.texts), 1)
        ]}  # fmt: skip
    if isinstance(item, SentenceChecked):  # each sentence marked supported or withdrawn as its check ends
        return {"type": "checked", "index": item.index, **item.sentence.as_dict()}
    if isinstance(item, Answer):
        return {"type": "answer", **answer_dict(item)}
    if isinstance(item, QuoteFound):  # quotes mode: each chosen sentence as soon as its id is written
        return {"type": "quote", "index": item.index, **item.quote.as_dict()}
    return {"type": "token", "text": item}


def debate_event(item: object) -> dict | None:
    """One debate stream event as its NDJSON line (None: not sent)."""
    if isinstance(item, DebateStarted):
        return {"type": "start", "id": item.debate.id, "sources": [s.as_dict() for s in item.debate.sources]}
    if isinstance(item, TurnStarted):
        return {"type": "turn_start", **asdict(item)}
    if isinstance(item, CardMade):
        return {"type": "card", "index": item.index, **asdict(item.card)}
    if isinstance(item, TurnText):
        return {"type": "token", "index": item.index, "text": item.text}
    if isinstance(item, TurnFinished):
        return {"type": "turn", **asdict(item.turn)}
    if isinstance(item, Debate):
        return {"type": "debate", **debate_dict(item)}
    return None


def spar_events(chain: SparChain, plays_turn: bool) -> Callable[[object], dict | None]:
    """The NDJSON line of each event of one spar stream (None: not sent). ``plays_turn``: the request
    brings a turn of the user's (not only the answer to their last one)."""
    session: list[Debate] = []

    def line(item: object) -> dict | None:
        if isinstance(item, DebateStarted):  # before anything of this request is played
            debate = item.debate
            session.append(debate)
            unanswered = chain.unanswered(debate)
            return {"type": "session", "id": debate.id, "motion": debate.motion, "side": debate.user_side,
                    "round": chain.next_round(debate) if plays_turn else None,
                    "answers_first": unanswered.index if unanswered is not None else None,
                    "sources": [s.as_dict() for s in debate.sources]}  # fmt: skip
        if isinstance(item, ClaimMarked):  # provisional ("final": false) marks first, then a final one per sentence
            line = {"type": "mark", "index": item.index, "final": item.final, "claim": asdict(item.claim)}
            # A deciding passage new to the session joins its sources as it is found: sent with the mark,
            # so a client can show it now (the final "spar" line lists every source).
            numbered = {s.number: s for s in session[-1].sources} if session else {}
            if item.claim.source in numbered:
                line["source"] = numbered[item.claim.source].as_dict()
            return line
        if isinstance(item, Scorecard):
            return {"type": "scorecard", **asdict(item)}
        if isinstance(item, Debate):
            return {"type": "spar", **spar_dict(chain, item)}
        return debate_event(item)  # turn_start, card, token, turn: as in a debate

    return line
