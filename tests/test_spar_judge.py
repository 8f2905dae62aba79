"""Spar marks the local model's judge confirms (issue 27): the rules' mark of each sentence at once
(provisional), then a final mark per sentence once the judge has confirmed or revised every
SUPPORTED one; only final marks are saved and scored.

The fast tests run real retrieval, Chroma and SQLite over the fixture articles with a scripted
judge (a ``Judge`` callable that answers by rule and records what it was asked); the slow test
asks the real local model about a false claim built at run time from a third-party article.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from assistant.chains.debate import DebateChain
from assistant.chains.debate_events import CardMade, ClaimMarked
from assistant.storage.library import Library
from assistant.retrieval.retrieval import HybridRetriever
from assistant.chains.spar import SparChain, spar_check_settings
from assistant.core.debate_record import CONTRADICTED, NOT_FOUND, SUPPORTED
from assistant.storage.transcripts import TranscriptStore
from assistant.checks.verify import CLAIM_ONLY_NEGATION, JUDGE, JUDGED_NO, NEGATION_IN_CLAIM, Verifier
from tests.conftest import shared_dir
from tests.fakes import ScriptedChatModel
from tests.test_debate_chain import MOTION, _mark_sides
from tests.test_spar_chain import OPENING, advocate_cards



class ScriptedJudge:
    """A ``Judge`` that says ``yes`` to every statement and records each statement it is asked about."""

    def __init__(self, yes: bool) -> None:
        self.yes = yes
        self.asked: list[str] = []

    def __call__(self, claim: str, context: str, label: str) -> bool:
        self.asked.append(claim)
        return self.yes


def _judged_chain(library: Library, articles: Path, judge: ScriptedJudge) -> SparChain:
    library.ingest([str(articles)])
    _mark_sides(library)
    store = TranscriptStore(library.settings.transcripts_database)
    debates = DebateChain(HybridRetriever(library), ScriptedChatModel(rule=advocate_cards, calls=[]), store)
    return SparChain(debates, Verifier(judge))


def _marks(events: list) -> list[tuple[bool, str, str]]:
    return [(e.final, e.claim.label, e.claim.mark) for e in events if isinstance(e, ClaimMarked)]


def test_rules_marks_come_first_then_one_final_mark_per_sentence_before_any_card(library: Library, articles) -> None:
    judge = ScriptedJudge(yes=True)
    spar = _judged_chain(library, articles, judge)
    session = spar.start(MOTION, "skeptic", rounds=0)
    events = list(spar.play(session.id, OPENING))
    assert _marks(events) == [
        (False, "U1", SUPPORTED), (False, "U2", CONTRADICTED), (False, "U3", NOT_FOUND),
        (True, "U1", SUPPORTED), (True, "U2", CONTRADICTED), (True, "U3", NOT_FOUND),
    ]  # fmt: skip
    last_mark = max(i for i, e in enumerate(events) if isinstance(e, ClaimMarked))
    assert last_mark < min(i for i, e in enumerate(events) if isinstance(e, CardMade))
    # Only the rules' SUPPORTED mark goes to the judge: contradicted and not-found marks stand as they are.
    first = OPENING.split(". ")[0]
    assert len(judge.asked) == 1 and judge.asked[0].startswith(first)


def test_a_judge_no_revises_supported_to_not_found_and_only_final_marks_are_saved(library: Library, articles) -> None:
    spar = _judged_chain(library, articles, ScriptedJudge(yes=False))
    session = spar.start(MOTION, "skeptic", rounds=0)
    events = list(spar.play(session.id, OPENING))
    assert _marks(events)[:3] == [(False, "U1", SUPPORTED), (False, "U2", CONTRADICTED), (False, "U3", NOT_FOUND)]
    final = [e.claim for e in events if isinstance(e, ClaimMarked) and e.final]
    assert [(c.label, c.mark) for c in final] == [("U1", NOT_FOUND), ("U2", CONTRADICTED), ("U3", NOT_FOUND)]
    provisional = next(e.claim for e in events if isinstance(e, ClaimMarked))
    revised = final[0]
    assert revised.reason == JUDGED_NO
    # The closest passage stays named: the user sees what the judge read.
    closest = (provisional.source, provisional.quote, provisional.passage_id)
    assert (revised.source, revised.quote, revised.passage_id) == closest
    saved = spar.session(session.id)
    assert saved.turns[0].claims == final
    user = spar.scorecard(saved).sides[0]
    assert (user.claims, user.supported, user.contradicted, user.not_found) == (3, 0, 1, 2)


def test_without_a_judge_each_sentence_gets_its_final_mark_only(library: Library, articles) -> None:
    library.ingest([str(articles)])
    _mark_sides(library)
    store = TranscriptStore(library.settings.transcripts_database)
    debates = DebateChain(HybridRetriever(library), ScriptedChatModel(rule=advocate_cards, calls=[]), store)
    spar = SparChain(debates, Verifier())
    session = spar.start(MOTION, "skeptic", rounds=0)
    events = list(spar.play(session.id, OPENING))
    assert _marks(events) == [(True, "U1", SUPPORTED), (True, "U2", CONTRADICTED), (True, "U3", NOT_FOUND)]


def test_the_judge_stage_is_callable_apart_from_the_rules(library: Library, articles) -> None:
    """``verify`` is ``rules`` then ``confirm``; ``confirm`` sends only a supported verdict to the judge."""
    library.ingest([str(articles)])
    retriever = HybridRetriever(library)
    judge = ScriptedJudge(yes=False)
    verifier = Verifier(judge)
    supported, contradicted, _ = OPENING.split(". ")
    found = retriever.retrieve(supported, 3)
    rules = verifier.rules(supported + ".", found)
    assert rules.supported and judge.asked == []
    confirmed = verifier.confirm(rules, supported + ".", found)
    assert not confirmed.supported and confirmed.reason == JUDGED_NO and confirmed.rule == JUDGE and confirmed.stage == "llm"
    assert confirmed.evidence == rules.evidence and len(judge.asked) == 1
    assert verifier.verify(supported + ".", found).reason == JUDGED_NO and len(judge.asked) == 2
    rejected = verifier.rules(contradicted + ".", retriever.retrieve(contradicted, 3))
    assert verifier.confirm(rejected, contradicted + ".", found) == rejected and len(judge.asked) == 2


def test_the_judge_model_is_loaded_on_its_first_question_not_before_the_rules_marks(tmp_path: Path) -> None:
    """Building the spar verifier must not hold up the first (rules) mark: the model loads when first asked."""
    from assistant.models.judge import LlamaJudge

    judge = LlamaJudge(str(tmp_path / "not-loaded-yet.gguf"), n_threads=1)
    with pytest.raises(ValueError):  # llama.cpp cannot load what is not there: only now is it tried
        judge("A claim.", "A text.", "")


@pytest.mark.parametrize(("backend", "mode"), [("llamacpp", "rules+llm"), ("openai", "rules+llm"), ("extractive", "rules")])
def test_spar_marks_are_judged_by_default_on_every_backend_with_a_model(settings, backend: str, mode: str) -> None:
    assert settings.spar_verifier == "rules+llm"
    assert spar_check_settings(settings.model_copy(update={"llm_backend": backend})).verifier == mode


CORPUS_MORE = shared_dir() / "corpus_more"


def _entity_swap() -> tuple[Path, str]:
    """A false claim about a corpus_more article, built at run time from a sentence that contrasts two
    people ("Unlike A, however, B did not ..."): what it says of B, said of A (the names swapped)."""
    from assistant.core.text import split_sentences

    article = CORPUS_MORE / "k02_kirk_atimes_2009.txt"
    sentences = split_sentences(article.read_text(encoding="utf-8"))
    contrast = re.compile(r"^Unlike (?P<a>[A-Z]\w+), however, (?P<b>[A-Z]\w+) (?P<rest>[^,]+)")
    match = next(m for m in map(contrast.match, sentences) if m)
    assert match["a"] != match["b"]
    return article, f"{match['a']} {match['rest'].rstrip('.')}."


@pytest.mark.slow  # the real 1.5B model as judge (a few seconds), real retrieval over two articles
@pytest.mark.skipif(not CORPUS_MORE.is_dir() and not os.environ.get("CI"), reason="../shared/corpus_more is absent")
def test_a_swapped_name_passes_the_rules_and_the_real_judge_turns_it_down(settings) -> None:
    from assistant.chains.configured_checks import make_verifier

    article, claim = _entity_swap()
    library = Library(settings)
    try:
        library.ingest([str(article), str(CORPUS_MORE / "k04_csmonitor_2009.txt")])
        _mark_sides(library)
        store = TranscriptStore(settings.transcripts_database)
        debates = DebateChain(HybridRetriever(library), ScriptedChatModel(rule=advocate_cards, calls=[]), store)
        spar = SparChain(debates, make_verifier(spar_check_settings(settings)))
        session = spar.start("Should Seoul return to engagement with the North?", "advocate", rounds=0)
        events = []
        for event in spar.play(session.id, claim):
            events.append(event)
            if isinstance(event, ClaimMarked) and event.final:
                break  # the marks are what this test is about, not the assistant's cards
        assert _marks(events) == [(False, "U1", SUPPORTED), (True, "U1", NOT_FOUND)], (claim, events)
        assert events[-1].claim.reason == JUDGED_NO
    finally:
        library.close()


def test_the_cli_prints_each_provisional_mark_dimmed_then_the_final_one_saying_what_was_revised(
    library: Library, articles, monkeypatch
) -> None:
    import io

    from rich.console import Console

    from assistant import cli

    spar = _judged_chain(library, articles, ScriptedJudge(yes=False))
    printed = io.StringIO()
    monkeypatch.setattr(cli, "out", Console(file=printed, width=250, markup=False, emoji=False, highlight=False))
    session = spar.start(MOTION, "skeptic", rounds=0)
    cli._play_spar_round(spar, session.id, OPENING)
    output = printed.getvalue()
    rules = ((1, SUPPORTED), (2, CONTRADICTED), (3, NOT_FOUND))
    provisional = [output.index(f"U{n} {mark}, checking…") for n, mark in rules]
    final = [output.index(line) for line in ("U1 not found [", "U2 contradicted [", "U3 not found:")]
    assert provisional == sorted(provisional) and final == sorted(final) and provisional[-1] < final[0]
    assert "(revised: the rules said supported)" in output.splitlines()[output[: final[0]].count("\n")]
    assert output.count("revised:") == 1 and final[-1] < output.index("A1 ")


def test_the_web_ui_shows_checking_then_the_final_mark_in_place(settings, articles, tmp_path: Path) -> None:
    import asyncio

    from assistant.server.service import Service
    from assistant.server.ui import _spar_turn_handler

    service = Service(settings.model_copy(update={"llm_backend": "extractive"}))
    try:
        service.library.ingest([str(articles)])
        _mark_sides(service.library)
        service.__dict__["spar_chain"] = SparChain(service.debate_chain, Verifier(ScriptedJudge(yes=False)))
        session = service.spar_chain.start(MOTION, "skeptic", rounds=0)

        async def play() -> list[str]:
            updates = [u async for u in _spar_turn_handler(service, tmp_path)(session.id, OPENING)]
            return [update[2] for update in updates if isinstance(update[2], str)]

        shown = asyncio.run(play())
    finally:
        service.close()
    # All three rules marks shown, each "checking…", U1 as the rules marked it.
    provisional = next(html for html in shown if html.count('data-final="false"') == 3)
    assert provisional.count('class="flag checking">checking…') == 3
    assert 'data-mark="supported" data-label="U1"' in provisional
    last = shown[-1]  # the saved session: final marks only, U1 revised in its place
    assert 'data-final="false"' not in last and "checking…" not in last
    assert 'data-mark="not found" data-label="U1"' in last and last.count('data-label="U1"') == 1
    assert shown.index(provisional) < next(i for i, html in enumerate(shown) if 'class="card"' in html)


def test_a_negation_only_the_sentence_carries_is_left_to_the_judge(library: Library, articles) -> None:
    """"... defused two naval incidents without an exchange of fire" against "... to defuse naval
    incidents, incidents that could easily have turned into an exchange of fire": the rules see a
    cue on one side only and cannot tell a paraphrase from a denial, so the verdict is undecided and
    the judge settles it (its Yes supports; its No keeps the rules' reason). A negation only the
    evidence carries stays the rules' decision, at no model call."""
    library.ingest([str(articles)])
    retriever = HybridRetriever(library)
    paraphrase = "A hotline installed under the accord defused two naval incidents near the Varn Strait without an exchange of fire."
    found = retriever.retrieve(paraphrase, 3)
    undecided = Verifier().rules(paraphrase, found)
    assert not undecided.supported and undecided.undecided and undecided.reason == CLAIM_ONLY_NEGATION
    assert undecided.rule == NEGATION_IN_CLAIM
    assert Verifier().confirm(undecided, paraphrase, found) == undecided  # no judge: the refusal stands
    yes, no = ScriptedJudge(yes=True), ScriptedJudge(yes=False)
    accepted = Verifier(yes).verify(paraphrase, found)
    assert accepted.supported and accepted.stage == "llm" and accepted.reason == "" and not accepted.undecided
    refused = Verifier(no).verify(paraphrase, found)
    assert not refused.supported and refused.reason == CLAIM_ONLY_NEGATION and refused.stage == "llm"
    assert refused.rule == NEGATION_IN_CLAIM and not refused.undecided
    assert len(yes.asked) == len(no.asked) == 1
    denied = "Engagement with verification rewards a government that has broken its word before."
    verdict = Verifier(yes).verify(denied, retriever.retrieve(denied, 3))
    assert not verdict.supported and not verdict.undecided and verdict.stage == "rules" and len(yes.asked) == 1
