"""The lexicon of the checks: one home for what a word is to every rule that reads words.

The verifier, the relevance check, the card tag check and the sentence context all ask the same
questions of words: is it a content word, a name, a year, a month; what does a number count; is
it a negation, and what does that negation govern. Each answer is defined here once, in the core
(the context builder, a retrieval stage, reads it too), so a rule is changed in one place and every
check that reads words changes with it.

What counts as a word of meaning is layered, each layer defined once and saying why it differs:
a *topic word* (``is_topic_word``: numbers kept, to match a question to a sentence), a *tag word*
(``is_tag_word``: no numbers, which are compared apart) and a *content word* (``is_content_word``:
no words of attribution either, which a faithful paraphrase adds freely). A negation has one cue
rule (``is_negation_cue``) and two scopes: in an evidence sentence it governs the words near it
within its clause (``in_negation_scope``, ``denies_claim``); in a card's quote, the first content
words after it (``negated_stems``), since a tag is a dozen words and the quote's cue must govern
what the tag repeats of it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.core.text import STOP_WORDS, Word, number_key, words

# -- word lists ------------------------------------------------------------------------

# A negation cue in the evidence governs the words this many tokens around it.
NEGATION_SCOPE = 6


# Words of attribution a faithful paraphrase adds without the evidence containing them.
ATTRIBUTION = frozenset(
    """
    according say says said saying argue argues argued arguing write writes wrote written note notes noted
    mention mentions mentioned describe describes described call calls called suggest suggests suggested
    believe believes believed think thinks thought warn warns warned claim claims claimed propose proposes
    proposed contend contends insist insists stress stresses explain explains explained add adds added
    point points view views see sees hold holds state states stated maintain maintains conclude concludes
    author authors article articles piece essay text source sources passage op ed writer blog post
    skeptic skeptical sceptic advocate opinion
    yes
    """.split()
)  # fmt: skip


NEGATIONS = frozenset(
    """
    not no never none nor neither nothing nobody nowhere without cannot unlikely unable impossible
    fail fails failed failing failure doubt doubts doubted doubtful wishful hardly barely scarcely lack
    lacks lacked lacking refuse refuses refused reject rejects rejected deny denies denied instead
    false myth illusion
    abandon abandons abandoned abandoning drop drops dropped dropping stop stops stopped stopping halt halts
    halted halting cease ceased ceasing end ends ended ending scrap scrapped scrapping quit quitting
    refusing rejecting denying doubting
    """.split()
)  # fmt: skip


# A sentence holding one of these refers back: its names may be in the sentences before.
PRONOUNS = frozenset("he she it they him her them his its their".split())


# These refer back only before a noun ("that summit"), not as a conjunction or relative ("a package that, in ...").
DEMONSTRATIVES = frozenset("this these that those".split())


MONTHS = frozenset("january february march april may june july august september october november december".split())
# How a month is abbreviated before a full stop ("Jan. 15").
MONTH_ABBREVIATIONS = ("Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec")


# Short forms a name may take in a claim: "US" for "United States".
ALIASES = {
    "us": ("united states", "america", "american", "washington"),
    "american": ("u.s.", "united states", "america", "washington"),
    "americans": ("u.s.", "united states", "america"),
    "usa": ("united states", "america"),
    "un": ("united nations",),
    "rok": ("south korea", "republic of korea"),
    "dprk": ("north korea",),
    "uk": ("united kingdom", "britain", "british"),
    "eu": ("european union",),
}


# -- names, years, content words --------------------------------------------------------

def is_name(word: Word, previous: Word | None) -> bool:
    """Capitalised (not at the sentence start), all caps, or hyphen-joined to a name ("Jong-il")."""
    if word.number is not None or word.lower in ATTRIBUTION or len(word.surface) < 2:
        return False  # a lone capital is an initial ("J. Lee"), not a name to look up
    if word.joined and previous is not None and is_name(previous, None) and word.index > 0:
        return True
    if len(word.surface) >= 2 and word.surface.isupper() and word.surface.isalpha():
        return True
    return word.index > 0 and word.capitalised and (word.lower not in STOP_WORDS or word.lower == "may")


def refers_back(ws: Sequence[Word]) -> bool:
    """Does the sentence point at something said before it ("He was sent home", "before that summit")?"""
    return any(
        w.lower in PRONOUNS or (w.lower in DEMONSTRATIVES and nxt is not None and is_content_word(nxt))
        for w, nxt in zip(ws, [*ws[1:], None])
    )


def is_year(word: Word) -> bool:
    return word.surface.isdigit() and len(word.surface) == 4 and 1800 <= int(word.surface) <= 2100


def names_in(ws: Sequence[Word], proper: frozenset[str] = frozenset()) -> list[Word]:
    """Names of a sentence; its first word too when the passage writes it capitalised mid-sentence (``proper``)."""
    found = [w for i, w in enumerate(ws) if is_name(w, ws[i - 1] if i else None)]
    if ws and ws[0].lower in proper and ws[0] not in found:
        found.insert(0, ws[0])
    return found


def is_topic_word(word: Word) -> bool:
    """A word that says what a text is about: not a stop word, marker or single character. Numbers
    count ("2006" in a question should find the sentence with "2006")."""
    return word.lower not in STOP_WORDS and len(word.lower) > 1


def is_tag_word(word: Word) -> bool:
    """A word a card's tag must share with its quote: a topic word that is not a number (numbers are
    compared apart). Words of attribution count, unlike ``is_content_word``: a tag is a claim in the
    side's own voice, and an "argues" or "article" of its own is not in its quote."""
    return word.number is None and is_topic_word(word)


