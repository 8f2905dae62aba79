"""User text at the door: cleaned and checked once, on every surface, before it goes anywhere.

A question, a motion, a history turn or a claim passes ``validate_text`` before it reaches
retrieval, a prompt or the model queue, whether it came through the CLI, the API, the UI or the
eval runner; it cleans with ``assistant.core.text.clean_user_text``, as every prompt does for
article text. It lives here, under every stage that takes text in, so no stage reaches up for it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from assistant.core.errors import UserError
from assistant.core.text import clean_user_text

_SURROGATE = re.compile("[\ud800-\udfff]")


class QueryError(UserError, ValueError):
    """The query cannot be searched (empty, too long)."""


def _invisible(ch: str) -> bool:
    """Characters that show nothing: whitespace and format characters (zero-width space and
    joiners, the byte-order mark, bidi marks, soft hyphen; Unicode category Cf)."""
    return ch.isspace() or unicodedata.category(ch) == "Cf"


def validate_text(text: str, max_chars: int, what: str = "question", allow_empty: bool = False) -> str:
    """The cleaned, trimmed ``text``, or QueryError (a 422 at the API) saying what is wrong with the ``what``.

    The one check every piece of user text passes before it reaches retrieval, a prompt or the
    model queue, on every surface (CLI, API, UI, eval): control characters, terminal escapes and
    chat-template tokens are removed (``clean_user_text``); text that cannot be encoded
    (a lone surrogate such as ``"\\ud800"``, which JSON allows) is refused; text with nothing
    visible (only spaces, zero-width characters or a BOM) is empty; and it has a length limit.
    """
    text = clean_user_text(text or "")
    if _SURROGATE.search(text):
        raise QueryError(f"the {what} is not valid Unicode text (it contains a lone surrogate code point)")
    start, end = 0, len(text)
    while start < end and _invisible(text[start]):
        start += 1
    while end > start and _invisible(text[end - 1]):
        end -= 1
    text = text[start:end]
    if not text and not allow_empty:
        raise QueryError(f"the {what} is empty")
    if len(text) > max_chars:
        raise QueryError(f"the {what} is {len(text)} characters long; the limit is {max_chars}")
    return text


def validate_query(query: str, max_chars: int) -> str:
    """A question, query or motion checked by ``validate_text``."""
    return validate_text(query, max_chars)


def validate_history(history: Sequence[Sequence[str]], max_chars: int) -> list[tuple[str, str]]:
    """Earlier (question, answer) pairs, each text checked like a question (empty allowed), so that
    a huge history turn is refused up front with a message that names the history."""
    checked: list[tuple[str, str]] = []
    for number, pair in enumerate(history, start=1):
        if len(pair) != 2:
            raise QueryError(f"history item {number} must be a [question, answer] pair")
        question, answer = (
            validate_text(text, max_chars, f"{part} of history item {number}", allow_empty=True)
            for part, text in zip(("question", "answer"), pair)
        )
        checked.append((question, answer))
    return checked
