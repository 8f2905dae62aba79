"""Issue 18, probed as an attacker would: every test talks to the real app served by uvicorn on
127.0.0.1 (real loaders, embedding model, Chroma and registry; the extractive backend stands in
for the LLM, which none of these rows is about).

1. URL ingest from the API and the web UI takes only http(s) URLs, never a path of the server.
2. One access rule for every route, Gradio's own included (walked from ``app.routes``).
3-8. A search during deletes, invalid Unicode, huge ids, history, personas, invisible text.
9-10. Uploads under their own name; a restart after SIGKILL repairs pending documents.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from assistant.server.service import Service
from assistant.core.settings import Settings
from tests.conftest import ARTICLES
from tests.databases import registry_state
from tests.servers import ServerProcess, free_port, serve_app
from ui import create_app

REPO = Path(__file__).resolve().parents[1]
SECRET_TEXT = "The vault combination of the Osk harbour office is 7-31-4 and nobody outside may know it."
WEB_URL_ONLY = "only http:// and https:// URLs can be added by URL"
TOKEN = "tok-3f9a"


def _service(data_dir: Path, **settings) -> Service:
    return Service(Settings(data_dir=data_dir, llm_backend="extractive", **settings))


def _lines(response: httpx.Response) -> list[dict]:
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def shared_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Service]]:
    """One app over two fixture articles for the rows that only read or are refused."""
    service = _service(tmp_path_factory.mktemp("security"))
    service.library.ingest([str(ARTICLES / "skeptic.txt"), str(ARTICLES / "pro_engagement.txt")])
    with serve_app(create_app(service)) as url, httpx.Client(base_url=url, timeout=120) as client:
        yield client, service
    service.close()


# --- 1. URL ingest reads no file of the server -------------------------------------------------------------

@pytest.fixture
def secret_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A secret article and a folder of them, and every spelling of a local path that names them."""
    folder = tmp_path / "private"
    folder.mkdir()
    (folder / "secret.md").write_text(f"# Vault\n\n{SECRET_TEXT}\n", encoding="utf-8")
    (folder / "notes.txt").write_text(SECRET_TEXT + " Second copy.\n", encoding="utf-8")
    monkeypatch.setenv("HOME", str(tmp_path))  # what "~" means to the server process (this one)
    secret = folder / "secret.md"
    return {
        "absolute": str(secret),
        "relative": os.path.relpath(secret, Path.cwd()),
        "file-url": secret.as_uri(),
        "file-colon": f"file:{secret}",
        "tilde": "~/private/secret.md",
        "folder": str(folder),
        "folder-slash": str(folder) + "/",
        "dot-dot": str(folder / ".." / "private" / "secret.md"),
        "missing": str(folder / "absent.md"),  # must get the same answer as a file that exists
        "unsupported": str(folder / "secret.exe"),
        "ftp": "ftp://127.0.0.1/secret.md",
        "no-host": "http:///etc/secret.md",
    }


def test_api_url_field_refuses_every_spelling_of_a_local_path(tmp_path: Path, secret_files: dict[str, str]) -> None:
    service = _service(tmp_path / "data")
    with serve_app(create_app(service)) as url, httpx.Client(base_url=url, timeout=60) as client:
        answers = {name: client.post("/api/documents", data={"url": spelling}) for name, spelling in secret_files.items()}
        listing = client.get("/api/documents").json()
        found = client.post("/api/search", json={"query": "vault combination Osk harbour office"}).json()
    service.close()
    for name, response in answers.items():
        assert response.status_code == 422, (name, response.text)
        assert response.json()["detail"].startswith(WEB_URL_ONLY), (name, response.text)
        assert "vault" not in response.text.lower() and str(tmp_path) not in response.text
    # One answer for all: nothing tells whether a path exists, is a folder or has a readable type.
    assert len({response.text for response in answers.values()}) == 1
    assert listing == [] and found == []


@pytest.mark.slow  # a few seconds: the fast lane stays under two minutes
def test_web_ui_url_box_refuses_local_paths(tmp_path: Path, secret_files: dict[str, str]) -> None:
    from gradio_client import Client

    service = _service(tmp_path / "data")
    errors = {}
    with serve_app(create_app(service)) as url:
        client = Client(url, verbose=False)
        for name in ("absolute", "relative", "file-url", "tilde", "folder", "missing"):
            with pytest.raises(Exception) as refused:
                client.predict(None, secret_files[name], "", "", "unknown", api_name="/do_ingest")
            errors[name] = str(refused.value)
    documents = service.library.documents(include_unfinished=True)
    service.close()
    assert all(WEB_URL_ONLY in message for message in errors.values()), errors
    assert len(set(errors.values())) == 1 and documents == []


