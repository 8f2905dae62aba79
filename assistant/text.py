"""Rules for raw text from outside (articles, questions, file names), one place each.

Terminal escape sequences are removed whole. Removing only the control characters (ESC is
one) used to leave their printable tails behind, so ``ESC[2J`` became ``[2J`` in an article
and an OSC title ``ESC]0;pwned BEL`` became ``]0;pwned``. The pattern follows ECMA-48: CSI
(``ESC [`` or the one-byte C1 ``CSI``) with its parameter, intermediate and final bytes; the
string commands OSC, DCS, SOS, PM and APC (7-bit or C1) up to their terminator (BEL or ST),
or to the end of the text when unterminated; and every other escape sequence (``ESC ( B``,
``ESC 7``, ``ESC c``, ...). A truncated sequence at the end of the text goes too.
"""

from __future__ import annotations

import re

TERMINAL_ESCAPE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"  # CSI: ESC[2J, ESC[1;31m, ESC[?1049h
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC, DCS, SOS, PM, APC strings
    r"|\x1b[ -/]*[0-~]?"  # all other escape sequences, and a lone ESC
)


def strip_terminal_escapes(text: str) -> str:
    """``text`` without terminal escape sequences (whole: no ``[2J`` or ``]0;title`` left behind)."""
    return TERMINAL_ESCAPE.sub("", text)
