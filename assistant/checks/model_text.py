"""The one normaliser for model text: applied to a reply before any check reads it and before it is shown.

The local model (Qwen2.5-Coder-1.5B; raw llama.cpp with the same weights too) writes a few
artefacts no article does, and the word rules then read them as something else: "16, 000" is
the numbers 16 and 0 ("number '16' is not in the evidence"), "3. 5 percent" is a sentence
ending in "3." and one starting "5 percent", a copied header glues its title's "don't" onto the
sentence after it. It also copies the layout of its prompt. Each rule below is one class of
artefact, undone here and nowhere else; none changes what a correct answer says.

Spacing, rejoined (``SPACING_RULES``; the stream applies these as the text arrives,
``StreamingModelText``):
- ``ThousandsSeparator``: "16, 000" -> "16,000", never a list ("1, 2, 3", "85, 100 and 120") or
  a date or year before a count ("in 2006, 200 people", "March 5, 200 people");
- ``DottedAbbreviation``: "U. S." -> "U.S.", "U. N.", "D. C.", "e. g." (a fixed list: initials of
  a name such as "J. R. R." are left as written);
- ``SpacedDecimal``: "3. 5 percent" -> "3.5 percent", only before a unit that makes it a number;
- ``AbbreviationStop``: "Jan . 15" -> "Jan. 15" ("No . 2", "Dr . Lee").

Prompt layout, dropped (``layout_rules``; the whole reply only, since each needs its sentence):
- ``SourceHeader``: "From (<title, by author>):" and "From [1], <title, by author>:" (its marker kept);
- ``HeadingFragment``: a heading copied as a sentence ("Abstract [1].") or a prefix ("Summary:");
- ``LeadingMarker``: the "[n]" opening a sentence that also ends with its citation ("[1] A [1].");
- ``RepeatedSentence``: a sentence written twice in a row, kept once.

Where it runs: ``assistant.checks.grounding`` normalises an answer once, right after its markers are
checked (``normalise_markers`` first, so an invalid marker is reported before anything here can
drop it) and before any rule or the judge reads it; what is shown is that text.
``assistant.chains.streaming`` shows the spacing rules' result as the answer streams;
``assistant.chains.cards`` normalises a tag before its check; ``AskChain.condense`` a rewritten question.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

from assistant.core.lexicon import MONTH_ABBREVIATIONS, MONTHS
from assistant.core.text import CITATION, MARKER_RUN, sentence_spans, strip_markers

# A month as written: in full or abbreviated ("January", "Jan").
MONTH_NAMES = "|".join([*(m.capitalize() for m in sorted(MONTHS)), *MONTH_ABBREVIATIONS])
# Words written with a full stop before what they abbreviate the rest of: "Jan. 15", "No. 2", "Dr. Lee".
ABBREVIATIONS = frozenset(
    [*MONTH_ABBREVIATIONS, *"No Nos Mr Mrs Ms Dr St Gen Sen Rep Gov Prof Vol".split()]
)


class Rule(Protocol):
    """One class of model artefact and how it is undone."""

    def apply(self, text: str) -> str: ...


class ThousandsSeparator:
    """"16, 000" -> "16,000"; "1, 250, 000" -> "1,250,000".

    A group of 1-3 digits, then groups of exactly three digits each after ", ". Not rejoined:
    - a year or longer number before the comma ("in 2006, 200 people": a group is 1-3 digits,
      not the tail of a longer number) or a number in the middle of a list ("1, 2, 345");
    - a day of a month before the comma ("March 5, 200 people", "Jan. 5, 300");
    - a pair that reads as list items: another number follows with "and"/"or" and is not itself
      written in groups ("85, 100 and 120"), or a group that is not three digits follows (", 30").
    A group opening with 0 ("16, 000", "5, 050") is always rejoined: no list item is written
    "000", so that pair can only be one number.
    """

    _PAIR = re.compile(r"(?<![\w.,'’])(?<!\d, )(\d{1,3})((?:, \d{3})+)(?!\d)")
    _DAY = re.compile(rf"\b(?:{MONTH_NAMES})\.?[ \t]+$")
    _LIST_AFTER = re.compile(r",? (?:and|or) \d{1,3}(?!\d|, \d{3}(?!\d))|, \d")

    def apply(self, text: str) -> str:
        def rejoin(match: re.Match[str]) -> str:
            groups = match.group(2).split(", ")[1:]
            if not any(group.startswith("0") for group in groups):
                if self._DAY.search(text, 0, match.start()) or self._LIST_AFTER.match(text, match.end()):
                    return match.group(0)
            return match.group(1) + "," + ",".join(groups)

        return self._PAIR.sub(rejoin, text)


class DottedAbbreviation:
    """"U. S." -> "U.S." (and "U. N.", "U. K.", "E. U.", "D. C.", "U. S. A.", "e. g.", "i. e.", "a. m.").

    A fixed list: a run of spaced initials in general may be a name as its article writes it
    ("J. R. R. Tolkien"), or a sentence end followed by an initial ("Plan B. A. Smith said").
    """

    FORMS = ("U.S.S.R.", "U.S.A.", "U.S.", "U.N.", "U.K.", "E.U.", "D.C.", "N.Y.", "L.A.",
             "e.g.", "i.e.", "a.m.", "p.m.")  # fmt: skip
    _SPACED = re.compile(
        r"(?<![\w.])(?:" + "|".join(r"\. ?".join(f.rstrip(".").split(".")) + r"\." for f in FORMS) + r")(?!\w)"
    )

    def apply(self, text: str) -> str:
        return self._SPACED.sub(lambda m: m.group(0).replace(" ", ""), text)


class SpacedDecimal:
    """"3. 5 percent" -> "3.5 percent", "US$1. 7 billion" -> "US$1.7 billion".

    Only when a unit right after it makes the whole clearly one number (percent, %, points,
    million, billion, trillion, times): otherwise "... in 3. 5 ..." may be a sentence ending in a
    number and the next one opening with one.
    """

    _SPACED = re.compile(
        r"(?<![\w.,'’])(\d{1,3})\. (\d{1,3})"
        r"(?= ?(?:%|percent\b|per cent\b|percentage points?\b|points?\b|million\b|billion\b|trillion\b"
        r"|times\b|bn\b|m\b))"
    )

    def apply(self, text: str) -> str:
        return self._SPACED.sub(r"\1.\2", text)


class AbbreviationStop:
    """"Jan . 15" -> "Jan. 15", "No . 2" -> "No. 2": the space before an abbreviation's full stop."""

    _SPACED = re.compile(r"\b(" + "|".join(sorted(ABBREVIATIONS, key=len, reverse=True)) + r")[ \t]+\.(?=[ \t]+\w)")

    def apply(self, text: str) -> str:
        return self._SPACED.sub(r"\1.", text)


