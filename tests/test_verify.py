"""The verifier: alignment to an evidence sentence, then numbers, names, polarity and coverage.

Claims are about the fixture articles (tests/fixtures/articles); the claim benchmark on the
shared claim set runs in ``test_claims_benchmark.py``.
"""

from __future__ import annotations

import pytest

from assistant.core.passage import Passage
from assistant.models.yes_no import support_question
from assistant.checks.verify import Verifier, named_side

PRO = (
    "Every serious attempt to talk with Arandia has produced something concrete. When envoys met in the port "
    "city of Lisk in March 2019, the two governments signed the Harbor Accord, which reopened the Tessaly rail "
    "link after eleven years and let 40,000 tonnes of grain cross the border before winter. Critics say that "
    "talks reward bad behaviour. The record says otherwise."
)
CON = (
    "Engagement without verification rewards a government that has broken its word before. It is unlikely that "
    "Arandia will give up its weapons programme for aid alone. The 2011 Copper Lake agreement collapsed after "
    "eight months, when Arandia expelled the international inspectors it had promised to admit."
)


def _passage(id: str, text: str, title: str = "Why Talking to Arandia Works", author: str | None = "Mira Castell",
            publisher: str | None = None, lead_in: str = "", stance: str = "unknown") -> Passage:
    """A retrieved passage of the test articles."""
    return Passage(id, id.split("-")[0], 0, text, 0, len(text), title=title, author=author, publisher=publisher,
                   lead_in=lead_in, stance=stance)  # fmt: skip


@pytest.fixture(scope="module")
def verifier() -> Verifier:
    return Verifier()


@pytest.mark.parametrize(
    "claim",
    [
        "Castell says the Harbor Accord reopened the Tessaly rail link after eleven years.",
        "The accord signed in Lisk in March 2019 let 40,000 tonnes of grain cross the border.",
        "According to Castell, talking with Arandia has always produced something concrete.",
    ],
)
def test_faithful_paraphrases_pass_with_their_evidence_span(verifier: Verifier, claim: str) -> None:
    passage = _passage("pro-0", PRO)
    verdict = verifier.verify(claim, [passage])
    assert verdict.supported, verdict.reason
    span = verdict.evidence[0]
    assert span.passage_id == "pro-0" and PRO[span.start : span.end] == span.text


@pytest.mark.parametrize(
    ("claim", "reason"),
    [
        ("The Harbor Accord reopened the Tessaly rail link after twelve years.", "number"),  # number word
        ("The accord signed in Lisk in March 2018 let grain cross the border.", "number"),  # year
        ("The accord let 90,000 tonnes of grain cross the border.", "number"),
        ("The accord signed in Hanoi reopened the Tessaly rail link.", "name"),  # a place not in the evidence
        ("The accord was signed in Lisk in May 2019.", "name"),  # May the month
    ],
)
def test_numbers_and_names_must_be_in_the_evidence_sentence(verifier: Verifier, claim: str, reason: str) -> None:
    verdict = verifier.verify(claim, [_passage("pro-0", PRO)])
    assert not verdict.supported and verdict.reason.startswith(reason), verdict.reason


TALKS = (
    "From 2010 to 2015 two envoys, Varga and Osei, led the talks with Arandia. In March 2012 Varga met the "
    "Arandian leader in Lisk. He came back with a promise to reopen the rail link."
)


def test_a_name_from_a_neighbouring_sentence_does_not_replace_the_one_the_evidence_gives(verifier: Verifier) -> None:
    # "Osei" is in the passage, but the sentence about the meeting says Varga met the leader.
    verdict = verifier.verify("Osei met the Arandian leader in Lisk in March 2012.", [_passage("t-0", TALKS)])
    assert not verdict.supported and verdict.reason.startswith("name 'Osei'"), verdict.reason
    assert verifier.verify("Varga met the Arandian leader in Lisk in March 2012.", [_passage("t-0", TALKS)]).supported


def test_a_pronoun_lets_the_name_come_from_the_sentence_before(verifier: Verifier) -> None:
    verdict = verifier.verify("Varga came back with a promise to reopen the rail link.", [_passage("t-0", TALKS)])
    assert verdict.supported, verdict.reason
    assert verdict.evidence[0].text.startswith("He came back")


def test_a_year_from_the_context_but_not_against_a_rival_year(verifier: Verifier) -> None:
    passage = _passage("t-0", TALKS)
    assert not verifier.verify("In March 2011 Varga met the Arandian leader in Lisk.", [passage]).supported


