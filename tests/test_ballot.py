"""The judge's ballot over a hand-made debate: the flow rule, the drops, the criterion, the decision."""

from __future__ import annotations

import json
import re
from dataclasses import replace

from assistant.chains.ballot import ballot_lines, judge_ballot
from assistant.chains.flow import flow_of
from tests.fakes import ScriptedChatModel
from tests.test_flow import _debate, _spar


def _judge(reply: str) -> ScriptedChatModel:
    return ScriptedChatModel(rule=lambda messages: reply, calls=[])


def test_each_clash_is_held_by_the_flow_rule_and_its_reason_is_the_cards_tags() -> None:
    debate = _debate()  # A3 answers S1 and S4 answers A3 back; S3 answers A1; A2, S2 and A4 nobody answers
    ballot, reply = judge_ballot(_judge(json.dumps({"clash": 2})), debate.motion, debate, "impact on trade")
    calls = [(c.argument, c.answer, c.winner) for c in ballot.clashes]
    assert calls == [("S1", "A3", "S1"), ("A1", "S3", "S3"), ("A3", "S4", "S4")]
    assert "“Only for a month”" in ballot.clashes[0].reason and "answered in turn by S4" in ballot.clashes[0].reason
    assert "“The rail link closed again”" in ballot.clashes[1].reason and "not answered back" in ballot.clashes[1].reason
    assert ballot.dropped == ["A2", "S2"] and ballot.unweighed == []  # S3 and S4 were weighed in their clashes
    assert ballot.new_in_rebuttal == ["A4"]  # it answers no card: a new argument in a rebuttal, not weighed
    assert ballot.decisive == 2 and reply is not None
    # hawk: the threads A1-S3 and S1-A3-S4 (one point each, in their last clash), dove's drop of S2, and the
    # decisive clash again; dove: A2, which hawk dropped.
    assert ballot.score == {"advocate": 1, "skeptic": 4} and ballot.decision == "skeptic"
    assert "Not weighed, as new in a rebuttal (they answer no card): A4 [2]." in ballot_lines(ballot, debate)


def test_an_answer_that_holds_its_clash_does_not_score_again_as_dropped() -> None:
    """S4 answers A2 here, so nobody answers A3 back: the flow shows A3 as dropped, but A3 holds its
    clash with S1 and the thread scores once. Counted twice, every rebuttal card that was not answered
    back gave its side two points (8 of 10 one-round debates over three corpora, once the side for kept
    its rebuttal links)."""
    debate = _debate()
    skeptic_rebuttal = debate.turns[3]
    skeptic_rebuttal.cards[1] = replace(skeptic_rebuttal.cards[1], answers="A2")
    ballot, _ = judge_ballot(None, debate.motion, debate)
    assert [(c.argument, c.answer, c.winner) for c in ballot.clashes] == [("S1", "A3", "A3"), ("A1", "S3", "S3"),
                                                                         ("A2", "S4", "S4")]  # fmt: skip
    assert "A3" in flow_of(debate).dropped and ballot.dropped == ["S2"]
    # dove: clash 1; hawk: clashes 2 and 3 and S2, which dove dropped
    assert ballot.score == {"advocate": 1, "skeptic": 3}
    assert [part for part in ballot.rfd.split(". ") if "dropped" in part] == ["dove dropped S2 [3], which counts for hawk"]


def test_the_judge_is_asked_only_which_clash_matters_most_on_the_criterion() -> None:
    debate = _debate()
    model = _judge(json.dumps({"clash": 3}))
    judge_ballot(model, debate.motion, debate, "impact on trade")
    (call,) = model.calls
    prompt = call[-1].content
    assert "Judge by: impact on trade" in prompt and prompt.count("Clash ") == 3
    assert "Clash 2: Talks reopened the rail link / answered by: The rail link closed again" in prompt


