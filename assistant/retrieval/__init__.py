"""Finding passages: hybrid search, query understanding, sentence-level context."""