@pytest.mark.parametrize(
    "claim",
    [
        "Reyne expects Arandia to give up its weapons programme for aid alone.",  # evidence: "unlikely"
        "Reyne says engagement with verification rewards a government that broke its word.",  # "without"
        "Reyne says the Copper Lake agreement did not collapse.",
    ],
)
def test_polarity_must_agree(verifier: Verifier, claim: str) -> None:
    verdict = verifier.verify(claim, [_passage("con-0", CON, "The Limits of Engagement", "Tomas Reyne")])
    assert not verdict.supported and "negation" in verdict.reason, verdict.reason


def test_polarity_that_agrees_passes(verifier: Verifier) -> None:
    passage = _passage("con-0", CON, "The Limits of Engagement", "Tomas Reyne")
    assert verifier.verify("Reyne doubts that Arandia will give up its weapons programme for aid alone.", [passage]).supported
    assert verifier.verify("Reyne warns that engagement without verification rewards a government that broke its word.",
                           [passage]).supported  # fmt: skip


def test_unrelated_claims_fail_on_coverage(verifier: Verifier) -> None:
    verdict = verifier.verify("Sanctions crippled the fishing fleet and emptied the harbours.", [_passage("pro-0", PRO)])
    assert not verdict.supported


def test_judge_prompt_puts_the_text_first_so_statements_share_the_prefix() -> None:
    a, b = (support_question(claim, "the text", "T").chatml() for claim in ("claim one", "claim two"))
    shared = len(a) - len(a.split('Statement: "')[1]) - len('Statement: "')
    assert a[:shared] == b[:shared] and a.index("the text") < a.index("claim one")


class _Judge:
    def __init__(self, answer: bool) -> None:
        self.answer, self.calls = answer, []

    def __call__(self, claim: str, context: str, label: str) -> bool:
        self.calls.append((claim, context, label))
        return self.answer


def test_the_judge_only_sees_what_the_rules_pass_and_can_reject_it() -> None:
    no = _Judge(False)
    verifier = Verifier(no)
    passage = _passage("pro-0", PRO)
    rejected = verifier.verify("Castell says the Harbor Accord reopened the Tessaly rail link after eleven years.", [passage])
    assert not rejected.supported and rejected.stage == "llm" and len(no.calls) == 1
    assert "Tessaly rail link" in no.calls[0][1] and no.calls[0][2].startswith("Why Talking")
    verifier.verify("The accord let 90,000 tonnes of grain cross the border.", [passage])
    assert len(no.calls) == 1  # the rules rejected it: the model is not asked


@pytest.mark.slow
def test_the_local_model_judges_what_the_rules_cannot(settings) -> None:
    """The real packaged model under the Yes/No grammar: an antonym the rules let through is caught."""
    from assistant.chains.configured_checks import make_verifier

    verifier = make_verifier(settings.model_copy(update={"verifier": "rules+llm"}))
    passage = _passage("pro-0", PRO)
    assert verifier.rules("The accord reopened the Tessaly rail link after eleven years of peace.", [passage]).supported
    kept = verifier.verify("Castell says the Harbor Accord reopened the Tessaly rail link after eleven years.", [passage])
    assert kept.supported and kept.stage == "llm" and kept.seconds["llm"] > 0
    wrong = verifier.verify("Castell says the Harbor Accord closed the Tessaly rail link for eleven years.", [passage])
    assert not wrong.supported, wrong


def test_a_passage_opening_with_that_summit_reads_the_end_of_the_passage_before(verifier: Verifier) -> None:
    # Split between passages: the year is in the passage before; "that summit" points back at it.
    opening = _passage("t-1", "It later emerged that the envoys had carried 300 million dollars to Lisk shortly before that summit.")
    claim = "The envoys carried 300 million dollars to Lisk shortly before the 2012 summit."
    assert verifier.verify(claim, [opening]).reason == "number '2012' is not in the evidence"
    led_in = _passage("t-1", opening.text, lead_in="In March 2012 Varga flew to Lisk for the first summit.")
    assert verifier.verify(claim, [led_in]).supported


def test_a_relative_that_does_not_let_names_come_from_before(verifier: Verifier) -> None:
    passage = _passage("t-1", "The council should offer a package that, in return for inspections, ends the blockade "
                      "with Tessaly on board.", lead_in="Critics in Varga and Osei want the option kept open.")
    verdict = verifier.verify("Castell wants Varga to end the blockade in return for inspections.", [passage])
    assert not verdict.supported and verdict.reason == "name 'Varga' is not in the evidence", verdict.reason


def test_names_and_numbers_the_question_gives_may_be_restated(verifier: Verifier) -> None:
    passage = _passage("t-0", TALKS)
    claim = "The Lisk talks of March 2012 that the Tessaly council asked about were led by Varga."
    assert not verifier.verify(claim, [passage]).supported
    question = "Who led the Lisk talks of March 2012 in Tessaly?"
    # "Tessaly" is not in the aligned sentence, but the question gives it and the passage holds it.
    assert Verifier().rules(claim, [_passage("t-0", TALKS + " The Tessaly council had asked for them.")], given=question).supported
    # A name the question gives that the cited passage does not hold stays a reason to reject.
    assert not verifier.verify("Varga led the Lisk talks in Orlen.", [passage], given="Who led the talks in Orlen?").supported


