"""Parse, validate and normalise citation markers in model output.

A citation is a bracket holding only source numbers: ``[3]``, ``[1, 2]``, ``[1;2]``,
``[1-3]``, ``[[2]]``, ``[Source 2]``. Each number must name one of the ``n_sources``
passages shown to the model; anything else (``[0]``, ``[99]``, ``[1a]``, an inverted or
huge range) is removed from the text and reported, so it can never be shown as a real
link. Brackets that hold words (``[sic]``, ``[the US]``) are left alone as prose.
Valid markers are rewritten canonically as ``[1][2]``. Sentences with no valid marker
are reported as uncited (headings, list intros and the decline sentence excepted).
"""

from __future__ import annotations

import re

from assistant.core.text import CITATION, MARKER_RUN, sentence_spans, split_sentences

# A bracket group, possibly doubled: [[2]] or [2] (or [[2], half doubled). Inner text may not
# contain brackets. A second "]" belongs to the marker only if it opened with "[[": otherwise
# "[1]]" would lose its stray "]" on the first pass and "[1]]]" on the second (not idempotent).
# Inner text is short (long bracketed prose is not a marker), except that any run of digits is:
# "[000...0]" must not pass as a citation because it is long.
_MARKER = re.compile(r"([ \t]*)\[(\[)?\s*([^\[\]\n]{0,40}?|\d+)\s*(?(2)\]?)\]")
_OPEN_DIGITS = re.compile(r"\[+\s*\d*")  # an unclosed marker that may still become "[<digits>]"
_LABEL = re.compile(r"^(?:sources?|passages?|refs?\.?|references?|doc(?:ument)?s?|#)\s*", re.IGNORECASE)
_NUMBERS = re.compile(r"^\d+(?:\s*(?:[-–—]|,|;|and|&)\s*\d+)*$")
_MAX_RANGE = 10
_WORDS = re.compile(r"[A-Za-z]{2,}")


def _numbers(inner: str) -> list[int] | None:
    """The numbers a bracket's inner text names, or None if it is not a citation at all."""
    inner = _LABEL.sub("", inner.strip())
    if not inner or not _NUMBERS.match(inner):
        return None
    numbers: list[int] = []
    for part in re.split(r"\s*(?:,|;|and|&)\s*", inner):
        bounds = re.split(r"\s*[-–—]\s*", part)
        if len(bounds) == 2:
            low, high = int(bounds[0]), int(bounds[1])
            if high < low or high - low >= _MAX_RANGE:
                return []  # a citation, but not a usable one
            numbers.extend(range(low, high + 1))
        else:
            numbers.append(int(bounds[0]))
    return numbers


def looks_like_citation(inner: str) -> bool:
    """True for bracket contents meant as a citation, valid or not (digits, or a label + digits)."""
    if not inner.strip():
        return True  # "[]": an empty marker
    stripped = _LABEL.sub("", inner.strip())
    if re.match(r"[-–+#]?\s*\d", stripped):
        return True  # digits, possibly signed: [-1], [1a], [3 and more]
    return bool(stripped) and stripped != inner.strip() and bool(re.match(r"\w", stripped))


def normalise_markers(text: str, n_sources: int) -> tuple[str, list[int], list[str]]:
    """Rewrite valid markers canonically, drop invalid ones; return (text, cited, invalid)."""
    normalised, cited, invalid = _rewrite_markers(text, n_sources)
    return normalised.strip(), cited, invalid


# What may come before a marker that opens a sentence: the start of the text, a line break, or a sentence end.
_OPENS_SENTENCE = re.compile(r"(?:^|\n|[.!?][\"'”’)]*)\s*$")


def with_marker(sentence: str, marker: str) -> str:
    """``sentence`` with ``marker`` before its closing punctuation: "It rained [2]." """
    ending = re.search(r"[.!?][\"'”’)]*$", sentence)
    return f"{sentence[: ending.start()]} {marker}{ending.group(0)}" if ending else f"{sentence} {marker}"


def markers_after_sentences(text: str) -> str:
    """Canonical ``text`` whose markers all *open* sentences ("[1] A. B. [2] C.") rewritten with
    each marker after every sentence it opens ("A [1]. B [1]. C [2].").

    Small models copy the "[n] sentence" layout of their sources. Left as it is, the splitter
    (which gives a sentence the markers after its full stop) would hand [2] to the sentence
    before it. A reply that mixes both layouts is left alone.
    """
    runs = list(MARKER_RUN.finditer(text))
    if not runs or runs[0].start() != len(text) - len(text.lstrip()):
        return text
    if not all(_OPENS_SENTENCE.search(text[: run.start()]) for run in runs):
        return text
    pieces = [text[: runs[0].start()]]
    for run, following in zip(runs, [*runs[1:], None]):
        segment = text[run.end() : following.start() if following else len(text)]
        if not segment.strip() and len(pieces) > 1:  # a marker closing the text: "[1] A. [2]" cites A with both
            pieces[-1] = re.sub(rf"{MARKER_RUN.pattern}(?=[.!?][\"'”’)]*\s*$)", lambda m: m.group(0) + run.group(0), pieces[-1].rstrip())
            continue
        marked, at = [], 0
        for span in sentence_spans(segment):
            marked.append(segment[at : span.start] + with_marker(span.text, run.group(0)))
            at = span.end
        pieces.append("".join(marked) + segment[at:])
    joined = re.sub(r"[ \t]{2,}", " ", "".join(pieces))
    return re.sub(r"\n[ \t]+", "\n", joined).strip()