def test_gradio_file_input_cannot_name_a_server_file(tmp_path: Path, secret_files: dict[str, str]) -> None:
    """The Library tab's file input over Gradio's API, given a server path instead of an upload."""
    service = _service(tmp_path / "data")
    with serve_app(create_app(service)) as url, httpx.Client(base_url=url, timeout=60) as client:
        file_data = {"path": secret_files["absolute"], "meta": {"_type": "gradio.FileData"}, "orig_name": "secret.md"}
        started = client.post("/gradio_api/call/do_ingest", json={"data": [[file_data], "", "", "", "unknown"]})
        result = client.get(f"/gradio_api/call/do_ingest/{started.json()['event_id']}").text if started.is_success else ""
    documents = service.library.documents(include_unfinished=True)
    service.close()
    assert documents == [], result
    assert "vault" not in result.lower()


def test_cli_still_ingests_local_paths(tmp_path: Path, secret_files: dict[str, str]) -> None:
    """The CLI is run by a local user on their own files: paths stay allowed there."""
    from typer.testing import CliRunner

    from assistant.cli import app as cli_app

    result = CliRunner().invoke(cli_app, ["ingest", "-q", secret_files["folder"]], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "2 added" in result.output


# --- 2. One access rule for every route ------------------------------------------------------------------

def _all_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves, Gradio's mounted app included, from app.routes."""
    from fastapi.routing import iter_route_contexts
    from starlette.routing import Mount

    found: list[tuple[str, str]] = []

    def walk(routes, prefix: str) -> None:
        for context in iter_route_contexts(routes):
            route = context.original_route
            if isinstance(route, Mount):
                walk(getattr(route.app, "routes", None) or [], prefix + route.path)
                if not getattr(route.app, "routes", None):  # static files and other plain apps
                    found.append(("GET", prefix + route.path + "/x"))
                continue
            path = prefix + (context.path or "")
            for method in sorted(context.methods or {"GET"}):
                found.append((method, path))

    walk(app.routes, "")
    return found


def _concrete(path: str) -> str:
    """A path with its parameters filled in (``{api_name}`` -> do_ingest, ``{p:path}`` -> a file name)."""
    path = re.sub(r"\{api_name\}", "do_ingest", path)
    path = re.sub(r"\{[^}:]+:path\}", "x.txt", path)
    return re.sub(r"\{[^}]+\}", "1", path)


CREDENTIALS = {
    "token": {"api_token": SecretStr(TOKEN)},
    "ui-password": {"ui_username": "ann", "ui_password": SecretStr("pw-77")},
    "both": {"api_token": SecretStr(TOKEN), "ui_username": "ann", "ui_password": SecretStr("pw-77")},
}


@pytest.fixture(params=["both"])
def locked_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Service, object]]:
    service = _service(tmp_path / "data", **CREDENTIALS[request.param])
    app = create_app(service)
    with serve_app(app) as url:
        yield url, service, app
    service.close()


@pytest.mark.parametrize("locked_app", list(CREDENTIALS), indirect=True)
def test_every_route_but_health_needs_credentials(locked_app) -> None:
    url, service, app = locked_app
    routes = _all_routes(app)
    paths = {path for _, path in routes}
    # The walk does see Gradio's own API, not only ours.
    assert {"/gradio_api/info", "/gradio_api/call/{api_name}", "/gradio_api/queue/join", "/gradio_api/upload",
            "/gradio_api/file={path_or_url:path}", "/", "/api/documents", "/api/docs"} <= paths  # fmt: skip
    assert len(routes) > 60
    answers = {}
    with httpx.Client(base_url=url, timeout=30) as client:
        for method, path in routes:
            concrete = _concrete(path)
            body = {"data": [None, "", "A pasted article about the Osk ferry.", "x", "unknown"]} if method == "POST" else None
            with client.stream(method, concrete, json=body) as response:  # headers only: some routes stream forever
                answers[(method, path)] = response.status_code
        # A browser gets the login form with its 401.
        page = client.get("/", headers={"Accept": "text/html"})
    open_routes = {route: status for route, status in answers.items() if status != 401}
    assert open_routes == {("GET", "/api/health"): 200, ("HEAD", "/api/health"): 200}, open_routes
    assert page.status_code == 401 and "<form" in page.text
    assert service.library.documents(include_unfinished=True) == []


