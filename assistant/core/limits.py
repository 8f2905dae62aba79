"""Input bounds shared by every door (REST and the command line), so each refuses the same values."""

from __future__ import annotations

# Saved debates and spar sessions have SQLite row ids: a larger number would overflow SQLite's
# integer (an OverflowError, a 500 or a traceback), not simply miss.
MIN_ID = 1
MAX_ID = 2**63 - 1

# Passages asked for per search or answer: more than this floods the model's context window and
# the reader; fewer than one is no search at all.
MIN_K = 1
MAX_K = 50
