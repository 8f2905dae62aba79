"""Turn extracted article text into clean prose: keep facts, drop only chrome.

Chrome costs twice: it wastes passages and it pollutes retrieval. The rules work on
paragraphs and are deliberately conservative: a paragraph is dropped only when it is
short navigation, a share/call-to-action line, a disclaimer, or a repeat of text that is
kept elsewhere. A navigation link or disclaimer near the end of the article marks the start
of the site footer; after it only a publisher's one-sentence self-description is kept.

Photo captions (with their credit) and that self-description are facts a reader may ask
about ("when was the photo taken?", "what is the council dedicated to?"), so they are kept,
marked as such (``Photo caption:``, ``About:``) so that the model and the
reader know what kind of text they are.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

from rapidfuzz import fuzz

from assistant.core.text import strip_terminal_escapes

_NAV_LINE = re.compile(
    r"(next|previous|prev|back|back to top|home|menu|skip to (main )?content|share|share this"
    r"( article| story| post| page)?|tweet|print|email|read more|continue reading|subscribe( now)?|"
    r"sign up|sign in|log ?in|related( articles| posts| stories| content)?|advertisement|"
    r"leave a (comment|reply)|comments?|more from [\w ]{1,30}|you may also like|recommended)"
    r"\s*[:»›>→-]*",
    re.IGNORECASE,
)
_SHARE_LINE = re.compile(
    r"(share|tweet|pin it|email this|print this|follow us|like us|click to (share|print|email))\b.*",
    re.IGNORECASE,
)
_CALL_TO_ACTION = re.compile(
    r"(to read|read|visit|click|see|view|continue|watch|listen)\b.{0,100}https?://\S+\s*",
    re.IGNORECASE | re.DOTALL,
)
_BARE_URL = re.compile(r"(https?://|www\.)\S+", re.IGNORECASE)
_DISCLAIMER = re.compile(
    r"do(es)? not necessarily (reflect|represent)|(views|opinions) expressed (here|herein|in this)",
    re.IGNORECASE,
)
_CAPTION = re.compile(
    r"^(in this (handout |file )?(photo|image|picture)\b)|\b(photo|image|picture) (credit|courtesy)\b"
    r"|\bcredit:\s",
    re.IGNORECASE,
)
# A publisher's self-description in the footer: "The Pacific Council is dedicated to ...".
_ABOUT_LINE = re.compile(r"(The\s+)?[A-Z][\w.'’&-]*(\s+(of|for|and|&|[A-Z][\w.'’&-]*)){0,6}\s+(is|are)\s+\S.{8,280}[.!]")
CAPTION_LABEL = "Photo caption: "
ABOUT_LABEL = "About: "
_COPYRIGHT = re.compile(r"(©|\(c\)|copyright\b).{0,200}", re.IGNORECASE | re.DOTALL)
_WORD = re.compile(r"\w+")
_BYLINE = re.compile(r"^[Bb]y\s+([A-Z][\w.'’-]+(?:\s+[A-Z][\w.'’-]+){1,3})\s*$")
_BIO = re.compile(r"^([A-Z][\w.'’-]+(?:\s+[A-Z][\w.'’-]+){1,3})\s+is\s+(?:a|an|the|[A-Z])")

# A footer marker only ends the article when it sits in this final share of the text.
FOOTER_REGION = 0.4
# Paragraphs shorter than this are never treated as repeats (headings, list items).
MIN_REPEAT_WORDS = 8
NEAR_DUPLICATE_RATIO = 0.9


@dataclass
class CleanResult:
    """Cleaned text and what was removed, by reason (shown to the user after ingest)."""

    text: str
    removed: Counter = field(default_factory=Counter)


def normalize_text(raw: str) -> str:
    """Unicode NFC, unified newlines, no non-breaking or zero-width spaces, no trailing blanks."""
    text = unicodedata.normalize("NFC", strip_terminal_escapes(raw))  # whole sequences first, no "[2J" left
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u00a0", " ").replace("\u200b", "").replace("\ufeff", "")
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")
    return "\n".join(line.rstrip() for line in text.split("\n"))


def split_paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def _words(paragraph: str) -> list[str]:
    return _WORD.findall(paragraph.lower())


def _is_navigation(paragraph: str) -> bool:
    lines = [line.strip() for line in paragraph.split("\n") if line.strip()]
    return all(len(line) <= 40 and _NAV_LINE.fullmatch(line) for line in lines)


def _is_share(paragraph: str) -> bool:
    lines = [line.strip() for line in paragraph.split("\n") if line.strip()]
    return all(len(line) <= 80 and _SHARE_LINE.fullmatch(line) for line in lines)


def _boilerplate_reason(paragraph: str) -> str | None:
    """Why a paragraph is boilerplate on its own, or None when it is content."""
    if _is_navigation(paragraph):
        return "navigation"
    if _is_share(paragraph):
        return "share"
    if _BARE_URL.fullmatch(paragraph) or (len(paragraph) <= 200 and _CALL_TO_ACTION.fullmatch(paragraph)):
        return "link"
    if len(paragraph) <= 400 and _DISCLAIMER.search(paragraph):
        return "disclaimer"
    if len(paragraph) <= 200 and _COPYRIGHT.fullmatch(paragraph):
        return "copyright"
    return None


def _marked(paragraph: str) -> str:
    """A photo caption keeps its text (a dated, credited fact) under a label that says what it is."""
    if len(paragraph) <= 500 and _CAPTION.search(paragraph):
        return CAPTION_LABEL + paragraph
    return paragraph


def _is_repeat(words: list[str], others: list[list[str]]) -> bool:
    """True when ``words`` is contained in, or nearly equal to, one of ``others``."""
    if len(words) < MIN_REPEAT_WORDS:
        return False
    joined = " ".join(words)
    for other in others:
        if len(other) < len(words) * NEAR_DUPLICATE_RATIO:
            continue
        other_joined = " ".join(other)
        if joined in other_joined:
            return True
        if len(other) <= len(words) / NEAR_DUPLICATE_RATIO:
            if fuzz.ratio(joined, other_joined, score_cutoff=NEAR_DUPLICATE_RATIO * 100):
                return True
    return False


def clean_text(raw: str) -> CleanResult:
    """Remove boilerplate paragraphs, the site footer and repeated paragraphs from ``raw``."""
    paragraphs = split_paragraphs(normalize_text(raw))
    removed: Counter = Counter()
    total_chars = sum(len(p) for p in paragraphs) or 1

    kept: list[str] = []
    position = 0
    in_footer = False
    for paragraph in paragraphs:
        reason = _boilerplate_reason(paragraph)
        in_footer_region = position / total_chars >= 1 - FOOTER_REGION
        position += len(paragraph)
        if reason in ("navigation", "disclaimer") and in_footer_region and kept:
            in_footer = True
        if in_footer:
            if not reason and _ABOUT_LINE.fullmatch(paragraph):
                kept.append(ABOUT_LABEL + paragraph)
            else:
                removed["footer"] += 1
            continue
        if reason:
            removed[reason] += 1
            continue
        kept.append(_marked(paragraph))

    # Repeats: a paragraph contained in (or nearly equal to) another kept paragraph is
    # dropped. For equal pairs the first one stays; a short dek or pull quote gives way
    # to the longer paragraph that contains it.
    word_lists = [_words(p) for p in kept]
    result: list[str] = []
    for i, paragraph in enumerate(kept):
        others = [w for j, w in enumerate(word_lists) if j != i and (j < i or len(w) > len(word_lists[i]))]
        if _is_repeat(word_lists[i], others):
            removed["repeat"] += 1
            continue
        result.append(paragraph)
    return CleanResult(text="\n\n".join(result), removed=removed)


def guess_title(text: str) -> str | None:
    """The first line when it looks like a headline (short, not a sentence)."""
    for line in text.split("\n"):
        line = line.strip().lstrip("#").strip()
        if not line:
            continue
        if len(line) <= 150 and not line.endswith((".", ",", ";", ":")):
            return line
        return None
    return None


def guess_author(text: str) -> str | None:
    """A 'By Name' line near the top, else the subject of an author bio near the end."""
    paragraphs = split_paragraphs(text)
    for paragraph in paragraphs[:5]:
        match = _BYLINE.match(paragraph)
        if match:
            return match.group(1)
    for paragraph in reversed(paragraphs[-4:]):
        match = _BIO.match(paragraph)
        if match and len(paragraph) <= 600:
            return match.group(1)
    return None