def test_the_issue_attack_gradio_call_without_token_adds_nothing(tmp_path: Path) -> None:
    service = _service(tmp_path / "data", api_token=SecretStr(TOKEN))  # token only, no UI password
    with serve_app(create_app(service)) as url, httpx.Client(base_url=url, timeout=60) as client:
        info = client.get("/gradio_api/info")
        call = client.post("/gradio_api/call/do_ingest", json={"data": [None, "", "Harbour notes: the Osk pier.", "x", "unknown"]})
        home = client.get("/")
        # With the token, the same calls work.
        auth = {"Authorization": f"Bearer {TOKEN}"}
        info_ok = client.get("/gradio_api/info", headers=auth)
        started = client.post("/gradio_api/call/do_ingest", headers=auth,
                              json={"data": [None, "", "Harbour notes: the Osk pier was rebuilt in May.", "Pier", "unknown"]})  # fmt: skip
        finished = client.get(f"/gradio_api/call/do_ingest/{started.json()['event_id']}", headers=auth)
    titles = [d.title for d in service.library.documents()]
    service.close()
    assert (info.status_code, call.status_code, home.status_code) == (401, 401, 401)
    assert "do_ingest" not in info.text
    assert info_ok.status_code == 200 and "do_ingest" in info_ok.text
    assert "added: Pier" in finished.text and titles == ["Pier"]


@pytest.mark.slow  # a few seconds: the fast lane stays under two minutes
def test_a_browser_logs_in_with_the_token_and_keeps_a_session(tmp_path: Path) -> None:
    service = _service(tmp_path / "data", api_token=SecretStr(TOKEN))
    with serve_app(create_app(service)) as url, httpx.Client(base_url=url, timeout=60) as browser:
        wrong = browser.post("/login", data={"token": "guess", "next": "/"})
        evil_next = browser.post("/login", data={"token": TOKEN, "next": "//evil.example/"}, follow_redirects=False)
        browser.cookies.clear()
        login = browser.post("/login", data={"token": TOKEN, "next": "/?view=api"}, follow_redirects=False)
        cookie = login.cookies.get("da_session")
        home = browser.get("/")
        info = browser.get("/gradio_api/info")
        documents = browser.get("/api/documents")
    service.close()
    assert wrong.status_code == 401 and "Wrong credentials" in wrong.text and "da_session" not in wrong.cookies
    assert evil_next.status_code == 303 and evil_next.headers["location"] == "/"  # no open redirect
    assert login.status_code == 303 and login.headers["location"] == "/?view=api"
    assert cookie and TOKEN not in cookie and "httponly" in login.headers["set-cookie"].lower()
    assert home.status_code == 200 and info.status_code == 200 and documents.json() == []


def test_basic_auth_opens_the_api_too_and_wrong_credentials_do_not(locked_app) -> None:
    url, _, _ = locked_app
    with httpx.Client(base_url=url, timeout=30) as client:
        assert client.get("/api/documents", auth=("ann", "pw-77")).status_code == 200
        assert client.get("/gradio_api/info", auth=("ann", "pw-77")).status_code == 200
        assert client.get("/api/documents", auth=("ann", "wrong")).status_code == 401
        assert client.get("/api/documents", headers={"Authorization": f"Bearer {TOKEN}x"}).status_code == 401
        assert client.get("/api/documents", cookies={"da_session": "forged"}).status_code == 401
        assert client.get("/api/health").status_code == 200
        assert client.post("/api/health").status_code == 401  # only GET /api/health is open


def test_without_credentials_the_app_answers_only_to_loopback_names(tmp_path: Path) -> None:
    """DNS rebinding: a web page whose name resolves to 127.0.0.1 must not reach the open local server."""
    service = _service(tmp_path / "data")
    with serve_app(create_app(service)) as url, httpx.Client(base_url=url, timeout=30) as client:
        rebound = client.get("/api/documents", headers={"Host": "attacker.example"})
        rebound_ui = client.post("/gradio_api/call/do_ingest", headers={"Host": "attacker.example:7860"},
                                 json={"data": [None, "", "Injected.", "x"]})  # fmt: skip
        local = client.get("/api/documents", headers={"Host": "localhost:7860"})
    service.close()
    assert rebound.status_code == 403 and "127.0.0.1" in rebound.json()["detail"]
    assert rebound_ui.status_code == 403
    assert local.status_code == 200


@pytest.mark.slow  # starts the real CLI process and waits for it to refuse: seconds
def test_a_public_address_without_credentials_is_refused_at_start() -> None:
    """``da app --host 0.0.0.0`` without credentials stops before it binds (a subprocess with a time
    limit: a server that did start would serve until killed)."""
    command = [sys.executable, "-m", "assistant.cli", "app", "--host", "0.0.0.0", "--port", str(free_port())]
    try:
        refused = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120,
                                 env={**os.environ, "COLUMNS": "200"})  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail("the app started on 0.0.0.0 without credentials")
    assert refused.returncode != 0
    assert "refusing to serve on 0.0.0.0 without credentials" in refused.stderr, refused.stderr[-2000:]


