"""Where things are kept: the vector store, the keyword index, the library that owns them, transcripts."""
