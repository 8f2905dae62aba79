"""Checks on model text: normalising, citations, support, relevance, and which side a sentence argues."""