def test_an_acronym_matches_its_plural() -> None:
    passage = _passage("t-0", "The rail link was reopened with help that NGOs carry out in Tessaly.")
    assert Verifier().verify("An NGO helped reopen the rail link in Tessaly.", [passage]).reason != "name 'NGO' is not in the evidence"


def test_a_fragment_answer_is_checked_as_the_answer_to_its_question(verifier: Verifier) -> None:
    passage = _passage("t-0", TALKS)
    assert verifier.verify("March 2012 [1].", [passage]).reason == "too few words to make a checkable claim"
    assert verifier.verify("March 2012 [1].", [passage], given="When did Varga meet the Arandian leader in Lisk?").supported
    assert not verifier.verify("March 2011 [1].", [passage], given="When did Varga meet the Arandian leader in Lisk?").supported


def test_not_x_but_y_negates_x_only(verifier: Verifier) -> None:
    passage = _passage("t-0", "What the council offered Arandia was not engagement but sanctions tied to inspections.")
    assert verifier.verify("The council offered Arandia sanctions tied to inspections.", [passage]).supported
    assert not verifier.verify("The council offered Arandia engagement.", [passage]).supported


def test_ending_phrases_and_typographic_contractions() -> None:
    from assistant.core.lexicon import negation_cues
    from assistant.core.text import words

    assert negation_cues(words("The money ended up in the leadership."), "") == []
    assert negation_cues(words("The decade ended with a test on the record."), "") == []
    assert negation_cues(words("The talks ended in 2019."), "") == [2]
    assert negation_cues(words("It won’t buy the same horse twice."), "It won’t buy the same horse twice.") == [1]


def test_the_judge_reads_the_sentence_before_a_passage_opening_with_that_summit() -> None:
    from assistant.checks.verify import EvidenceSpan, judge_context
    from assistant.core.text import sentence_spans

    text = "It later emerged that envoys carried 300 million dollars shortly before that summit. Then talks stalled."
    passage = _passage("t-1", text, lead_in="Officials said so. In March 2012 Varga flew to Lisk for the first summit.")
    spans = sentence_spans(text)
    context = judge_context(passage, spans, [EvidenceSpan("t-1", spans[0].start, spans[0].end, spans[0].text)])
    assert context.startswith("In March 2012 Varga flew to Lisk for the first summit. It later emerged")


def test_a_sentence_that_names_one_sides_article_must_cite_that_side() -> None:
    """Seen in the eval: "What kind of engagement would the skeptic article accept?" answered from the advocate's article."""
    claim = "The skeptic article says the Harbor Accord reopened the Tessaly rail link after eleven years."
    assert Verifier().verify(claim, [_passage("t-0", PRO)]).supported  # no stance known: nothing to compare
    advocate_side = _passage("t-0", PRO, stance="advocate")
    assert Verifier().verify(claim.replace("skeptic article", "advocate's article"), [advocate_side]).supported
    verdict = Verifier().verify(claim, [advocate_side])
    assert verdict.reason == "it attributes this to the skeptic side; its evidence is from the advocate side"



def test_a_number_must_count_the_same_thing_as_in_the_evidence() -> None:
    """Seen in the eval: "How many artillery shells ...?" answered "Two artillery shells were fired ...,
    killing two marines", the number borrowed from what the evidence counts."""
    evidence = "In November the artillery shelled Pell Island, killing two marines and two fishermen."
    verifier = Verifier()
    verdict = verifier.verify("Two artillery shells were fired at Pell Island, killing two marines.", [_passage("t-0", evidence)])
    assert not verdict.supported and verdict.reason == "number 'Two' counts something else in the evidence"
    assert verifier.verify("The artillery shelled Pell Island, killing two marines and two fishermen.", [_passage("t-0", evidence)]).supported
    dated = "On 26 March 2011 the ferry Osk sank, killing 46 Arandian sailors."
    assert verifier.verify("The Osk sank on March 26, 2011, and 46 sailors died.", [_passage("t-0", dated)]).supported
    timetable = "On weekdays the first ferry leaves Osk at 6:40 and the last one returns at 21:15."
    assert verifier.rules("The first ferry leaves Osk at 6:40 on weekdays.", [_passage("t-0", timetable)]).reason == ""
    # What the evidence never mentions is left to coverage and the judge.
    assert verifier.rules("Varga and Osei met three times.", [_passage("t-0", "Varga and Osei held three summits.")]).reason == ""


