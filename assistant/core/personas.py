"""Who argues in a debate: a debater's name, the stance the model argues from, and the two default sides.

A type of the debate record (``assistant.core.debate_record`` saves the personas with each
debate), kept apart from the prompts that use it so the record does not depend on prompt text.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Persona:
    """A debater: the name shown to the user, the stance the model argues from, and the words
    its side searches the library with beside the motion (None: the stance itself).

    The stance is an instruction to the model ("You argue FOR the motion: ..."); as a search
    query its instruction words drown the motion, which lost the expected passage of a dev
    debate question. The default sides search with the motion alone (``search_terms=""``): each
    already searches only its own side's documents, and words added for one topic ("engagement")
    help that topic's motions only. On the ten dev debate motions over two topics, the expected
    quote was among the offered sentences for 7 with the motion alone, as with the old
    engagement words; among the debate's first five sources the old words found it for one more
    seed-corpus motion, whose quote holds "dialogue" (README, Debates and the CI gate).
    """

    name: str
    stance: str
    search_terms: str | None = None

    @property
    def search_text(self) -> str:
        return self.stance if self.search_terms is None else self.search_terms


# The two sides are named for the motion, not for one topic: a library's documents are marked as
# arguing for or against its motion (stored as "advocate" and "skeptic", the first corpus's labels).
ADVOCATE = Persona(
    name="For",
    stance="You argue FOR the motion: it is right, and its benefits outweigh its costs and risks.",
    search_terms="",
)
SKEPTIC = Persona(
    name="Against",
    stance="You argue AGAINST the motion: you doubt the other side's premises and point to risks, failures and costs.",
    search_terms="",
)
MODERATOR_NAME = "judge"
