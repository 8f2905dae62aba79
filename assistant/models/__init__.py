"""The models: embeddings, chat backends, structured (JSON-schema) replies, the Yes/No judge, model files."""
