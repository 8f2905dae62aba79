"""Terminal escape sequences are removed whole, wherever outside text comes in (issue 12)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assistant.server.api import safe_upload_name
from assistant.storage.library import Library
from assistant.core.text import clean_user_text
from assistant.core.text import strip_terminal_escapes
from ingest.clean import normalize_text

SEQUENCES = {
    "clear screen": "\x1b[2J",
    "colour": "\x1b[1;31m",
    "reset": "\x1b[0m",
    "private mode": "\x1b[?1049h",
    "window title (OSC, BEL)": "\x1b]0;pwned\x07",
    "window title (OSC, ST)": "\x1b]2;pwned\x1b\\",
    "hyperlink start": "\x1b]8;;http://evil.example/\x1b\\",
    "DCS": "\x1bP1$r0m\x1b\\",
    "APC": "\x1b_payload\x1b\\",
    "PM": "\x1b^payload\x1b\\",
    "SOS": "\x1bXpayload\x1b\\",
    "C1 CSI": "\x9b2J",
    "C1 OSC": "\x9d0;pwned\x9c",
    "charset": "\x1b(B",
    "save cursor": "\x1b7",
    "full reset": "\x1bc",
    "keypad": "\x1b=",
}


@pytest.mark.parametrize("sequence", SEQUENCES.values(), ids=SEQUENCES.keys())
def test_every_kind_of_escape_sequence_goes_whole(sequence: str) -> None:
    text = f"before {sequence}after"
    assert strip_terminal_escapes(text) == "before after"
    assert clean_user_text(text) == "before after"
    assert normalize_text(text) == "before after"


@pytest.mark.parametrize("tail", ["\x1b", "\x1b[", "\x1b[2", "\x1b]0;unterminated title"])
def test_a_truncated_sequence_at_the_end_goes_too(tail: str) -> None:
    assert strip_terminal_escapes("text" + tail) == "text"


def test_no_fragment_such_as_2J_is_left_in_file_names() -> None:
    assert safe_upload_name("\x1b[2Jreport\x1b]0;x\x07.txt") == "report.txt"


_PLAIN = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=20)


@given(st.lists(st.tuples(_PLAIN, st.sampled_from(list(SEQUENCES.values()))), max_size=6), _PLAIN)
def test_only_the_printable_text_is_left(pieces: list[tuple[str, str]], last: str) -> None:
    text = "".join(plain + sequence for plain, sequence in pieces) + last
    assert strip_terminal_escapes(text) == "".join(plain for plain, _ in pieces) + last


def test_an_article_with_escapes_is_stored_without_fragments(library: Library, tmp_path) -> None:
    article = tmp_path / "escapes.txt"
    article.write_text(
        "Harbor report\n\n\x1b[2J\x1b[1;31mThe Harbor Accord\x1b[0m reopened the rail link after eleven years, "
        "and grain crossed the border again.\x1b]0;owned\x07 Ferries ran twice a day.\n",
        encoding="utf-8",
    )
    [result] = library.ingest([str(article)])
    assert result.status == "added", result.message
    text = " ".join(p.text for p in library.registry.passages())
    assert "The Harbor Accord reopened the rail link" in text
    assert not any(fragment in text for fragment in ("[2J", "[1;31m", "[0m", "]0;owned", "\x1b"))


def test_a_dns_lookup_that_never_answers_fails_at_its_own_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """getaddrinfo has no timeout; a resolver that never answers is played by a lookup that blocks
    until the test ends (no real DNS server can be made to hang from a test without root)."""
    import socket
    import threading
    import time

    from ingest.fetch import FetchError, check_url_allowed

    released = threading.Event()
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: released.wait(60) and [])
    started = time.monotonic()
    try:
        with pytest.raises(FetchError, match="no answer from DNS within 0.5 s"):
            check_url_allowed("http://hangs.example/", allow_private=False, dns_timeout_s=0.5)
    finally:
        released.set()
    assert time.monotonic() - started < 30  # not the 60 s the lookup would have taken
