"""Split cleaned text into passages that fit the embedding model, keeping exact offsets.

Lengths are counted with the embedding model's own tokenizer, so no passage is silently
truncated at its 256-word-piece window. Splits prefer paragraph, then line, then sentence
boundaries. Each passage records ``start``/``end`` character offsets such that
``text[start:end] == passage.text``: citations can point back into the document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_text_splitters import RecursiveCharacterTextSplitter

# Paragraph, line, sentence end (optionally closed by a quote or bracket), clause, word.
_SEPARATORS = [
    r"\n\s*\n",
    r"\n",
    r"(?<=[.!?])\s+",
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
        cursor = 0
        for chunk in self._splitter.split_text(text):
            start = text.find(chunk, cursor)
            if start < 0:  # overlap can move the next chunk before the cursor
                start = text.find(chunk)
            if start < 0:
                raise ValueError("splitter produced a passage that is not a substring of the document")
            passages.append(Passage(index=len(passages), text=chunk, start=start, end=start + len(chunk)))
            cursor = start + 1
        return passages