def is_content_word(word: Word) -> bool:
    """A word a claim says something with: a tag word that is not a word of attribution ("argues",
    "article"), which a faithful paraphrase adds freely. What coverage, alignment and relevance count."""
    return is_tag_word(word) and word.lower not in ATTRIBUTION


def topic_stems(text: str) -> set[str]:
    """The stems of ``text``'s topic words (``is_topic_word``), to match a question to a sentence."""
    return {w.stem for w in words(text) if is_topic_word(w)}


# -- numbers and what they count --------------------------------------------------------

# How many words after a number may name what it counts ("two marines", "46 South Korean sailors").
COUNT_REACH = 3


def counted_after(ws: Sequence[Word], at: int) -> list[Word]:
    """The words right after the number at position ``at`` that name what it counts: the run of
    content words up to the first other word ("two marines and ..." -> marines). A number followed
    by a stop word counts nothing named ("at 6:40 on weekdays", "tens of thousands")."""
    run = []
    for w in ws[at + 1 : at + 1 + COUNT_REACH]:
        if not is_content_word(w):
            break
        run.append(w)
    return run


def is_dated(ws: Sequence[Word], at: int) -> bool:
    """The number at ``at`` is a day of a month or a year ("26 March", "March 26"), not a count."""
    return is_year(ws[at]) or any(w.lower in MONTHS for w in ws[max(at - 1, 0) : at + 2])


QUANTITY_WORDS = frozenset(
    "dozens hundreds thousands millions billions tens several few many much most all none half majority".split()
)


_COUNTED = re.compile(r"\bhow (?:many|much)\s+(.*)", re.I)


# Measures a number answers without naming them: "How much money ..." is answered in dollars.
_GENERIC_MEASURES = frozenset("money time people persons times years months days weeks hours cost".split())


def counted_words(question: str) -> list[Word]:
    """What a "how many / how much" question counts: the words after it up to the first stop word
    ("How many sailors survived the sinking" -> sailors, survived). An answer must speak of them:
    "46 sailors died" does not say how many survived."""
    match = _COUNTED.search(question)
    if not match:
        return []
    counted = []
    for word in words(match.group(1)):
        if word.lower in STOP_WORDS or word.number is not None:
            break
        if word.lower not in _GENERIC_MEASURES:
            counted.append(word)
    return counted


# How far a number may stand before the thing it counts: "28,500 U.S. troops", "500 million dollars in aid".
NEAR_COUNT_REACH = 4


def counts_them(answer_words: Sequence[Word], counted: Sequence[Word]) -> bool:
    """Does a number (or quantity word) of the answer stand just before a word the question counts?
    "killing two marines" gives a number, but not of the artillery shells that were asked about.
    Looser than ``counted_after`` on purpose: here the question names what is counted, so a number
    may stand a few words before it with stop words between ("500 million dollars in aid"); there
    the sentence alone must say what its number counts."""
    for i, word in enumerate(answer_words):
        if word.number is None and word.lower not in QUANTITY_WORDS:
            continue
        following = answer_words[i + 1 : i + 1 + NEAR_COUNT_REACH]
        if any(found_in(c, following, " ".join(w.lower for w in following)) for c in counted):
            return True
    return False


# -- finding a word in a text -----------------------------------------------------------

def alike(a: Word, b: Word) -> bool:
    """The same word by stem or by form (see ``same_word``): how a claim's word is found in evidence."""
    return same_word(a.stem, b.stem) or same_word(a.lower, b.lower)


def same_word(a: str, b: str) -> bool:
    """Equal stems, or one a near-prefix of the other ("korea"/"korean", "china"/"chinese")."""
    if a == b:
        return True
    shorter, longer = sorted((a, b), key=len)
    if len(shorter) >= 3 and longer in (shorter + "s", shorter + "es"):
        return True  # a plural the stemmer keeps: "NGO"/"NGOs", "veto"/"vetoes"
    if len(shorter) < 4:
        return False
    common = 0
    for x, y in zip(shorter, longer):
        if x != y:
            break
        common += 1
    return common >= 4 and common >= len(shorter) - 1


def found_in(word: Word, pool: Sequence[Word], joined_text: str) -> bool:
    """Is ``word`` in ``pool`` (stems, near-prefix, alias of a short form)?"""
    if any(alike(word, w) for w in pool):
        return True
    return any(alias in joined_text for alias in ALIASES.get(word.lower, ()))


