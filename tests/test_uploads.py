"""Uploads are checked against max_file_bytes while they stream in, not after (issue 12)."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from assistant.server.service import Service
from tests.servers import serve_app
from ui import create_app

LIMIT = 1_000_000


@pytest.fixture
def api(settings):
    service = Service(settings.model_copy(update={"llm_backend": "extractive", "max_file_bytes": LIMIT}))
    with serve_app(create_app(service)) as url:
        yield url, service
    service.close()


def test_a_file_over_the_limit_is_refused_with_413_and_nothing_is_added(api) -> None:
    url, service = api
    files = [("files", ("small.txt", b"The ferry ran twice a day along the harbour.", "text/plain")),
             ("files", ("huge.txt", b"x" * (3 * LIMIT), "text/plain"))]  # fmt: skip
    response = httpx.post(f"{url}/api/documents", files=files, timeout=60)
    assert response.status_code == 413
    assert "huge.txt" in response.json()["detail"] and str(LIMIT) in response.json()["detail"]
    assert service.library.documents() == []  # the request as a whole is refused: nothing half added
    ok = httpx.post(f"{url}/api/documents", files=[files[0]], timeout=60)
    assert ok.status_code == 200 and ok.json()[0]["status"] == "added"


@pytest.mark.slow  # streams megabytes over a real socket: seconds
def test_the_refusal_comes_while_the_upload_is_still_streaming(api, tmp_path: Path) -> None:
    """The client announces 200 MB, sends 3 MB and then nothing more: the 413 must arrive anyway
    (a check after the upload would wait for the other 197 MB forever)."""
    url, _ = api
    host, port = url.removeprefix("http://").split(":")
    boundary = "soakboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.txt\"\r\n"
            "Content-Type: text/plain\r\n\r\n").encode()  # fmt: skip
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            f"POST /api/documents HTTP/1.1\r\nHost: {host}:{port}\r\nOrigin: http://{host}:{port}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {200_000_000}\r\n\r\n".encode() + head
        )
        for _ in range(3):
            sock.sendall(b"y" * LIMIT)
        reply = sock.recv(65536).decode(errors="replace")  # socket.timeout here means no answer came
    assert reply.startswith("HTTP/1.1 413"), reply[:200]
    assert "big.txt" in reply


def test_pasted_text_and_urlencoded_forms_still_work(api) -> None:
    url, service = api
    added = httpx.post(f"{url}/api/documents", data={"text": "Pasted notes about the harbour ferry timetable.",
                                                      "title": "Ferry notes"}, timeout=60)  # fmt: skip
    assert added.status_code == 200 and added.json()[0]["status"] == "added"
    assert [d.title for d in service.library.documents()] == ["Ferry notes"]
    assert httpx.post(f"{url}/api/documents", data={}, timeout=60).status_code == 422
