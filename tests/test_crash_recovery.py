"""Ingest survives crashes: the registry and the vector store always end up agreeing.

Each document is written atomically: the registry records it ``pending`` with all its passages
before the first vector is written and marks it ``complete`` after the last; the next ingest
(``finish_interrupted``) rewrites pending documents. These tests break real runs at real
moments: ``da ingest`` killed with SIGKILL half way, a Chroma server killed under a running
ingest (left down, then killed and restarted), a reindex interrupted after its first batch.
The corpus is generated here: made-up chronicles of made-up towns, a few long enough to need
several embedding batches, so a kill can land between two batches of one document.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.storage.library import Library
from assistant.core.settings import Settings
from assistant.storage.store import StoreUnavailableError
from ingest.loaders import load_file
from ingest.pipeline import UNCHANGED, WRITE_BATCHES, passage_metadata, prepare
from assistant.storage.registry import COMPLETE, PENDING
from tests.conftest import ARTICLES
from tests.databases import registry_state
from tests.servers import ServerProcess, chroma_command, chroma_ready_url, free_port

REPO = Path(__file__).resolve().parents[1]
N_FILES = 200
BATCH = "4"  # small embedding batches: long documents take several writes, so kills land mid-document
WAIT_S = 300.0  # generous: other jobs share the two cores; nothing here asserts on time

PLACES = ["Vellmoor", "Ostrava Reach", "the Kessel delta", "Lantry", "Brisk Hollow", "Old Tamsin",
          "the Orrin uplands", "Carrow Bay", "Seln", "the Harth marshes", "Pell Crossing", "Undervale"]  # fmt: skip
SUBJECTS = ["The ferry guild", "A council of millers", "The lamplighters' union", "Three rival shipwrights",
            "The archive keepers", "A travelling choir", "The salt board", "Local beekeepers", "The canal wardens",
            "A cooperative of weavers", "The night market traders", "Two retired surveyors"]  # fmt: skip
VERBS = ["argued over", "rebuilt", "surveyed", "taxed", "mapped", "repainted", "petitioned against", "funded",
         "quietly abandoned", "restored", "doubled the size of", "wrote a ledger about"]  # fmt: skip
OBJECTS = ["the north granary", "a collapsed footbridge", "the tide clocks", "every copper bell in the square",
           "the winter road", "a flooded quarry", "the old signal tower", "the eel weirs", "the chalk terraces",
           "a forgotten orchard", "the toll gate", "the ropewalk"]  # fmt: skip
TAILS = ["after the spring floods", "during the long drought", "before the autumn fair", "despite a bitter dispute",
         "with money raised from a lottery", "in under a fortnight", "while the harbour was closed",
         "to the surprise of nearby villages", "using stone from a ruined chapel",
         "for the third time in a decade"]  # fmt: skip

EMBEDDING_BAR = re.compile(r"embedding:.*?\|\s*(\d+)/(\d+)")


def write_corpus(root: Path, n_files: int, seed: int = 11) -> None:
    """Distinct made-up chronicles; most fill one passage, every tenth about eight."""
    rng = random.Random(seed)
    root.mkdir(parents=True)
    for n in range(n_files):
        paragraphs = []
        for p in range(6 if n % 10 == 3 else 1):
            sentences = [
                f"{rng.choice(SUBJECTS)} of {rng.choice(PLACES)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} "
                f"{rng.choice(TAILS)}, recording {rng.randint(2, 9999)} entries in the year {1700 + (n * 7 + p) % 300}."
                for _ in range(rng.randint(3, 4) if n % 10 == 3 else rng.randint(1, 3))
            ]
            paragraphs.append(" ".join(sentences))
        title = f"Chronicle {n} of {rng.choice(PLACES)}"
        (root / f"chronicle_{n:03d}.txt").write_text(title + "\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("crash") / "chronicles"
    write_corpus(root, N_FILES)
    return root


# -- watching a running ingest -----------------------------------------------------------------
class RunningIngest:
    """``python -m assistant.cli ingest`` in a subprocess, its output read by threads as it comes.

    Reading both pipes continuously keeps a long result table from filling a pipe and
    stalling the child; tqdm's passage counter on stderr tells how many vectors are written.
    """

    def __init__(self, corpus: Path, env: dict[str, str], quiet: bool) -> None:
        command = [sys.executable, "-m", "assistant.cli", "ingest", *(["--quiet"] if quiet else []), str(corpus)]
        full_env = {**os.environ, "DA_EMBEDDING_BATCH_SIZE": BATCH, "COLUMNS": "250", **env}
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            command, cwd=REPO, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.passages_written = 0
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, pipe, lines: list[str]) -> None:
        for line in pipe:  # text mode turns tqdm's carriage returns into line ends
            lines.append(line)
            match = EMBEDDING_BAR.search(line)
            if match:
                self.passages_written = int(match.group(1))

    @property
    def err(self) -> str:
        """stderr with whitespace normalised (rich wraps long messages at the console width)."""
        return " ".join("".join(self.stderr).split())

    @property
    def out(self) -> str:
        return "".join(self.stdout)

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        """Poll until ``condition`` holds; fail if the ingest ends first."""
        deadline = time.monotonic() + WAIT_S
        while not condition():
            if self.process.poll() is not None:
                pytest.fail(f"the ingest ended (exit {self.process.returncode}) before {what}:\n{self.err[-3000:]}")
            if time.monotonic() > deadline:
                self.process.kill()
                pytest.fail(f"no {what} within {WAIT_S:.0f} s")
            time.sleep(0.02)

    def sigkill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.wait()

    def stop(self) -> None:
        """Clean-up after a failed test: never leave an ingest running."""
        if self.process.poll() is None:
            self.sigkill()

    def wait(self) -> int:
        returncode = self.process.wait(timeout=WAIT_S)
        for reader in self._readers:
            reader.join(timeout=30)
        return returncode


# -- what "agree" means ------------------------------------------------------------------------
@dataclass(frozen=True)
class Agreement:
    complete_docs: int
    pending_docs: int
    vectors: int
    pending_vectors: int  # vectors of pending documents (a document interrupted between batches)


def check_agreement(library: Library) -> Agreement:
    """Assert the invariants a crash must never break, and return what was found.

    Every vector belongs to a registry passage of the document its metadata names; every
    complete document has exactly its passages as vectors (none missing, none extra); the
    only other vectors are some of a pending document's, which the next ingest rewrites.
    """
    documents = {d.id: d for d in library.documents(include_unfinished=True)}
    registered = {p.id: p for p in library.registry.passages(status=None)}
    stored = library.store._collection.get(include=["metadatas"])
    stored_ids = list(stored["ids"])
    assert len(stored_ids) == len(set(stored_ids)) == library.store.count()
    unknown = [pid for pid in stored_ids if pid not in registered]
    assert not unknown, f"{len(unknown)} vectors belong to no registry passage, e.g. {unknown[:3]}"
    for pid, meta in zip(stored_ids, stored["metadatas"]):
        assert meta["doc_id"] == registered[pid].doc_id, pid
    stored_by_doc = Counter(registered[pid].doc_id for pid in stored_ids)
    passages_by_doc = Counter(p.doc_id for p in registered.values())
    for doc in documents.values():
        assert passages_by_doc[doc.id] == doc.n_passages, doc.title
        if doc.status == COMPLETE:
            assert stored_by_doc[doc.id] == doc.n_passages, f"complete '{doc.title}' has missing vectors"
        else:
            assert doc.status == PENDING, doc.status
    pending = [d for d in documents.values() if d.status == PENDING]
    return Agreement(
        complete_docs=len(documents) - len(pending),
        pending_docs=len(pending),
        vectors=len(stored_ids),
        pending_vectors=sum(stored_by_doc[d.id] for d in pending),
    )


def check_exact(library: Library, n_documents: int) -> None:
    """All documents complete, once each, and the store holds exactly the registry's passages."""
    documents = library.documents(include_unfinished=True)
    assert len(documents) == n_documents and all(d.status == COMPLETE for d in documents)
    assert len({d.source for d in documents}) == n_documents
    registry_ids = {p.id for p in library.registry.passages()}
    assert set(library.store.all_ids()) == registry_ids
    assert library.store.count() == len(registry_ids) == sum(d.n_passages for d in documents)
    assert check_agreement(library).pending_docs == 0


