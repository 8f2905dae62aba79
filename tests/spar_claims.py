"""What the spar tests (API, CLI, browser) play on the shared seed corpus, and what it makes of each.

The skeptic article dates the North's first nuclear test to October 2006 (a turn saying 2009 is
contradicted), nothing in the corpus says who drafted the Sunshine Policy (not found), and Seoul
shut Kaesong down in February 2016 after a fourth nuclear test (supported).
"""

from __future__ import annotations

import os

import pytest

from assistant.core.debate_record import CONTRADICTED, NOT_FOUND, SUPPORTED
from tests.conftest import shared_dir

CORPUS = shared_dir() / "corpus"
CONTRADICTED_CLAIM = "North Korea carried out its first nuclear test in October 2009."
UNFOUNDED_CLAIM = "Diplomats from Brazil drafted the Sunshine Policy."
SUPPORTED_CLAIM = "The Kaesong complex was shut down in February 2016 after a fourth nuclear test."
# The three turns of a one-rebuttal session (opening, rebuttal, closing) and the mark each gets.
TURNS = [(CONTRADICTED_CLAIM, CONTRADICTED), (UNFOUNDED_CLAIM, NOT_FOUND), (SUPPORTED_CLAIM, SUPPORTED)]

needs_shared_corpus = pytest.mark.skipif(
    not CORPUS.is_dir() and not os.environ.get("CI"),
    reason="../shared (the seed corpus) is not present beside this checkout",
)