def test_the_reason_for_decision_cites_cards_only() -> None:
    debate = _debate()
    ballot, _ = judge_ballot(_judge(json.dumps({"clash": 1})), debate.motion, debate, "impact on trade")
    cards = {c.label: c for t in debate.turns for c in t.cards}
    lines = ballot_lines(ballot, debate)
    assert lines[0] == "Judged on impact on trade."
    assert lines[-1].startswith("Decision: hawk. Reason for decision: hawk wins 4 to 1. hawk holds clash 2 (S3 [3] over "
                                "A1 [1]); clash 3 (S4 [3] over A3 [1]).")  # clash 1 is carried into clash 3: not listed
    assert "Clash 1 matters most on impact on trade, so it counts twice." in ballot.rfd
    for label in set(re.findall(r"\b[A-Z]\d+\b", ballot.rfd)):
        assert label in cards and f"{label} [{cards[label].source}]" in ballot.rfd
    assert [line.split(":")[0] for line in lines if line.startswith("Dropped")] == ["Dropped"] * 2


def test_an_unusable_reply_or_no_model_names_no_decisive_clash() -> None:
    debate = _debate()
    for model in (_judge("no json here"), _judge(json.dumps({"clash": 9})), None):
        ballot, _ = judge_ballot(model, debate.motion, debate)
        assert ballot.decisive is None and ballot.score == {"advocate": 1, "skeptic": 3}
        assert ballot.criterion == "the most direct evidence on the motion"


def test_a_tie_goes_against_the_motion_and_the_answered_back_argument_holds() -> None:
    debate = _debate()
    # The dove answers S4 in a later rebuttal: S4 was answered back, so A3 holds its clash with S4.
    extra = replace(debate.turns[2], index=5, cards=[replace(debate.turns[2].cards[0], label="A5", answers="S4",
                                                             tag="The inspectors stayed a year")])  # fmt: skip
    debate.turns.insert(4, extra)
    ballot, _ = judge_ballot(None, debate.motion, debate)
    held = {(c.argument, c.answer): c.winner for c in ballot.clashes}
    assert held[("A3", "S4")] == "A3" and held[("S4", "A5")] == "A5"
    debate.turns = debate.turns[:2]  # openings only: nothing answers anything, nothing can be dropped
    ballot, _ = judge_ballot(None, debate.motion, debate)
    assert ballot.clashes == [] and ballot.dropped == [] and ballot.unweighed == ["A1", "A2", "S1", "S2"]
    assert ballot.decision == "skeptic" and "A tie goes against the motion: dove has to prove it." in ballot.rfd


def test_no_cards_no_decision() -> None:
    debate = _debate()
    debate.turns = []
    ballot, reply = judge_ballot(_judge("{}"), debate.motion, debate)
    assert ballot.decision is None and reply is None and "nothing to decide" in ballot.rfd


def test_a_spar_ballot_weighs_the_users_claims_by_their_marks() -> None:
    """The user (against) makes U1 (supported), U2 (not found) and U3 (contradicted); the assistant
    answers U2 and U3 and leaves U1: its answers hold against the claims the sources do not support,
    and the supported claim it dropped counts for the user."""
    debate = _spar()
    ballot, reply = judge_ballot(None, debate.motion, debate)
    assert reply is None
    assert [(c.argument, c.answer, c.winner) for c in ballot.clashes] == [("U2", "A1", "A1"), ("U3", "A2", "A2")]
    assert "which the sources do not support (not found)" in ballot.clashes[0].reason
    assert ballot.dropped == ["U1"] and ballot.score == {"advocate": 2, "skeptic": 1} and ballot.decision == "advocate"
    assert "dove dropped U1 [3], which counts for you." in ballot.rfd
    # A supported claim answered by a card: both rest on the sources, neither holds the clash.
    debate.turns[0].claims[1] = replace(debate.turns[0].claims[1], mark="supported", source=1)
    ballot, _ = judge_ballot(None, debate.motion, debate)
    assert ballot.clashes[0].winner is None and "neither holds it" in ballot.clashes[0].reason
    assert "Neither side holds it." in "\n".join(ballot_lines(ballot, debate))
    assert ballot.score == {"advocate": 1, "skeptic": 1} and ballot.decision == "skeptic"  # a tie: against the motion


def test_a_dropped_claim_the_sources_do_not_support_counts_for_nothing() -> None:
    debate = _spar()
    debate.turns[1].cards = []  # the assistant answers nothing in its opening
    ballot, _ = judge_ballot(None, debate.motion, debate)
    assert ballot.dropped == ["U1", "U2"] and ballot.score["skeptic"] == 1
    line = next(line for line in ballot_lines(ballot, debate) if line.startswith("Dropped: U2"))
    assert line.endswith("the sources do not support it (not found), so it counts for nothing.")