# A sentence starts here: the text's start, a line's start, or after a sentence's end and a space.
_SENTENCE_START = r"(?:(?<=\A)|(?<=\n)|(?<=[.!?:] )|(?<=[.!?][\"'”’)] ))"


def _flexible(phrase: str) -> str:
    """``phrase`` as a pattern: its words escaped, any run of spaces between them."""
    return r"\s+".join(re.escape(word) for word in phrase.split())


class SourceHeader:
    """The document headers of the prompt (``prompts.SOURCE_HEADER``), copied into the reply:
    "From (<title, by author>):", "From (<title, by author>) [3] We should ...", "From [1], <title,
    by author>: ...". Left in, a header becomes part of the next sentence: its title's "don't" or
    "Has Not Changed" reads as the sentence's own negation, and the prompt's layout is shown as prose.

    ``labels``: the labels the prompt showed (``prompts.header_labels``: "title, by author" and the
    title alone). A header opens a sentence with "From" and shows a header's punctuation (a
    marker, brackets or a colon): "From Rent control, tenants gain ..." is prose. Without labels,
    only the bracketed form followed by ":" or a marker is read as one. The marker a header
    carries stays, opening the sentence after it (``LeadingMarker`` then decides).
    """

    _ANY = re.compile(rf"{_SENTENCE_START}From[ \t]*\((?:[^()\n]|\([^()\n]*\))+\)[ \t]*(?::[ \t]*|(?=\[\d))")

    def __init__(self, labels: Iterable[str] = ()) -> None:
        known = sorted({" ".join(label.split()) for label in labels if label.strip()}, key=len, reverse=True)
        self._known = None
        if known:
            label = "|".join(_flexible(k) for k in known)
            self._known = re.compile(
                rf"{_SENTENCE_START}From[ \t]*(?P<run>{MARKER_RUN.pattern})?[ \t]*,?[ \t]*(?P<open>\()?(?i:{label})"
                rf"(?(open)\))[ \t]*(?P<run2>{MARKER_RUN.pattern})?[ \t]*(?P<colon>:)?[ \t]*"
            )

    def apply(self, text: str) -> str:
        def drop(match: re.Match[str]) -> str:
            run, run2 = match.group("run") or "", match.group("run2") or ""
            if not (run or run2 or match.group("open") or match.group("colon")):
                return match.group(0)  # "From <title words>, ...": prose that happens to open with a title
            return f"{run}{run2} " if run or run2 else ""

        if self._known is not None:
            text = self._known.sub(drop, text)
        return self._ANY.sub("", text)