def summary_counts(output: str) -> dict[str, int]:
    """The CLI's last line, e.g. '150 added, 50 unchanged' -> {'added': 150, 'unchanged': 50}."""
    last = output.strip().splitlines()[-1]
    return {status: int(n) for n, status in re.findall(r"(\d+) (\w+)", last)}


# -- the tests ---------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.usefixtures("database")
def test_sigkill_during_ingest_then_rerun(corpus: Path, settings: Settings, request: pytest.FixtureRequest) -> None:
    """``da ingest`` killed while a document is part-written; the next run finishes it, nothing twice."""
    registry = settings.registry_database
    run = RunningIngest(corpus, {"DA_DATA_DIR": str(settings.data_dir)}, quiet=False)
    request.addfinalizer(run.stop)

    def mid_document() -> bool:
        # Vectors written (read first) beyond those of complete documents (read after) means a
        # pending document is part-written now. Failing that, any point past half way will do.
        written = run.passages_written
        state = registry_state(registry)
        return (state.complete_docs >= N_FILES // 5 and written > state.complete_passages) or (
            state.complete_docs >= N_FILES // 2
        )

    run.wait_for(mid_document, "a document was part-written")
    before_kill = registry_state(registry)
    run.sigkill()
    killed_after = time.monotonic() - run.started

    library = Library(settings)
    found = check_agreement(library)
    print(
        f"\nkilled after {killed_after:.1f} s: {found.complete_docs}/{N_FILES} documents complete, "
        f"{found.vectors} vectors, pending {found.pending_docs} with {found.pending_vectors} of its vectors written "
        f"(registry just before the kill: {before_kill})"
    )
    assert 0 < found.complete_docs < N_FILES
    # Only the documents of one write group are in flight (small documents share embedding calls).
    assert found.pending_docs <= settings.embedding_batch_size * WRITE_BATCHES

    started = time.monotonic()
    rerun = CliRunner().invoke(app, ["ingest", "--quiet", str(corpus)], env={"COLUMNS": "250"})
    assert rerun.exit_code == 0, rerun.output
    counts = summary_counts(rerun.output)
    print(f"rerun: {counts} in {time.monotonic() - started:.1f} s")
    # The interrupted document was finished by the rerun before its file came up again.
    assert counts == {"added": N_FILES - found.complete_docs - found.pending_docs,
                      "unchanged": found.complete_docs + found.pending_docs}  # fmt: skip
    check_exact(library, N_FILES)
    library.close()