# --- 3. A search during deletes ------------------------------------------------------------------------

@pytest.mark.slow
def test_searches_while_documents_are_deleted_never_fail(tmp_path: Path) -> None:
    """Many small documents deleted one by one while searches run: each delete changes the
    registry, so searches keep rebuilding their snapshot of passages and documents."""
    corpus = tmp_path / "notes"
    corpus.mkdir()
    for n in range(120):
        sentences = " ".join(f"Ledger {n} entry {i}: the Osk ferry carried {n * 7 + i} crates of salt." for i in range(30))
        (corpus / f"ledger_{n:03d}.txt").write_text(f"Ferry ledger {n}\n\n{sentences}\n", encoding="utf-8")
    service = _service(tmp_path / "data")
    service.library.ingest([str(corpus)])
    doc_ids = [d.id for d in service.library.documents()]
    statuses: list[int] = []
    failures: list[str] = []
    done = threading.Event()
    with serve_app(create_app(service)) as url:
        def searcher(mode: str) -> None:
            with httpx.Client(base_url=url, timeout=120) as client:
                while not done.is_set():
                    response = client.post("/api/search", json={"query": "ferry salt crates", "k": 3, "mode": mode})
                    statuses.append(response.status_code)
                    if response.status_code != 200:
                        failures.append(response.text[:200])

        threads = [threading.Thread(target=searcher, args=(mode,)) for mode in ("bm25", "bm25", "hybrid")]
        for thread in threads:
            thread.start()
        while len(statuses) < 3 and all(thread.is_alive() for thread in threads):
            time.sleep(0.05)  # searches are under way
        with httpx.Client(base_url=url, timeout=120) as client:
            deletes = [client.delete(f"/api/documents/{doc_id}").status_code for doc_id in doc_ids]
        done.set()
        for thread in threads:
            thread.join(timeout=120)
    service.close()
    assert deletes == [200] * len(doc_ids)
    assert len(statuses) >= 10 and not failures, (len(statuses), failures[:3])  # searches did overlap the deletes


# --- 4, 8. Invalid Unicode and invisible-only text --------------------------------------------------------

ENDPOINTS = [("/api/search", "query", {}), ("/api/ask", "question", {}), ("/api/ask", "question", {"stream": True}),
             ("/api/debate", "motion", {"rounds": 0})]  # fmt: skip


@pytest.mark.parametrize("endpoint, field, extra", ENDPOINTS, ids=["search", "ask", "ask-stream", "debate"])
@pytest.mark.parametrize("raw", ["\\ud800", "Why did Copper Lake \\udfff collapse?", "\\udc00\\ud800"],
                         ids=["lone-high", "inside-text", "reversed-pair"])  # fmt: skip