class HeadingFragment:
    """A heading of the article copied as a sentence of its own ("Abstract [1].") or as a sentence's
    prefix ("Summary: ..."): layout, not a claim. A prefix's marker stays with its sentence."""

    HEADINGS = (
        "Abstract|Summary|Introduction|Background|Conclusions?|Keywords|Key words|Excerpt|Highlights|"
        "Methods|Results|Discussion|References|Sources|Answer|Editor['’]s note"
    )
    _HEADING = re.compile(
        rf"{_SENTENCE_START}(?:{HEADINGS})[ \t]*(?P<run>{MARKER_RUN.pattern})?[ \t]*(?P<end>[.:](?=[ \t]|$)|$)[ \t]*"
        rf"(?P<after>{MARKER_RUN.pattern}[ \t]*)?",
        re.MULTILINE,
    )

    def apply(self, text: str) -> str:
        def drop(match: re.Match[str]) -> str:
            own = match.group("run") if match.group("end") == ":" else ""  # a prefix's marker is its sentence's
            kept = f"{own or ''}{match.group('after') or ''}".strip()
            return f"{kept} " if kept else ""

        return self._HEADING.sub(drop, text)


def _ends_cited(sentence: str) -> bool:
    """Does ``sentence`` end with its citation ("... [1].", "... [1]")? Not "... . [2]": the splitter
    gives a sentence the marker after its full stop, which may open the next one."""
    own = re.sub(rf"([.!?][\"'”’)]*)[ \t]*{MARKER_RUN.pattern}$", r"\1", sentence)
    return bool(re.search(rf"{CITATION.pattern}[.!?\"'”’)]*$", own))


class LeadingMarker:
    """"[1] Kim died at 85 [1]." -> "Kim died at 85 [1].": the prompt's "[n] sentence" layout,
    copied, on a sentence that also ends with its own citation. Only at the text's or a line's
    start, or after a sentence that ends with a citation: after an uncited "A." the marker may
    be A's. A reply that only opens its sentences with markers is ``markers_after_sentences``' case.
    """

    _RUN = re.compile(rf"{_SENTENCE_START}({MARKER_RUN.pattern})[ \t]+(?=[^\s\[])")

    def apply(self, text: str) -> str:
        def drop(match: re.Match[str]) -> str:
            before = text[: match.start()]
            if before.strip() and not before.endswith("\n") and not _ends_cited(before.rstrip()):
                return match.group(0)
            line_end = text.find("\n", match.end())
            rest = text[match.end() : line_end if line_end >= 0 else len(text)]
            spans = sentence_spans(rest)
            return "" if spans and _ends_cited(spans[0].text) else match.group(0)

        return self._RUN.sub(drop, text)


def _sentence_key(sentence: str) -> str:
    """What two copies of a sentence share: its words, in lower case, without markers or punctuation."""
    return " ".join(re.findall(r"\w+", strip_markers(sentence).lower()))


class RepeatedSentence:
    """A sentence written again right after itself ("A [1]. A [1]."), kept once. The copy's
    markers, if it cites other sources, move to the sentence kept, so no citation is lost."""

    def apply(self, text: str) -> str:
        kept, pieces, at = None, [], 0
        for span in sentence_spans(text):
            key = _sentence_key(span.text)
            if kept is not None and key and not text[at : span.start].strip() and key == _sentence_key(kept.text):
                extra = [f"[{n}]" for n in dict.fromkeys(CITATION.findall(span.text)) if f"[{n}]" not in kept.text]
                if extra:
                    pieces[-1] = _with_markers(pieces[-1], "".join(extra))
                at = span.end  # the copy and the space before it go
                continue
            pieces += [text[at : span.start], span.text]
            kept, at = span, span.end
        return "".join(pieces) + text[at:]


