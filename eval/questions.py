"""Question sets: one JSON object per line (see README, "Writing a question set")."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

_QUOTES = str.maketrans({"‘": "'", "’": "'", "‚": "'", "′": "'", "“": '"', "”": '"', "„": '"', "″": '"'})


def normalize_for_match(text: str) -> str:
    """Compare text the way a reader would: typographic quotes, dashes and spacing don't matter."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    text = text.replace("\u2013", "-").replace("\u2014", "-")
    return re.sub(r"\s+", " ", text).strip().lower()


@dataclass(frozen=True)
class Question:
    id: str
    mode: str
    question: str
    answerable: bool
    expected_sources: list[str] = field(default_factory=list)
    expected_quotes: list[str] = field(default_factory=list)
    expected_keywords: list[str] = field(default_factory=list)
    side: str | None = None
    half: str = ""  # "tune" or "lockbox" in a set split for honest measurement (``--half``); "" when not split


class QuestionSetError(ValueError):
    """A question set line is not valid; the message names the line."""


def load_questions(path: Path) -> list[Question]:
    questions: list[Question] = []
    seen: set[str] = set()
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            question = Question(
                id=str(data["id"]),
                mode=str(data.get("mode", "ask")),
                question=str(data["question"]),
                answerable=bool(data.get("answerable", True)),
                expected_sources=list(data.get("expected_sources", [])),
                expected_quotes=list(data.get("expected_quotes", [])),
                expected_keywords=list(data.get("expected_keywords", [])),
                side=data.get("side"),
                half=str(data.get("half", "")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise QuestionSetError(f"{path}:{number}: not a valid question ({exc})") from exc
        if question.mode not in ("ask", "debate"):
            raise QuestionSetError(f"{path}:{number}: mode must be 'ask' or 'debate', not {question.mode!r}")
        if question.id in seen:
            raise QuestionSetError(f"{path}:{number}: duplicate id {question.id!r}")
        seen.add(question.id)
        questions.append(question)
    return questions
