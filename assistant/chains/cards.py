"""Evidence cards: the model chooses evidence sentences by id and writes a tag; code builds the card.

A free-form debate turn from the 1.5B model pasted titles, argued with the other side's
evidence and repeated its opponent (see DESIGN.md). A card instead is built by code from
what the model chose: the quote is the candidate sentence itself (an exact span of its
passage, by construction), the citation is that passage's number, and only the tag (one
short claim) is the model's own text, which is checked against its quote
(``tag_supported``) and replaced by the trimmed quote when the check fails.

The reply is constrained by a JSON schema: llama.cpp turns it into a grammar (every id is
one of the offered ones, the JSON always parses); an OpenAI-compatible server gets it as
``response_format``; any other model is asked for the same JSON in the prompt and its reply
is validated. The extractive baseline (no neural model) and any unusable reply fall back
to the best-ranked candidates with their trimmed quotes as tags, marked as such.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from assistant.core.lexicon import is_tag_word, negated_stems
from assistant.checks.model_text import normalise_model_text
from assistant.core.passage import Passage
from assistant.core.text import Sentence, number_key, text_key, words
from assistant.core.debate_record import Card

TAG_MAX_WORDS = 20
TAG_MAX_CHARS = 120
# A tag as the grammar lets the model write it: a capital letter, then 14-119 plain characters
# (no "...", no switch into another script, no quotation marks that would break the JSON).
# The prompt asks for 15 words (~90 characters): a tag that reaches the limit was cut off.
TAG_PATTERN = r"^[A-Z][A-Za-z0-9 ,.;:'%$()/-]{14,119}$"
# Share of a tag's content words (stems) that its quote must hold.
TAG_MIN_OVERLAP = 0.7
# A letter outside the Latin scripts: the small model sometimes drifts into Chinese mid-tag.
_FOREIGN_LETTER = re.compile(r"[^\W\d_\u0000-\u024F\u1E00-\u1EFF]")


@dataclass(frozen=True)
class Candidate:
    """A sentence a side may quote: the source number of its passage and its offsets in it."""

    source: int
    passage: Passage
    sentence: Sentence


def tag_supported(tag: str, quote: str) -> bool:
    """Does the quote state what the tag claims? Conservative lexical check.

    Most content words of the tag (stems, ``TAG_MIN_OVERLAP``) must occur in the quote,
    every number in the tag must be in the quote, and the tag must not flip the quote's
    polarity: a tag may not add a negation, nor assert without negation what the quote
    negates ("not engagement"). A letter of another script fails. Kept behind this one
    function so a stronger claim verifier can replace it.
    """
    tag_words = words(tag)
    if not tag_words or len(tag_words) > TAG_MAX_WORDS + 4 or _FOREIGN_LETTER.search(tag):
        return False
    quote_words = words(quote)
    content = {w.stem for w in tag_words if is_tag_word(w)}
    if not content:
        return False
    overlap = len(content & {w.stem for w in quote_words}) / len(content)
    numbers = {number_key(w.number) for w in tag_words if w.number is not None}
    quoted_numbers = {number_key(w.number) for w in quote_words if w.number is not None}
    tag_negated, _ = negated_stems(tag)
    quote_negated, governed = negated_stems(quote)
    flips = (tag_negated and not quote_negated) or (not tag_negated and bool(content & governed))
    return overlap >= TAG_MIN_OVERLAP and numbers <= quoted_numbers and not flips


def trimmed_quote(quote: str, max_words: int = TAG_MAX_WORDS) -> str:
    """The quote cut to about ``max_words`` words (at a comma when one is near), as a fallback tag."""
    pieces = quote.split()
    if len(pieces) <= max_words:
        return quote.rstrip(" .")
    head = " ".join(pieces[:max_words])
    comma = head.rfind(",")
    if comma > len(head) // 2:
        head = head[:comma]
    return head.rstrip(" ,;:") + " …"


def card_schema(n_candidates: int, n_cards: int, answer_labels: Sequence[str] = (), first_answers: str | None = None) -> dict:
    """JSON schema of a turn's reply: exactly ``n_cards`` of {answers?, id, tag}; ids and labels enumerated.

    ``id`` comes before ``tag`` so the tag is written with the chosen sentence in view, and
    ``answers`` last: written first, it put the card it names just before the tag, and the model
    copied that card's tag as its own in 7 of 16 rebuttal cards (4 motions over two topics).
    ``first_answers``: the label the first card must answer (a spar answers the user's weakest
    claim first); the grammar then fixes it, so the first card can be shown as soon as it is written.
    """

    def item(labels: Sequence[str]) -> dict:
        properties: dict[str, Any] = {}
        properties["id"] = {"type": "integer", "enum": list(range(1, n_candidates + 1))}
        properties["tag"] = {"type": "string", "pattern": TAG_PATTERN}
        if labels:
            properties["answers"] = {"type": "string", "enum": list(labels)}
        return {"type": "object", "properties": properties, "required": list(properties)}

    cards: dict[str, Any] = {"type": "array", "minItems": n_cards, "maxItems": n_cards}
    if first_answers is not None:
        cards["prefixItems"] = [item([first_answers]), *[item(answer_labels)] * (n_cards - 1)]
    else:
        cards["items"] = item(answer_labels)
    return {"type": "object", "properties": {"cards": cards}, "required": ["cards"]}


# A finished card object in a reply still being written: tags cannot hold braces (TAG_PATTERN).
_FINISHED_PICK = re.compile(r"\{[^{}]*\}")


def finished_picks(partial: str) -> list[dict]:
    """The card objects a reply being written has finished so far, in order."""
    opened = partial.find("[")
    picks = []
    for match in _FINISHED_PICK.finditer(partial, opened + 1) if opened >= 0 else ():
        try:
            pick = json.loads(match.group(0))
        except ValueError:
            break
        picks.append(pick)
    return picks


def _picks(reply: dict | None) -> list[dict]:
    cards = reply.get("cards") if reply else None
    return [c for c in cards if isinstance(c, dict)] if isinstance(cards, list) else []


def assemble_cards(
    role: str,
    reply: dict | None,
    candidates: Sequence[Candidate],
    n_cards: int,
    first_number: int,
    used_tags: set[str],
    answer_labels: Sequence[str] = (),
) -> list[Card]:
    """Cards from the model's picks: valid ids once each, tags checked, fewer picks filled from the best candidates.

    ``candidates`` hold no quote used earlier in the debate, so no card repeats a quote; a
    tag already used (or failing its check) becomes the trimmed quote. ``used_tags`` is updated.
    """
    chosen: list[tuple[Candidate, str, str | None]] = []
    for pick in _picks(reply):
        number = pick.get("id")
        if not isinstance(number, int) or not 1 <= number <= len(candidates):
            continue
        # The tag is model text: checked and shown without the model's artefacts ("U. S.", "16, 000").
        tag = normalise_model_text(" ".join(str(pick.get("tag") or "").split()))
        candidate = _meant(candidates[number - 1], tag, candidates, [c for c, _, _ in chosen])
        if any(c is candidate for c, _, _ in chosen):
            continue
        answers = pick.get("answers") if pick.get("answers") in answer_labels else None
        chosen.append((candidate, tag, answers))
        if len(chosen) == n_cards:
            break
    for candidate in candidates:  # the model chose fewer (or none): the best-ranked ones
        if len(chosen) >= n_cards:
            break
        if not any(c is candidate for c, _, _ in chosen):
            chosen.append((candidate, "", None))
    cards = []
    unanswered = [label for label in answer_labels if not any(a == label for _, _, a in chosen)]
    for offset, (candidate, tag, answers) in enumerate(chosen):
        if answer_labels and answers is None:
            answers = unanswered.pop(0) if unanswered else answer_labels[0]
        quote = candidate.sentence.text
        note = _tag_problem(tag, quote, used_tags)
        shown = trimmed_quote(quote) if note else tag.rstrip(" .")
        used_tags.add(text_key(shown))
        cards.append(
            Card(
                label=f"{role[0].upper()}{first_number + offset}", role=role, tag=shown, quote=quote,
                source=candidate.source, passage_id=candidate.passage.id, doc_id=candidate.passage.doc_id,
                start=candidate.sentence.start, end=candidate.sentence.end, tag_from="quote" if note else "model",
                model_tag=tag, tag_note=note, answers=answers,
            )
        )  # fmt: skip
    return cards


def _tag_problem(tag: str, quote: str, used_tags: set[str]) -> str:
    """Why the model's tag cannot be shown ("" if it can)."""
    if not tag:
        return "no tag from the model"
    if len(tag) >= TAG_MAX_CHARS:
        return "cut off at the length limit"
    if text_key(tag) in used_tags:
        return "repeats an earlier tag"
    if not tag_supported(tag, quote):
        return "not supported by its quote"
    if _cut_copy(tag, quote):
        return "the quote's opening, cut mid-sentence"
    if _ends_mid_clause(tag):
        return "ends mid-clause"
    return ""


