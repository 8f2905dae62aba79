"""Split cleaned text into passages that fit the embedding model, keeping exact offsets.

Lengths are counted with the embedding model's own tokenizer, so no passage is silently
truncated at its 256-word-piece window. Splits prefer paragraph, then line, then sentence
boundaries. Each passage records ``start``/``end`` character offsets such that
``text[start:end] == passage.text``: citations can point back into the document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from langchain_text_splitters import RecursiveCharacterTextSplitter

# A full stop that ends an initial ("U.S.", "J. Lee") or a common abbreviation ("Jan. 15",
# "Dr. Lee") ends no sentence: a passage cut there splits "with U.S. security assurances" in
# two, and neither passage holds the sentence whole. (Python needs fixed-width lookbehinds,
# hence one group per length.)
_NOT_AN_ABBREVIATION = (
    r"(?<!\b[A-Z]\.)"
    r"(?<!\b(?:Mr|Ms|Dr|St|Jr|Sr|No|vs|Mt|Ft|Lt|Co)\.)"
    r"(?<!\b(?:Mrs|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Oct|Nov|Dec|Gen|Col|Sen|Rep|Gov|etc|Inc|Ltd)\.)"
    r"(?<!\b(?:Sept|Prof|Corp|Capt)\.)"
)
# Paragraph, line, sentence end (optionally closed by a quote or bracket), clause, word.
_SEPARATORS = [
    r"\n\s*\n",
    r"\n",
    _NOT_AN_ABBREVIATION + r"(?<=[.!?])\s+",
    r"(?<=[.!?][\"'”’)\]])\s+",
    r"(?<=[;:])\s+",
    r"\s+",
    "",
]


@dataclass(frozen=True)
class Passage:
    """One retrievable unit of a document."""

    index: int
    text: str
    start: int
    end: int


class PassageSplitter:
    """Token-bounded, boundary-aware splitter; build once per tokenizer and reuse."""

    def __init__(self, tokenizer: Any, chunk_tokens: int, overlap_tokens: int) -> None:
        self._splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
            tokenizer,
            chunk_size=chunk_tokens,
            chunk_overlap=overlap_tokens,
            separators=_SEPARATORS,
            is_separator_regex=True,
            keep_separator="end",
            strip_whitespace=True,
        )

    def split(self, text: str) -> list[Passage]:
        passages: list[Passage] = []
        previous_start, previous_end = -1, 0
        for chunk in self._splitter.split_text(text):
            start = _locate(text, chunk, previous_start, previous_end)
            passages.append(Passage(index=len(passages), text=chunk, start=start, end=start + len(chunk)))
            previous_start, previous_end = start, start + len(chunk)
        return passages


_NON_SPACE = re.compile(r"\S")


def _locate(text: str, chunk: str, previous_start: int, previous_end: int) -> int:
    """Where ``chunk`` sits in ``text``, given where the passage before it sat.

    The splitter does not report offsets, so the chunk is searched for. A chunk starts after
    the previous one starts and no later than the first non-space character after it ends
    (chunks overlap or touch; only whitespace is dropped between them). Within that window
    the last occurrence is taken: in repetitive text ("ab ab ab ...") the first occurrence
    after the cursor can lie inside the previous passage, which would put offsets out of
    order and leave the end of the document in no passage.
    """
    after = _NON_SPACE.search(text, previous_end)
    limit = after.start() if after else len(text)  # first non-space at or after previous_end
    start = text.rfind(chunk, previous_start + 1, limit + len(chunk))
    if start < 0:  # not expected; fall back to any occurrence rather than lose the passage
        start = text.find(chunk, previous_start + 1)
        start = text.find(chunk) if start < 0 else start
    if start < 0:
        raise ValueError("splitter produced a passage that is not a substring of the document")
    return start
