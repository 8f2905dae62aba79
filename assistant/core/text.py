"""The one text toolkit: sentences with offsets, the citation marker, words and stop words.

Everything that reads prose (the citation checker, the verifier, the debate's repeat check,
the extractive baseline, BM25 and the eval) splits and tokenises it here, so a rule such as
"U.S. does not end a sentence" or "not is never a stop word" holds everywhere at once.

- Sentences come from ``sentencex`` (maintained, binary wheel, knows abbreviations such as
  "U.S.", "Jan. 15", "Dr. J. Lee"), run line by line: a line break always ends a sentence
  (list items, headings), and offsets point into the original text.
- ``CITATION`` is the canonical marker ``[n]`` that ``assistant.checks.citations`` writes; raw model
  markers (``[1, 2]``, ``[Source 2]``) are parsed there and rewritten to this form first.
- ``STOP_WORDS``: function words only. Negation (not, no, never, none, without ...) and
  quantity words (few, most, all, number words) carry meaning a checker must see: they are
  never stop words.
- ``strip_terminal_escapes``: terminal escape sequences removed whole (ECMA-48: CSI, the string
  commands OSC/DCS/SOS/PM/APC up to BEL or ST, every other ESC sequence, 7-bit or C1). Removing
  only the control characters used to leave their printable tails, so ``ESC[2J`` became ``[2J``.
- ``text_key``: what makes two quotes, tags or motions "the same" (case, spacing and punctuation aside).
- ``xml_safe``: text without the characters XML 1.0 cannot hold (NUL, other control characters,
  lone surrogates), which an article may contain: python-docx refuses them, and a cite line
  (``assistant.present.cite``) prints none in either export.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import sentencex
import Stemmer

# Terminal escape sequences, removed whole from articles, questions and file names.
TERMINAL_ESCAPE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"  # CSI: ESC[2J, ESC[1;31m, ESC[?1049h
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC, DCS, SOS, PM, APC strings
    r"|\x1b[ -/]*[0-~]?"  # all other escape sequences, and a lone ESC
)

# Everything outside XML 1.0's Char production: C0 controls other than tab, newline and carriage
# return, lone surrogates, and U+FFFE/U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str | None) -> str:
    """``text`` without the characters an XML document cannot hold (python-docx raises on them)."""
    return _NOT_XML.sub("", text or "")


def strip_terminal_escapes(text: str) -> str:
    """``text`` without terminal escape sequences (whole: no ``[2J`` or ``]0;title`` left behind).

    An unterminated string command runs to the end of the text and goes with it."""
    return TERMINAL_ESCAPE.sub("", text)


# C0/C1 control characters except tab and newline (NUL, BEL, backspace, CR, DEL, ...).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Chat-template tokens such as <|im_start|> or <|eot_id|>: llama.cpp tokenizes the rendered chat
# with special tokens enabled, so such text in an article would open a real system turn.
_TEMPLATE_TOKEN = re.compile(r"<\|([^<>|]{0,64})\|>")


def clean_user_text(text: str) -> str:
    """``text`` as it may enter a prompt or be echoed back: no escape sequences, no control
    characters (tab and newline stay), and chat-template tokens defused (``<|im_start|>`` ->
    ``<im_start>``), so a question or an article cannot switch the terminal or the chat role."""
    text = strip_terminal_escapes(text.replace("\r\n", "\n"))
    return _TEMPLATE_TOKEN.sub(r"<\1>", _CONTROL.sub("", text))


# The canonical citation marker, as written after normalisation: "[2]".
CITATION = re.compile(r"\[(\d+)\]")
# One or more markers with the spaces before them: " [1][2]".
CITATION_RUN = re.compile(rf"(?:[ \t]*{CITATION.pattern})+")
# One or more markers written together: "[1][2]".
MARKER_RUN = re.compile(rf"(?:{CITATION.pattern})+")
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Sentence:
    """A sentence of some text, stripped, with ``text == source[start:end]``."""

    text: str
    start: int
    end: int


def sentence_spans(text: str) -> list[Sentence]:
    """Sentences of ``text`` with character offsets; a line break always ends a sentence.

    Citation markers that follow a sentence's full stop belong to that sentence ("It rained. [2]").
    """
    spans: list[Sentence] = []
    offset = 0
    for line in text.splitlines(keepends=True):
        if line.strip():
            # sentencex takes valid UTF-8 only: a lone surrogate becomes U+FFFD (same length, same offsets).
            for bound in sentencex.get_sentence_boundaries("en", _SURROGATE.sub("\ufffd", line)):
                start, end = bound["start_index"], bound["end_index"]
                piece = line[start:end]
                if not piece.strip():
                    continue
                lead = len(piece) - len(piece.lstrip())
                stripped = piece.strip()
                spans.append(Sentence(stripped, offset + start + lead, offset + start + lead + len(stripped)))
        offset += len(line)
    return _attach_markers(text, spans)


def _attach_markers(text: str, spans: list[Sentence]) -> list[Sentence]:
    """Move a sentence that is only markers ("[2]") onto the sentence before it on the same line."""
    merged: list[Sentence] = []
    for span in spans:
        if merged and CITATION_RUN.fullmatch(span.text) and "\n" not in text[merged[-1].end : span.start]:
            previous = merged.pop()
            span = Sentence(text[previous.start : span.end], previous.start, span.end)
        merged.append(span)
    return merged


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, each with the citation markers that follow it; lines never join."""
    return [s.text for s in sentence_spans(text)]


