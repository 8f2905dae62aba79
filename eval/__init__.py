"""Evaluation of the assistant on question sets (JSONL), starting with retrieval quality."""
