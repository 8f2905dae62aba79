"""A deterministic support score: does the cited passage actually contain what the sentence says?

A valid ``[n]`` only proves the number exists. To catch a model that cites a real passage
for a claim the passage does not make, each cited sentence is compared with the text of
the passages it cites:

    score = |content terms of the sentence found in the cited passages| / |content terms of the sentence|

where *content terms* are lower-cased words, Snowball-stemmed (so "engaged"/"engagement"
match), with English stop words (scikit-learn's list, plus verbs of attribution such as
"argues") and the citation markers removed; numbers count as terms
and are also checked on their own: a number the passages never mention makes the sentence
unsupported whatever its score (numbers are where small models invent most), and so does
a *name* (a capitalised word other than the sentence's first) that the passages never
mention: "The Hanoi summit produced the Harbor Accord" borrows most of its words from a
passage about the accord, but not "Hanoi". A sentence is *supported* when
``score >= threshold`` (0.5 by default, chosen on the dev set so that paraphrases pass and
claims from the model's own memory do not), no number or name is missing, and it has at
least ``MIN_TERMS`` content terms (fewer make no checkable claim: "Yes [1].").

Known limit: the score is lexical. A wrong inference built from the passage's own words
("the capital city is Lisk" from "the port city of Lisk") can still pass.

The same function is the citation-support metric of the eval runner, so what the UI flags
and what the report counts are the same thing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import Stemmer
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

DEFAULT_THRESHOLD = 0.5
# A sentence needs this many content terms to make a claim a passage can be checked for:
# "Sources [1], [2] are the most useful to you." (a copied prompt line) has one, "Yes [1]." none.
MIN_TERMS = 2
_TERM = re.compile(r"[A-Za-z]+(?:['’][a-z]+)?|\d+(?:[.,]\d+)*")
_MARKER = re.compile(r"\[\d+\]")
# Besides English stop words: words of attribution ("Lee argues that ...", "the author mentions"),
# which a faithful paraphrase adds without the passage containing them.
_STOPWORDS = frozenset(ENGLISH_STOP_WORDS) | {
    "according", "also", "say", "says", "said", "source", "sources", "article", "author", "authors",
    "argue", "argues", "argued", "mention", "mentions", "mentioned", "describe", "describes", "described",
    "write", "writes", "wrote", "call", "calls", "called", "note", "notes", "noted", "suggest", "suggests",
    "yes", "no",
}  # fmt: skip


# Stop words that are names when capitalised mid-sentence ("in May"): checked like names.
_NAME_STOPWORDS = frozenset({"may"})


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def _number(token: str) -> str:
    return token.replace(",", "")


def _terms(text: str) -> list[tuple[str, bool]]:
    """(stemmed term, is a name) pairs of ``text``: content words and numbers, markers removed.

    A *name* is a capitalised word that does not open the sentence ("Hanoi", "Corvel").
    """
    tokens = _TERM.findall(_MARKER.sub(" ", text))
    terms: list[tuple[str, bool]] = []
    for position, token in enumerate(tokens):
        if token[0].isdigit():
            terms.append((_number(token), False))
            continue
        word = token.lower().replace("’", "'").split("'")[0]
        is_name = position > 0 and token[0].isupper() and (word not in _STOPWORDS or word in _NAME_STOPWORDS)
        if len(word) < 2 or (word in _STOPWORDS and not is_name):
            continue
        terms.append((_stemmer().stemWord(word), is_name))
    return terms


def content_terms(text: str) -> list[str]:
    """Stemmed content words and numbers of ``text``, citation markers removed."""
    return [term for term, _ in _terms(text)]


@dataclass(frozen=True)
class SupportScore:
    score: float
    missing_terms: tuple[str, ...]
    missing_numbers: tuple[str, ...]
    missing_names: tuple[str, ...]
    supported: bool


def support_score(sentence: str, passages: Iterable[str], threshold: float = DEFAULT_THRESHOLD) -> SupportScore:
    """How much of ``sentence`` the ``passages`` (the ones it cites) contain; see the module doc."""
    terms = _terms(sentence)
    available = set()
    for passage in passages:
        available.update(content_terms(passage))
    if not terms:
        return SupportScore(0.0, (), (), (), False)
    missing = [(t, name) for t, name in terms if t not in available]
    missing_terms = tuple(dict.fromkeys(t for t, _ in missing))
    missing_numbers = tuple(t for t in missing_terms if t[0].isdigit())
    missing_names = tuple(dict.fromkeys(t for t, name in missing if name))
    score = 1.0 - len(missing) / len(terms)
    supported = score >= threshold and not missing_numbers and not missing_names and len(terms) >= MIN_TERMS
    return SupportScore(score, missing_terms, missing_numbers, missing_names, supported)