def strip_markers(text: str) -> str:
    """``text`` without citation markers (and the spaces before them)."""
    return CITATION_RUN.sub("", text)


def marker_numbers(text: str) -> list[int]:
    """The source numbers cited in ``text``, in order, each once."""
    return list(dict.fromkeys(int(n) for n in CITATION.findall(text)))


# "one" is left out of NUMBER_WORDS: far more often a pronoun ("one of the reasons") than a count.
# Function words only. Deliberately absent: negation (not no nor never none nothing nobody
# neither without cannot), quantity (few most all many much more less least some any only
# every each both several half) and every number word.
STOP_WORDS = frozenset(
    """
    a about above across after afterwards again ago along already also although am among amongst an and
    another are around as at be became because become becomes been before beforehand behind being below
    beside besides between beyond but by can could did do does doing done down due during else elsewhere
    etc even ever for from further had has have having he hence her here hereafter hereby herein hers
    herself him himself his how however i ie if in indeed into is it its itself just me meanwhile might
    mine moreover my myself namely of off often on once onto or other others otherwise our ours ourselves
    out over own per perhaps please quite rather re same seem seemed seeming seems shall she should since
    so still such than that the their theirs them themselves then thence there thereafter thereby
    therefore therein thereupon these they this those though through throughout thru thus to together too
    toward towards under until up upon us very via was we well were what whatever when whence whenever
    where whereafter whereas whereby wherein whereupon wherever whether which while whither who whoever
    whom whose why will with within would yet you your yours yourself yourselves
    """.split()
)

NUMBER_WORDS = {
    "zero": 0, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "dozen": 12,
    "hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000,
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14,
    "fifteenth": 15, "twentieth": 20, "hundredth": 100, "twice": 2,
}  # fmt: skip
_MULTIPLIERS = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}

# Initialisms written with full stops ("U.S.", "U.N.") become one word ("US", "UN").
# Spaced initials ("J. R. R.", "U. S." in an article) read as one word too; the model's own "U. S."
# is rejoined before any check reads it (``assistant.checks.model_text``).
_INITIALISM = re.compile(r"\b[A-Z]\.(?: ?[A-Z]\.)+")
_HALF = re.compile(r"\bhalf an? (hundred|thousand|million|billion)\b", re.IGNORECASE)  # "half a billion" = 0.5e9
_TOKEN = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)?|\d+(?:[.,]\d+)*(?:st|nd|rd|th|s)?")


@dataclass(frozen=True)
class Word:
    """A token of prose: surface form, lower-cased stem, numeric value if any, position.

    ``joined``: written straight after a hyphen ("il" in "Jong-il"), so it belongs to the word before.
    """

    surface: str
    stem: str
    number: float | None
    index: int
    joined: bool = False

    @property
    def capitalised(self) -> bool:
        return self.surface[:1].isupper()

    @property
    def lower(self) -> str:
        return self.surface.lower().replace("’", "'")


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def stem(word: str) -> str:
    """Snowball stem of a lower-cased word ("engaged", "engagement" -> "engag")."""
    return _stemmer().stemWord(word.lower())


def _digits(token: str) -> float:
    core = re.sub(r"(st|nd|rd|th|s)$", "", token).replace(",", "")
    return float(core)


def words(text: str) -> list[Word]:
    """The tokens of ``text`` with citation markers removed; numbers (digits or words) valued.

    Compound number words collapse into one value: "twenty-five" -> 25, "two thousand" -> 2000.
    """
    text = _INITIALISM.sub(lambda m: m.group(0).replace(".", "").replace(" ", ""), strip_markers(text))
    text = _HALF.sub(r"0.5 \1", text)
    out: list[Word] = []
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        joined = match.start() > 0 and text[match.start() - 1] == "-"
        lowered = token.lower().replace("’", "'").split("'")[0]
        value: float | None = _digits(token) if token[0].isdigit() else NUMBER_WORDS.get(lowered)
        if value is not None and out and out[-1].number is not None and not token[0].isdigit():
            previous = out[-1]
            number = previous.number
            assert number is not None  # out[-1].number is not None was checked just above
            if lowered in _MULTIPLIERS:
                out[-1] = Word(f"{previous.surface} {token}", previous.stem, number * value, previous.index)
                continue
            if joined and number >= 20 and number % 10 == 0 and number < 100 and value < 10:
                out[-1] = Word(f"{previous.surface}-{token}", previous.stem, number + value, previous.index)
                continue
        out.append(Word(token, stem(lowered) if not token[0].isdigit() else lowered, value, len(out), joined))
    return out


def text_key(text: str) -> str:
    """Case-folded words only: two quotes, tags or motions that differ in case, spacing or punctuation
    get one key. Words are letters and digits of any script: an ASCII-only key made every quote or
    motion written in another script the same empty key."""
    return " ".join(re.findall(r"[^\W_]+", text.casefold()))


def number_key(value: float) -> str:
    """A number as the verifier compares it: 5.0 -> "5", 3.5 -> "3.5"."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