# -- negation and its scope -------------------------------------------------------------

# "ended up in", "ended with": an ending verb that does not deny what follows it.
_PHRASAL_PARTICLES = frozenset("up with".split())


def _phrasal(word: Word, ws: Sequence[Word]) -> bool:
    """Is ``word`` the verb of a phrase that negates nothing ("ended up", "ended with")?"""
    following = ws[word.index + 1] if word.index + 1 < len(ws) else None
    return word.lower in {"end", "ends", "ended"} and following is not None and following.lower in _PHRASAL_PARTICLES


def _numbered_no(word: Word, ws: Sequence[Word]) -> bool:
    """Is ``word`` "No" as the abbreviation of "number" ("No. 2", "No 10 Downing Street")?"""
    following = ws[word.index + 1] if word.index + 1 < len(ws) else None
    return word.surface == "No" and following is not None and following.number is not None


def is_negation_cue(word: Word, ws: Sequence[Word]) -> bool:
    """Is ``word`` (of ``ws``) a negation or doubt cue? A word of ``NEGATIONS`` or an "n't" form, but
    not an ending verb of a phrase that negates nothing ("ended up") nor "No" abbreviating "number"
    ("No. 2"). One rule for claims, evidence and a card's tag and quote."""
    return (word.lower in NEGATIONS and not _phrasal(word, ws) and not _numbered_no(word, ws)) \
        or word.lower.replace("’", "'").endswith("n't")


def negation_cues(ws: Sequence[Word], text: str) -> list[int]:
    """Positions of negation cues in ``ws`` ("n't" forms and "rather than" included)."""
    cues = [w.index for w in ws if is_negation_cue(w, ws)]
    lowered = text.lower()
    if "rather than" in lowered:
        cues += [w.index for w in ws if w.lower == "rather"]
    return cues


CONTRAST = frozenset("but rather instead".split())


def in_negation_scope(cue: int, index: int, ws: Sequence[Word]) -> bool:
    """Is word ``index`` governed by the negation cue at ``cue``? Within ``NEGATION_SCOPE`` words
    either side, but "A is not X but Y" negates X only: the words between the cue and a following
    "but", "rather" or "instead", not A, not Y."""
    if abs(cue - index) > NEGATION_SCOPE:
        return False
    contrast = next((i for i in range(cue + 1, min(cue + NEGATION_SCOPE, len(ws) - 1) + 1) if ws[i].lower in CONTRAST), None)
    return cue < index < contrast if contrast is not None else True


# Where a clause ends (``denies_claim`` judges negation in the clause that carries the claim).
_CLAUSE_BREAK = re.compile(r"[,;:()\u2013\u2014]|\s-\s|\b(?:which|who|whom|whose|whereas|while|although|though|since|because|and\s+(?:has|have|had|is|are|was|were))\b",
                           re.I)  # fmt: skip


def clauses(text: str) -> list[str]:
    """The clauses of a sentence, split where ``_CLAUSE_BREAK`` says one ends."""
    return [part for part in _CLAUSE_BREAK.split(text) if part and part.strip()]


def denies_claim(text: str, terms: Sequence[Word]) -> bool:
    """Does a negation or doubt cue of ``text`` govern what the claim says? A cue governs a word
    within ``NEGATION_SCOPE`` in its own clause (``clauses``), and only a shared word that is not a
    name counts: "X has not reduced its troops, and has continued its tests, which it ran in 2006"
    denies the reduction, not X and not the tests or their date; "X did not test" still denies
    "X tested" through "test"."""
    def shares(w: Word, ws: Sequence[Word]) -> bool:
        opens_a_name = w.index + 1 < len(ws) and ws[w.index + 1].capitalised  # "North Korea has not ..."
        if w.capitalised and (w.index > 0 or opens_a_name):  # a name: who or what, not what is said of it
            return False
        if w.number is not None:
            return any(t.number is not None and number_key(t.number) == number_key(w.number) for t in terms)
        return any(same_word(w.stem, t.stem) for t in terms if t.number is None)

    for clause in clauses(text):
        ws = words(clause)
        shared = [w.index for w in ws if shares(w, ws)]
        if any(in_negation_scope(cue, i, ws) for cue in negation_cues(ws, clause) for i in shared):
            return True
    return False


# Content words after a negation that it governs ("not engagement but ...": "engagement").
TAG_NEGATION_REACH = 2


def negated_stems(text: str) -> tuple[bool, set[str]]:
    """Whether ``text`` holds a negation, and the stems of the content words each negation governs."""
    tokens = words(text)
    governed: set[str] = set()
    negated = False
    for i, word in enumerate(tokens):
        if not is_negation_cue(word, tokens):
            continue
        negated = True
        following: list[str] = []
        for w in tokens[i + 1 :]:
            if w.lower in ("but", "yet") or len(following) == TAG_NEGATION_REACH:  # "not X but Y": Y is asserted
                break
            if w.lower not in STOP_WORDS and not is_negation_cue(w, tokens):
                following.append(w.stem)
        governed.update(following)
    return negated, governed
