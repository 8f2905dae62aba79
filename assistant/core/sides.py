"""The two sides of a motion and the words that name them: the one home for stances and sides.

A document's stance says which side of a motion it argues. The stored values are the labels the
first corpus was marked with: "advocate" argues for the motion, "skeptic" against it, and
"unknown" is neither or not yet known. Those values stay in storage, the REST API and the
transcripts, so existing libraries and saved debates keep working; wherever a person types a
stance or picks a side, "for" and "against" mean the same and are what the interfaces show,
because a motion on rent control or a basic income has no "engagement advocate".
"""

from __future__ import annotations

from assistant.core.errors import UserError
from assistant.core.passage import UNKNOWN_STANCE

FOR = "advocate"
AGAINST = "skeptic"
SIDES = (FOR, AGAINST)
STANCES = (*SIDES, UNKNOWN_STANCE)
# What a person may type for a side, besides the stored values.
ALIASES = {"for": FOR, "against": AGAINST}
# "for" / "against" the motion, as a message or a menu says it.
DIRECTIONS = {FOR: "for", AGAINST: "against"}
# A menu's (label, stored value) pairs, for a side picker and a stance picker.
SIDE_CHOICES = [("for the motion", FOR), ("against the motion", AGAINST)]
STANCE_CHOICES = [*SIDE_CHOICES, ("unknown", UNKNOWN_STANCE)]


class StanceError(UserError, ValueError):
    """A stance or side that is not one of the allowed words; the message names them."""


def validate_stance(value: str | None) -> str:
    """The stored stance for ``value`` (None -> unknown; "for"/"against" accepted), else StanceError."""
    stance = (value or UNKNOWN_STANCE).strip().lower()
    stance = ALIASES.get(stance, stance)
    if stance not in STANCES:
        raise StanceError(f"stance must be for, against or unknown (or advocate, skeptic), not {value!r}")
    return stance


def validate_side(value: str | None) -> str:
    """The stored side for ``value`` ("for"/"against" or "advocate"/"skeptic"), else StanceError."""
    side = ALIASES.get((value or "").strip().lower(), (value or "").strip().lower())
    if side not in SIDES:
        raise StanceError(f"side must be for or against (or advocate, skeptic), not {value!r}")
    return side


def side_label(speaker: str, side: str) -> str:
    """``speaker (for)``, ``you (against)``; a speaker already named for its side ("For") alone."""
    direction = DIRECTIONS.get(side, side)
    return speaker if speaker.casefold() == direction else f"{speaker} ({direction})"


def opponent(side: str) -> str:
    """The other side."""
    return AGAINST if side == FOR else FOR