@pytest.mark.slow
@pytest.mark.usefixtures("database")
def test_a_repair_in_another_process_waits_for_a_running_ingest(corpus: Path, settings: Settings,
                                                                request: pytest.FixtureRequest) -> None:  # fmt: skip
    """Another process that finishes pending documents (``da repair``, an app replica starting, an
    upload to another replica) while an ingest is writing one: it must wait for the ingest, not
    take the document being written for an interrupted one, delete its vectors and write them again.
    Without the lock across processes, the repair ran and ended while the ingest was still writing."""
    run = RunningIngest(corpus, {"DA_DATA_DIR": str(settings.data_dir)}, quiet=True)
    request.addfinalizer(run.stop)
    run.wait_for(lambda: registry_state(settings.registry_database).pending_docs > 0, "a document was being written")
    repair = subprocess.run([sys.executable, "-m", "assistant.cli", "repair"], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "DA_DATA_DIR": str(settings.data_dir), "COLUMNS": "250"},
                            timeout=WAIT_S)  # fmt: skip
    assert repair.returncode == 0, repair.stderr
    assert run.process.poll() is not None, "the repair ended while the ingest was still writing"
    assert run.wait() == 0 and "nothing to repair" in repair.stdout, repair.stdout
    library = Library(settings)
    check_exact(library, N_FILES)
    library.close()


