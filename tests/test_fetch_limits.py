"""A URL body that did not arrive whole is an error, and nothing of it is stored (issue 32, failure 5).

A body can be cut in several ways: the watchdog shuts the socket at the time limit (a
close-delimited body then simply "ends", and httpx reports no error), the size limit stops the
read, the server closes before its Content-Length, a chunked body breaks off, or a gzip stream
stops half way (zlib's ``flush`` returns what it has without complaint). Each is tested against a
real server on 127.0.0.1, through ``fetch_url``, the library's ingest and ``POST /api/documents``.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from assistant.storage.library import Library
from assistant.server.service import Service
from assistant.core.settings import Settings
from ingest.fetch import FetchError, fetch_url
from ingest.pipeline import ADDED, ERROR
from tests.servers import serve, serve_app

pytestmark = pytest.mark.slow  # real HTTP servers that break off mid-body: about 11 s in all

TIMEOUT_S = 1.0
MAX_BYTES = 200_000


def _paragraph(i: int) -> bytes:
    """Article-like text written for this test (a fictional harbour), one paragraph per step."""
    return (
        f"Paragraph {i}. The harbour board of Velmora reviewed tide gauge number {i} and logged a "
        f"reading of {i * 3} centimetres above the winter mean, which the board called unremarkable.\n\n"
    ).encode()


ARTICLE = b"The Velmora Tide Report\n\n" + b"".join(_paragraph(i) for i in range(60))


def _head(handler: BaseHTTPRequestHandler, **headers: str) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/plain")
    for key, value in headers.items():
        handler.send_header(key.replace("_", "-"), value)
    handler.end_headers()


@pytest.fixture
def routes() -> Iterator[dict]:
    """Servers that cut a body in each way (HTTP/1.0: a body without a length ends at the close)."""
    stop = threading.Event()

    def trickle_until_closed(handler: BaseHTTPRequestHandler) -> None:
        _head(handler)  # no Content-Length: close-delimited
        handler.wfile.write(b"The Velmora Tide Report\n\n")
        for i in range(600):  # a paragraph every 0.05 s, far past the time limit
            if stop.wait(0.05):
                return
            handler.wfile.write(_paragraph(i))
            handler.wfile.flush()

    def short_of_its_length(handler: BaseHTTPRequestHandler) -> None:
        _head(handler, Content_Length=str(len(ARTICLE)))
        handler.wfile.write(ARTICLE[: len(ARTICLE) // 3])  # then the connection closes

    def over_size_without_length(handler: BaseHTTPRequestHandler) -> None:
        _head(handler)
        for i in range(4000):  # about 700 kB, over MAX_BYTES
            handler.wfile.write(_paragraph(i))

    def chunked_cut_off(handler: BaseHTTPRequestHandler) -> None:
        _head(handler, Transfer_Encoding="chunked")
        chunk = ARTICLE[:4000]
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))  # no closing 0-chunk: it just closes

    def chunked_garbled(handler: BaseHTTPRequestHandler) -> None:
        _head(handler, Transfer_Encoding="chunked")
        chunk = ARTICLE[:4000]
        handler.wfile.write(b"%x\r\n%s\r\nnot-a-chunk-size\r\n" % (len(chunk), chunk))

    whole = gzip.compress(ARTICLE)
    cut_gzip = whole[: len(whole) // 2]  # a gzip stream that stops half way

    def gzip_cut_off(handler: BaseHTTPRequestHandler) -> None:
        _head(handler, Content_Encoding="gzip", Content_Length=str(len(cut_gzip)))
        handler.wfile.write(cut_gzip)

    def whole_without_length(handler: BaseHTTPRequestHandler) -> None:
        _head(handler)
        handler.wfile.write(ARTICLE)

    whole_gzip = gzip.compress(ARTICLE)

    def gzip_whole(handler: BaseHTTPRequestHandler) -> None:
        _head(handler, Content_Encoding="gzip", Content_Length=str(len(whole_gzip)))
        handler.wfile.write(whole_gzip)

    yield {
        "/trickle": trickle_until_closed, "/short": short_of_its_length, "/oversize": over_size_without_length,
        "/chunked-cut": chunked_cut_off, "/chunked-garbled": chunked_garbled, "/gzip-cut": gzip_cut_off,
        "/whole": whole_without_length, "/gzip-whole": gzip_whole,
    }  # fmt: skip
    stop.set()


CUT = [
    # Waits for the time limit on purpose: the slow lane.
    pytest.param("/trickle", f"took longer than {TIMEOUT_S:g} s", marks=pytest.mark.slow),
    ("/short", "broke off before the whole body arrived"),
    ("/oversize", f"over the {MAX_BYTES}-byte limit"),
    ("/chunked-cut", "broke off before the whole body arrived"),
    ("/chunked-garbled", "broke off before the whole body arrived"),
    ("/gzip-cut", "gzip body that stops before its end"),
]


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", allow_private_urls=True, url_timeout_s=TIMEOUT_S, url_max_bytes=MAX_BYTES,
        llm_backend="extractive",
    )  # fmt: skip


@pytest.mark.parametrize("path, message", CUT)
def test_a_cut_body_is_a_fetch_error(routes, path: str, message: str) -> None:
    with serve(routes) as base:
        with pytest.raises(FetchError, match=message):
            fetch_url(f"{base}{path}", allow_private=True, timeout_s=TIMEOUT_S, max_bytes=MAX_BYTES)


@pytest.mark.parametrize("path", ["/whole", "/gzip-whole"])
def test_a_whole_body_without_a_length_or_compressed_is_fetched(routes, path: str) -> None:
    with serve(routes) as base:
        page = fetch_url(f"{base}{path}", allow_private=True, timeout_s=10, max_bytes=MAX_BYTES)
    assert page.content == ARTICLE


@pytest.mark.parametrize("path, message", CUT)
def test_the_library_stores_nothing_of_a_cut_body(routes, tmp_path: Path, path: str, message: str) -> None:
    library = Library(_settings(tmp_path))
    try:
        with serve(routes) as base:
            [result] = library.ingest([f"{base}{path}"])
        assert result.status == ERROR, result
        assert message in result.message and result.doc_id is None
        assert library.documents(include_unfinished=True) == []
        assert library.store.count() == 0
    finally:
        library.close()


@pytest.mark.parametrize("path, message", [CUT[0], CUT[1], CUT[5]])
def test_the_api_reports_a_cut_body_as_an_error_and_stores_nothing(
    routes, tmp_path: Path, path: str, message: str
) -> None:
    from ui import create_app

    service = Service(_settings(tmp_path))
    try:
        with serve(routes) as base, serve_app(create_app(service)) as url:
            response = httpx.post(f"{url}/api/documents", data={"url": f"{base}{path}"}, timeout=60)
            listing = httpx.get(f"{url}/api/documents", timeout=60)
        assert response.status_code == 200, response.text
        [result] = response.json()
        assert result["status"] == ERROR and message in result["message"]
        assert listing.json() == []
        assert service.library.store.count() == 0
    finally:
        service.close()


def test_a_whole_close_delimited_page_is_still_added(routes, tmp_path: Path) -> None:
    library = Library(_settings(tmp_path))
    try:
        with serve(routes) as base:
            [result] = library.ingest([f"{base}/whole"])
        assert result.status == ADDED, result
    finally:
        library.close()
