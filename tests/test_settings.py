from pathlib import Path

import pytest
from pydantic import ValidationError

from assistant.core.settings import Settings


def test_defaults_fit_the_embedding_window(settings: Settings) -> None:
    assert settings.chunk_tokens <= 254
    assert settings.store_mode == "persistent"
    assert settings.registry_database.parent == settings.chroma_path.parent == settings.data_dir


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DA_RETRIEVAL_K", "7")
    monkeypatch.setenv("DA_STORE_MODE", "http")
    monkeypatch.setenv("DA_THREADS", "1")
    s = Settings()
    assert (s.retrieval_k, s.store_mode, s.threads) == (7, "http", 1)
    assert s.data_dir == tmp_path / "data"


def test_toml_file_is_read_and_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "da.toml"
    config.write_text('retrieval_k = 9\nchunk_tokens = 120\nretrieval_mode = "bm25"\n')
    monkeypatch.setenv("DA_CONFIG_FILE", str(config))
    monkeypatch.setenv("DA_RETRIEVAL_MODE", "dense")
    s = Settings()
    assert (s.retrieval_k, s.chunk_tokens, s.retrieval_mode) == (9, 120, "dense")


@pytest.mark.parametrize(
    "field, value",
    [("chunk_tokens", 400), ("retrieval_mode", "magic"), ("store_mode", "cloud"), ("retrieval_k", 0)],
)
def test_invalid_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Settings(**{field: value})


def test_overlap_must_be_smaller_than_chunk() -> None:
    with pytest.raises(ValidationError, match="chunk_overlap_tokens"):
        Settings(chunk_tokens=50, chunk_overlap_tokens=50)


def test_embedding_model_comes_from_the_installed_package(settings: Settings) -> None:
    path = settings.resolved_embedding_model_path()
    assert (path / "config.json").is_file()
    assert "site-packages" in str(path)


def test_a_preset_fills_what_is_not_set_and_anything_set_explicitly_wins(monkeypatch) -> None:
    from pydantic import ValidationError

    from assistant.core.settings import PRESETS, Settings

    fast = Settings(preset="fast")
    assert (fast.verifier, fast.spar_verifier, fast.relevance, fast.debate_side_check) == ("rules", "rules", "rules", False)
    assert Settings(preset="fast", verifier="rules+llm").verifier == "rules+llm"  # an argument wins
    standard, unset = Settings(preset="standard"), Settings()
    assert all(getattr(standard, name) == getattr(unset, name) for name in PRESETS["fast"])  # the standard one sets nothing
    monkeypatch.setenv("DA_PRESET", "thorough")
    monkeypatch.setenv("DA_RELEVANCE", "off")
    thorough = Settings()
    assert (thorough.relevance, thorough.debate_dispute_check) == ("off", True)  # a DA_* variable wins too
    with pytest.raises(ValidationError, match="standard.*fast.*thorough"):
        Settings(preset="fastest")