@pytest.mark.slow
def test_chroma_server_killed_during_ingest(
    corpus: Path, settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A Chroma server dying under an ingest: a clear error if it stays down, a retry if it comes back."""
    port = free_port()
    chroma = ServerProcess(
        chroma_command(tmp_path / "chroma-server", port), chroma_ready_url(port), log_path=tmp_path / "chroma.log"
    )
    print(f"\nchroma server started in {chroma.start():.1f} s")
    http = {"DA_DATA_DIR": str(settings.data_dir), "DA_STORE_MODE": "http", "DA_CHROMA_PORT": str(port)}
    http_settings = settings.model_copy(update={"store_mode": "http", "chroma_port": port})
    registry = settings.registry_database
    try:
        # 1. The server is killed and stays down: the ingest gives up with one clear sentence.
        run = RunningIngest(corpus, {**http, "DA_CHROMA_RETRY_S": "3"}, quiet=True)
        request.addfinalizer(run.stop)
        run.wait_for(lambda: registry_state(registry).complete_docs >= N_FILES // 5, "documents were complete")
        chroma.kill()
        assert run.wait() == 2, run.err
        assert f"cannot reach the Chroma server at 127.0.0.1:{port}" in run.err and "chroma run" in run.err
        assert "Traceback" not in run.err, run.err
        assert "not reachable" in run.err  # it did retry before giving up
        first = registry_state(registry)
        print(f"gave up: {first}; stderr: {run.err[run.err.index('error:'):]}")
        # The documents of the one write group in flight are left pending.
        assert 0 < first.complete_docs < N_FILES and 1 <= first.pending_docs <= http_settings.embedding_batch_size * WRITE_BATCHES

        print(f"chroma server restarted in {chroma.start():.1f} s")
        library = Library(http_settings)
        found = check_agreement(library)
        print(f"after the restart the server holds {found.vectors} vectors; pending has {found.pending_vectors}")
        assert found.complete_docs == first.complete_docs

        # 2. The server is killed again and restarted while the rerun goes on: it retries and finishes.
        run = RunningIngest(corpus, {**http, "DA_CHROMA_RETRY_S": "120"}, quiet=True)
        request.addfinalizer(run.stop)
        run.wait_for(
            lambda: registry_state(registry).complete_docs >= first.complete_docs + N_FILES // 5,
            "the rerun made progress",
        )
        chroma.kill()
        killed = time.monotonic()
        run.wait_for(lambda: "not reachable" in run.err, "the ingest noticed the server was gone")
        print(f"the ingest noticed after {time.monotonic() - killed:.1f} s; restarted in {chroma.start():.1f} s")
        assert run.wait() == 0, run.err
        assert "Traceback" not in run.err, run.err
        counts = summary_counts(run.out)
        print(f"rerun through the restart: {counts}")
        # The pending documents were finished first, so their files come up as unchanged.
        assert counts == {"added": N_FILES - first.complete_docs - first.pending_docs,
                          "unchanged": first.complete_docs + first.pending_docs}  # fmt: skip
        check_exact(library, N_FILES)

        # 3. Once more: nothing changes, nothing is duplicated.
        again = library.ingest([str(corpus)])
        assert [r.status for r in again] == [UNCHANGED] * N_FILES
        check_exact(library, N_FILES)
        library.close()
    finally:
        chroma.stop()


def test_unreachable_chroma_server_is_one_clear_error(settings: Settings) -> None:
    port = free_port()  # nothing listens here
    result = CliRunner().invoke(
        app,
        ["ingest", "--quiet", str(ARTICLES / "skeptic.txt")],
        env={"DA_STORE_MODE": "http", "DA_CHROMA_PORT": str(port), "DA_CHROMA_RETRY_S": "0.5", "COLUMNS": "250"},
    )
    output = " ".join(result.output.split())  # rich wraps at the console width
    assert result.exit_code == 2, output
    assert f"error: cannot reach the Chroma server at 127.0.0.1:{port}" in output
    assert "is `chroma run` running?" in output
    assert "Traceback" not in output

    library = Library(settings.model_copy(update={"store_mode": "http", "chroma_port": port, "chroma_retry_s": 0.2}))
    with pytest.raises(StoreUnavailableError, match=f"127.0.0.1:{port}"):
        library.ingest([str(ARTICLES / "skeptic.txt")])
    assert library.documents(include_unfinished=True) == []  # nothing recorded for a store it never reached


def test_the_api_answers_503_while_the_chroma_server_is_down(settings: Settings) -> None:
    """The registry knows the documents, the vector store is unreachable: a clear 503, and /health stays up."""
    import httpx

    from assistant.server.service import Service
    from tests.servers import serve_app
    from ui import create_app

    Library(settings).ingest([str(ARTICLES / "skeptic.txt")])
    down = settings.model_copy(update={"store_mode": "http", "chroma_port": free_port(), "chroma_retry_s": 0.2,
                                       "llm_backend": "extractive"})  # fmt: skip
    service = Service(down)
    with serve_app(create_app(service)) as url, httpx.Client(base_url=url, timeout=60) as client:
        response = client.post("/api/search", json={"query": "Who expelled the inspectors?"})
        health = client.get("/api/health")
    service.close()
    assert response.status_code == 503, response.text
    assert "cannot reach the Chroma server" in response.json()["detail"]
    assert response.headers["retry-after"] == "10"
    assert health.status_code == 200


@pytest.mark.usefixtures("database")
def test_interrupted_reindex_leaves_no_complete_document_without_vectors(library: Library, articles: Path) -> None:
    library.ingest([str(articles)])
    n_documents = len(library.documents())

    class Interrupted(Exception):
        pass

    def interrupt(done: int, total: int, title: str) -> None:
        raise Interrupted  # right after the first batch reached the new collection

    with pytest.raises(Interrupted):
        library.reindex(progress=interrupt)
    reopened = Library(library.settings)
    found = check_agreement(reopened)  # before the fix: documents complete with no vectors at all
    assert found.complete_docs == 0 and found.pending_docs == n_documents
    assert len(reopened.finish_interrupted()) == n_documents
    check_exact(reopened, n_documents)
    reopened.close()


@pytest.mark.usefixtures("database")
def test_crash_between_completing_a_new_version_and_removing_the_old(library: Library, articles: Path) -> None:
    path = articles / "skeptic.txt"
    library.ingest([str(path)])
    [old] = library.documents()
    path.write_text(path.read_text().replace("seventy percent", "sixty-five percent"))
    new = prepare(load_file(path, library.settings), str(path), library.splitter, library.settings)
    # An ingest's steps up to the crash: pending with passages, every vector, complete; the old
    # version not yet removed.
    library.registry.begin(new.record, new.text, new.passages)
    library.store.add([p.id for p in new.passages], [p.text for p in new.passages],
                      [passage_metadata(new.record, p) for p in new.passages])  # fmt: skip
    library.registry.set_status(new.record.id, COMPLETE)
    assert {d.id for d in library.documents()} == {old.id, new.record.id}

    [result] = library.ingest([str(path)])
    assert result.status == UNCHANGED
    assert [d.id for d in library.documents()] == [new.record.id]
    check_exact(library, 1)