def _with_markers(sentence: str, markers: str) -> str:
    """``sentence`` with ``markers`` added to its last citation (or before its closing punctuation)."""
    last = list(re.finditer(MARKER_RUN, sentence))
    if last:
        return sentence[: last[-1].end()] + markers + sentence[last[-1].end() :]
    ending = re.search(r"[.!?][\"'”’)]*$", sentence)
    return f"{sentence[: ending.start()]} {markers}{ending.group(0)}" if ending else f"{sentence} {markers}"


SPACING_RULES: tuple[Rule, ...] = (ThousandsSeparator(), DottedAbbreviation(), SpacedDecimal(), AbbreviationStop())


def normalise_spacing(text: str) -> str:
    """``text`` with the spacing rules applied (what the stream can do as the text arrives)."""
    for rule in SPACING_RULES:
        text = rule.apply(text)
    return text


def layout_rules(labels: Iterable[str] = ()) -> tuple[Rule, ...]:
    """The layout rules, in order: headers first (their marker then opens a sentence), repeats last."""
    return (SourceHeader(labels), HeadingFragment(), LeadingMarker(), RepeatedSentence())


def normalise_model_text(text: str, labels: Iterable[str] = ()) -> str:
    """The model's ``text`` as checks read it and users see it: spacing rejoined, prompt layout dropped.

    ``labels``: the document labels the prompt showed, so a copied header is found whatever
    form it takes (``prompts.header_labels``). Idempotent; clean prose comes through unchanged.
    """
    rules = (*SPACING_RULES, *layout_rules(labels))
    text = text.strip()
    while True:  # one rule's removal can make another's case ("From (A) From (A) x"): to the fixed point
        before = text
        for rule in rules:
            text = rule.apply(text).strip()
        if len(text) >= len(before):  # every rule only removes text, so a pass that removes none is the last
            return text


# --- the stream ---------------------------------------------------------------------------------


def _safe_cut(text: str, at: int) -> bool:
    """Can no spacing rule match across the whitespace at ``text[at]``? Not after a comma or full
    stop ("16, | 000", "U. | S."), a number ("3. 5 | percent", "100 | and 120"), an abbreviation
    ("Jan | . 15"), or "and"/"or" after a number ("85, 100 and | 120")."""
    tokens = text[max(0, at - 80) : at].split()
    if not tokens:
        return False
    last = tokens[-1]
    if last[-1] in ".,'’" or last[-1].isdigit() or last in ABBREVIATIONS:
        return False
    if last in ("and", "or") and len(tokens) > 1 and (tokens[-2][-1].isdigit() or tokens[-2][-1] == ","):
        return False
    return True


class StreamingModelText:
    """The spacing rules on a stream of display-safe text (``StreamingCitationFilter``'s output).

    ``feed`` returns what can be shown now, ``finish`` the rest. Text is held back from the last
    whitespace where a rule could still join what comes next ("16, " may be followed by "000"),
    so the pieces join to ``normalise_spacing`` of the whole text. Layout rules need whole
    sentences and are left to the whole reply's check, which replaces the preview.
    """

    def __init__(self) -> None:
        self._seen = ""  # all text fed (a reply is a few KB at most)
        self._cut = 0  # the raw text up to here is decided
        self._shown = 0  # how much of its normalised form has been returned

    def _emit(self, upto: int) -> str:
        normalised = normalise_spacing(self._seen[:upto])
        out, self._shown = normalised[self._shown :], len(normalised)
        return out

    def feed(self, delta: str) -> str:
        self._seen += delta
        for at in range(len(self._seen) - 1, self._cut - 1, -1):
            if self._seen[at].isspace() and _safe_cut(self._seen, at):
                self._cut = at
                return self._emit(at)
        return ""

    def finish(self) -> str:
        self._cut = len(self._seen)
        return self._emit(self._cut)