def test_lone_surrogates_are_a_422(shared_api, endpoint: str, field: str, extra: dict, raw: str) -> None:
    client, _ = shared_api
    body = json.dumps({**extra, field: "@@"}).replace('"@@"', f'"{raw}"').encode()  # JSON escapes as a client sends them
    response = client.post(endpoint, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text[:300]
    assert "not valid Unicode" in response.json()["detail"]
    assert client.get("/api/health").json()["status"] == "ok"


@pytest.mark.parametrize("endpoint, field, extra", ENDPOINTS, ids=["search", "ask", "ask-stream", "debate"])
@pytest.mark.parametrize("text", ["\u200b\u200b\u200b", "\ufeff", " \u200d\u2060\u200c \ufeff\n", "\u200e\u202e\u00ad"],
                         ids=["zero-width-spaces", "bom", "joiners", "bidi-marks"])  # fmt: skip
def test_invisible_only_text_is_empty(shared_api, endpoint: str, field: str, extra: dict, text: str) -> None:
    client, _ = shared_api
    response = client.post(endpoint, json={**extra, field: text})
    assert response.status_code == 422, response.text[:300]
    assert response.json()["detail"].endswith("is empty")


def test_a_bom_before_a_real_question_is_dropped(shared_api) -> None:
    client, _ = shared_api
    response = client.post("/api/search", json={"query": "\ufeff\u200bCorvel Observatory\u200b", "k": 1})
    assert response.status_code == 200 and "Corvel Observatory" in response.json()[0]["text"]


# --- 5. Ids out of range -------------------------------------------------------------------------------

@pytest.mark.parametrize("debate_id", ["9223372036854775808", "99999999999999999999999", "-1", "0"])
@pytest.mark.parametrize("suffix", ["", "/markdown"])
def test_debate_ids_out_of_range_are_a_422_not_a_500(shared_api, debate_id: str, suffix: str) -> None:
    client, _ = shared_api
    response = client.get(f"/api/debates/{debate_id}{suffix}")
    assert response.status_code == 422, response.text[:300]
    assert client.get(f"/api/debates/9223372036854775807{suffix}").status_code == 404  # the largest id: just unknown


# --- 6. History ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("stream", [False, True])
def test_history_items_are_limited_like_questions_before_the_queue(shared_api, stream: bool) -> None:
    client, service = shared_api
    history = [["Who expelled the inspectors?", "Arandia did [1]."], ["x" * 54_000, "ok"]]
    response = client.post("/api/ask", json={"question": "And then?", "history": history, "stream": stream})
    assert response.status_code == 422, response.text[:300]
    detail = response.json()["detail"]
    assert "history item 2" in detail and "54000 characters long; the limit is 4000" in detail
    bad_unicode = b'{"question": "And then?", "history": [["\\ud800", "a"]]}'
    response = client.post("/api/ask", content=bad_unicode, headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and "history item 1" in response.json()["detail"]
    assert service.queue.running is False and service.queue.waiting == 0


# --- 7. Personas ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "advocate, skeptic, message",
    [
        ({"name": "Dana"}, {"name": "dana"}, "different names"),
        ({"name": "  "}, None, "the advocate needs a name"),
        ({"name": "\u200b"}, None, "the advocate needs a name"),
        (None, {"name": "x" * 500}, "the skeptic's name is 500 characters long; the limit is 60"),
        (None, {"name": "Sam", "stance": "y" * 5000}, "the skeptic's stance is 5000 characters long; the limit is 600"),
    ],
    ids=["same-names", "blank", "invisible", "500-chars", "long-stance"],
)
def test_persona_errors_are_a_422_before_streaming(shared_api, advocate, skeptic, message: str) -> None:
    client, _ = shared_api
    body = {"motion": "Should Arandia get a pledge first?", "rounds": 0, "advocate": advocate, "skeptic": skeptic}
    response = client.post("/api/debate", json={k: v for k, v in body.items() if v is not None})
    assert response.status_code == 422, response.text[:300]
    assert message in response.json()["detail"]
    assert not response.headers["content-type"].startswith("application/x-ndjson")


def test_persona_errors_in_the_web_ui_come_before_the_queue(shared_api) -> None:
    from gradio_client import Client

    client, service = shared_api
    ui = Client(str(client.base_url), verbose=False)
    with pytest.raises(Exception, match="different names"):
        ui.predict("Should Arandia get a pledge first?", 0, "Dana", "", "dana", "", "", api_name="/do_debate")
    assert service.transcripts.list() == []  # no debate was started


# --- 9. Uploads under their own name ---------------------------------------------------------------------

def test_reuploading_an_edited_file_replaces_it(tmp_path: Path) -> None:
    service = _service(tmp_path / "data")
    first = b"Harbour notes\n\nThe Osk pier was rebuilt with forty new pilings in May."
    edited = b"Harbour notes\n\nThe Osk pier was rebuilt with fifty new pilings in June, after a delay."
    with serve_app(create_app(service)) as url, httpx.Client(base_url=url, timeout=60) as client:
        added = client.post("/api/documents", files={"files": ("harbour notes.txt", first, "text/plain")}).json()
        again = client.post("/api/documents", files={"files": ("harbour notes.txt", first, "text/plain")}).json()
        replaced = client.post("/api/documents", files={"files": ("dir/harbour notes.txt", edited, "text/plain")}).json()
        listing = client.get("/api/documents").json()
        hits = client.post("/api/search", json={"query": "Osk pier pilings", "k": 3}).json()
    service.close()
    assert [r["status"] for r in added + again + replaced] == ["added", "unchanged", "replaced"]
    assert added[0]["item"] == "harbour notes.txt"
    assert len(listing) == 1 and listing[0]["source"] == "upload:harbour notes.txt"
    assert listing[0]["title"] == "Harbour notes" and "da-upload" not in json.dumps(listing)
    assert {hit["source"] for hit in hits} == {"upload:harbour notes.txt"} and "fifty" in hits[0]["text"]


@pytest.mark.slow  # a few seconds: the fast lane stays under two minutes
def test_the_web_ui_records_uploads_under_their_name_too(tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    article = tmp_path / "ferry.txt"
    article.write_text("Ferry timetable\n\nThe first ferry leaves Port Osk at 6:40 on weekdays.", encoding="utf-8")
    service = _service(tmp_path / "data")
    with serve_app(create_app(service)) as url:
        client = Client(url, verbose=False)
        status, *_ = client.predict([handle_file(str(article))], "", "", "", api_name="/do_ingest")
        article.write_text("Ferry timetable\n\nThe first ferry now leaves Port Osk at 6:10 on weekdays.", encoding="utf-8")
        replaced, *_ = client.predict([handle_file(str(article))], "", "", "", api_name="/do_ingest")
    documents = service.library.documents()
    service.close()
    assert status.startswith("added") and replaced.startswith("replaced"), (status, replaced)
    assert [d.source for d in documents] == ["upload:ferry.txt"]


# --- 10. Restart after SIGKILL ---------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.usefixtures("database")
def test_a_restart_after_sigkill_mid_upload_repairs_pending_documents(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    data, temp = tmp_path / "data", tmp_path / "tmp"
    temp.mkdir()
    port = free_port()
    for key, value in {"DA_DATA_DIR": str(data), "DA_LLM_BACKEND": "extractive", "TMPDIR": str(temp),
                       "DA_EMBEDDING_BATCH_SIZE": "4"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)  # the server processes inherit this environment
    files = [("files", (f"ledger_{n:03d}.txt", (f"Ferry ledger {n}\n\n" + " ".join(
        f"Entry {i}: the Osk ferry carried {n * 11 + i} crates of salt to Tallin Reach." for i in range(12))).encode(),
        "text/plain")) for n in range(200)]  # fmt: skip
    registry = Settings().registry_database  # the server's own, from the same environment
    log = tmp_path / "app.log"
    server = ServerProcess([sys.executable, "-m", "assistant.cli", "app", "--port", str(port)],
                           f"http://127.0.0.1:{port}/api/health", log_path=log)  # fmt: skip
    server.start()
    try:
        upload = threading.Thread(target=_post_quietly, args=(f"http://127.0.0.1:{port}/api/documents", files))
        upload.start()
        deadline = time.monotonic() + 300  # generous: other jobs share the cores; nothing asserts on time
        while registry_state(registry).pending_docs == 0:  # saved, read, split, and now being embedded
            assert time.monotonic() < deadline and server.process.poll() is None, "no pending documents seen"
            time.sleep(0.02)
        server.kill()  # SIGKILL: no clean-up runs
        upload.join(timeout=60)
        pending = registry_state(registry).pending_docs
        assert pending > 0 and [p for p in temp.iterdir() if p.name.startswith("da-upload-")]

        server.start()  # the same command again, as a supervisor would; no other upload follows
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            while registry_state(registry).pending_docs or client.get("/api/health").json()["documents"] < pending:
                assert time.monotonic() < deadline, f"still {registry_state(registry).pending_docs} of {pending} pending after restart"
                time.sleep(0.2)
            documents = client.get("/api/documents").json()
            leftovers = [p.name for p in temp.iterdir() if p.name.startswith("da-upload-")]
    finally:
        server.stop()
    assert leftovers == []
    assert len(documents) >= pending and all(d["source"].startswith("upload:ledger_") for d in documents)
    assert "no credentials set, so serving on 127.0.0.1 only" in log.read_text()  # said at start


def _post_quietly(url: str, files) -> None:
    try:
        httpx.post(url, files=files, timeout=300)
    except httpx.HTTPError:
        pass  # the server was killed under the request, as intended


def test_a_non_ascii_password_is_checked_not_a_500() -> None:
    """Bug: ``hmac.compare_digest`` on ``str`` raises TypeError for non-ASCII text, so a login with
    "pässwörd" (either side) answered 500; the credentials are compared as UTF-8 bytes."""
    import base64

    from starlette.datastructures import Headers

    from assistant.server.access import AccessRule

    rule = AccessRule(Settings(ui_username="änn", ui_password=SecretStr("pässwörd-77")))

    def basic(user: str, password: str) -> Headers:
        return Headers({"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()})

    assert rule.allows(basic("änn", "pässwörd-77"))
    assert not rule.allows(basic("änn", "pässwörd-78")) and not rule.allows(basic("ann", "pässwörd-77"))
    assert not AccessRule(Settings(ui_username="ann", ui_password=SecretStr("pw-77"))).allows(basic("ann", "pw-7é"))


# --- Issue 32: cross-origin writes (CSRF), CORS, the /login throttle, Gradio's upload limit -------------------

EVIL = "https://evil.example"
NOTE = "Harbour notes: the Osk pier was rebuilt with forty new pilings in May."


def _curl(method: str, url: str, *args: str) -> tuple[int, str]:
    """The issue's repro as a user types it: curl sends no Origin unless told to."""
    done = subprocess.run(["curl", "-s", "-X", method, "-o", "-", "-w", "\n%{http_code}", *args, url],
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


@pytest.fixture
def open_app(tmp_path: Path) -> Iterator[tuple[str, Service]]:
    """The default server (no credentials) with one document in it."""
    service = _service(tmp_path / "data")
    service.library.ingest([str(ARTICLES / "skeptic.txt")])
    with serve_app(create_app(service)) as url:
        yield url, service
    service.close()


def test_the_issue_repro_a_foreign_origin_cannot_add_a_document(open_app) -> None:
    url, service = open_app
    before = service.library.documents()
    status, body = _curl("POST", f"{url}/api/documents", "-H", f"Origin: {EVIL}", "-F", f"text={NOTE}",
                         "-F", "stance=skeptic")  # fmt: skip
    null_status, _ = _curl("POST", f"{url}/api/documents", "-H", "Origin: null", "-F", f"text={NOTE}")
    site_status, _ = _curl("POST", f"{url}/api/documents", "-H", f"Origin: {url}", "-H", "Sec-Fetch-Site: same-site",
                           "-F", f"text={NOTE}")  # fmt: skip
    assert (status, null_status, site_status) == (403, 403, 403), body
    assert "DA_API_TOKEN" in json.loads(body)["detail"] and "Origin" in json.loads(body)["detail"]
    assert service.library.documents() == before


def test_a_write_without_origin_or_token_is_refused_on_the_default_server(open_app) -> None:
    url, service = open_app
    doc_id = service.library.documents()[0].id
    added, body = _curl("POST", f"{url}/api/documents", "-F", f"text={NOTE}")
    deleted, _ = _curl("DELETE", f"{url}/api/documents/{doc_id}")
    gradio, _ = _curl("POST", f"{url}/gradio_api/call/do_ingest", "-H", "Content-Type: application/json",
                      "-d", json.dumps({"data": [None, "", NOTE, "x", "unknown"]}))  # fmt: skip
    read, _ = _curl("GET", f"{url}/api/documents")  # reading needs no Origin
    from_referer, _ = _curl("POST", f"{url}/api/documents", "-H", f"Referer: {url}/?view=library", "-F", f"text={NOTE}")
    assert (added, deleted, gradio, read) == (403, 403, 403, 200), body
    assert from_referer == 200  # no Origin, but the Referer is the app's own page
    assert "x" not in [d.title for d in service.library.documents()] and len(service.library.documents()) == 2


def test_a_foreign_origin_cannot_delete_and_the_own_origin_can(open_app) -> None:
    url, service = open_app
    doc_id = service.library.documents()[0].id
    other_local = f"http://127.0.0.1:{free_port()}"  # another local app: same site, other origin
    with httpx.Client(base_url=url, timeout=60) as client:
        refused = [client.delete(f"/api/documents/{doc_id}", headers={"Origin": origin}).status_code
                   for origin in (EVIL, other_local, url.replace("127.0.0.1", "localhost"), "null")]  # fmt: skip
        kept = [d.id for d in service.library.documents()]
        patched = client.patch(f"/api/documents/{doc_id}", json={"stance": "advocate"}, headers={"Origin": url})
        deleted = client.delete(f"/api/documents/{doc_id}", headers={"Origin": url})
    assert refused == [403] * 4 and kept == [doc_id]
    assert patched.status_code == 200 and deleted.status_code == 200
    assert service.library.documents() == []


def test_a_token_script_writes_without_origin_but_a_cookie_session_needs_its_own_origin(tmp_path: Path) -> None:
    service = _service(tmp_path / "data", api_token=SecretStr(TOKEN))
    with serve_app(create_app(service)) as url:
        by_token, body = _curl("POST", f"{url}/api/documents", "-H", f"Authorization: Bearer {TOKEN}",
                               "-F", f"text={NOTE}", "-F", "title=Pier")  # fmt: skip
        with httpx.Client(base_url=url, timeout=60) as browser:
            browser.post("/login", data={"token": TOKEN}, headers={"Origin": url})
            assert browser.cookies.get("da_session")
            forged = browser.post("/api/documents", data={"text": NOTE + " Again.", "title": "Forged"},
                                  headers={"Origin": EVIL})  # fmt: skip
            bare = browser.post("/api/documents", data={"text": NOTE + " Bare.", "title": "Bare"},
                                headers={"Origin": ""})  # fmt: skip
            own = browser.post("/api/documents", data={"text": NOTE + " Own.", "title": "Own"}, headers={"Origin": url})
    titles = sorted(d.title for d in service.library.documents())
    service.close()
    assert by_token == 200, body
    assert (forged.status_code, bare.status_code, own.status_code) == (403, 403, 200)
    assert titles == ["Own", "Pier"]


def test_foreign_origins_get_no_cors_grant(open_app) -> None:
    """Gradio's own CORS middleware granted any localhost origin, with credentials."""
    url, _ = open_app
    other_local = f"http://localhost:{free_port()}"
    with httpx.Client(base_url=url, timeout=60) as client:
        preflights = [client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": method})
                      for path, method in (("/gradio_api/upload", "POST"), ("/api/documents/x", "DELETE"))
                      for origin in (other_local, EVIL)]  # fmt: skip
        simple = client.get("/gradio_api/info", headers={"Origin": other_local})
    for response in preflights:
        assert response.status_code == 403, response.text
        assert not [h for h in response.headers if h.lower().startswith("access-control-allow")], response.headers
    assert simple.status_code == 200
    assert not [h for h in simple.headers if h.lower().startswith("access-control-allow")], simple.headers


def _gradio_files(upload_dir: Path) -> list[Path]:
    return [p for p in upload_dir.rglob("*") if p.is_file()] if upload_dir.exists() else []


def test_gradio_upload_refuses_a_foreign_origin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    service = _service(tmp_path / "data")
    with serve_app(create_app(service)) as url, httpx.Client(base_url=url, timeout=60) as client:
        refused = client.post("/gradio_api/upload", files={"files": ("a.txt", NOTE.encode(), "text/plain")},
                              headers={"Origin": EVIL})  # fmt: skip
        own = client.post("/gradio_api/upload", files={"files": ("a.txt", NOTE.encode(), "text/plain")},
                          headers={"Origin": url})  # fmt: skip
    service.close()
    assert refused.status_code == 403
    assert own.status_code == 200 and len(own.json()) == 1


@pytest.mark.slow  # starts its own app and uploads over the limit: seconds
def test_gradio_upload_has_the_rest_size_limit_and_keeps_no_partial_file(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    upload_dir = tmp_path / "gradio"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(upload_dir))
    limit = 64 * 1024
    service = _service(tmp_path / "data", max_file_bytes=limit)
    big = (NOTE + "\n").encode() * (limit // len(NOTE) + 2)
    assert limit < len(big) < limit + 2 * 1024  # just over
    with serve_app(create_app(service)) as url, httpx.Client(base_url=url, timeout=60) as client:
        rest = client.post("/api/documents", files={"files": ("big.txt", big, "text/plain")})
        gradio = client.post("/gradio_api/upload", files={"files": ("big.txt", big, "text/plain")})
        left = _gradio_files(upload_dir)
        fits = client.post("/gradio_api/upload", files={"files": ("ok.txt", big[:limit], "text/plain")})
    service.close()
    assert rest.status_code == 413
    assert gradio.status_code == 413, gradio.text
    assert str(limit) in gradio.text
    assert left == []
    assert fits.status_code == 200


def test_wrong_logins_are_throttled_per_address(tmp_path: Path) -> None:
    service = _service(tmp_path / "data", api_token=SecretStr(TOKEN))
    with serve_app(create_app(service)) as url, httpx.Client(base_url=url, timeout=60) as client:
        right_first = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
        client.cookies.clear()
        wrong = [client.post("/login", data={"token": f"guess-{n}"}).status_code for n in range(12)]
        throttled = client.post("/login", data={"token": "guess-x"})
        right_now = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
        header_guess = client.get("/api/documents", headers={"Authorization": "Bearer guess-y"})
        cookie = client.get("/api/documents", cookies={"da_session": right_first.cookies["da_session"]})
    service.close()
    assert right_first.status_code == 303
    assert wrong[:5] == [401] * 5 and set(wrong[5:]) == {429}
    assert throttled.status_code == 429 and 0 < int(throttled.headers["Retry-After"]) <= 600
    assert "try again" in throttled.text.lower()
    assert right_now.status_code == 429  # a right guess among many must not get through either
    assert header_guess.status_code == 429  # the Authorization header is the same door
    assert cookie.status_code == 200  # a browser already logged in keeps working


def test_a_websocket_from_a_foreign_origin_is_refused(tmp_path: Path) -> None:
    """No route of ours is a websocket today; a future one (or Gradio's) is covered already."""
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    from assistant.server.access import AccessMiddleware, AccessRule

    async def echo(websocket) -> None:
        await websocket.accept()
        await websocket.send_text("open")
        await websocket.close()

    app = Starlette(routes=[WebSocketRoute("/ws", echo)])
    app.add_middleware(AccessMiddleware, rule=AccessRule(Settings(data_dir=tmp_path)))
    with serve_app(app) as url:
        ws_url = url.replace("http://", "ws://") + "/ws"
        with connect(ws_url, origin=url) as own:
            greeting = own.recv(timeout=10)
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url, origin=EVIL)
    assert greeting == "open"
    assert refused.value.response.status_code == 403
