"""Shared fixtures: every test gets its own data dir; the real embedding model is loaded once.

The articles in tests/fixtures/articles are written for these tests (a fictional country,
so the model cannot answer from memory); the third-party seed corpus in ../shared is only
read by the dev-set check.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# The CLI's consoles take their width when first imported: wide enough for its tables whether
# pytest runs in a terminal or in an xdist worker (which has none, so Rich would pick 80).
os.environ.setdefault("COLUMNS", "250")

import assistant  # noqa: E402,F401  (offline environment first)
from assistant.library import Library
from assistant.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
ARTICLES = FIXTURES / "articles"


def shared_dir() -> Path:
    return Path(os.environ.get("DA_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the user's data dir or config file, or another test's."""
    for key in list(os.environ):
        if key.startswith("DA_") and key != "DA_SHARED_DIR":
            monkeypatch.delenv(key)
    monkeypatch.setenv("DA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DA_CONFIG_FILE", str(tmp_path / "absent.toml"))
    # The rules stage alone, unless a test asks for the default (rules + the local model as judge):
    # chain tests with a scripted model must not load the real one.
    monkeypatch.setenv("DA_VERIFIER", "rules")
    monkeypatch.setenv("DA_RELEVANCE", "rules")
    # Ingest would otherwise ask the local model for a suggested stance; tests that want it say so.
    monkeypatch.setenv("DA_STANCE_SUGGESTIONS", "false")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def library(settings: Settings) -> Library:
    lib = Library(settings)
    yield lib
    lib.close()


@pytest.fixture
def articles(tmp_path: Path) -> Path:
    """A writable copy of the fixture articles."""
    target = tmp_path / "articles"
    shutil.copytree(ARTICLES, target)
    return target
