"""The chains that answer, debate, spar and suggest stances, and every prompt they send."""