def test_a_word_the_evidence_has_only_as_another_form_inside_a_name_is_not_there(verifier: Verifier) -> None:
    bio = "Mira Castell is a senior fellow at the Corvel Institute for Maritime Studies and writes on the Varn Strait."
    verdict = verifier.verify("Mira Castell studied at the Corvel Institute for Maritime Studies.", [_passage("b-0", bio)])
    assert not verdict.supported and verdict.reason.startswith("'studied' is in the evidence only"), verdict.reason
    assert verifier.verify("Mira Castell is a fellow at the Corvel Institute for Maritime Studies.", [_passage("b-0", bio)]).supported
    # The same form inside a name is the thing itself, named: "the nonproliferation treaty".
    left = "In 2003 Arandia left the Nonproliferation Treaty and expelled the inspectors."
    assert verifier.verify("Arandia left the nonproliferation treaty in 2003.", [_passage("n-0", left)]).supported
    # A hyphen-joined part of a name in the sentence is a name's part, whatever its case: "Jong-il's".
    talks = "According to Osei, in a 2012 editorial, Ri Jong-il told Varga that the rail link would reopen."
    assert verifier.verify("Osei recounted Ri Jong-il's talk with Varga in 2012.", [_passage("j-0", talks)]).reason != (
        "'il's' is in the evidence only as another form of a word in a name"
    )


def test_a_name_spliced_from_two_names_of_the_evidence_is_not_there(verifier: Verifier) -> None:
    """Seen in the eval: "Kim Moo-hyun pursued the Sunshine Policy" against "Kim Dae-jung and Roh
    Moo-hyun": each word is in the evidence, the person is not."""
    record = "From 1990 to 1999, two Arandian premiers, Osei Tal-mun and Varga Ri-sook, pursued the Open Door policy."
    passages = [_passage("o-0", record)]
    verdict = verifier.verify("Osei Ri-sook pursued the Open Door policy.", passages)
    assert not verdict.supported and verdict.reason == (
        "name 'Osei Ri-sook' is not in the evidence: its parts belong to other names there"
    ), verdict.reason
    assert verifier.verify("Varga Ri-sook pursued the Open Door policy.", passages).supported
    assert verifier.verify("Premier Varga Ri-sook pursued the Open Door policy.", passages).reason.startswith("name") is False
    # A word the evidence also writes on its own may join another name ("Arandian Navy").
    navy = "The Arandian fleet sailed in March 2001; the Navy said the drill went well."
    assert verifier.verify("The Arandian Navy said the drill went well.", [_passage("n-1", navy)]).supported
    # Two names a comma parts are two people.
    told = "Osei Tal-mun said in 2003 that Varga Ri-sook had told him the port would open."
    verdict = verifier.verify("According to Tal-mun, Varga Ri-sook said the port would open.", [_passage("t-0", told)])
    assert "its parts belong to other names" not in verdict.reason


def test_every_refusal_names_its_rule() -> None:
    """Code acts on ``Verdict.rule`` (spar's "contradicted", the refusals left to the judge), never on
    the wording of the reason: each refusal carries one of ``RULES``, and a supported verdict none."""
    from assistant.checks.verify import RULES

    verifier = Verifier()
    passages = [_passage("pro-0", PRO)]
    claims = [
        "Sanctions crippled the fishing fleet and emptied the harbours.",
        "A hotline was used five times in 2020.",
        "Talks.",
        "The talks were held in Brazil.",
    ]
    verdicts = [verifier.verify(claim, passages) for claim in claims] + [verifier.verify("Anything at all.", [])]
    assert all(not v.supported and v.rule in RULES and v.reason for v in verdicts), verdicts
    assert len({v.rule for v in verdicts}) >= 3


@pytest.mark.parametrize(
    ("text", "side"),
    [
        ("The skeptic article says the talks failed.", "skeptic"),
        ("The pro-engagement author argues for talks.", "advocate"),
        ("The pro-rent-control author says caps protect tenants.", "advocate"),
        ("The anti-UBI essay counts the cost.", "skeptic"),
        ("What does the article against the motion say about supply?", "skeptic"),
        ("The side in favour of the motion cites a survey.", "advocate"),
        ("The advocate's piece names three summits.", "advocate"),
    ],
)
def test_a_side_named_in_words_of_any_motion_is_told_from_the_side_cited(text: str, side: str) -> None:
    """Stances are for or against a library's motion, whatever its topic: "pro-rent-control",
    "anti-UBI" and "the article against the motion" name a side as "pro-engagement" does."""
    other = "advocate" if side == "skeptic" else "skeptic"
    assert named_side(text, {other}) == (side, other)
    assert named_side(text, {side}) is None  # it cites the side it names
    assert named_side("The article argues that caps protect tenants.", {other}) is None  # no side named
