"""Shared fixtures: every test gets its own data dir; the real embedding model is loaded once,
and each text it encodes is encoded once per test session (``_encode_each_text_once``).

The articles in tests/fixtures/articles are written for these tests (a fictional country,
so the model cannot answer from memory); the third-party seed corpus in ../shared is only
read by the dev-set check.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

# The CLI's consoles take their width when first imported: wide enough for its tables whether
# pytest runs in a terminal or in an xdist worker (which has none, so Rich would pick 80).
os.environ.setdefault("COLUMNS", "250")

import assistant  # noqa: E402,F401  (offline environment first)
from assistant.storage.library import Library
from assistant.core.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
ARTICLES = FIXTURES / "articles"


def shared_dir() -> Path:
    return Path(os.environ.get("DA_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))


@pytest.fixture(scope="session", autouse=True)
def _encode_each_text_once() -> Iterator[None]:
    """The real embedding model, with its vectors remembered for the session.

    Most tests ingest the same four fixture articles and ask the same questions, so without this
    the suite spends most of its time encoding identical sentences again (on two cores, the fast
    lane's largest cost). The vectors still come from the real model, encoded with the caller's
    own arguments; a text is keyed by the model, those arguments and the text, so a query and a
    passage, or two models, never share a vector. Callers get copies, never the cached lists.
    """
    from langchain_huggingface import HuggingFaceEmbeddings

    real_embed = HuggingFaceEmbeddings._embed
    vectors: dict[tuple[str, str, str], list[float]] = {}
    lock = threading.Lock()

    def embed(self, texts: list[str], encode_kwargs: dict) -> list[list[float]]:
        model = f"{self.model_name}|{self.multi_process}|{json.dumps(self.model_kwargs, sort_keys=True, default=str)}"
        kwargs = json.dumps(encode_kwargs, sort_keys=True, default=str)
        with lock:
            missing = list(dict.fromkeys(t for t in texts if (model, kwargs, t) not in vectors))
        if missing:
            for text, vector in zip(missing, real_embed(self, missing, encode_kwargs), strict=True):
                with lock:
                    vectors[(model, kwargs, text)] = vector
        with lock:
            return [list(vectors[(model, kwargs, t)]) for t in texts]

    HuggingFaceEmbeddings._embed = embed
    yield
    HuggingFaceEmbeddings._embed = real_embed


@pytest.fixture(scope="session", autouse=True)
def _local_clients_send_their_origin() -> Iterator[None]:
    """httpx clients (gradio_client's included: it is built on httpx) send ``Origin`` with each
    write to a server on 127.0.0.1/localhost, as the app's own page in a browser does.

    Without it the app refuses every write of a client with no token (``assistant.server.access``: no
    cross-origin writes). A request that names its own Origin or Referer keeps it, so the tests of
    that rule send foreign origins, or none (with curl), themselves.
    """
    import httpx

    originals = {cls: cls.build_request for cls in (httpx.Client, httpx.AsyncClient)}

    def with_origin(build_request):
        def build(self, method, url, **kwargs) -> httpx.Request:
            request = build_request(self, method, url, **kwargs)
            if (request.method not in ("GET", "HEAD", "OPTIONS") and request.url.host in ("127.0.0.1", "localhost")
                    and "origin" not in request.headers and "referer" not in request.headers):  # fmt: skip
                request.headers["Origin"] = f"{request.url.scheme}://{request.url.netloc.decode('ascii')}"
            return request

        return build

    for cls, build_request in originals.items():
        cls.build_request = with_origin(build_request)
    yield
    for cls, build_request in originals.items():
        cls.build_request = build_request


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
    # Free-prose answers, which the chain tests' scripted replies are written as: quote-first answers
    # (the default) are tested where a test sets DA_ANSWER_MODE=quotes (tests/test_quote_answer.py).
    monkeypatch.setenv("DA_ANSWER_MODE", "free")
    # Ingest would otherwise ask the local model for a suggested stance; tests that want it say so.
    monkeypatch.setenv("DA_STANCE_SUGGESTIONS", "false")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    from tests.databases import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture
def postgres_database(postgres_server: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database for this test."""
    from tests.databases import fresh_database

    with fresh_database(postgres_server) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def database(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once on each database the registry and the transcripts support: the default
    SQLite files, and PostgreSQL through ``DA_DATABASE_URL`` (set in the environment, so settings,
    the CLI and child processes all use it). A module takes it with
    ``pytestmark = pytest.mark.usefixtures("database")``; the PostgreSQL runs are in the slow lane."""
    if request.param == "postgresql":
        monkeypatch.setenv("DA_DATABASE_URL", request.getfixturevalue("postgres_database"))
    return request.param


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
