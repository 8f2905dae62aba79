"""Split cleaned text into passages that fit the embedding model, keeping exact offsets.

Lengths are counted with the embedding model's own tokenizer, so no passage is silently
truncated at its 256-word-piece window. Passages are whole sentences from the one sentence
splitter (``assistant.core.text``, which does not end a sentence at "U.S." or "Jan."): whole
paragraphs are packed up to the token budget, a paragraph too long for one passage is packed
sentence by sentence, and only a sentence longer than the budget is cut further, at clause
and then word boundaries. Overlap repeats whole trailing units (paragraphs or sentences). Each passage records ``start``/``end`` character offsets such that
``text[start:end] == passage.text``: citations can point back into the document.
"""

from __future__ import annotations

import re
from typing import Any

from langchain_text_splitters import RecursiveCharacterTextSplitter

from assistant.core.passage import Passage, passage_id
from assistant.core.text import sentence_spans

# For a sentence longer than a passage: clause, then word, then character.
_SEPARATORS = [r"(?<=[;:,])\s+", r"\s+", ""]


# A sentence (or a piece of one too long for a passage): start, end, tokens, opens a paragraph.
Unit = tuple[int, int, int, bool]


class PassageSplitter:
    """Token-bounded, boundary-aware splitter; build once per tokenizer and reuse."""

    def __init__(self, tokenizer: Any, chunk_tokens: int, overlap_tokens: int) -> None:
        self._tokenizer = tokenizer
        self._chunk_tokens = chunk_tokens
        self._overlap_tokens = overlap_tokens
        self._splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
            tokenizer,
            chunk_size=chunk_tokens,
            chunk_overlap=0,
            separators=_SEPARATORS,
            is_separator_regex=True,
            keep_separator="end",
            strip_whitespace=True,
        )

    def _units(self, text: str) -> list[Unit]:
        """(start, end, tokens, opens a paragraph) for each sentence, long sentences cut to fit."""
        units: list[Unit] = []
        previous_end = 0
        for sentence in sentence_spans(text):
            paragraph = not units or _BLANK_LINE.search(text, previous_end, sentence.start) is not None
            previous_end = sentence.end
            n = len(self._tokenizer.tokenize(sentence.text))
            if n <= self._chunk_tokens:
                units.append((sentence.start, sentence.end, n, paragraph))
                continue
            cursor = (-1, 0)
            for piece in self._splitter.split_text(sentence.text):
                at = _locate(sentence.text, piece, *cursor)
                cursor = (at, at + len(piece))
                start = sentence.start + at
                units.append((start, start + len(piece), len(self._tokenizer.tokenize(piece)), paragraph))
                paragraph = False
        return units

    def split(self, text: str, doc_id: str = "") -> list[Passage]:
        """Whole paragraphs packed up to the budget; a paragraph too long for one passage goes by sentences.

        Overlap, as in a recursive splitter: the trailing whole units (paragraphs, or sentences
        inside a long paragraph) of the previous passage, up to ``overlap_tokens``.
        """
        paragraphs: list[list[Unit]] = []
        for unit in self._units(text):
            if unit[3] or not paragraphs:
                paragraphs.append([])
            paragraphs[-1].append(unit)
        chunks: list[list[Unit]] = []
        current: list[list[Unit]] = []  # the current passage as a list of paragraphs (or sentence groups)

        def size(groups: list[list[Unit]]) -> int:
            return sum(u[2] for g in groups for u in g)

        def close(next_tokens: int) -> list[list[Unit]]:
            chunks.append([u for g in current for u in g])
            kept: list[list[Unit]] = []
            for group in reversed(current):
                if size([group, *kept]) > self._overlap_tokens or size([group, *kept]) + next_tokens > self._chunk_tokens:
                    break
                kept.insert(0, group)
            return kept

        for paragraph in paragraphs:
            tokens = size([paragraph])
            if size(current) + tokens <= self._chunk_tokens:
                current.append(paragraph)
                continue
            if tokens <= self._chunk_tokens:
                current = close(tokens) if current else []
                current.append(paragraph)
                continue
            for unit in paragraph:  # too long for one passage: sentence by sentence
                if current and size(current) + unit[2] > self._chunk_tokens:
                    current = close(unit[2])
                current.append([unit])
        if current:
            chunks.append([u for g in current for u in g])
        return [
            Passage(passage_id(doc_id, i), doc_id, i, text[chunk[0][0] : chunk[-1][1]], chunk[0][0], chunk[-1][1])
            for i, chunk in enumerate(chunks)
        ]


_NON_SPACE = re.compile(r"\S")
_BLANK_LINE = re.compile(r"\n[ \t\r]*\n")


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