def _rewrite_markers(text: str, n_sources: int) -> tuple[str, list[int], list[str]]:
    """``normalise_markers`` without the final strip, so stream pieces keep their spacing."""
    cited: list[int] = []
    invalid: list[str] = []

    def replace(match: re.Match[str]) -> str:
        raw, space, inner = match.group(0), match.group(1), match.group(3)
        numbers = _numbers(inner)
        if numbers is None:
            if looks_like_citation(inner):
                invalid.append(raw.strip())
                return ""  # the marker and the space before it
            return raw  # prose in brackets
        good = [n for n in numbers if 1 <= n <= n_sources]
        if len(good) != len(numbers) or not numbers:
            invalid.append(raw.strip())
        for n in good:
            if n not in cited:
                cited.append(n)
        return space + "".join(f"[{n}]" for n in dict.fromkeys(good)) if good else ""

    normalised = text
    while True:  # "[[[1]" -> "[[1]" -> "[1]": leftover brackets can form a new marker
        rewritten = _MARKER.sub(replace, normalised)
        if rewritten == normalised:  # a canonical marker rewrites to itself, so this is reached
            break
        normalised = rewritten
    # Removing a marker can leave "word ." or double spaces behind.
    normalised = re.sub(r"[ \t]+([.,;:!?])", r"\1", normalised)
    normalised = re.sub(r"[ \t]{2,}", " ", normalised)
    return normalised, cited, invalid


def _needs_citation(sentence: str, exempt: set[str]) -> bool:
    if any(phrase.rstrip(".") in sentence for phrase in exempt) or sentence.rstrip().endswith(":"):
        return False
    return len(_WORDS.findall(sentence)) >= 4


def uncited_sentences(normalised: str, exempt_sentences: tuple[str, ...] = ()) -> list[str]:
    """Sentences of already-normalised text that carry no citation but should."""
    exempt = set(exempt_sentences)
    return [
        s for s in split_sentences(normalised)
        if not CITATION.search(s) and _needs_citation(s, exempt)
    ]  # fmt: skip


class StreamingCitationFilter:
    """Makes a token stream safe to show: holds back an open ``[`` until its marker is judged.

    ``feed`` returns the text that can be shown now; ``finish`` flushes the rest. Valid
    markers come out canonical, invalid ones never come out at all. The pieces join to what
    ``normalise_markers`` makes of the whole reply, unless a "[" stays open for more than
    ``_MAX_HOLD`` characters: the filter then stops waiting and shows it as prose, and the
    whole reply's check (which replaces the preview) may still read a marker there.
    """

    _MAX_HOLD = 48

    def __init__(self, n_sources: int) -> None:
        self.n_sources = n_sources
        self._held = ""
        self._shown = ""  # a "[" given up on may still be open in it (a reply is a few KB at most)

    def _release(self, text: str) -> str:
        # The same rewrite as the whole reply gets (its spacing tidy-up too), so the streamed
        # preview and the final text agree.
        released = _rewrite_markers(text, self.n_sources)[0]
        # A "[" already shown, given up on, must not pair with a "]" released now into a
        # marker nobody checked: such a "]" is dropped.
        while straddling := [
            m for m in _MARKER.finditer(self._shown + released)
            if m.start() < len(self._shown) < m.end() and looks_like_citation(m.group(3))
        ]:  # fmt: skip
            close = straddling[0].end() - 1 - len(self._shown)
            released = released[:close] + released[close + 1 :]
        self._shown += released
        return released

    def _hold_from(self) -> int | None:
        """Where a marker may still be forming: the outermost unclosed "[" ("[[2]" may yet get
        its second "]"), else the last unclosed "[" run ("[[[1" can still collapse to "[1]")."""
        held = self._held
        depth, outer = 0, None
        for i, ch in enumerate(held):
            if ch == "[":
                outer = i if depth == 0 else outer
                depth += 1
            elif ch == "]" and depth:
                depth -= 1
                outer = None if depth == 0 else outer
        candidates = [] if outer is None else [outer]
        inner = held.rfind("[")
        if inner >= 0 and "]" not in held[inner:]:
            while inner > 0 and held[inner - 1] == "[":
                inner -= 1
            candidates.append(inner)
        for start in candidates:
            # A marker is short, except a run of digits, which a whole reply's check also reads as one.
            if len(held) - start <= self._MAX_HOLD or _OPEN_DIGITS.fullmatch(held, start):
                return start
        return None

    def feed(self, delta: str) -> str:
        self._held += delta
        start = self._hold_from()
        cut = len(self._held) if start is None else start
        # Trailing spaces wait too: if a removed marker follows, they go with it.
        cut = len(self._held[:cut].rstrip(" \t"))
        ready, self._held = self._held[:cut], self._held[cut:]
        return self._release(ready) if ready else ""

    def finish(self) -> str:
        shown, self._held = self._held, ""
        return self._release(shown) if shown else ""