# Words a claim cannot end on: articles, conjunctions, prepositions, auxiliaries. A tag ending on
# one (or on a comma or dash) was cut off: "... the nuclear issue and", "... according to".
_OPEN_ENDINGS = frozenset(
    "a an the and or but nor that which who whose of to with for from by at in on as than if because "
    "has have had is are was were be been will would could should can may might must".split()
)


def _ends_mid_clause(tag: str) -> bool:
    """Does the tag stop where no sentence can? Seen in debates on the dev and third-party
    articles: the 1.5B model copies a stretch of the quote into its tag and stops mid-clause, and
    shown with a full stop it reads as a broken claim (",." or "... pressure has.")."""
    body = tag.rstrip()
    if body.endswith((".", "!", "?", "…", "”", '"')):
        body = body.rstrip(".!?…”\" ")
        if not body or tag.rstrip()[-1] in "!?":
            return False
    if re.search(r"[,;:\u2013\u2014-]$", body):
        return True
    last = re.findall(r"[\w'’]+", body)
    return bool(last) and last[-1].lower() in _OPEN_ENDINGS


def _cut_copy(tag: str, quote: str) -> bool:
    """The tag is the quote's first words, stopped mid-clause ("... easing tensions that could."):
    shown as the model wrote it, it would end with a false full stop. A copy that stops where
    the quote's clause does (before a comma, colon or the end) reads as a claim and is kept."""
    key, quote_key = text_key(tag), text_key(quote)
    if not key or not quote_key.startswith(key) or key == quote_key:
        return False
    copied = re.match(r"^\W*" + r"\W+".join(map(re.escape, key.split())), quote, re.I)
    if copied is None:
        return False
    cut = copied.end()
    return not re.match(r"\s*[,;:–—-]", quote[cut:])


def _meant(candidate: Candidate, tag: str, candidates: Sequence[Candidate], taken: list[Candidate]) -> Candidate:
    """The candidate the tag describes: the chosen one, or, when the model wrote the tag of another
    offered sentence under the wrong id (seen with the 1.5B model), that sentence if still free."""
    if not tag or tag_supported(tag, candidate.sentence.text):
        return candidate
    for other in candidates:
        if other is not candidate and not any(other is t for t in taken) and tag_supported(tag, other.sentence.text):
            return other
    return candidate


def card_text(card: Card) -> str:
    """One card as a line of a turn: label, what it answers, tag, the quote, the citation."""
    answers = f" (answers {card.answers})" if card.answers else ""
    end = "" if card.tag.endswith((".", "!", "?", "…")) else "."
    return f"{card.label}{answers}: {card.tag}{end} “{card.quote}” [{card.source}]"
